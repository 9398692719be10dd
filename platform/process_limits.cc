#include "platform/process_limits.h"

#include <sys/resource.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace edgespool::platform {

namespace {

uint64_t FromRlim(rlim_t v) { return v == RLIM_INFINITY ? kUnlimited : static_cast<uint64_t>(v); }

Status Errno(const char* call) {
  return Status::IoError(std::string(call) + "(RLIMIT_NOFILE): " + std::strerror(errno));
}

}  // namespace

Result<FileLimit> GetFileLimit() {
  struct rlimit rl;
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) return Errno("getrlimit");
  return FileLimit{FromRlim(rl.rlim_cur), FromRlim(rl.rlim_max)};
}

Result<FileLimit> RaiseFileLimit(uint64_t want) {
  struct rlimit rl;
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) return Errno("getrlimit");
  FileLimit limit{FromRlim(rl.rlim_cur), FromRlim(rl.rlim_max)};
  uint64_t target = want < limit.hard ? want : limit.hard;
  if (limit.soft >= target) return limit;
  rl.rlim_cur = target == kUnlimited ? RLIM_INFINITY : static_cast<rlim_t>(target);
  // prlimit(2), not setrlimit(2): the unit's SystemCallFilter=~@resources
  // refuses the setrlimit syscall (EPERM) while prlimit64 is in @default.
  // glibc's setrlimit() happens to use prlimit64 on most ABIs; this does on
  // every one.
  if (::prlimit(0, RLIMIT_NOFILE, &rl, nullptr) != 0) return Errno("prlimit");
  limit.soft = target;
  return limit;
}

}  // namespace edgespool::platform
