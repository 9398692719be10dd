// `config show`: the effective configuration as TOML, walking the schema's
// rows in order, so that what it prints parses back to the same Config
// (tests/fuzz/config_fuzz.cc checks that on any accepted input).
#include <cinttypes>
#include <cstdio>
#include <string>

#include "agent/config/config.h"
#include "agent/config/schema.h"
#include "agent/config/value.h"

namespace edgespool::agent {

namespace {

using config_detail::KeyDesc;
using config_detail::SectionDesc;

void RenderKeys(const SectionDesc& s, void* owner, std::string* out) {
  for (const KeyDesc& d : s) {
    if (!config_detail::IsShown(d, owner)) continue;
    *out += std::string(d.key) + " = " + config_detail::RenderValue(d, owner) + "\n";
  }
}

}  // namespace

std::string RenderConfig(const Config& config) {
  // The schema's accessors take a mutable owner (the parser writes through
  // them); rendering only reads.
  Config& c = const_cast<Config&>(config);
  std::string out;
  for (const SectionDesc& s : config_detail::Sections()) {
    if (!s.is_array()) {
      out += (out.empty() ? "[" : "\n[") + std::string(s.name) + "]\n";
      RenderKeys(s, s.table(c), &out);
      continue;
    }
    for (size_t i = 0; i < s.count(c); ++i) {
      out += "\n[[" + std::string(s.name) + "]]\n";
      RenderKeys(s, s.element(c, i), &out);
    }
  }
  return out;
}

std::string ConfigDigest(const Config& config) {
  // FNV-1a 64 over the rendered (redacted) config: stable across restarts,
  // changes whenever an effective value does.
  uint64_t h = 1469598103934665603ull;
  for (unsigned char ch : RenderConfig(config)) {
    h ^= ch;
    h *= 1099511628211ull;
  }
  char buf[20];
  std::snprintf(buf, sizeof buf, "%016" PRIx64, h);
  return buf;
}

}  // namespace edgespool::agent
