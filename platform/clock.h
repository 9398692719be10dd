// Clock: wall time and monotonic time behind one small interface, so that tests
// can drive time (FakeClock) where expiry, backoff or retention matter.
#pragma once

#include <atomic>
#include <cstdint>

namespace edgespool::platform {

class Clock {
 public:
  virtual ~Clock() = default;
  // Milliseconds since the Unix epoch (may jump: NTP, RTC-less boots).
  virtual int64_t WallMs() const = 0;
  // Monotonic nanoseconds from an arbitrary origin; never goes back.
  virtual int64_t MonotonicNs() const = 0;
  int64_t MonotonicMs() const { return MonotonicNs() / 1000000; }
};

class SystemClock final : public Clock {
 public:
  int64_t WallMs() const override;
  int64_t MonotonicNs() const override;
  // The process-wide instance (stateless, so shared safely across threads).
  static const SystemClock& Get();
};

// Thread-safe manual clock for tests.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(int64_t wall_ms = 1700000000000, int64_t mono_ns = 1000000000)
      : wall_ms_(wall_ms), mono_ns_(mono_ns) {}
  int64_t WallMs() const override { return wall_ms_.load(); }
  int64_t MonotonicNs() const override { return mono_ns_.load(); }
  void AdvanceMs(int64_t ms) {
    wall_ms_ += ms;
    mono_ns_ += ms * 1000000;
  }
  void SetWallMs(int64_t ms) { wall_ms_ = ms; }

 private:
  std::atomic<int64_t> wall_ms_;
  std::atomic<int64_t> mono_ns_;
};

}  // namespace edgespool::platform
