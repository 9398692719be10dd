// Running a command with bytes on its stdin and its stdout and stderr
// collected, with a deadline: what `edgespool respond` does per method call.
//
// The command runs with fork(2) and execvp(3) (argv[0] looked up in PATH),
// extra environment entries set in the child, stdin fed from `input` (then
// closed), stdout and stderr read concurrently (poll(2)) so that neither side
// can block the other on a full pipe, each kept up to max_output bytes (the
// rest read and dropped). Past timeout_ms the child gets SIGKILL.
//
// Thread-safe: call from any thread (no shared state); blocking.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "platform/status.h"

namespace edgespool::platform {

struct SubprocessResult {
  int exit_code = -1;  // -1 when killed by a signal
  int signal = 0;      // the signal that ended it, 0: it exited
  bool timed_out = false;
  std::string out;
  std::string err;
  bool ok() const { return exit_code == 0 && !timed_out; }
};

// InvalidArgument for an empty argv; IoError when the pipes or the fork fail.
// A command that cannot be executed exits 127 (as the shell's does).
Result<SubprocessResult> RunSubprocess(
    const std::vector<std::string>& argv, std::string_view input, int64_t timeout_ms,
    size_t max_output, const std::vector<std::pair<std::string, std::string>>& env = {});

}  // namespace edgespool::platform
