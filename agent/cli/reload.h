// `edgespool reload`: asks the running agent to reload its configuration and
// reports the outcome (agent/reload.h), like `systemctl reload edgespool`
// but with the answer.
//
//   edgespool reload [-c FILE] [--socket PATH] [--json]
//
// FILE (default, unless --socket is given alone: $EDGESPOOL_CONFIG, then
// /etc/edgespool/config.toml) is the configuration the agent runs with: it
// is checked here first, so that its problems are printed as `config check`
// prints them, and it names the producer socket unless --socket is given.
// The agent then reloads the file it was started with (a note is printed if
// that is another file), over the socket's `reload` op, which only root and
// the agent's own user may use.
//
// Prints "reloaded: applied: <keys>" or "unchanged: no changes" (or, with
// --json, the outcome object). Exit codes are in the command's spec
// (reload.cc): 0 applied or nothing to apply, 64 usage, 69 agent
// unavailable, 77 not allowed, 78 refused (the agent keeps its running
// configuration).
#pragma once

#include "agent/cli/options.h"

namespace edgespool::agent {

extern const cli::CommandSpec kReloadCommand;

}  // namespace edgespool::agent
