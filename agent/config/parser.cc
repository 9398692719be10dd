// ParseConfig: the TOML document, then the environment, onto the schema's
// rows (schema.cc), then the rules across keys (checks.cc). Every problem is
// collected, none stops the parse, so `config check` reports them all.
#include <toml++/toml.h>

#include <cctype>

#include "agent/config/checks.h"
#include "agent/config/config.h"
#include "agent/config/schema.h"
#include "agent/config/value.h"

namespace edgespool::agent {

namespace {

using config_detail::FindKey;
using config_detail::FindSection;
using config_detail::KeyDesc;
using config_detail::ProblemSink;
using config_detail::SectionDesc;

int LineOf(const toml::node& n) { return static_cast<int>(n.source().begin.line); }

// The keys of one table onto `owner` (the section's struct or one element).
// Values are checked at `check_line`, or at their own line when it is 0.
void ApplyKeys(const SectionDesc& s, const toml::table& t, void* owner, int check_line,
               const ProblemSink& problems) {
  for (const auto& [k, value] : t) {
    std::string key(k.str()), name = std::string(s.name) + "." + key;
    const KeyDesc* d = FindKey(s, key);
    if (!d) {
      problems.Add(LineOf(value), name, "unknown key");
      continue;
    }
    config_detail::SetFromNode(*d, name, owner, value, check_line ? check_line : LineOf(value),
                               problems);
  }
}

// [[section]]: each element is appended, filled, then checked on its own.
void ApplyArray(const SectionDesc& s, const toml::node& node, Config& config,
                const ProblemSink& problems) {
  const toml::array* arr = node.as_array();
  if (!arr || !arr->is_array_of_tables()) {
    return problems.Add(LineOf(node), s.name, "expected [[" + std::string(s.name) + "]] tables");
  }
  for (const auto& elem : *arr) {
    const toml::table& t = *elem.as_table();
    int line = LineOf(t);
    void* element = s.append(config, line);
    ApplyKeys(s, t, element, line, problems);
    if (s.check) s.check(element, line, problems);
  }
}

void ApplyToml(const toml::table& root, Config& config, const ProblemSink& problems) {
  for (const auto& [k, node] : root) {
    std::string name(k.str());
    const SectionDesc* s = FindSection(name);
    if (!s) {
      problems.Add(LineOf(node), name, "unknown section");
    } else if (s->is_array()) {
      ApplyArray(*s, node, config, problems);
    } else if (const toml::table* t = node.as_table()) {
      ApplyKeys(*s, *t, s->table(config), 0, problems);
    } else {
      problems.Add(LineOf(node), name, "expected a table [" + name + "]");
    }
  }
}

// EDGESPOOL_<SECTION>_<KEY>=value for every key of a [table]; arrays of
// tables have no environment form.
void ApplyEnvironment(const std::vector<std::string>& env, Config& config,
                      const ProblemSink& problems) {
  for (const SectionDesc& s : config_detail::Sections()) {
    if (s.is_array()) continue;
    for (const KeyDesc& d : s) {
      std::string var = std::string("EDGESPOOL_") + s.name + "_" + d.key;
      for (auto& c : var) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      for (const auto& kv : env) {
        if (kv.size() <= var.size() || kv.compare(0, var.size(), var) != 0 || kv[var.size()] != '=') {
          continue;
        }
        size_t first = problems.count();
        config_detail::SetFromText(d, std::string(s.name) + "." + d.key, s.table(config),
                                   kv.substr(var.size() + 1), 0, problems);
        problems.Annotate(first, " (from " + var + ")");
      }
    }
  }
}

}  // namespace

LoadResult ParseConfig(const std::string& text, const std::string& file,
                       const std::vector<std::string>& env) {
  LoadResult out;
  out.config.source = file;
  ProblemSink problems(file, &out.problems);
  // toml++ reports syntax errors by exception; it is caught here, at the
  // library's edge, and nothing else in the parse throws.
  try {
    toml::table root = toml::parse(text, file);
    ApplyToml(root, out.config, problems);
  } catch (const toml::parse_error& e) {
    problems.Add(static_cast<int>(e.source().begin.line), "syntax", std::string(e.description()));
    return out;
  }
  ApplyEnvironment(env, out.config, problems);
  config_detail::CheckConfig(out.config, problems);
  return out;
}

}  // namespace edgespool::agent
