// Per-peer token buckets: a producer (identified by its SO_PEERCRED uid and
// gid) may publish messages_per_second and bytes_per_second on average, with
// bursts up to `burst` messages (and burst seconds' worth of bytes).
//
//   [[producer.rate_limit]]
//   uid = 1001                # or gid, or neither (everyone)
//   messages_per_second = 1000
//   bytes_per_second = 1048576
//   burst = 2000
//
// The first rule whose identity matches applies; a peer matching no rule is
// not limited. A refused message costs nothing and gets retry_after_ms: when
// enough tokens will have accrued for it.
//
// Thread-safety: loop-thread-only. Time is passed in (monotonic ms), so the
// class is tested without a clock.
#pragma once

#include <cstdint>
#include <optional>
#include <unordered_map>
#include <vector>

namespace edgespool::agent {

struct RateLimitRule {
  std::optional<uint32_t> uid;
  std::optional<uint32_t> gid;
  double messages_per_second = 0;  // 0: unlimited
  double bytes_per_second = 0;     // 0: unlimited
  double burst = 0;                // messages; 0: one second's worth
};

class RateLimiter {
 public:
  struct Decision {
    bool allowed = true;
    int64_t retry_after_ms = 0;
  };

  explicit RateLimiter(std::vector<RateLimitRule> rules = {}) : rules_(std::move(rules)) {}
  bool empty() const { return rules_.empty(); }
  Decision Admit(uint32_t uid, uint32_t gid, uint64_t bytes, int64_t now_ms);
  // Drops buckets that are full again (idle peers), bounding memory by the
  // number of peers active within the last few seconds.
  void Sweep(int64_t now_ms);
  size_t bucket_count() const { return buckets_.size(); }

 private:
  struct Bucket {
    const RateLimitRule* rule;
    double messages;
    double bytes;
    int64_t last_ms;
  };
  const RateLimitRule* RuleFor(uint32_t uid, uint32_t gid) const;
  static double MessageCapacity(const RateLimitRule& r);
  static double ByteCapacity(const RateLimitRule& r);
  static void Refill(Bucket& b, int64_t now_ms);

  std::vector<RateLimitRule> rules_;
  std::unordered_map<uint64_t, Bucket> buckets_;  // key: uid << 32 | gid
};

}  // namespace edgespool::agent
