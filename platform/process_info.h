// Process and identity facts the producer front door needs: whether a stream
// is a terminal, a user's group list (for [[acl]] group entries), peak RSS and
// thread names. Resource limits: platform/process_limits.h.
#pragma once

#include <cstdint>
#include <vector>

#include "platform/status.h"

namespace edgespool::platform {

bool IsTerminal(int fd);
// The groups of the user with this uid (primary and supplementary), from the
// user database. Empty when the uid has no entry.
std::vector<uint32_t> GroupsOfUid(uint32_t uid);
// The effective uid of this process (who may ask the agent to reload).
uint32_t EffectiveUid();
// Peak resident set size of this process (ru_maxrss), in bytes.
uint64_t PeakRssBytes();
// Ignores SIGPIPE unless the program installed its own handler: a library
// writing to a socket whose peer died must get EPIPE, not kill its host.
void IgnoreSigpipeIfDefault();
// Current resident set size (from /proc/self/statm), in bytes; 0 if unknown.
uint64_t CurrentRssBytes();
// Names the calling thread (top -H, perf, /proc/PID/task/*/comm); Linux keeps
// the first 15 bytes.
void SetThreadName(const char* name);

}  // namespace edgespool::platform
