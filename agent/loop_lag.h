// How late the event loop runs a timer: the time the loop thread spent in
// callbacks that ran long, or waiting for a CPU. Everything on the loop
// (producer reads and acks, the uplink, metrics) waits that long too, and
// no per-message histogram sees it: an ack's latency starts when its frame
// is read, after the stall.
#pragma once

#include <cstdint>
#include <functional>

#include "platform/clock.h"
#include "platform/loop.h"

namespace edgespool::agent {

class LoopLagProbe {
 public:
  // Calls on_lag(seconds late, >= 0) every period_ms, on the loop thread.
  LoopLagProbe(platform::Loop& loop, const platform::Clock& clock, uint64_t period_ms,
               std::function<void(double)> on_lag);
  void Stop() { timer_.Stop(); }

 private:
  void OnFire();

  const platform::Clock& clock_;
  const int64_t period_ns_;
  std::function<void(double)> on_lag_;
  platform::TimerHandle timer_;
  int64_t due_ns_ = 0;
};

}  // namespace edgespool::agent
