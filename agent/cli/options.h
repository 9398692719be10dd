// The command line's one option parser and the table every command is
// described by. A command is a CommandSpec (name, synopsis, summary, its
// options, its exit codes) and a function taking the parsed Args; from the
// same specs come `edgespool --help`, `edgespool CMD --help`, the bash
// completion script and the edgespool(8) man page (agent/cli/help.h), so a
// flag documented in one place is documented in all of them.
//
// Parsing follows getopt_long(3) as GNU tools do:
//   --name VALUE, --name=VALUE     long options (never abbreviated, so adding
//                                  an option cannot break a script)
//   -n VALUE, -nVALUE              short options; flags cluster: -lv, -lt TOPIC
//   --                             ends options: what follows is positional
//   -                              alone is a positional (stdin, by custom)
//   options and positionals mix in any order (GNU permutation)
//   -h, --help                     on every command: its usage, exit 0
// A value is checked against its kind when parsed (a duration needs a unit,
// see ValueKind), so a command reads typed values and never reports a
// malformed one itself.
//
// Adding a command: a CommandSpec and its function in the command's own file,
// and one row in the table of agent/cli/cli.cc.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace edgespool::agent::cli {

enum class ValueKind : uint8_t {
  kFlag,      // takes no value
  kString,    // any text
  kFile,      // a path (completion offers files)
  kChoice,    // one of `choices` ("high|normal|low")
  kInt,       // a decimal integer in [min, max]
  kDuration,  // "250ms", "30s", "10m", "1h", "1d" (agent/config/units.h); a bare
              // integer is milliseconds, as the flags took before units
  kSize,      // bytes, or "512KiB", "16MiB", "1GiB"
};

struct OptionSpec {
  const char* long_name;  // "ttl": given as --ttl
  char short_name;        // 't', or 0 for none
  ValueKind kind;
  const char* value_name;         // in usage: "DURATION", "FILE"; nullptr for a flag
  const char* help;               // one or two sentences; says the default
  const char* choices = nullptr;  // kChoice
  int64_t min = 0;                // kInt, kDuration (ms), kSize (bytes)
  int64_t max = INT64_MAX;
  bool repeatable = false;  // every occurrence is kept (--header k=v ...)

  constexpr OptionSpec Range(int64_t lo, int64_t hi) const {
    OptionSpec o = *this;
    o.min = lo;
    o.max = hi;
    return o;
  }
  constexpr OptionSpec Choices(const char* c) const {
    OptionSpec o = *this;
    o.choices = c;
    return o;
  }
  constexpr OptionSpec Repeatable() const {
    OptionSpec o = *this;
    o.repeatable = true;
    return o;
  }
};

// An option with a value / a flag, for the tables.
constexpr OptionSpec Opt(const char* long_name, char short_name, ValueKind kind,
                         const char* value_name, const char* help) {
  return OptionSpec{long_name, short_name, kind, value_name, help};
}
constexpr OptionSpec Flag(const char* long_name, char short_name, const char* help) {
  return OptionSpec{long_name, short_name, ValueKind::kFlag, nullptr, help};
}

struct ExitCodeDoc {
  int code;
  const char* meaning;
};

class Args;

struct CommandSpec {
  const char* name;         // "publish", or "config check" (a command and its subcommand)
  const char* synopsis;     // after the name: "[options] TOPIC [MESSAGE]"
  const char* summary;      // one line, for the command list
  const char* description;  // paragraphs for --help and the man page ('\n\n' between)
  const OptionSpec* options;
  size_t option_count;
  const ExitCodeDoc* exit_codes;
  size_t exit_code_count;
  int (*run)(const Args& args);
  size_t min_positionals = 0;
  size_t max_positionals = SIZE_MAX;
  bool hidden = false;  // not in --help, completion or the man page (manpage, completion)
  ValueKind positional_kind = ValueKind::kString;  // kFile: completion offers files

  constexpr CommandSpec Hidden() const {
    CommandSpec c = *this;
    c.hidden = true;
    return c;
  }
  constexpr CommandSpec FilePositionals() const {
    CommandSpec c = *this;
    c.positional_kind = ValueKind::kFile;
    return c;
  }
  const OptionSpec* begin() const { return options; }
  const OptionSpec* end() const { return options + option_count; }
};

// Builds a spec from arrays, counting them.
template <size_t NO, size_t NE>
constexpr CommandSpec Command(const char* name, const char* synopsis, const char* summary,
                              const char* description, const OptionSpec (&options)[NO],
                              const ExitCodeDoc (&exits)[NE], int (*run)(const Args&),
                              size_t min_positionals = 0, size_t max_positionals = SIZE_MAX) {
  return CommandSpec{name,  synopsis, summary, description,     options,        NO,
                     exits, NE,       run,     min_positionals, max_positionals};
}

// A command with no options of its own (it still takes --help).
template <size_t NE>
constexpr CommandSpec Command(const char* name, const char* synopsis, const char* summary,
                              const char* description, std::nullptr_t,
                              const ExitCodeDoc (&exits)[NE], int (*run)(const Args&),
                              size_t min_positionals = 0, size_t max_positionals = SIZE_MAX) {
  return CommandSpec{name,  synopsis, summary, description,     nullptr,        0,
                     exits, NE,       run,     min_positionals, max_positionals};
}

enum class ParseOutcome { kOk, kHelp, kError };

// What a command line said, values checked against their kinds.
class Args {
 public:
  bool Has(const std::string& long_name) const;
  // The last value given (or `fallback`); a flag's value is "".
  std::string Str(const std::string& long_name, const std::string& fallback = "") const;
  // Every value given, in order (repeatable options).
  std::vector<std::string> All(const std::string& long_name) const;
  // Typed values of kInt / kDuration / kSize options (checked by Parse).
  int64_t Int(const std::string& long_name, int64_t fallback = 0) const;
  int64_t DurationMs(const std::string& long_name, int64_t fallback = 0) const;
  int64_t SizeBytes(const std::string& long_name, int64_t fallback = 0) const;
  const std::vector<std::string>& positionals() const { return positionals_; }
  const CommandSpec& command() const { return *command_; }

 private:
  friend struct Parser;
  friend ParseOutcome Parse(const CommandSpec&, int, const char* const*, Args*, std::string*);
  const CommandSpec* command_ = nullptr;
  std::vector<std::pair<std::string, std::string>> values_;  // long name, value; in order
  std::vector<std::string> positionals_;
};

// Parses argv (the arguments after the command's name). kHelp when -h or
// --help came before any `--`; kError with a message ("option '--ttl':
// \"10\" has no unit...") for an unknown option, a missing or malformed
// value, a flag given a value, or a count of positionals outside the spec's.
ParseOutcome Parse(const CommandSpec& spec, int argc, const char* const* argv, Args* out,
                   std::string* error);

// Parses, prints `edgespool CMD --help` (exit 0) or the error with a hint
// (exit 64), else runs the command. Every command goes through here.
int RunCommand(const CommandSpec& spec, int argc, char** argv);

// Parses a duration / size value as the option kinds do (for values that
// arrive another way, e.g. from a table of their own). False with a reason.
bool ParseDurationValue(const std::string& text, int64_t* ms, std::string* why);

}  // namespace edgespool::agent::cli
