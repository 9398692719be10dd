// edgespool: the one binary. Dispatches to the subcommands in agent/cli/.
#include "agent/cli/cli.h"

int main(int argc, char** argv) { return edgespool::agent::CliMain(argc, argv); }
