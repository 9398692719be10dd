// The command line: `edgespool <command> [options]`. The dispatcher finds the
// command in a table (agent/cli/cli.cc) and hands it the arguments after the
// command's name; exit codes are in agent/cli/exit_codes.h.
#pragma once

#include "agent/cli/exit_codes.h"

namespace edgespool::agent {

int CliMain(int argc, char** argv);

}  // namespace edgespool::agent
