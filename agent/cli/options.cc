#include "agent/cli/options.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "agent/cli/exit_codes.h"
#include "agent/cli/help.h"
#include "agent/config/units.h"

namespace edgespool::agent::cli {

namespace {

bool ParseInteger(const std::string& s, int64_t* out) {
  if (s.empty() || s.size() > 20) return false;
  size_t i = s[0] == '-' ? 1 : 0;
  if (i == s.size() || s.find_first_not_of("0123456789", i) != std::string::npos) return false;
  errno = 0;
  long long v = std::strtoll(s.c_str(), nullptr, 10);
  if (errno != 0) return false;
  *out = v;
  return true;
}

std::string Quoted(const std::string& s) { return "\"" + s + "\""; }

// Checks `value` against the option's kind and range; false with a reason.
bool CheckValue(const OptionSpec& o, const std::string& value, int64_t* number, std::string* why) {
  int64_t n = 0;
  switch (o.kind) {
    case ValueKind::kFlag:
    case ValueKind::kString:
    case ValueKind::kFile:
      return true;
    case ValueKind::kChoice: {
      std::string c = o.choices ? o.choices : "";
      size_t start = 0;
      while (start <= c.size()) {
        size_t bar = c.find('|', start);
        if (bar == std::string::npos) bar = c.size();
        if (c.compare(start, bar - start, value) == 0 && bar - start == value.size()) return true;
        start = bar + 1;
      }
      for (char& ch : c) ch = ch == '|' ? ',' : ch;
      *why = Quoted(value) + " is not one of " + c;
      return false;
    }
    case ValueKind::kInt:
      if (!ParseInteger(value, &n)) {
        *why = Quoted(value) + " is not an integer";
        return false;
      }
      break;
    case ValueKind::kDuration:
      if (!ParseDurationValue(value, &n, why)) return false;
      break;
    case ValueKind::kSize:
      if (!ParseSizeBytes(value, &n, why)) return false;
      break;
  }
  if (n < o.min || n > o.max) {
    std::string lo, hi;
    if (o.kind == ValueKind::kDuration) {
      lo = FormatDurationMs(o.min);
      hi = FormatDurationMs(o.max);
    } else if (o.kind == ValueKind::kSize) {
      lo = FormatSizeBytes(o.min);
      hi = FormatSizeBytes(o.max);
    } else {
      lo = std::to_string(o.min);
      hi = std::to_string(o.max);
    }
    *why =
        Quoted(value) + (o.max == INT64_MAX ? " is below " + lo : " is outside " + lo + ".." + hi);
    return false;
  }
  *number = n;
  return true;
}

const OptionSpec* FindLong(const CommandSpec& spec, const std::string& name) {
  for (const OptionSpec& o : spec) {
    if (name == o.long_name) return &o;
  }
  return nullptr;
}

const OptionSpec* FindShort(const CommandSpec& spec, char c) {
  for (const OptionSpec& o : spec) {
    if (o.short_name != 0 && o.short_name == c) return &o;
  }
  return nullptr;
}

const std::string* Last(const std::vector<std::pair<std::string, std::string>>& values,
                        const std::string& name) {
  for (auto it = values.rbegin(); it != values.rend(); ++it) {
    if (it->first == name) return &it->second;
  }
  return nullptr;
}

}  // namespace

bool ParseDurationValue(const std::string& text, int64_t* ms, std::string* why) {
  int64_t n = 0;
  if (ParseInteger(text, &n)) {  // a bare number: milliseconds, as before units
    *ms = n;
    return true;
  }
  return ParseDurationMs(text, ms, why);
}

// The parsing state over one argv (a struct so that Args can befriend it).
struct Parser {
  const CommandSpec& spec;
  Args* out;
  std::string* error;

  bool Take(const OptionSpec& o, const std::string& shown, const std::string& value) {
    int64_t n = 0;
    std::string why;
    if (!CheckValue(o, value, &n, &why)) {
      *error = "option '" + shown + "': " + why;
      return false;
    }
    if (!o.repeatable) {
      // The last occurrence wins, as with getopt; keep one entry.
      auto& v = out->values_;
      for (auto it = v.begin(); it != v.end();) {
        it = it->first == o.long_name ? v.erase(it) : it + 1;
      }
    }
    out->values_.emplace_back(o.long_name, value);
    return true;
  }

  // argv[*i] is "--name" or "--name=value".
  bool Long(int argc, const char* const* argv, int* i) {
    std::string arg = argv[*i];
    size_t eq = arg.find('=');
    std::string name = arg.substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
    const OptionSpec* o = FindLong(spec, name);
    if (o == nullptr) {
      *error = "unrecognized option '--" + name + "'";
      return false;
    }
    std::string shown = "--" + name;
    if (o->kind == ValueKind::kFlag) {
      if (eq != std::string::npos) {
        *error = "option '" + shown + "' doesn't allow an argument";
        return false;
      }
      return Take(*o, shown, "");
    }
    if (eq != std::string::npos) return Take(*o, shown, arg.substr(eq + 1));
    if (*i + 1 >= argc) {
      *error = "option '" + shown + "' requires an argument (" + o->value_name + ")";
      return false;
    }
    return Take(*o, shown, argv[++*i]);
  }

  // argv[*i] is "-abc": flags, the last (or one before the rest) taking a value.
  bool Short(int argc, const char* const* argv, int* i) {
    std::string arg = argv[*i];
    for (size_t k = 1; k < arg.size(); ++k) {
      const OptionSpec* o = FindShort(spec, arg[k]);
      std::string shown = std::string("-") + arg[k];
      if (o == nullptr) {
        *error = "invalid option '" + shown + "'";
        return false;
      }
      if (o->kind == ValueKind::kFlag) {
        if (!Take(*o, shown, "")) return false;
        continue;
      }
      if (k + 1 < arg.size()) return Take(*o, shown, arg.substr(k + 1));  // -tVALUE
      if (*i + 1 >= argc) {
        *error = "option '" + shown + "' requires an argument (" + o->value_name + ")";
        return false;
      }
      return Take(*o, shown, argv[++*i]);
    }
    return true;
  }
};

bool Args::Has(const std::string& long_name) const { return Last(values_, long_name) != nullptr; }

std::string Args::Str(const std::string& long_name, const std::string& fallback) const {
  const std::string* v = Last(values_, long_name);
  return v ? *v : fallback;
}

std::vector<std::string> Args::All(const std::string& long_name) const {
  std::vector<std::string> out;
  for (const auto& [k, v] : values_) {
    if (k == long_name) out.push_back(v);
  }
  return out;
}

int64_t Args::Int(const std::string& long_name, int64_t fallback) const {
  const std::string* v = Last(values_, long_name);
  int64_t n = fallback;
  if (v) ParseInteger(*v, &n);
  return n;
}

int64_t Args::DurationMs(const std::string& long_name, int64_t fallback) const {
  const std::string* v = Last(values_, long_name);
  int64_t n = fallback;
  std::string why;
  if (v && !ParseDurationValue(*v, &n, &why)) n = fallback;
  return n;
}

int64_t Args::SizeBytes(const std::string& long_name, int64_t fallback) const {
  const std::string* v = Last(values_, long_name);
  int64_t n = fallback;
  std::string why;
  if (v && !ParseSizeBytes(*v, &n, &why)) n = fallback;
  return n;
}

ParseOutcome Parse(const CommandSpec& spec, int argc, const char* const* argv, Args* out,
                   std::string* error) {
  *out = Args();
  out->command_ = &spec;
  // Help first, wherever it stands before `--`: `publish --ttl x --help`
  // shows the usage rather than complaining about --ttl.
  for (int i = 0; i < argc; ++i) {
    if (std::strcmp(argv[i], "--") == 0) break;
    if (std::strcmp(argv[i], "--help") == 0 || std::strcmp(argv[i], "-h") == 0) {
      return ParseOutcome::kHelp;
    }
  }
  Parser p{spec, out, error};
  bool options_done = false;
  for (int i = 0; i < argc; ++i) {
    const char* a = argv[i];
    if (options_done || a[0] != '-' || a[1] == '\0') {  // "-" alone is positional
      out->positionals_.emplace_back(a);
    } else if (std::strcmp(a, "--") == 0) {
      options_done = true;
    } else if (a[1] == '-') {
      if (!p.Long(argc, argv, &i)) return ParseOutcome::kError;
    } else if (!p.Short(argc, argv, &i)) {
      return ParseOutcome::kError;
    }
  }
  size_t n = out->positionals_.size();
  if (n < spec.min_positionals) {
    *error = "missing argument: usage: edgespool " + std::string(spec.name) + " " + spec.synopsis;
    return ParseOutcome::kError;
  }
  if (n > spec.max_positionals) {
    *error = "unexpected argument '" + out->positionals_[spec.max_positionals] + "'";
    return ParseOutcome::kError;
  }
  return ParseOutcome::kOk;
}

int RunCommand(const CommandSpec& spec, int argc, char** argv) {
  Args args;
  std::string error;
  switch (Parse(spec, argc, argv, &args, &error)) {
    case ParseOutcome::kHelp:
      std::fputs(CommandUsage(spec).c_str(), stdout);
      return kExitOk;
    case ParseOutcome::kError:
      std::fprintf(stderr, "edgespool %s: %s\n(run 'edgespool %s --help' for usage)\n", spec.name,
                   error.c_str(), spec.name);
      return kExitUsage;
    case ParseOutcome::kOk:
      break;
  }
  return spec.run(args);
}

}  // namespace edgespool::agent::cli
