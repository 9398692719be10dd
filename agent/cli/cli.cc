#include "agent/cli/cli.h"

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "agent/cli/consume.h"
#include "agent/cli/decode.h"
#include "agent/cli/fleet.h"
#include "agent/cli/help.h"
#include "agent/cli/options.h"
#include "agent/cli/producer_commands.h"
#include "agent/cli/request.h"
#include "agent/cli/reload.h"
#include "agent/cli/subscribe.h"
#include "agent/config/config.h"
#include "agent/daemon.h"
#include "platform/files.h"

namespace edgespool::agent {

namespace {

using cli::Args;
using cli::ExitCodeDoc;
using cli::OptionSpec;
using cli::ValueKind;

// --config FILE, or $EDGESPOOL_CONFIG, or the default path if it exists
// (else no file: the defaults and the environment).
std::string ConfigPath(const Args& args) {
  std::string path = args.Str("config");
  if (path.empty() && !args.positionals().empty()) path = args.positionals()[0];
  if (!path.empty()) return path;
  return DefaultConfigFile();
}

// Loads and reports every problem as "file:line: key: reason". Returns false
// if there was any.
bool LoadOrReport(const std::string& path, Config* out) {
  LoadResult r = LoadConfig(path, ProcessEnvironment());
  for (const auto& p : r.problems) std::fprintf(stderr, "%s\n", p.ToString().c_str());
  if (!r.ok()) return false;
  *out = std::move(r.config);
  return true;
}

constexpr OptionSpec kConfigOptions[] = {
    cli::Opt("config", 'c', ValueKind::kFile, "FILE",
             "The configuration file (default: $EDGESPOOL_CONFIG, then "
             "/etc/edgespool/config.toml if present, else the built-in defaults)."),
};

int Run(const Args& args) {
  Config config;
  if (!LoadOrReport(ConfigPath(args), &config)) return kExitConfig;
  return RunDaemon(config);
}

constexpr ExitCodeDoc kRunExits[] = {
    {0, "stopped by SIGTERM or SIGINT"},
    {69, "the producer socket cannot be opened, or another agent holds the journal"},
    {70, "internal error"},
    {73, "the journal cannot be created or opened for writing (say a read-only directory)"},
    {78, "bad configuration: each problem is printed as file:line: key: reason"},
};

const cli::CommandSpec kRunCommand = cli::Command(
    "run", "[-c FILE]", "run the agent in the foreground",
    "Runs the agent in the foreground: the journal, the producer socket, the uplink to the "
    "central broker and the downlink. SIGTERM or SIGINT stops it gracefully (in-flight "
    "publishes get their acks, the uplink waits uplink.shutdown_timeout for PUBACKs); a "
    "second signal stops it at once. Under systemd it reports readiness (Type=notify) and "
    "feeds the watchdog.",
    kConfigOptions, kRunExits, Run, 0, 0);

int ConfigCheck(const Args& args) {
  Config config;
  std::string path = ConfigPath(args);
  if (!LoadOrReport(path, &config)) return kExitConfig;
  std::printf("%s: ok\n", path.empty() ? "(defaults)" : path.c_str());
  return kExitOk;
}

int ConfigShow(const Args& args) {
  Config config;
  if (!LoadOrReport(ConfigPath(args), &config)) return kExitConfig;
  std::fputs(RenderConfig(config).c_str(), stdout);
  return kExitOk;
}

constexpr ExitCodeDoc kConfigExits[] = {
    {0, "the configuration is valid"},
    {64, "usage error"},
    {78, "the configuration is not valid: each problem is printed as file:line: key: reason"},
};

const cli::CommandSpec kConfigCheckCommand =
    cli::Command("config check", "[-c FILE | FILE]", "validate a configuration file",
                 "Loads the configuration as the agent would (the file, then the "
                 "EDGESPOOL_<SECTION>_<KEY> environment variables) and reports every problem.",
                 kConfigOptions, kConfigExits, ConfigCheck, 0, 1)
        .FilePositionals();

const cli::CommandSpec kConfigShowCommand =
    cli::Command("config show", "[-c FILE | FILE]",
                 "print the effective configuration (secrets redacted)",
                 "Prints the configuration the agent would run with, every key with its "
                 "effective value, as TOML that loads back to the same configuration. "
                 "Credentials in uplink.url are redacted.",
                 kConfigOptions, kConfigExits, ConfigShow, 0, 1)
        .FilePositionals();

constexpr ExitCodeDoc kOkOnly[] = {{0, "success"}, {64, "usage error"}};

// Every key and whether a reload applies it (schema.cc's table).
int ConfigKeys(const Args&) {
  for (const std::string& k : KnownKeys()) {
    std::printf("%-34s %s\n", k.c_str(), IsLiveKey(k) ? "live" : "restart");
  }
  return kExitOk;
}

const cli::CommandSpec kConfigKeysCommand = cli::Command(
    "config keys", "", "every key: live (a reload applies it) or restart",
    "Prints every configuration key, one per line, with \"live\" when a reload (systemctl "
    "reload, SIGHUP, edgespool reload) applies a change to it, or \"restart\" when the agent "
    "must restart for a change to take effect (a reload that changes it is refused).",
    nullptr, kOkOnly, ConfigKeys, 0, 0);

int PrintVersion(const Args&) {
  std::printf("edgespool %s\n", Version());
  return kExitOk;
}

const cli::CommandSpec kVersionCommand =
    cli::Command("version", "", "print the version", "Prints \"edgespool VERSION\".", nullptr,
                 kOkOnly, PrintVersion, 0, 0);

const std::vector<const cli::CommandSpec*>& Commands();

int Help(const Args& args) {
  if (args.positionals().empty()) {
    std::fputs(cli::MainUsage(Commands()).c_str(), stdout);
    return kExitOk;
  }
  std::string name = args.positionals()[0];
  if (args.positionals().size() > 1) name += " " + args.positionals()[1];
  for (const cli::CommandSpec* c : Commands()) {
    if (name == c->name) {
      std::fputs(cli::CommandUsage(*c).c_str(), stdout);
      return kExitOk;
    }
  }
  std::fprintf(stderr, "edgespool help: unknown command '%s'\n", name.c_str());
  return kExitUsage;
}

const cli::CommandSpec kHelpCommand = cli::Command(
    "help", "[COMMAND [SUBCOMMAND]]", "print the usage of edgespool or of one command",
    "Without a COMMAND, the list of commands; with one, the same as edgespool COMMAND --help.",
    nullptr, kOkOnly, Help, 0, 2);

// Hidden: the build runs these to write the man pages and the completion
// script (agent/CMakeLists.txt), so those come from the same table as --help.
int ManPage(const Args& args) {
  const std::string& which = args.positionals()[0];
  if (which == "8") {
    std::fputs(cli::ManPage8(Commands(), Version()).c_str(), stdout);
  } else if (which == "5") {
    std::fputs(cli::ManPage5(Version()).c_str(), stdout);
  } else {
    std::fprintf(stderr, "edgespool manpage: '%s': there are sections 8 and 5\n", which.c_str());
    return kExitUsage;
  }
  return kExitOk;
}

constexpr OptionSpec kCompletionOptions[] = {
    cli::Flag("bash", 0, "A script for bash (the only shell so far; the default)."),
};

const cli::CommandSpec kManPageCommand =
    cli::Command("manpage", "8|5", "print edgespool(8) or edgespool.toml(5) as roff",
                 "Prints a man page; the build writes them to man/ in the build folder.", nullptr,
                 kOkOnly, ManPage, 1, 1)
        .Hidden();

int Completion(const Args&) {
  std::fputs(cli::BashCompletion(Commands()).c_str(), stdout);
  return kExitOk;
}

const cli::CommandSpec kCompletionCommand =
    cli::Command("completion", "[--bash]", "print the bash completion script",
                 "Prints the bash completion script; the package installs it as "
                 "/usr/share/bash-completion/completions/edgespool.",
                 kCompletionOptions, kOkOnly, Completion, 0, 0)
        .Hidden();

// Every command, in the order --help and the man page list them. Adding a
// command is a row here and a CommandSpec with its function in its own file.
const std::vector<const cli::CommandSpec*>& Commands() {
  // One row per line, so that commands added on different branches merge.
  // clang-format off
  static const std::vector<const cli::CommandSpec*> commands = {
      &kRunCommand,
      &kPublishCommand,
      &kQueryCommand,
      &kSubscribeCommand,
      &kRequestCommand,
      &kRespondCommand,
      &kStatusCommand,
      &kReloadCommand,
      &kFleetCommand,
      &kDecodeCommand,
      &kConsumeCommand,
      &kConfigCheckCommand,
      &kConfigShowCommand,
      &kConfigKeysCommand,
      &kVersionCommand,
      &kHelpCommand,
      &kManPageCommand,
      &kCompletionCommand,
  };
  // clang-format on
  return commands;
}

int UsageError(const std::string& msg) {
  std::fprintf(stderr, "edgespool: %s\n(run 'edgespool --help' for usage)\n", msg.c_str());
  return kExitUsage;
}

}  // namespace

const std::vector<const cli::CommandSpec*>& CliCommands() { return Commands(); }

int CliMain(int argc, char** argv) {
  if (argc < 2) {
    std::fputs(cli::MainUsage(Commands()).c_str(), stderr);
    return kExitUsage;
  }
  std::string name = argv[1];
  if (name == "--help" || name == "-h") {
    std::fputs(cli::MainUsage(Commands()).c_str(), stdout);
    return kExitOk;
  }
  if (name == "--version" || name == "-V") return PrintVersion(Args());
  if (name == "config") {
    if (argc < 3) return UsageError("config needs 'check', 'show' or 'keys'");
    if (std::string(argv[2]) == "--help" || std::string(argv[2]) == "-h") {
      std::fputs(cli::CommandUsage(kConfigCheckCommand).c_str(), stdout);
      std::fputs("\n", stdout);
      std::fputs(cli::CommandUsage(kConfigShowCommand).c_str(), stdout);
      std::fputs("\n", stdout);
      std::fputs(cli::CommandUsage(kConfigKeysCommand).c_str(), stdout);
      return kExitOk;
    }
    name += " " + std::string(argv[2]);
    for (const cli::CommandSpec* c : Commands()) {
      if (name == c->name) return cli::RunCommand(*c, argc - 3, argv + 3);
    }
    return UsageError("unknown config command '" + std::string(argv[2]) + "'");
  }
  for (const cli::CommandSpec* c : Commands()) {
    if (name == c->name) return cli::RunCommand(*c, argc - 2, argv + 2);
  }
  return UsageError("unknown command '" + name + "'");
}

}  // namespace edgespool::agent
