// `edgespool reload`: asks the running agent to reload its configuration and
// reports the outcome (agent/reload.h), like `systemctl reload edgespool`
// but with the answer.
//
//   edgespool reload [--config FILE] [--socket PATH] [--json]
//
// FILE (default, unless --socket is given alone: $EDGESPOOL_CONFIG, then
// /etc/edgespool/config.toml) is the configuration the agent runs with: it
// is checked here first, so that its problems are printed as `config check`
// prints them, and it names the producer socket unless --socket is given.
// The agent then reloads the file it was started with (a note is printed if
// that is another file), over the socket's `reload` op, which only root and
// the agent's own user may use.
//
// Prints "reloaded: <keys>" or "unchanged" (or, with --json, the outcome
// object). Exit codes: 0 applied or nothing to apply; 64 usage; 69 agent
// unavailable; 77 not allowed (not root or the agent's user); 78 refused:
// the configuration is invalid or changes a key that needs a restart (the
// agent keeps running with its configuration).
#pragma once

namespace edgespool::agent {

int ReloadCommand(int argc, char** argv);

}  // namespace edgespool::agent
