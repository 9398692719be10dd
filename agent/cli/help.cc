#include "agent/cli/help.h"

#include <set>
#include <sstream>

#include "agent/config/reference.h"

namespace edgespool::agent::cli {

namespace {

constexpr size_t kWidth = 79;
constexpr size_t kOptionColumn = 30;

// Wraps `text` at kWidth, every line starting with `indent` spaces (the first
// after `first_used` columns already used on it).
std::string Wrap(const std::string& text, size_t indent, size_t first_used) {
  std::string out;
  size_t col = first_used;
  if (col > indent) {
    out += "\n" + std::string(indent, ' ');
    col = indent;
  } else {
    out += std::string(indent - col, ' ');
    col = indent;
  }
  std::istringstream words(text);
  std::string w;
  bool first = true;
  while (words >> w) {
    if (!first && col + 1 + w.size() > kWidth) {
      out += "\n" + std::string(indent, ' ');
      col = indent;
    } else if (!first) {
      out += ' ';
      ++col;
    }
    out += w;
    col += w.size();
    first = false;
  }
  return out + "\n";
}

// The paragraphs of a description ('\n\n' between them).
std::vector<std::string> Paragraphs(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find("\n\n", start);
    if (end == std::string::npos) end = text.size();
    out.push_back(text.substr(start, end - start));
    start = end + 2;
  }
  return out;
}

std::string OptionLabel(const OptionSpec& o) {
  std::string s = o.short_name ? std::string("-") + o.short_name + ", " : "    ";
  s += "--" + std::string(o.long_name);
  if (o.kind != ValueKind::kFlag) s += " " + std::string(o.value_name);
  return s;
}

std::string ChoicesText(const char* choices) {
  std::string c = choices ? choices : "";
  for (char& ch : c) ch = ch == '|' ? ' ' : ch;
  return c;
}

// --- roff -------------------------------------------------------------------

// Escapes text for a roff text line: backslashes, hyphens (so that option
// names copy as ASCII minus), and a leading '.' or '\''.
std::string Roff(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '\\') {
      out += "\\e";
    } else if (c == '-') {
      out += "\\-";
    } else {
      out += c;
    }
  }
  if (!out.empty() && (out[0] == '.' || out[0] == '\'')) out = "\\&" + out;
  return out;
}

// Prose for a text line: one line per sentence break is not needed, but a
// line must not start with a control character, and newlines become spaces.
std::string RoffProse(const std::string& s) {
  std::string flat;
  for (char c : s) flat += c == '\n' ? ' ' : c;
  return Roff(flat);
}

std::string RoffOption(const OptionSpec& o) {
  std::string s;
  if (o.short_name) s += "\\fB\\-" + std::string(1, o.short_name) + "\\fR, ";
  s += "\\fB" + Roff("--" + std::string(o.long_name)) + "\\fR";
  if (o.kind != ValueKind::kFlag) s += " \\fI" + Roff(o.value_name) + "\\fR";
  return s;
}

bool Visible(const CommandSpec* c) { return !c->hidden; }

// A comment from config.example.toml as a sentence: "an MQTT filter" ->
// "An MQTT filter." (comments after a value are often fragments).
std::string Sentence(std::string s) {
  if (s.empty()) return s;
  if (s[0] >= 'a' && s[0] <= 'z') s[0] = static_cast<char>(s[0] - 'a' + 'A');
  char last = s.back();
  if (last != '.' && last != '!' && last != '?' && last != ')' && last != ':') s += '.';
  return s;
}

// An option's help as printed: its text, its choices, whether it repeats.
std::string OptionHelp(const OptionSpec& o) {
  std::string help = o.help;
  if (o.kind == ValueKind::kChoice) {
    std::string c = o.choices ? o.choices : "";
    std::string list;
    for (char ch : c) list += ch == '|' ? std::string(", ") : std::string(1, ch);
    help += " One of: " + list + ".";
  }
  if (o.repeatable) help += " Repeatable.";
  return help;
}

}  // namespace

const std::vector<ExitCodeDoc>& AllExitCodes() {
  static const std::vector<ExitCodeDoc> codes = {
      {0, "success"},
      {1, "request: the answer is an error (handler_error)"},
      {2, "fleet: a node is offline or stale"},
      {64, "usage error: an unknown option, a missing or malformed value (EX_USAGE)"},
      {65, "bad data: the agent refused a message, or input did not decode (EX_DATAERR)"},
      {69,
       "unavailable: the agent or the broker cannot be reached, or is busy, full or "
       "rate limiting (EX_UNAVAILABLE)"},
      {70, "internal error (EX_SOFTWARE)"},
      {73, "the journal cannot be created or opened (EX_CANTCREAT)"},
      {75, "request: no answer in time (EX_TEMPFAIL)"},
      {77, "not allowed: reload by a user other than root or the agent's (EX_NOPERM)"},
      {78, "bad configuration (EX_CONFIG); systemd does not restart the agent on it"},
  };
  return codes;
}

std::string CommandUsage(const CommandSpec& spec) {
  std::string out = "usage: edgespool " + std::string(spec.name) + " " + spec.synopsis + "\n";
  for (const std::string& p : Paragraphs(spec.description)) out += "\n" + Wrap(p, 0, 0);
  out += "\noptions:\n";
  auto option = [&out](const std::string& label, const std::string& help) {
    std::string line = "  " + label;
    out += line;
    out += Wrap(help, kOptionColumn, line.size() + 2 > kOptionColumn ? kWidth : line.size());
  };
  for (const OptionSpec& o : spec) {
    option(OptionLabel(o), OptionHelp(o));
  }
  option("-h, --help", "Print this help and exit.");
  out += "\nexit codes:\n";
  for (size_t i = 0; i < spec.exit_code_count; ++i) {
    const ExitCodeDoc& e = spec.exit_codes[i];
    std::string line = "  " + std::to_string(e.code);
    out += line + Wrap(e.meaning, 7, line.size());
  }
  return out;
}

std::string MainUsage(const std::vector<const CommandSpec*>& commands) {
  std::string out =
      "usage: edgespool COMMAND [options] [arguments]\n"
      "       edgespool COMMAND --help\n"
      "\n"
      "A store-and-forward agent for IoT gateways: local producers hand it messages\n"
      "over a Unix socket; it keeps them in a journal and forwards them over MQTT.\n"
      "\n"
      "commands:\n";
  for (const CommandSpec* c : commands) {
    if (!Visible(c)) continue;
    std::string line = "  " + std::string(c->name);
    out += line + Wrap(c->summary, 18, line.size() + 2 > 18 ? kWidth : line.size());
  }
  out +=
      "\n"
      "Options follow getopt_long: --name VALUE or --name=VALUE, short options\n"
      "cluster (-lt TOPIC), '--' ends options. Durations take a unit: 250ms, 30s,\n"
      "10m, 1h, 1d; sizes: 512, 64KiB, 16MiB, 1GiB.\n"
      "\n"
      "The configuration file defaults to $EDGESPOOL_CONFIG, then\n"
      "/etc/edgespool/config.toml if present; every key can be overridden by\n"
      "EDGESPOOL_<SECTION>_<KEY> (see edgespool.toml(5)). Producer commands reach the\n"
      "agent at --socket, default $EDGESPOOL_PRODUCER_SOCKET, then\n"
      "/run/edgespool/edgespool.sock.\n"
      "\n"
      "exit codes:\n";
  for (const ExitCodeDoc& e : AllExitCodes()) {
    std::string line = "  " + std::to_string(e.code);
    out += line + Wrap(e.meaning, 7, line.size());
  }
  return out;
}

// The script completes command names, `config` subcommands, each command's
// options, option values by kind (files; choices) and positionals that are
// files. It uses only bash itself (COMP_WORDS, compgen), not the
// bash-completion package's helpers, so it works where that is missing.
std::string BashCompletion(const std::vector<const CommandSpec*>& commands) {
  std::set<std::string> top, config_subs;
  for (const CommandSpec* c : commands) {
    if (!Visible(c)) continue;
    std::string name = c->name;
    size_t sp = name.find(' ');
    top.insert(name.substr(0, sp));
    if (sp != std::string::npos) config_subs.insert(name.substr(sp + 1));
  }
  std::string out =
      "# bash completion for edgespool(8); generated by `edgespool completion`\n"
      "# from the command table (agent/cli/cli.cc): do not edit.\n"
      "_edgespool() {\n"
      "  local cur=\"${COMP_WORDS[COMP_CWORD]}\" prev=\"\" cmd=\"\" first=2 i\n"
      "  ((COMP_CWORD > 0)) && prev=\"${COMP_WORDS[COMP_CWORD-1]}\"\n"
      "  # --name=value: bash splits at '='.\n"
      "  if [[ \"$cur\" == \"=\" ]]; then cur=\"\"; prev=\"${COMP_WORDS[COMP_CWORD-1]}\";\n"
      "  elif [[ \"$prev\" == \"=\" ]]; then prev=\"${COMP_WORDS[COMP_CWORD-2]}\"; fi\n"
      "  COMPREPLY=()\n"
      "  if ((COMP_CWORD == 1)); then\n"
      "    COMPREPLY=($(compgen -W \"";
  std::string words;
  for (const auto& t : top) words += (words.empty() ? "" : " ") + t;
  out += words +
         " --help --version\" -- \"$cur\"))\n"
         "    return 0\n"
         "  fi\n"
         "  cmd=\"${COMP_WORDS[1]}\"\n";
  std::string subs;
  for (const auto& s : config_subs) subs += (subs.empty() ? "" : " ") + s;
  out +=
      "  # Commands with subcommands: `config check`.\n"
      "  case \"$cmd\" in\n"
      "    config)\n"
      "      if ((COMP_CWORD == 2)); then\n"
      "        COMPREPLY=($(compgen -W \"" +
      subs +
      "\" -- \"$cur\"))\n"
      "        return 0\n"
      "      fi\n"
      "      cmd=\"config ${COMP_WORDS[2]}\"; first=3;;\n"
      "  esac\n"
      "  local opts=\"\" value_opts=\"\" positional=\"\"\n"
      "  case \"$cmd\" in\n";
  for (const CommandSpec* c : commands) {
    if (!Visible(c)) continue;
    std::string opts = "--help -h", value_cases;
    std::string plain_values;  // options taking a value completion cannot guess
    for (const OptionSpec& o : *c) {
      opts += " --" + std::string(o.long_name);
      if (o.short_name) opts += std::string(" -") + o.short_name;
      if (o.kind == ValueKind::kFlag) continue;
      std::string pattern = "--" + std::string(o.long_name);
      if (o.short_name) pattern += std::string("|-") + o.short_name;
      if (o.kind == ValueKind::kFile) {
        value_cases +=
            "        " + pattern + ") COMPREPLY=($(compgen -f -- \"$cur\")); return 0;;\n";
      } else if (o.kind == ValueKind::kChoice) {
        value_cases += "        " + pattern + ") COMPREPLY=($(compgen -W \"" +
                       ChoicesText(o.choices) + "\" -- \"$cur\")); return 0;;\n";
      } else {
        plain_values += (plain_values.empty() ? "" : "|") + pattern;
      }
    }
    if (!plain_values.empty()) value_cases += "        " + plain_values + ") return 0;;\n";
    out += "    \"" + std::string(c->name) + "\")\n";
    out += "      opts=\"" + opts + "\"\n";
    if (c->positional_kind == ValueKind::kFile) out += "      positional=file\n";
    // `help COMMAND`: the command names.
    if (std::string(c->name) == "help") out += "      positional=commands\n";
    if (!value_cases.empty()) {
      out += "      case \"$prev\" in\n" + value_cases + "      esac;;\n";
    } else {
      out += "      ;;\n";
    }
  }
  out +=
      "    *) return 0;;\n"
      "  esac\n"
      "  # After `--` everything is positional.\n"
      "  for ((i = first; i < COMP_CWORD; i++)); do\n"
      "    [[ \"${COMP_WORDS[i]}\" == \"--\" ]] && { [[ $positional == file ]] &&\n"
      "      COMPREPLY=($(compgen -f -- \"$cur\")); return 0; }\n"
      "  done\n"
      "  if [[ \"$cur\" == -* ]]; then\n"
      "    COMPREPLY=($(compgen -W \"$opts\" -- \"$cur\"))\n"
      "  elif [[ $positional == file ]]; then\n"
      "    COMPREPLY=($(compgen -f -- \"$cur\"))\n"
      "  elif [[ $positional == commands ]] && ((COMP_CWORD == 2)); then\n"
      "    COMPREPLY=($(compgen -W \"" + words + "\" -- \"$cur\"))\n"
      "  fi\n"
      "  return 0\n"
      "}\n"
      "complete -o filenames -F _edgespool edgespool\n";
  return out;
}

std::string ManPage8(const std::vector<const CommandSpec*>& commands, const std::string& version) {
  std::string out =
      ".\\\" Generated by `edgespool manpage 8` from the command table\n"
      ".\\\" (agent/cli/cli.cc): do not edit.\n"
      ".TH EDGESPOOL 8 \"\" \"edgespool " +
      Roff(version) +
      "\" \"System Administration\"\n"
      ".SH NAME\n"
      "edgespool \\- store\\-and\\-forward agent for IoT gateways\n"
      ".SH SYNOPSIS\n";
  bool first = true;
  for (const CommandSpec* c : commands) {
    if (!Visible(c)) continue;
    if (!first) out += ".br\n";
    out += "\\fBedgespool " + Roff(c->name) + "\\fR " + Roff(c->synopsis) + "\n";
    first = false;
  }
  out +=
      ".SH DESCRIPTION\n"
      "edgespool is a store\\-and\\-forward agent for IoT gateways. Local applications hand\n"
      "it messages over a Unix socket, and it acknowledges each one only once it is\n"
      "durable in a size\\-capped SQLite journal. A sync worker uploads the journal to a\n"
      "central MQTT broker (3.1.1 or 5, TCP or TLS), oldest first, at least once.\n"
      "Messages from the broker for the gateway (the downlink) are stored the same way\n"
      "and handed to local consumers.\n"
      ".PP\n"
      "\\fBedgespool run\\fR is the agent; the other commands talk to a running agent\n"
      "(\\fBpublish\\fR, \\fBquery\\fR, \\fBsubscribe\\fR, \\fBstatus\\fR), to the\n"
      "central broker (\\fBfleet\\fR, \\fBdecode\\fR), or check a configuration.\n"
      ".PP\n"
      "Options follow \\fBgetopt_long\\fR(3): \\fB\\-\\-name\\fR \\fIVALUE\\fR or\n"
      "\\fB\\-\\-name=\\fR\\fIVALUE\\fR; short options cluster (\\fB\\-lt\\fR \\fITOPIC\\fR);\n"
      "\\fB\\-\\-\\fR ends the options; options and arguments may come in any order.\n"
      "Long options are not abbreviated. A \\fIDURATION\\fR is an integer with a unit\n"
      "(250ms, 30s, 10m, 1h, 1d; a bare integer is milliseconds); a \\fISIZE\\fR is bytes\n"
      "or an integer with a binary unit (64KiB, 16MiB, 1GiB). Every command takes\n"
      "\\fB\\-h\\fR, \\fB\\-\\-help\\fR.\n"
      ".SH COMMANDS\n";
  for (const CommandSpec* c : commands) {
    if (!Visible(c)) continue;
    out += ".SS \"" + Roff(c->name) + "\"\n";
    out += "\\fBedgespool " + Roff(c->name) + "\\fR " + Roff(c->synopsis) + "\n.PP\n";
    bool first_para = true;
    for (const std::string& p : Paragraphs(c->description)) {
      if (!first_para) out += ".PP\n";
      out += RoffProse(p) + "\n";
      first_para = false;
    }
    for (const OptionSpec& o : *c) {
      out += ".TP\n" + RoffOption(o) + "\n" + RoffProse(OptionHelp(o)) + "\n";
    }
    out += ".PP\nExit status:\n.RS\n";
    for (size_t i = 0; i < c->exit_code_count; ++i) {
      out += ".TP 5\n.B " + std::to_string(c->exit_codes[i].code) + "\n" +
             RoffProse(c->exit_codes[i].meaning) + "\n";
    }
    out += ".RE\n";
  }
  out += ".SH EXIT STATUS\n";
  for (const ExitCodeDoc& e : AllExitCodes()) {
    out += ".TP 5\n.B " + std::to_string(e.code) + "\n" + RoffProse(e.meaning) + "\n";
  }
  out +=
      ".SH ENVIRONMENT\n"
      ".TP\n.B EDGESPOOL_CONFIG\n"
      "The configuration file when none is given; then /etc/edgespool/config.toml if present.\n"
      ".TP\n.BI EDGESPOOL_ SECTION _ KEY\n"
      "Overrides one key of the configuration, e.g. EDGESPOOL_UPLINK_URL; see\n"
      "\\fBedgespool.toml\\fR(5).\n"
      ".TP\n.B EDGESPOOL_PRODUCER_SOCKET\n"
      "The agent's socket for the producer commands when \\fB\\-\\-socket\\fR is not given.\n"
      ".TP\n.B JOURNAL_STREAM\n"
      "Set by systemd when stderr goes to the journal: log lines get priority prefixes\n"
      "and no timestamp of their own.\n"
      ".TP\n.B NOTIFY_SOCKET\n"
      "Set by systemd for \\fBType=notify\\fR: the agent reports READY=1, STATUS=,\n"
      "WATCHDOG=1 and STOPPING=1.\n"
      ".SH FILES\n"
      ".TP\n.I /etc/edgespool/config.toml\nThe configuration (\\fBedgespool.toml\\fR(5)).\n"
      ".TP\n.I /run/edgespool/edgespool.sock\nThe producer and consumer socket.\n"
      ".TP\n.I /var/lib/edgespool/journal.db\n"
      "The journal, with its \\-wal file and journal.db.lock beside it.\n"
      ".SH SEE ALSO\n"
      "\\fBedgespool.toml\\fR(5), \\fBmosquitto_pub\\fR(1), \\fBmosquitto_sub\\fR(1),\n"
      "\\fBsystemd.service\\fR(5), \\fBsysexits.h\\fR(3head)\n";
  return out;
}

namespace {

// config.example.toml marks restart keys "(restart)"; the man page says it
// from the schema instead (the Reload: line), once.
std::string WithoutRestartMark(std::string text) {
  const std::string mark = "(restart)";
  size_t at = text.find(mark);
  if (at == std::string::npos) return text;
  size_t end = at + mark.size();
  if (end < text.size() && text[end] == ' ') {
    ++end;
  } else if (at > 0 && text[at - 1] == ' ') {
    --at;
  }
  return text.erase(at, end - at);
}

}  // namespace

std::string ManPage5(const std::string& version) {
  std::string out =
      ".\\\" Generated by `edgespool manpage 5` from the configuration schema\n"
      ".\\\" (agent/config/schema.cc) and config.example.toml: do not edit.\n"
      ".TH EDGESPOOL.TOML 5 \"\" \"edgespool " +
      Roff(version) +
      "\" \"File Formats\"\n"
      ".SH NAME\n"
      "edgespool.toml \\- configuration of the edgespool agent\n"
      ".SH SYNOPSIS\n"
      ".I /etc/edgespool/config.toml\n"
      ".SH DESCRIPTION\n"
      "The configuration of \\fBedgespool\\fR(8) is a TOML file: tables ([section]) of\n"
      "keys, and arrays of tables ([[route]], [[acl]], [[rate_limit]], [[subscription]])\n"
      "that may appear any number of times. Every key is optional; a missing key has\n"
      "its default. An unknown key, a value of the wrong type or out of range is an\n"
      "error reported as \\fIfile\\fR:\\fIline\\fR: \\fIsection.key\\fR: \\fIreason\\fR, and\n"
      "the agent does not start (exit status 78). Check a file with\n"
      "\\fBedgespool config check\\fR \\fIFILE\\fR and see the effective configuration with\n"
      "\\fBedgespool config show\\fR.\n"
      ".PP\n"
      "A \\fIduration\\fR is a string with a unit: \"250ms\", \"30s\", \"5m\", \"1h\", \"1d\".\n"
      "A \\fIsize\\fR is a number of bytes, or a string with a binary unit: \"512KiB\",\n"
      "\"256MiB\", \"1GiB\".\n"
      ".SH ENVIRONMENT\n"
      "Every key of a [section] can be overridden by an environment variable\n"
      "EDGESPOOL_\\fISECTION\\fR_\\fIKEY\\fR in upper case, for example\n"
      "EDGESPOOL_UPLINK_URL=mqtts://broker.example:8883; its value is written as in the\n"
      "file, without quotes. Arrays of tables cannot be set from the environment.\n"
      ".SH KEYS\n";
  for (const SectionReference& s : ConfigReference()) {
    out += ".SS \"" + std::string(s.is_array ? "[[" : "[") + Roff(s.name) +
           (s.is_array ? "]]" : "]") + "\"\n";
    if (!s.doc.empty()) out += RoffProse(s.doc) + "\n";
    for (const KeyReference& k : s.keys) {
      out += ".TP\n\\fB" + Roff(k.key) + "\\fR";
      if (!k.default_value.empty()) out += " = " + Roff(k.default_value);
      out += "\n";
      // "(restart)" in the example is the Reload: line below, from the schema.
      std::string note = WithoutRestartMark(k.note);
      std::string doc = WithoutRestartMark(k.doc);
      if (!k.shares_doc_with.empty()) {
        out += "See \\fB" + Roff(k.shares_doc_with) + "\\fR above." +
               (note.empty() ? "" : " " + RoffProse(Sentence(note))) + "\n";
      } else if (!doc.empty()) {
        out += RoffProse(Sentence(doc)) + "\n";
      }
      if (k.secret) out += "It may hold credentials: \\fBconfig show\\fR redacts them.\n";
      std::string facts = "\\fIType:\\fR " + Roff(k.kind);
      if (!k.choices.empty()) facts += ": " + Roff(k.choices);
      if (!k.range.empty()) facts += ", " + Roff(k.range);
      facts += ".";
      out += ".br\n" + facts + "\n";
      if (!k.env.empty()) out += ".br\n\\fIEnvironment:\\fR \\%" + Roff(k.env) + "\n";
      out += std::string(".br\n\\fIReload:\\fR ") +
             (k.live ? "applied live." : "needs a restart (a reload that changes it is refused).") +
             "\n";
    }
  }
  out +=
      ".SH FILES\n"
      ".TP\n.I /etc/edgespool/config.toml\n"
      "The default configuration file (or $EDGESPOOL_CONFIG).\n"
      ".TP\n.I /usr/share/doc/edgespool/config.example.toml\n"
      "Every key, commented, with its default (where the package installs it).\n"
      ".SH SEE ALSO\n"
      "\\fBedgespool\\fR(8)\n";
  return out;
}

}  // namespace edgespool::agent::cli
