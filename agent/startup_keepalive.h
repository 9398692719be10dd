// StartupKeepalive: tells systemd that a long start-up step is still making
// progress (EXTEND_TIMEOUT_USEC), so that TimeoutStartSec= does not kill an
// agent that is, say, migrating or fully checking a big journal.
//
// Journal::Open runs on the loop thread and blocks it, so the messages come
// from a thread of this class's own, with a notifier (socket) of its own:
//   - Step(name), called as a long step begins (JournalOptions::on_slow_step),
//     sends at once "EXTEND_TIMEOUT_USEC=<extend>" and "STATUS=starting:
//     <name>", and again every `period` while the start-up lasts;
//   - a start-up still running after `quiet` sends the same without a step
//     name (a slow step nobody announced: WAL recovery on a slow disk).
// systemd only acts on the extension once the start has outlived its own
// TimeoutStartSec=, so sending it early costs nothing (systemd.service(5),
// sd_notify(3)). A hung step stops the messages: systemd then times out
// `extend` after the last one, as it should.
//
// Threads: construct, Step and destroy on the starting thread (Step may be
// called from any thread); the destructor stops and joins.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

#include "platform/sd_notify.h"

namespace edgespool::agent {

class StartupKeepalive {
 public:
  struct Timing {
    std::chrono::milliseconds quiet{1000};
    std::chrono::milliseconds period{10000};
    std::chrono::microseconds extend{30000000};
  };
  // socket_path: $NOTIFY_SOCKET as the agent's notifier read it ("" = not
  // under systemd: the class does nothing).
  explicit StartupKeepalive(const std::string& socket_path, Timing timing);
  explicit StartupKeepalive(const std::string& socket_path)
      : StartupKeepalive(socket_path, Timing{}) {}
  ~StartupKeepalive();
  StartupKeepalive(const StartupKeepalive&) = delete;
  StartupKeepalive& operator=(const StartupKeepalive&) = delete;

  void Step(const std::string& name);
  uint64_t sent() const;

 private:
  void ThreadMain();
  void Send(const std::string& step);  // mu_ not held

  platform::SystemdNotifier notifier_;
  const Timing timing_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::string step_;
  bool step_new_ = false;
  uint64_t sent_ = 0;
  std::thread thread_;  // last
};

}  // namespace edgespool::agent
