#include "sync/backoff.h"

#include <algorithm>

namespace edgespool::sync {

Backoff::Backoff(uint64_t initial_ms, uint64_t max_ms, uint64_t seed)
    : initial_ms_(std::max<uint64_t>(initial_ms, 1)),
      max_ms_(std::max(max_ms, std::max<uint64_t>(initial_ms, 1))),
      rng_(seed) {}

uint64_t Backoff::CeilingMs() const {
  // Doubling stops at max_ms, so it never overflows.
  uint64_t ceiling = initial_ms_;
  for (uint32_t i = 0; i <= attempt_ && ceiling < max_ms_; ++i) {
    ceiling = ceiling > max_ms_ / 2 ? max_ms_ : ceiling * 2;
  }
  return std::min(ceiling, max_ms_);
}

uint64_t Backoff::NextDelayMs() {
  uint64_t ceiling = CeilingMs();
  uint64_t span = ceiling - initial_ms_;
  // Modulo bias is irrelevant at these spans (< 2^32 out of 2^64).
  uint64_t delay = initial_ms_ + (span == 0 ? 0 : rng_() % (span + 1));
  if (attempt_ < UINT32_MAX) ++attempt_;
  return delay;
}

}  // namespace edgespool::sync
