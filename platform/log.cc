#include "platform/log.h"

#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

namespace edgespool::platform {

std::atomic<int> Logger::level_{static_cast<int>(LogLevel::kInfo)};
std::atomic<bool> Logger::json_{false};
std::atomic<int> Logger::fd_{2};

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

void AppendJsonString(std::string& out, std::string_view s) {
  out.push_back('"');
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
  out.push_back('"');
}

// Text values with spaces or quotes are quoted so a line stays parseable.
void AppendTextValue(std::string& out, std::string_view s) {
  bool plain = !s.empty() && s.find_first_of(" \"=\n\t") == std::string_view::npos;
  if (plain) {
    out.append(s);
  } else {
    AppendJsonString(out, s);
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

}  // namespace

void Logger::Write(LogLevel level, std::string_view msg, std::initializer_list<LogField> fields) {
  thread_local std::string line;
  line.clear();
  if (json_.load()) {
    line += "{\"ts\":\"";
    AppendTimestamp(line);
    line += "\",\"level\":\"";
    line += LevelName(level);
    line += "\",\"msg\":";
    AppendJsonString(line, msg);
    for (const auto& f : fields) {
      line.push_back(',');
      AppendJsonString(line, f.key);
      line.push_back(':');
      AppendJsonString(line, f.value);
    }
    line += "}\n";
  } else {
    AppendTimestamp(line);
    line.push_back(' ');
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
  const char* p = line.data();
  size_t left = line.size();
  int fd = fd_.load();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // nowhere to log to; never fail the caller for it
    p += n;
    left -= static_cast<size_t>(n);
  }
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
