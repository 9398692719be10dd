#include "platform/log.h"

#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "platform/json_escape.h"

namespace edgespool::platform {

std::atomic<int> Logger::level_{static_cast<int>(LogLevel::kInfo)};
std::atomic<bool> Logger::json_{false};
std::atomic<int> Logger::fd_{2};
// Decided once at start-up for stderr; environ is in place before static
// initialisers run, and nothing logs from another initialiser.
std::atomic<bool> Logger::journal_{IsJournalStream(2)};

namespace {

const char* LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug: return "debug";
    case LogLevel::kInfo: return "info";
    case LogLevel::kWarn: return "warn";
    case LogLevel::kError: return "error";
    case LogLevel::kOff: break;
  }
  return "off";
}

// sd-daemon(3) prefixes: LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG.
const char* JournalPrefix(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug: return "<7>";
    case LogLevel::kInfo: return "<6>";
    case LogLevel::kWarn: return "<4>";
    case LogLevel::kError:
    case LogLevel::kOff: break;
  }
  return "<3>";
}

// Text values with spaces or quotes are quoted so a line stays parseable.
void AppendTextValue(std::string& out, std::string_view s) {
  bool plain = !s.empty() && s.find_first_of(" \"=\n\t") == std::string_view::npos;
  if (plain) {
    out.append(s);
  } else {
    AppendJsonString(&out, s);
  }
}

void AppendTimestamp(std::string& out) {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  tm utc;
  gmtime_r(&ts.tv_sec, &utc);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", utc.tm_year + 1900,
                utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec,
                ts.tv_nsec / 1000000);
  out += buf;
}

void AppendJsonLine(std::string& line, LogLevel level, std::string_view msg,
                    std::initializer_list<LogField> fields) {
  line += "{\"ts\":\"";
  AppendTimestamp(line);
  line += "\",\"level\":\"";
  line += LevelName(level);
  line += "\",\"msg\":";
  AppendJsonString(&line, msg);
  for (const auto& f : fields) {
    line.push_back(',');
    AppendJsonString(&line, f.key);
    line.push_back(':');
    AppendJsonString(&line, f.value);
  }
  line += "}\n";
}

void AppendTextLine(std::string& line, bool timestamp, LogLevel level, std::string_view msg,
                    std::initializer_list<LogField> fields) {
  if (timestamp) {
    AppendTimestamp(line);
    line.push_back(' ');
  }
  line += LevelName(level);
  line.push_back(' ');
  line.append(msg);
  for (const auto& f : fields) {
    line.push_back(' ');
    line.append(f.key);
    line.push_back('=');
    AppendTextValue(line, f.value);
  }
  line.push_back('\n');
}

// One write(2) per line: atomic for pipes up to PIPE_BUF, never interleaved
// mid-line by our own threads for typical lengths. A short write is retried.
void WriteAll(int fd, const std::string& line) {
  const char* p = line.data();
  size_t left = line.size();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // nowhere to log to; never fail the caller for it
    p += n;
    left -= static_cast<size_t>(n);
  }
}

}  // namespace

bool IsJournalStream(int fd) {
  const char* env = std::getenv("JOURNAL_STREAM");
  if (env == nullptr) return false;
  uintmax_t dev = 0, ino = 0;
  char tail = 0;
  if (std::sscanf(env, "%ju:%ju%c", &dev, &ino, &tail) != 2) return false;
  struct stat st;
  if (::fstat(fd, &st) != 0) return false;
  return static_cast<uintmax_t>(st.st_dev) == dev && static_cast<uintmax_t>(st.st_ino) == ino;
}

void Logger::SetFd(int fd) {
  fd = fd < 0 ? 2 : fd;
  journal_.store(IsJournalStream(fd));
  fd_.store(fd);
}

void Logger::Write(LogLevel level, std::string_view msg, std::initializer_list<LogField> fields) {
  thread_local std::string line;
  line.clear();
  bool journal = journal_.load();
  if (journal) line += JournalPrefix(level);
  if (json_.load()) {
    AppendJsonLine(line, level, msg, fields);
  } else {
    AppendTextLine(line, /*timestamp=*/!journal, level, msg, fields);
  }
  WriteAll(fd_.load(), line);
}

bool Logger::ParseLevel(std::string_view name, LogLevel* out) {
  static constexpr std::pair<std::string_view, LogLevel> kLevels[] = {
      {"debug", LogLevel::kDebug}, {"info", LogLevel::kInfo}, {"warn", LogLevel::kWarn},
      {"error", LogLevel::kError}, {"off", LogLevel::kOff}};
  for (const auto& [n, l] : kLevels) {
    if (n == name) {
      *out = l;
      return true;
    }
  }
  return false;
}

}  // namespace edgespool::platform
