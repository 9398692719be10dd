#include "agent/rate_limiter.h"

#include <algorithm>
#include <cmath>

namespace edgespool::agent {

const RateLimitRule* RateLimiter::RuleFor(uint32_t uid, uint32_t gid) const {
  for (const RateLimitRule& r : rules_) {
    if (r.uid && *r.uid != uid) continue;
    if (r.gid && *r.gid != gid) continue;
    return &r;
  }
  return nullptr;
}

double RateLimiter::MessageCapacity(const RateLimitRule& r) {
  return r.burst > 0 ? r.burst : std::max(1.0, r.messages_per_second);
}

// Bytes may burst for as many seconds as messages may.
double RateLimiter::ByteCapacity(const RateLimitRule& r) {
  double seconds = r.messages_per_second > 0 ? MessageCapacity(r) / r.messages_per_second : 1.0;
  return std::max(1.0, r.bytes_per_second * std::max(1.0, seconds));
}

void RateLimiter::Refill(Bucket& b, int64_t now_ms) {
  double dt = static_cast<double>(std::max<int64_t>(0, now_ms - b.last_ms)) / 1000.0;
  b.last_ms = now_ms;
  b.messages = std::min(MessageCapacity(*b.rule), b.messages + dt * b.rule->messages_per_second);
  b.bytes = std::min(ByteCapacity(*b.rule), b.bytes + dt * b.rule->bytes_per_second);
}

RateLimiter::Decision RateLimiter::Admit(uint32_t uid, uint32_t gid, uint64_t bytes,
                                         int64_t now_ms) {
  const RateLimitRule* rule = RuleFor(uid, gid);
  if (rule == nullptr || (rule->messages_per_second <= 0 && rule->bytes_per_second <= 0)) {
    return {};
  }
  uint64_t key = (static_cast<uint64_t>(uid) << 32) | gid;
  auto it = buckets_.find(key);
  if (it == buckets_.end()) {
    it = buckets_.emplace(key, Bucket{rule, MessageCapacity(*rule), ByteCapacity(*rule), now_ms})
             .first;
  }
  Bucket& b = it->second;
  Refill(b, now_ms);
  double need_bytes = static_cast<double>(bytes);
  // A message bigger than the byte bucket could ever hold is admitted when
  // the bucket is full, so it is slowed down, not refused forever.
  if (rule->bytes_per_second > 0) need_bytes = std::min(need_bytes, ByteCapacity(*rule));
  double wait_s = 0;
  if (rule->messages_per_second > 0 && b.messages < 1.0) {
    wait_s = std::max(wait_s, (1.0 - b.messages) / rule->messages_per_second);
  }
  if (rule->bytes_per_second > 0 && b.bytes < need_bytes) {
    wait_s = std::max(wait_s, (need_bytes - b.bytes) / rule->bytes_per_second);
  }
  if (wait_s > 0) {
    return Decision{false, std::max<int64_t>(1, static_cast<int64_t>(std::ceil(wait_s * 1000)))};
  }
  if (rule->messages_per_second > 0) b.messages -= 1.0;
  if (rule->bytes_per_second > 0) b.bytes -= need_bytes;
  return {};
}

void RateLimiter::Sweep(int64_t now_ms) {
  for (auto it = buckets_.begin(); it != buckets_.end();) {
    Refill(it->second, now_ms);
    const RateLimitRule& r = *it->second.rule;
    bool full = it->second.messages >= MessageCapacity(r) && it->second.bytes >= ByteCapacity(r);
    it = full ? buckets_.erase(it) : std::next(it);
  }
}

}  // namespace edgespool::agent
