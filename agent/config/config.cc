// The rest of config.h: loading a file, the process environment, the list
// of keys, messages. Parsing is in parser.cc, rendering in render.cc.
#include "agent/config/config.h"

#include <cstdlib>

#include "agent/config/schema.h"
#include "platform/files.h"

extern char** environ;

namespace edgespool::agent {

std::string ConfigProblem::ToString() const {
  std::string s = file.empty() ? "config" : file;
  if (line > 0) s += ":" + std::to_string(line);
  s += ": " + key + ": " + reason;
  return s;
}

LoadResult LoadConfig(const std::string& path, const std::vector<std::string>& env) {
  if (path.empty()) return ParseConfig("", "", env);
  auto text = platform::ReadWholeFile(path);
  if (!text.ok()) {
    LoadResult out;
    out.problems.push_back(ConfigProblem{path, 0, "file", text.status().message()});
    return out;
  }
  return ParseConfig(*text, path, env);
}

std::vector<std::string> ProcessEnvironment() {
  std::vector<std::string> env;
  for (char** e = environ; e && *e; ++e) env.emplace_back(*e);
  return env;
}

std::string DefaultConfigFile() {
  static constexpr const char* kDefaultPath = "/etc/edgespool/config.toml";
  const char* env = std::getenv("EDGESPOOL_CONFIG");
  if (env && *env) return env;
  return platform::FileExists(kDefaultPath) ? kDefaultPath : "";
}

std::vector<std::string> KnownKeys() {
  std::vector<std::string> keys;
  for (const auto& s : config_detail::Sections()) {
    for (const auto& d : s) keys.push_back(std::string(s.name) + "." + d.key);
  }
  return keys;
}

std::string ExpandNode(const std::string& tmpl, const std::string& node) {
  std::string out = tmpl;
  // Searching on after each replacement: a node named "{node}" must not loop.
  for (size_t pos = 0; (pos = out.find("{node}", pos)) != std::string::npos; pos += node.size()) {
    out.replace(pos, 6, node);
  }
  return out;
}

}  // namespace edgespool::agent
