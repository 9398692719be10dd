// The process exit codes of `edgespool`, in their own header so that the
// daemon and every command can return them without including the dispatcher
// (agent/cli/cli.h). They follow sysexits(3) where one fits; `fleet` adds 2
// (a node is stale), documented in agent/cli/fleet.h. What each means for
// users is in cli::AllExitCodes() (agent/cli/help.cc: --help and the man
// page) and in each command's CommandSpec; a new code goes there too.
#pragma once

namespace edgespool::agent {

inline constexpr int kExitOk = 0;
inline constexpr int kExitUsage = 64;        // EX_USAGE: bad arguments
inline constexpr int kExitDataErr = 65;      // EX_DATAERR: refused or malformed data
inline constexpr int kExitUnavailable = 69;  // EX_UNAVAILABLE: agent or broker not there
inline constexpr int kExitSoftware = 70;     // EX_SOFTWARE: internal error
inline constexpr int kExitCantCreate = 73;   // EX_CANTCREAT: cannot open or create a file
inline constexpr int kExitTempFail = 75;     // EX_TEMPFAIL: a request got no answer in time
inline constexpr int kExitNoPerm = 77;       // EX_NOPERM: not allowed (reload by another user)
inline constexpr int kExitConfig = 78;       // EX_CONFIG: bad configuration
inline constexpr int kExitHandlerError = 1;  // `request`: the answer was an error

}  // namespace edgespool::agent
