// The file descriptor budget of `edgespool run`. Each producer connection
// costs one fd; the rest of the agent needs a few dozen (journal db, -wal and
// -shm, the uplink socket, the metrics listener and its scrapers, the
// loop's epoll/eventfd/signalfd/timerfd, the listening socket, sd_notify).
// Downlink consumers are producer-socket connections, counted in
// max_connections; WebSocket sessions add websocket.max_sessions when the
// listener is on; refused connections need fds as well (kRefusalBurst).
// Without the raise, a service started with systemd's default soft limit
// (1024) answers producers past ~1,000 with EMFILE (the client sees the
// connection closed) instead of a `busy` reply.
#pragma once

#include <cstdint>

#include "agent/config/config.h"

namespace edgespool::agent {

// The agent's own fds (journal, uplink, metrics, loop, listener, notify).
inline constexpr int64_t kFileLimitMargin = 64;
// Refusing a producer with `busy` takes an fd too, for a loop turn or two:
// accept, write the frame, close. At max_connections a burst of newcomers is
// accepted in one turn, as many as the listen backlog holds (4096, the
// producer listener's and the kernel's default somaxconn), so the budget
// holds that many refusals at once; past it libuv's EMFILE fallback closes
// them unanswered (measured: 200 at once with only the 64 above -> 105
// closed without a frame).
inline constexpr int64_t kRefusalBurst = 4096;

// producer.max_connections + kFileLimitMargin + kRefusalBurst.
uint64_t FileLimitNeeded(const Config& config);

// Raises the soft RLIMIT_NOFILE to FileLimitNeeded (capped at the hard
// limit) and logs the outcome: info when raised, a warning naming the key and
// both numbers when the hard limit is lower, a warning when the limit cannot
// be read or set. Never fails the start: the agent still serves what fits.
// Returns the soft limit in force afterwards (0 if unknown).
uint64_t RaiseFileLimitForConfig(const Config& config);

}  // namespace edgespool::agent
