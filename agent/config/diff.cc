// What a reload changes: the keys whose values differ between the running
// configuration and the new one, each classified by its schema row as live
// (applied to the running agent) or restart-only. The agent refuses a
// reload that changes a restart-only key, so the classification decides
// what an operator can do without a restart; it lives in one place, the
// table of schema.cc.
#include <string>
#include <vector>

#include "agent/config/config.h"
#include "agent/config/schema.h"

namespace edgespool::agent {

namespace {

using config_detail::KeyDesc;
using config_detail::SectionDesc;
using config_detail::Storage;

template <typename T>
const T& At(const KeyDesc& d, void* owner) {
  return *static_cast<const T*>(d.field(owner));
}

bool SameValue(const KeyDesc& d, void* a, void* b) {
  switch (d.storage) {
    case Storage::kString:
      return At<std::string>(d, a) == At<std::string>(d, b);
    case Storage::kInt:
      return At<int64_t>(d, a) == At<int64_t>(d, b);
    case Storage::kBool:
      return At<bool>(d, a) == At<bool>(d, b);
    case Storage::kDouble:
      return At<double>(d, a) == At<double>(d, b);
    case Storage::kIntList:
      return At<std::vector<int64_t>>(d, a) == At<std::vector<int64_t>>(d, b);
    case Storage::kStringList:
      return At<std::vector<std::string>>(d, a) == At<std::vector<std::string>>(d, b);
  }
  return false;
}

void DiffKeys(const SectionDesc& s, const std::string& prefix, void* a, void* b,
              std::vector<ConfigChange>* out) {
  for (const KeyDesc& d : s) {
    if (!SameValue(d, a, b)) out->push_back(ConfigChange{prefix + d.key, d.live});
  }
}

// Adding or removing a table is live only if every key of its section is.
bool SectionLive(const SectionDesc& s) {
  for (const KeyDesc& d : s) {
    if (!d.live) return false;
  }
  return true;
}

}  // namespace

std::vector<ConfigChange> DiffConfig(const Config& running, const Config& next) {
  // The schema's accessors take a mutable owner (the parser writes through
  // them); the diff only reads.
  Config& a = const_cast<Config&>(running);
  Config& b = const_cast<Config&>(next);
  std::vector<ConfigChange> out;
  for (const SectionDesc& s : config_detail::Sections()) {
    std::string name = s.name;
    if (!s.is_array()) {
      DiffKeys(s, name + ".", s.table(a), s.table(b), &out);
      continue;
    }
    size_t na = s.count(a), nb = s.count(b);
    for (size_t i = 0; i < na && i < nb; ++i) {
      DiffKeys(s, name + "[" + std::to_string(i + 1) + "].", s.element(a, i), s.element(b, i),
               &out);
    }
    if (na != nb) out.push_back(ConfigChange{name, SectionLive(s)});
  }
  return out;
}

bool IsLiveKey(const std::string& key) {
  size_t dot = key.find('.');
  if (dot == std::string::npos) return false;
  const SectionDesc* s = config_detail::FindSection(key.substr(0, dot));
  if (s == nullptr) return false;
  const KeyDesc* d = config_detail::FindKey(*s, key.substr(dot + 1));
  return d != nullptr && d->live;
}

}  // namespace edgespool::agent
