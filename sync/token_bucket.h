// A token bucket over a monotonic clock: `rate` tokens per second, at most
// `burst` saved up. Used for the uplink's bandwidth limit (bytes) and the
// producer side's rate limits (messages, bytes). Not thread-safe.
#pragma once

#include <algorithm>
#include <cstdint>

namespace edgespool::sync {

class TokenBucket {
 public:
  // rate <= 0: unlimited.
  TokenBucket(double rate, double burst, int64_t now_ns)
      : rate_(rate), burst_(burst > 0 ? burst : rate), tokens_(burst_), last_ns_(now_ns) {}

  bool unlimited() const { return rate_ <= 0; }

  // Takes n tokens if available now.
  bool TryTake(double n, int64_t now_ns) {
    if (unlimited()) return true;
    Refill(now_ns);
    // A request larger than the burst can never be satisfied by waiting:
    // let it through when the bucket is full and go into debt instead.
    if (tokens_ >= n || (n > burst_ && tokens_ >= burst_)) {
      tokens_ -= n;
      return true;
    }
    return false;
  }

  // Milliseconds until n tokens will be available (0 if now).
  int64_t WaitMs(double n, int64_t now_ns) {
    if (unlimited()) return 0;
    Refill(now_ns);
    double need = std::min(n, burst_) - tokens_;
    if (need <= 0) return 0;
    return static_cast<int64_t>(need * 1000.0 / rate_) + 1;
  }

 private:
  void Refill(int64_t now_ns) {
    if (now_ns > last_ns_) {
      tokens_ = std::min(burst_, tokens_ + rate_ * static_cast<double>(now_ns - last_ns_) / 1e9);
      last_ns_ = now_ns;
    }
  }

  double rate_;
  double burst_;
  double tokens_;
  int64_t last_ns_;
};

}  // namespace edgespool::sync
