// The systemd watchdog ping, driven by a loop timer: WATCHDOG=1 is sent at
// the notifier's interval (half of WatchdogSec=) only while `healthy()` says
// the agent works. Because the ping rides on the loop, a loop that is stuck
// (a blocking call, an endless callback) stops pinging by itself and systemd
// restarts the service; `healthy()` adds what the loop cannot see, such as a
// store thread that stopped committing.
//
// Loop-thread-only. The notifier and the callback must outlive the pinger.
#pragma once

#include <cstdint>
#include <functional>

#include "platform/loop.h"
#include "platform/sd_notify.h"

namespace edgespool::agent {

class WatchdogPinger {
 public:
  // healthy may be empty (always healthy).
  WatchdogPinger(platform::Loop& loop, platform::SystemdNotifier& notifier,
                 std::function<bool()> healthy);
  // Starts pinging (one ping at once, then every interval) when the
  // notifier's watchdog is enabled; otherwise does nothing. Returns whether
  // the timer runs.
  bool Start();
  void Stop();

  uint64_t pings_sent() const { return pings_sent_; }
  uint64_t pings_skipped() const { return pings_skipped_; }  // unhealthy ticks

 private:
  void Tick();

  platform::SystemdNotifier& notifier_;
  std::function<bool()> healthy_;
  platform::TimerHandle timer_;
  uint64_t pings_sent_ = 0;
  uint64_t pings_skipped_ = 0;
  bool warned_ = false;  // one log line per run of failed sends, not one per tick
};

}  // namespace edgespool::agent
