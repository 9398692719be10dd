#include "agent/fd_limit.h"

#include <string>

#include "platform/log.h"
#include "platform/process_limits.h"

namespace edgespool::agent {

namespace {

std::string Number(uint64_t v) {
  return v == platform::kUnlimited ? "unlimited" : std::to_string(v);
}

}  // namespace

uint64_t FileLimitNeeded(const Config& config) {
  int64_t conns = config.producer.max_connections > 0 ? config.producer.max_connections : 0;
  // WebSocket sessions are connections too (docs/websocket.md).
  if (!config.websocket.listen.empty()) conns += config.websocket.max_sessions;
  return static_cast<uint64_t>(conns + kFileLimitMargin + kRefusalBurst);
}

uint64_t RaiseFileLimitForConfig(const Config& config) {
  uint64_t needed = FileLimitNeeded(config);
  auto before = platform::GetFileLimit();
  auto after = platform::RaiseFileLimit(needed);
  if (!before.ok() || !after.ok()) {
    ES_LOG_WARN(
        "cannot raise the file descriptor limit (RLIMIT_NOFILE); producers past it "
        "get EMFILE instead of a busy reply",
        {{"error", (before.ok() ? after.status() : before.status()).ToString()},
         {"key", "producer.max_connections"},
         {"needed", std::to_string(needed)}});
    return before.ok() ? before->soft : 0;
  }
  if (after->soft < needed) {
    ES_LOG_WARN(
        "file descriptor hard limit (RLIMIT_NOFILE) is below what "
        "producer.max_connections needs; producers past it get EMFILE instead of "
        "a busy reply: raise LimitNOFILE= or lower the key",
        {{"key", "producer.max_connections"},
         {"max_connections", std::to_string(config.producer.max_connections)},
         {"needed", std::to_string(needed)},
         {"hard_limit", Number(after->hard)},
         {"soft_limit", Number(after->soft)}});
  } else if (after->soft != before->soft) {
    ES_LOG_INFO("raised the file descriptor limit (RLIMIT_NOFILE)",
                {{"from", Number(before->soft)},
                 {"to", Number(after->soft)},
                 {"hard_limit", Number(after->hard)},
                 {"key", "producer.max_connections"}});
  }
  return after->soft;
}

}  // namespace edgespool::agent
