#include "agent/loop_lag.h"

#include <algorithm>

namespace edgespool::agent {

LoopLagProbe::LoopLagProbe(platform::Loop& loop, const platform::Clock& clock, uint64_t period_ms,
                           std::function<void(double)> on_lag)
    : clock_(clock),
      period_ns_(static_cast<int64_t>(period_ms) * 1000000),
      on_lag_(std::move(on_lag)),
      timer_(loop) {
  due_ns_ = clock_.MonotonicNs() + period_ns_;
  timer_.Start(period_ms, period_ms, [this] { OnFire(); });
  timer_.Unref();  // a probe alone does not keep the agent running
}

// libuv re-arms a repeating timer from the time it ran, so each period is
// measured from the previous firing: a stall is counted once.
void LoopLagProbe::OnFire() {
  int64_t now = clock_.MonotonicNs();
  on_lag_(static_cast<double>(std::max<int64_t>(0, now - due_ns_)) / 1e9);
  due_ns_ = now + period_ns_;
}

}  // namespace edgespool::agent
