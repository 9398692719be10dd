#include "agent/cli/reload.h"

#include <cjson/cJSON.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "agent/cli/exit_codes.h"
#include "agent/client/producer.h"
#include "agent/config/config.h"
#include "platform/files.h"

namespace edgespool::agent {

namespace {

using cli::Args;
using cli::ExitCodeDoc;
using cli::OptionSpec;
using cli::ValueKind;

// --config, else (unless --socket alone says where the agent is) the file
// the agent runs with by default; "" when there is none to check.
std::string ConfigToCheck(const Args& args) {
  if (args.Has("config")) return args.Str("config");
  if (args.Has("socket")) return "";
  return DefaultConfigFile();
}

std::string JsonField(const std::string& json, const char* key) {
  cJSON* root = cJSON_ParseWithLength(json.data(), json.size());
  const cJSON* v = root ? cJSON_GetObjectItemCaseSensitive(root, key) : nullptr;
  std::string out = cJSON_IsString(v) ? v->valuestring : "";
  cJSON_Delete(root);
  return out;
}

int Report(const client::ReloadResult& r, const std::string& config, bool json) {
  if (json && !r.json.empty()) std::printf("%s\n", r.json.c_str());
  std::string source = JsonField(r.json, "source");
  if (!config.empty() && !source.empty() && source != config) {
    std::fprintf(stderr, "edgespool: note: the agent reads %s, not %s\n", source.c_str(),
                 config.c_str());
  }
  if (r.status.ok()) {
    if (!json) std::printf("%s: %s\n", r.outcome.c_str(), r.message.c_str());
    return kExitOk;
  }
  if (r.outcome == "refused") {
    std::fprintf(stderr, "edgespool: reload refused: %s\n", r.message.c_str());
    return kExitConfig;
  }
  std::fprintf(stderr, "edgespool: reload failed: %s\n", r.status.message().c_str());
  return r.status.code() == Code::kPermissionDenied ? kExitNoPerm : kExitUnavailable;
}

int Reload(const Args& args) {
  std::string config = ConfigToCheck(args);
  std::string socket = args.Str("socket");
  if (!config.empty()) {
    // The agent would refuse this file too; here its problems come with lines.
    LoadResult r = LoadConfig(config, ProcessEnvironment());
    for (const auto& p : r.problems) std::fprintf(stderr, "%s\n", p.ToString().c_str());
    if (!r.ok()) {
      std::fprintf(stderr, "edgespool: not reloading: %s is invalid\n", config.c_str());
      return kExitConfig;
    }
    if (socket.empty()) socket = r.config.producer.socket;
  }
  if (socket.empty()) {
    const char* env = std::getenv("EDGESPOOL_PRODUCER_SOCKET");
    socket = env && *env ? env : "/run/edgespool/edgespool.sock";
  }
  client::ProducerOptions o;
  o.socket_path = socket;
  o.connect_timeout_ms = 2000;
  auto p = client::Producer::Connect(std::move(o));
  if (!p.ok()) {
    std::fprintf(stderr, "edgespool: agent unavailable at %s: %s\n", socket.c_str(),
                 p.status().message().c_str());
    return kExitUnavailable;
  }
  return Report((*p)->Reload().get(), config, args.Has("json"));
}

constexpr OptionSpec kReloadOptions[] = {
    cli::Opt("config", 'c', ValueKind::kFile, "FILE",
             "The configuration the agent runs with, checked here first; it also names the "
             "socket (default: $EDGESPOOL_CONFIG, then /etc/edgespool/config.toml if present; "
             "none with --socket alone)."),
    cli::Opt("socket", 0, ValueKind::kFile, "PATH",
             "The agent's socket (default: producer.socket of FILE, else "
             "$EDGESPOOL_PRODUCER_SOCKET, then /run/edgespool/edgespool.sock)."),
    cli::Flag("json", 0, "Print the outcome as JSON."),
};

constexpr ExitCodeDoc kReloadExits[] = {
    {0, "reloaded, or nothing changed"},
    {64, "usage error"},
    {69, "the agent is not reachable"},
    {77, "not allowed: only root and the agent's user may reload"},
    {78,
     "refused: the configuration is invalid, or changes a key that needs a restart (the "
     "agent keeps running with its configuration)"},
};

}  // namespace

const cli::CommandSpec kReloadCommand = cli::Command(
    "reload", "[-c FILE] [--socket PATH] [--json]", "reload the running agent's configuration",
    "Asks the running agent to read its configuration file again and apply what changed, as "
    "systemctl reload (SIGHUP) does, and prints the outcome: \"reloaded: applied: KEYS\", "
    "\"unchanged: no changes\", or why it was refused. Keys that need a restart (edgespool "
    "config keys) are never applied by a reload: the agent refuses the whole file and keeps "
    "running as it was.",
    kReloadOptions, kReloadExits, Reload, 0, 0);

}  // namespace edgespool::agent
