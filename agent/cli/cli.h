// The command line: `edgespool <command> [options]`. The dispatcher finds the
// command in a table (agent/cli/cli.cc) and hands it the arguments after the
// command's name, parsed by agent/cli/options.h; exit codes are in
// agent/cli/exit_codes.h.
#pragma once

#include <vector>

#include "agent/cli/exit_codes.h"
#include "agent/cli/options.h"

namespace edgespool::agent {

int CliMain(int argc, char** argv);

// The command table, for tests and the generators (help.h).
const std::vector<const cli::CommandSpec*>& CliCommands();

}  // namespace edgespool::agent
