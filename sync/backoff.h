// Reconnect backoff: exponential growth with full jitter, floored at the
// initial delay so that a flapping link can never turn into a hot loop.
//
// Attempt n (0-based, counted since the last Reset) waits a uniformly random
// delay in [initial_ms, min(max_ms, initial_ms * 2^(n+1))]. Full jitter
// (rather than "exponential plus a little noise") spreads a fleet of gateways
// that lost the same broker at the same moment over the whole window, so
// they do not come back as one thundering herd; the floor keeps each of
// them from retrying faster than initial_ms. The ceiling reaches max_ms and
// stays there, which bounds recovery time after an outage to ~max_ms.
//
// A plain value class: no clock, no I/O; the RNG is seeded by the caller so
// tests are deterministic. Not thread-safe.
#pragma once

#include <cstdint>
#include <random>

namespace edgespool::sync {

class Backoff {
 public:
  Backoff(uint64_t initial_ms, uint64_t max_ms, uint64_t seed);

  // The delay before the next attempt; advances the attempt counter.
  uint64_t NextDelayMs();
  // Forget past failures (the connection has been healthy for a while).
  void Reset() { attempt_ = 0; }
  uint32_t attempt() const { return attempt_; }
  // The upper bound NextDelayMs() would use now.
  uint64_t CeilingMs() const;
  uint64_t initial_ms() const { return initial_ms_; }
  uint64_t max_ms() const { return max_ms_; }

 private:
  uint64_t initial_ms_;
  uint64_t max_ms_;
  uint32_t attempt_ = 0;
  std::mt19937_64 rng_;
};

}  // namespace edgespool::sync
