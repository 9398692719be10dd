// The configuration's schema: every section and key, once (the table itself
// is in schema.cc). Internal to agent/config/; callers use config.h.
//
// A [section] is a struct inside Config; a [[section]] (array of tables) is a
// std::vector of structs. A key reaches its value through `field`, given the
// section's struct (or one element of the array), so the parser, the
// environment overrides, the renderer and KnownKeys() all walk the same rows
// and no struct's shape is written down twice. schema.cc checks at compile
// time that each row's Kind fits the C++ type of its field.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "agent/config/config.h"

namespace edgespool::agent::config_detail {

// How a value is written in TOML (and in an environment variable) and what
// is checked; the comment names the C++ type of the field.
enum class Kind : uint8_t {
  kString,      // std::string
  kEnum,        // std::string, one of `choices`
  kInt,         // int64_t in [min, max]
  kBool,        // bool: true/false (env: also 1/0)
  kDuration,    // int64_t ms: a string with a unit ("30s"); [min, max]
  kSize,        // int64_t bytes: an integer or a string with a unit; [min, max]
  kMode,        // int64_t: an octal string ("0660") or an integer; [min, max]
  kFraction,    // double in (0, 1]
  kNumber,      // double >= 0
  kWeights,     // std::vector<int64_t>: 3 values (high, normal, low) in [min, max]
  kFilterList,  // std::vector<std::string>: MQTT filters (not in the environment)
  kStringList,  // std::vector<std::string>: any strings (not in the environment)
  kUrlList,     // std::vector<std::string>, not empty: a string, or an array of strings
                // (env: comma-separated)
};

// What `config show` prints for a key. A rendered file must parse back to
// the same configuration, so a key is left out only where its absence means
// the same value.
enum class Show : uint8_t {
  kAlways,
  kUnlessEmpty,     // "" or 0 is "not set" (route.priority, route.ttl)
  kUnlessNegative,  // -1 is "any" (acl.uid)
  kNever,           // resolved into another key at load (acl.user -> acl.uid)
};

// The C++ type behind a Kind, for the compile-time check in schema.cc.
enum class Storage : uint8_t { kString, kInt, kBool, kDouble, kIntList, kStringList };

struct KeyDesc {
  const char* key;
  Kind kind;
  Storage storage;              // of the field, filled in by Key<>()
  void* (*field)(void* owner);  // the value inside its section's struct
  int64_t min = 0;
  int64_t max = INT64_MAX;
  const char* choices = nullptr;  // kEnum: "a|b|c"
  bool secret = false;            // may hold credentials: `config show` redacts it
  Show show = Show::kAlways;
  // Applied by a reload (SIGHUP, `edgespool reload`) to the running agent.
  // The default is the safe one: a key not marked live needs a restart, and
  // a reload that changes it is refused (agent/config/diff.cc).
  bool live = false;

  constexpr KeyDesc Range(int64_t lo, int64_t hi) const {
    KeyDesc d = *this;
    d.min = lo;
    d.max = hi;
    return d;
  }
  constexpr KeyDesc Choices(const char* c) const {
    KeyDesc d = *this;
    d.choices = c;
    return d;
  }
  constexpr KeyDesc Secret() const {
    KeyDesc d = *this;
    d.secret = true;
    return d;
  }
  constexpr KeyDesc Shown(Show s) const {
    KeyDesc d = *this;
    d.show = s;
    return d;
  }
  constexpr KeyDesc Live() const {
    KeyDesc d = *this;
    d.live = true;
    return d;
  }
};

// Problems collected while loading, each "file:line: key: reason".
class ProblemSink {
 public:
  ProblemSink(std::string file, std::vector<ConfigProblem>* out)
      : file_(std::move(file)), out_(out) {}
  void Add(int line, const std::string& key, const std::string& reason) const {
    out_->push_back(ConfigProblem{file_, line, key, reason});
  }
  size_t count() const { return out_->size(); }
  // Appends `suffix` to the reason of every problem added since `first`.
  void Annotate(size_t first, const std::string& suffix) const {
    for (size_t i = first; i < out_->size(); ++i) (*out_)[i].reason += suffix;
  }

 private:
  std::string file_;
  std::vector<ConfigProblem>* out_;
};

struct SectionDesc {
  const char* name;
  const KeyDesc* keys;
  size_t key_count;
  // [name]: the struct inside Config that holds the keys.
  void* (*table)(Config&) = nullptr;
  // [[name]]: appends an element (remembering its line), counts and reaches them.
  void* (*append)(Config&, int line) = nullptr;
  size_t (*count)(const Config&) = nullptr;
  void* (*element)(Config&, size_t i) = nullptr;
  // Rules across one element's keys, reported at the element's line.
  void (*check)(void* element, int line, const ProblemSink&) = nullptr;

  bool is_array() const { return append != nullptr; }
  const KeyDesc* begin() const { return keys; }
  const KeyDesc* end() const { return keys + key_count; }
};

// Every section, in the order `config show` prints them: the [tables]
// first, then the [[arrays]].
const std::vector<SectionDesc>& Sections();
const SectionDesc* FindSection(const std::string& name);
const KeyDesc* FindKey(const SectionDesc& section, const std::string& key);

}  // namespace edgespool::agent::config_detail
