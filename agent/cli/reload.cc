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

constexpr const char* kUsage =
    "usage: edgespool reload [--config FILE] [--socket PATH] [--json]\n"
    "Asks the running agent to reload its configuration; prints what changed or why it\n"
    "was refused. Exit codes: 0 reloaded or unchanged, 64 usage, 69 agent unavailable,\n"
    "77 not allowed (root or the agent's user only), 78 refused (invalid, or a key that\n"
    "needs a restart changed; the agent keeps its running configuration).";
constexpr const char* kDefaultConfigPath = "/etc/edgespool/config.toml";

struct Args {
  std::string config;
  std::string socket;
  bool json = false;
};

int UsageError(const std::string& why) {
  std::fprintf(stderr, "edgespool: %s\n%s\n", why.c_str(), kUsage);
  return kExitUsage;
}

// 0 when parsed; else the exit code (usage error, or --help printed).
int ParseArgs(int argc, char** argv, Args* a) {
  for (int i = 0; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&](const char* name, std::string* out) {
      std::string eq = std::string(name) + "=";
      if (arg.rfind(eq, 0) == 0) {
        *out = arg.substr(eq.size());
        return true;
      }
      if (arg != name || i + 1 >= argc) return false;
      *out = argv[++i];
      return true;
    };
    if (arg == "--help" || arg == "-h") {
      std::puts(kUsage);
      return -1;
    }
    if (arg == "--json") {
      a->json = true;
    } else if (!value("--config", &a->config) && !value("-c", &a->config) &&
               !value("--socket", &a->socket)) {
      return UsageError("unexpected argument '" + arg + "'");
    }
  }
  // With --socket alone there is nothing to look the socket up in: the
  // agent checks its own file.
  if (a->config.empty() && a->socket.empty()) {
    const char* env = std::getenv("EDGESPOOL_CONFIG");
    if (env && *env) {
      a->config = env;
    } else if (platform::FileExists(kDefaultConfigPath)) {
      a->config = kDefaultConfigPath;
    }
  }
  return 0;
}

std::string JsonField(const std::string& json, const char* key) {
  cJSON* root = cJSON_ParseWithLength(json.data(), json.size());
  const cJSON* v = root ? cJSON_GetObjectItemCaseSensitive(root, key) : nullptr;
  std::string out = cJSON_IsString(v) ? v->valuestring : "";
  cJSON_Delete(root);
  return out;
}

int Report(const client::ReloadResult& r, const Args& a) {
  if (a.json && !r.json.empty()) std::printf("%s\n", r.json.c_str());
  std::string source = JsonField(r.json, "source");
  if (!a.config.empty() && !source.empty() && source != a.config) {
    std::fprintf(stderr, "edgespool: note: the agent reads %s, not %s\n", source.c_str(),
                 a.config.c_str());
  }
  if (r.status.ok()) {
    if (!a.json) std::printf("%s: %s\n", r.outcome.c_str(), r.message.c_str());
    return kExitOk;
  }
  if (r.outcome == "refused") {
    std::fprintf(stderr, "edgespool: reload refused: %s\n", r.message.c_str());
    return kExitConfig;
  }
  std::fprintf(stderr, "edgespool: reload failed: %s\n", r.status.message().c_str());
  return r.status.code() == Code::kPermissionDenied ? kExitNoPerm : kExitUnavailable;
}

}  // namespace

int ReloadCommand(int argc, char** argv) {
  Args a;
  if (int rc = ParseArgs(argc, argv, &a)) return rc < 0 ? kExitOk : rc;
  std::string socket = a.socket;
  if (!a.config.empty()) {
    // The agent would refuse this file too; here its problems come with lines.
    LoadResult r = LoadConfig(a.config, ProcessEnvironment());
    for (const auto& p : r.problems) std::fprintf(stderr, "%s\n", p.ToString().c_str());
    if (!r.ok()) {
      std::fprintf(stderr, "edgespool: not reloading: %s is invalid\n", a.config.c_str());
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
  return Report((*p)->Reload().get(), a);
}

}  // namespace edgespool::agent
