// Logging: levels, `text` lines for a terminal or `json` lines (one object per
// line with ts, level, msg and fields) for journald and log shippers.
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
  // Redirects output (tests); -1 restores stderr.
  static void SetFd(int fd) { fd_.store(fd < 0 ? 2 : fd); }
  static bool Enabled(LogLevel level) { return static_cast<int>(level) >= level_.load(); }
  static void Write(LogLevel level, std::string_view msg,
                    std::initializer_list<LogField> fields = {});
  static bool ParseLevel(std::string_view name, LogLevel* out);

 private:
  static std::atomic<int> level_;
  static std::atomic<bool> json_;
  static std::atomic<int> fd_;
};

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
