#include "agent/watchdog.h"

#include <algorithm>
#include <utility>

#include "platform/log.h"

namespace edgespool::agent {

WatchdogPinger::WatchdogPinger(platform::Loop& loop, platform::SystemdNotifier& notifier,
                               std::function<bool()> healthy)
    : notifier_(notifier), healthy_(std::move(healthy)), timer_(loop) {}

bool WatchdogPinger::Start() {
  if (!notifier_.watchdog_enabled()) return false;
  // Round down to whole ms but never to 0 (a 0 repeat would make it one-shot).
  uint64_t interval_ms =
      std::max<uint64_t>(1, static_cast<uint64_t>(notifier_.WatchdogInterval().count()) / 1000);
  // The timer does not keep the loop alive: the pinger watches the agent, it
  // is not a reason for the agent to keep running.
  timer_.Start(0, interval_ms, [this] { Tick(); });
  timer_.Unref();
  return true;
}

void WatchdogPinger::Stop() { timer_.Stop(); }

void WatchdogPinger::Tick() {
  if (healthy_ && !healthy_()) {
    // Not pinging is the report: systemd restarts us after WatchdogSec=.
    if (pings_skipped_++ == 0 || pings_skipped_ % 16 == 0) {
      ES_LOG_WARN("unhealthy: withholding the watchdog ping",
                  {{"skipped", std::to_string(pings_skipped_)}});
    }
    return;
  }
  Status st = notifier_.Watchdog();
  if (!st.ok()) {
    if (!warned_) ES_LOG_WARN("watchdog ping failed", {{"error", st.ToString()}});
    warned_ = true;
    return;
  }
  warned_ = false;
  ++pings_sent_;
}

}  // namespace edgespool::agent
