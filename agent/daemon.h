// The daemon behind `edgespool run`: the composition root that owns the loop
// and wires journal, producer server, uplink and status reporting.
#pragma once

#include "agent/config/config.h"

namespace edgespool::agent {

const char* Version();

// log.level and log.format, at start and on every reload.
void ApplyLogSettings(const Config& config);

// Runs the agent until SIGTERM/SIGINT (graceful stop, exit 0) or a fatal
// startup error (logged with its cause; exit code per sysexits). SIGHUP
// reloads the configuration (Agent::Reload).
int RunDaemon(const Config& config);

}  // namespace edgespool::agent
