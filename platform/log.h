// Logging: levels, `text` lines for a terminal or `json` lines (one object per
// line with ts, level, msg and fields) for journald and log shippers.
//
//   text:     2026-12-04T22:01:02.123Z warn uplink disconnected url=mqtt://b:1883
//   json:     {"ts":"2026-12-04T22:01:02.123Z","level":"warn","msg":"...","url":"..."}
//
// Under journald (JOURNAL_STREAM names the device:inode of the fd we write, as
// systemd.exec(5) documents) each line starts with a sd-daemon(3) priority
// prefix, <3> error, <4> warn, <6> info, <7> debug, which journald strips and
// stores as PRIORITY= (so `journalctl -p warning` works), and text lines drop
// their timestamp: journald stamps every entry itself. JSON lines keep "ts":
// the object's fields are a contract for whoever parses MESSAGE.
//
//   journald: <4>warn uplink disconnected url=mqtt://b:1883
//
// Thread-safe: a line is formatted into a thread-local buffer and written with
// one write(2) to stderr, so lines from the loop and store threads never
// interleave, and the hot path does no allocation once the buffer has grown.
// Filtering happens before formatting: a disabled level costs one load.
//
//   ES_LOG_INFO("uplink connected", {{"url", url}, {"after_ms", "1200"}});
#pragma once

#include <atomic>
#include <initializer_list>
#include <string>
#include <string_view>

namespace edgespool::platform {

enum class LogLevel : int { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3, kOff = 4 };
enum class LogFormat { kText, kJson };

struct LogField {
  std::string_view key;
  std::string_view value;
};

class Logger {
 public:
  static void SetLevel(LogLevel level) { level_.store(static_cast<int>(level)); }
  static void SetFormat(LogFormat format) { json_.store(format == LogFormat::kJson); }
  // Redirects output (tests); -1 restores stderr. The journald prefix follows
  // the fd: on when JOURNAL_STREAM names it.
  static void SetFd(int fd);
  static bool JournalMode() { return journal_.load(); }
  static bool Enabled(LogLevel level) { return static_cast<int>(level) >= level_.load(); }
  static void Write(LogLevel level, std::string_view msg,
                    std::initializer_list<LogField> fields = {});
  static bool ParseLevel(std::string_view name, LogLevel* out);

 private:
  static std::atomic<int> level_;
  static std::atomic<bool> json_;
  static std::atomic<int> fd_;
  static std::atomic<bool> journal_;
};

// True when $JOURNAL_STREAM ("DEVICE:INODE", decimal) is the st_dev:st_ino of
// fd: systemd connected it to journald. An fd inherited by a child that was
// redirected elsewhere no longer matches, so its lines are plain again.
bool IsJournalStream(int fd);

}  // namespace edgespool::platform

#define ES_LOG_AT(level, ...)                                                  \
  do {                                                                         \
    if (::edgespool::platform::Logger::Enabled(level))                         \
      ::edgespool::platform::Logger::Write(level, __VA_ARGS__);                \
  } while (0)
#define ES_LOG_DEBUG(...) ES_LOG_AT(::edgespool::platform::LogLevel::kDebug, __VA_ARGS__)
#define ES_LOG_INFO(...) ES_LOG_AT(::edgespool::platform::LogLevel::kInfo, __VA_ARGS__)
#define ES_LOG_WARN(...) ES_LOG_AT(::edgespool::platform::LogLevel::kWarn, __VA_ARGS__)
#define ES_LOG_ERROR(...) ES_LOG_AT(::edgespool::platform::LogLevel::kError, __VA_ARGS__)
