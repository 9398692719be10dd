// Resource limits of this process. Today: RLIMIT_NOFILE, which the producer
// front door outgrows (producer.max_connections defaults to 10,000; systemd
// and most shells start services with a soft limit of 1024).
//
// The soft limit is what accept(2) and open(2) run into (EMFILE); the hard
// limit is the ceiling an unprivileged process may raise its soft limit to.
// The agent raises soft towards what it needs and never touches hard: a
// lower hard limit is the operator's (LimitNOFILE= in the unit) to change.
#pragma once

#include <cstdint>

#include "platform/status.h"

namespace edgespool::platform {

// RLIM_INFINITY, as read back in a FileLimit.
inline constexpr uint64_t kUnlimited = UINT64_MAX;

struct FileLimit {
  uint64_t soft = 0;
  uint64_t hard = 0;
};

Result<FileLimit> GetFileLimit();

// Raises RLIMIT_NOFILE's soft limit to min(want, hard) and returns the limits
// in force afterwards. Never lowers the soft limit; when it is already at
// least `want`, makes no system call that changes anything.
Result<FileLimit> RaiseFileLimit(uint64_t want);

}  // namespace edgespool::platform
