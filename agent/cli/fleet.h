// `edgespool fleet`: every node's retained status from the broker, one row
// per node, worst first. Exit 2 if any node is offline or stale (for cron and
// monitoring checks), 0 otherwise. With --http it serves the live dashboard,
// with --metrics the fleet's Prometheus exposition, until SIGINT/SIGTERM
// (exit 0). The fleet itself (model, dashboard, exporter) is agent/fleet/.
#pragma once

#include "agent/cli/options.h"

namespace edgespool::agent {

extern const cli::CommandSpec kFleetCommand;

// argv starts after "fleet".
int FleetCommand(int argc, char** argv);

}  // namespace edgespool::agent
