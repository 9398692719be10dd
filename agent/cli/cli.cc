#include "agent/cli/cli.h"

#include <cstdio>
#include <cstdlib>
#include <string>

#include "agent/cli/decode.h"
#include "agent/cli/fleet.h"
#include "agent/cli/producer_commands.h"
#include "agent/cli/reload.h"
#include "agent/cli/subscribe.h"
#include "agent/config/config.h"
#include "agent/daemon.h"
#include "platform/files.h"

namespace edgespool::agent {

namespace {

constexpr const char* kDefaultConfigPath = "/etc/edgespool/config.toml";

const char* kUsage =
    "usage: edgespool <command> [options]\n"
    "\n"
    "commands:\n"
    "  run [--config FILE]              run the agent (foreground; SIGTERM stops it)\n"
    "  publish TOPIC [MESSAGE]          hand a message to the agent (see publish --help)\n"
    "  query SEQ | --id ID              what became of a message\n"
    "  subscribe FILTER... [--session]  print downlink messages (see subscribe --help)\n"
    "  status [--json]                  the agent's status\n"
    "  reload [--config FILE]           reload the agent's configuration (78: refused)\n"
    "  decode [FILE|-]                  print batch frames as JSON lines\n"
    "  fleet --broker URL [--stale 15m] every node's status from the broker (exit 2: stale)\n"
    "  config check [--config] [FILE]   validate a configuration file\n"
    "  config show [--config FILE]      print the effective configuration (secrets redacted)\n"
    "  config keys                      every key: live (a reload applies it) or restart\n"
    "  version                          print the version\n"
    "\n"
    "The configuration file defaults to $EDGESPOOL_CONFIG, then /etc/edgespool/config.toml\n"
    "if present; every key can be overridden by EDGESPOOL_<SECTION>_<KEY>.\n"
    "Exit codes: 0 ok, 64 usage, 65 bad data, 69 unavailable, 77 not allowed,\n"
    "78 configuration.\n";

int UsageError(const std::string& msg) {
  std::fprintf(stderr, "edgespool: %s\n(run 'edgespool --help' for usage)\n", msg.c_str());
  return kExitUsage;
}

// Parses [--config FILE | --config=FILE | FILE]; returns false on a usage error.
bool ParseConfigArg(int argc, char** argv, int first, bool allow_positional, std::string* path,
                    std::string* error) {
  for (int i = first; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--config" || a == "-c") {
      if (i + 1 >= argc) {
        *error = a + " needs a file name";
        return false;
      }
      *path = argv[++i];
    } else if (a.rfind("--config=", 0) == 0) {
      *path = a.substr(9);
    } else if (allow_positional && !a.empty() && a[0] != '-' && path->empty()) {
      *path = a;
    } else {
      *error = "unexpected argument '" + a + "'";
      return false;
    }
  }
  if (path->empty()) {
    const char* env = std::getenv("EDGESPOOL_CONFIG");
    if (env && *env) {
      *path = env;
    } else if (platform::FileExists(kDefaultConfigPath)) {
      *path = kDefaultConfigPath;
    }
  }
  return true;
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

// argv starts after "config".
int ConfigCommand(int argc, char** argv) {
  if (argc < 1) return UsageError("config needs 'check', 'show' or 'keys'");
  std::string sub = argv[0], path, error;
  if (sub == "keys") {
    // Every key and whether a reload applies it (schema.cc's table).
    if (argc > 1) return UsageError("config keys takes no arguments");
    for (const std::string& k : KnownKeys()) {
      std::printf("%-34s %s\n", k.c_str(), IsLiveKey(k) ? "live" : "restart");
    }
    return kExitOk;
  }
  if (sub != "check" && sub != "show") return UsageError("unknown config command '" + sub + "'");
  if (!ParseConfigArg(argc, argv, 1, /*allow_positional=*/true, &path, &error)) {
    return UsageError(error);
  }
  Config config;
  if (!LoadOrReport(path, &config)) return kExitConfig;
  if (sub == "check") {
    std::printf("%s: ok\n", path.empty() ? "(defaults)" : path.c_str());
  } else {
    std::fputs(RenderConfig(config).c_str(), stdout);
  }
  return kExitOk;
}

// argv starts after "run".
int RunCommand(int argc, char** argv) {
  std::string path, error;
  if (!ParseConfigArg(argc, argv, 0, /*allow_positional=*/false, &path, &error)) {
    return UsageError(error);
  }
  Config config;
  if (!LoadOrReport(path, &config)) return kExitConfig;
  return RunDaemon(config);
}

int HelpCommand(int, char**) {
  std::fputs(kUsage, stdout);
  return kExitOk;
}

int VersionCommand(int, char**) {
  std::printf("edgespool %s\n", Version());
  return kExitOk;
}

// Every command by name. A command's function gets the arguments after its
// name (argv[0] is the first of them); adding a command is one row here and
// one line in kUsage.
struct Command {
  const char* name;
  int (*run)(int argc, char** argv);
};

constexpr Command kCommands[] = {
    {"run", RunCommand},
    {"config", ConfigCommand},
    {"publish", PublishCommand},
    {"query", QueryCommand},
    {"subscribe", SubscribeCommand},
    {"status", StatusCommand},
    {"reload", ReloadCommand},
    {"decode", DecodeCommand},
    {"fleet", FleetCommand},
    {"version", VersionCommand},
    {"--version", VersionCommand},
    {"help", HelpCommand},
    {"--help", HelpCommand},
    {"-h", HelpCommand},
};

}  // namespace

int CliMain(int argc, char** argv) {
  if (argc < 2) {
    std::fputs(kUsage, stderr);
    return kExitUsage;
  }
  std::string name = argv[1];
  for (const Command& c : kCommands) {
    if (name == c.name) return c.run(argc - 2, argv + 2);
  }
  return UsageError("unknown command '" + name + "'");
}

}  // namespace edgespool::agent
