// systemd integration without libsystemd: Type=notify readiness, the service
// watchdog and socket activation.
//
// The notify protocol (sd_notify(3)): the service manager passes the path of
// a Unix datagram socket in $NOTIFY_SOCKET (a leading '@' means the Linux
// abstract namespace: the name is sent with a NUL first byte). Each
// notification is one datagram of newline-separated VAR=value assignments,
// e.g. "READY=1", "STATUS=syncing, 12 pending", "WATCHDOG=1", "STOPPING=1".
// The manager sets $WATCHDOG_USEC when WatchdogSec= is configured, and
// $WATCHDOG_PID when the watchdog belongs to a particular process; a process
// whose pid is not WATCHDOG_PID must not ping.
//
// Socket activation (sd_listen_fds(3)): the manager passes listening sockets
// as fds 3, 4, ... with $LISTEN_FDS (their count), $LISTEN_PID (the pid they
// are meant for) and optionally $LISTEN_FDNAMES (colon-separated names from
// FileDescriptorName=).
//
// Reading and clearing the environment is not thread-safe (getenv/unsetenv):
// call FromEnvironment() and TakeListenFds() at startup, before any thread
// starts. The notifier itself is then usable from any one thread at a time;
// the agent uses it from the loop thread only.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "platform/status.h"

namespace edgespool::platform {

class SystemdNotifier {
 public:
  // From $NOTIFY_SOCKET, $WATCHDOG_USEC and $WATCHDOG_PID. A notifier built
  // without NOTIFY_SOCKET is disabled: every call is an OK no-op, so callers
  // need no "are we under systemd" branch. With unset_environment the three
  // variables are removed so that children do not inherit them. A malformed
  // WATCHDOG_USEC disables the watchdog (logged) rather than failing startup:
  // the manager, not the operator, wrote it.
  static SystemdNotifier FromEnvironment(bool unset_environment = false);
  // Explicit values (tests, or a caller that read the environment itself).
  // socket_path "" = disabled; watchdog_usec 0 = no watchdog.
  SystemdNotifier(std::string socket_path, uint64_t watchdog_usec);
  SystemdNotifier() : SystemdNotifier("", 0) {}
  ~SystemdNotifier();
  SystemdNotifier(SystemdNotifier&& other) noexcept;
  SystemdNotifier& operator=(SystemdNotifier&& other) noexcept;
  SystemdNotifier(const SystemdNotifier&) = delete;
  SystemdNotifier& operator=(const SystemdNotifier&) = delete;

  bool enabled() const { return !socket_path_.empty(); }
  const std::string& socket_path() const { return socket_path_; }

  // "READY=1": startup finished (the journal is open, the sockets listen).
  ::edgespool::Status Ready();
  // "STATUS=<line>": free-form text shown by `systemctl status`. Newlines
  // would start a new assignment, so they are replaced by spaces.
  ::edgespool::Status Status(std::string_view line);
  // "RELOADING=1" with "MONOTONIC_USEC=<CLOCK_MONOTONIC now>": a
  // configuration reload has begun; READY=1 ends it (whatever its outcome).
  // systemd >= 253 wants the timestamp with Type=notify-reload; older ones
  // ignore it and still show the unit as reloading until READY=1.
  ::edgespool::Status Reloading();
  // "STOPPING=1": a graceful shutdown has begun.
  ::edgespool::Status Stopping();
  // "WATCHDOG=1": the service is alive. A no-op when the watchdog is off.
  ::edgespool::Status Watchdog();
  // Sends arbitrary assignments (e.g. "EXTEND_TIMEOUT_USEC=30000000").
  ::edgespool::Status Notify(std::string_view assignments);

  // How often to call Watchdog(): half of WATCHDOG_USEC (what sd_watchdog_enabled
  // callers conventionally use, leaving one missed tick of slack), or zero when
  // the watchdog is disabled.
  std::chrono::microseconds WatchdogInterval() const {
    return std::chrono::microseconds(watchdog_usec_ / 2);
  }
  bool watchdog_enabled() const { return enabled() && watchdog_usec_ > 0; }

 private:
  void CloseSocket();

  std::string socket_path_;  // as given: "/run/..." or "@abstract"
  uint64_t watchdog_usec_ = 0;
  int fd_ = -1;  // datagram socket, opened on first send
};

// One socket passed by the service manager.
struct ListenFd {
  int fd = -1;
  std::string name;      // from LISTEN_FDNAMES, or "unknown" as in sd_listen_fds
  bool is_unix = false;  // AF_UNIX (else AF_INET/AF_INET6), from getsockname
};

// The first fd passed by socket activation.
inline constexpr int kListenFdsStart = 3;

// Returns the sockets passed in $LISTEN_FDS for this process, with
// FD_CLOEXEC set, and always clears LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES
// (so a child never mistakes them for its own). Unset variables, or a
// LISTEN_PID that is not ours (they were meant for another process), give an
// empty list. Malformed values, a name count that does not match, or an fd
// that is not an open socket give InvalidArgument naming the variable.
Result<std::vector<ListenFd>> TakeListenFds();

}  // namespace edgespool::platform
