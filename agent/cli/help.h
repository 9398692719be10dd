// Everything written from the command table (agent/cli/options.h): the
// usage texts, the bash completion script and the man pages. The text is
// built here only; cli.cc prints it (`--help`, and the hidden commands
// `edgespool completion` and `edgespool manpage 8|5` that the build runs to
// write build/<preset>/completion/edgespool and build/<preset>/man/).
#pragma once

#include <string>
#include <vector>

#include "agent/cli/options.h"

namespace edgespool::agent::cli {

// Exit codes every command may use, with their general meaning (sysexits),
// for `edgespool --help` and the man page's EXIT STATUS. A command's own
// list (CommandSpec::exit_codes) says what each means for it.
const std::vector<ExitCodeDoc>& AllExitCodes();

// `edgespool CMD --help`: synopsis, description, options, exit codes.
std::string CommandUsage(const CommandSpec& spec);
// `edgespool --help`: every visible command with its summary, the exit codes.
std::string MainUsage(const std::vector<const CommandSpec*>& commands);
// A bash completion script defining _edgespool and `complete -F _edgespool edgespool`.
std::string BashCompletion(const std::vector<const CommandSpec*>& commands);
// edgespool(8), from the command table.
std::string ManPage8(const std::vector<const CommandSpec*>& commands, const std::string& version);
// edgespool.toml(5), from the configuration's schema (agent/config/reference.h).
std::string ManPage5(const std::string& version);

}  // namespace edgespool::agent::cli
