// The file descriptor budget of `edgespool run`. Each producer connection
// costs one fd; the rest of the agent needs a few dozen (journal db, -wal and
// -shm, the uplink socket, the metrics listener and its scrapers, the
// loop's epoll/eventfd/signalfd/timerfd, the listening socket, sd_notify).
// Downlink consumers are producer-socket connections, counted in
// max_connections. Without the raise, a service started with systemd's
// default soft limit (1024) answers producers past ~1,000 with EMFILE (the
// client sees the connection reset) instead of a `busy` reply.
#pragma once

#include <cstdint>

#include "agent/config/config.h"

namespace edgespool::agent {

// Fds reserved beyond producer.max_connections.
inline constexpr int64_t kFileLimitMargin = 64;

// producer.max_connections + kFileLimitMargin.
uint64_t FileLimitNeeded(const Config& config);

// Raises the soft RLIMIT_NOFILE to FileLimitNeeded (capped at the hard
// limit) and logs the outcome: info when raised, a warning naming the key and
// both numbers when the hard limit is lower, a warning when the limit cannot
// be read or set. Never fails the start: the agent still serves what fits.
// Returns the soft limit in force afterwards (0 if unknown).
uint64_t RaiseFileLimitForConfig(const Config& config);

}  // namespace edgespool::agent
