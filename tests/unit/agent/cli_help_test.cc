// What comes out of the command table (agent/cli/help.h), through the real
// binary: every command's --help (exit 0, its options and exit codes), the
// bash completion script run by bash, and the man pages linted by groff.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "agent/cli/cli.h"
#include "agent/cli/help.h"
#include "tests/support/test_env.h"

namespace edgespool {
namespace {

using testing::Process;
using testing::ReadFile;
using testing::TempDir;
using testing::WriteFile;

std::string Bin() {
  const char* b = std::getenv("EDGESPOOL_BIN");
  return b ? b : "edgespool";
}

// Runs argv to completion; the exit code, and stdout+stderr in *output.
int RunArgv(const std::vector<std::string>& argv, std::string* output) {
  TempDir dir;
  Process p;
  EXPECT_TRUE(p.Start(argv, dir.File("out"), {{"EDGESPOOL_CONFIG", ""}}));
  int status = p.Wait(30000);
  *output = ReadFile(dir.File("out"));
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::vector<std::string> Split(const std::string& name) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    size_t sp = name.find(' ', start);
    out.push_back(name.substr(start, sp - start));
    if (sp == std::string::npos) return out;
    start = sp + 1;
  }
}

TEST(CliHelpTest, EveryCommandsHelpExitsZeroAndListsItsOptionsAndExitCodes) {
  for (const agent::cli::CommandSpec* c : agent::CliCommands()) {
    for (const char* flag : {"--help", "-h"}) {
      std::vector<std::string> argv = {Bin()};
      for (const auto& w : Split(c->name)) argv.push_back(w);
      argv.push_back(flag);
      std::string out;
      EXPECT_EQ(RunArgv(argv, &out), 0) << c->name << " " << flag << "\n" << out;
      EXPECT_EQ(out.rfind("usage: edgespool " + std::string(c->name), 0), 0u) << out;
      EXPECT_NE(out.find("exit codes:"), std::string::npos) << c->name;
      for (size_t i = 0; i < c->exit_code_count; ++i) {
        EXPECT_NE(out.find("\n  " + std::to_string(c->exit_codes[i].code) + " "), std::string::npos)
            << c->name << " does not list exit code " << c->exit_codes[i].code;
      }
      for (const agent::cli::OptionSpec& o : *c) {
        EXPECT_NE(out.find("--" + std::string(o.long_name)), std::string::npos)
            << c->name << " --" << o.long_name;
      }
    }
    // Every code a command lists is in the general list too.
    for (size_t i = 0; i < c->exit_code_count; ++i) {
      bool known = false;
      for (const auto& e : agent::cli::AllExitCodes()) known |= e.code == c->exit_codes[i].code;
      EXPECT_TRUE(known) << c->name << ": exit code " << c->exit_codes[i].code
                         << " is not in cli::AllExitCodes() (agent/cli/help.cc): add it there";
    }
  }
  std::string out;
  EXPECT_EQ(RunArgv({Bin(), "--help"}, &out), 0);
  for (const auto& e : agent::cli::AllExitCodes()) {
    EXPECT_NE(out.find("\n  " + std::to_string(e.code) + " "), std::string::npos) << e.code;
  }
  EXPECT_EQ(RunArgv({Bin(), "help", "publish"}, &out), 0);
  EXPECT_EQ(out.rfind("usage: edgespool publish", 0), 0u) << out;
  EXPECT_EQ(RunArgv({Bin(), "help", "config", "show"}, &out), 0);
  EXPECT_EQ(out.rfind("usage: edgespool config show", 0), 0u) << out;
  EXPECT_EQ(RunArgv({Bin(), "config", "--help"}, &out), 0);
  EXPECT_EQ(RunArgv({Bin(), "help", "nope"}, &out), 64);
  // A usage error names the command's --help.
  EXPECT_EQ(RunArgv({Bin(), "publish", "--ttl", "soon", "t", "m"}, &out), 64);
  EXPECT_NE(out.find("option '--ttl'"), std::string::npos) << out;
  EXPECT_NE(out.find("edgespool publish --help"), std::string::npos) << out;
}

TEST(CliHelpTest, NothingWaitsSilentlyOnATerminal) {
  // `script` gives the command a terminal for stdin; without a message it
  // must fail at once with a usage error, not wait for input.
  if (std::system("command -v script >/dev/null 2>&1") != 0) GTEST_SKIP() << "no script(1)";
  TempDir dir;
  std::string out;
  int rc = RunArgv({"script", "-qec",
                    Bin() + " publish some/topic --socket " + dir.File("none.sock"), "/dev/null"},
                   &out);
  EXPECT_EQ(rc, 64) << out;
  EXPECT_NE(out.find("no message"), std::string::npos) << out;
  // decode reads stdin when given no FILE: the same on a terminal.
  rc = RunArgv({"script", "-qec", Bin() + " decode", "/dev/null"}, &out);
  EXPECT_EQ(rc, 64) << out;
  EXPECT_NE(out.find("no input"), std::string::npos) << out;
}

// Runs the completion script in bash for a command line (the words; the
// last is the one being completed) and returns COMPREPLY.
std::string Complete(const std::string& script, const std::vector<std::string>& words) {
  std::string array;
  for (const auto& w : words) array += " '" + w + "'";
  std::string cmd = "source '" + script + "'; COMP_WORDS=(" + array +
                    "); COMP_CWORD=" + std::to_string(words.size() - 1) +
                    "; _edgespool; echo \"${COMPREPLY[@]}\"";
  TempDir dir;
  Process p;
  EXPECT_TRUE(p.Start({"bash", "-c", cmd}, dir.File("out")));
  EXPECT_EQ(p.Wait(10000), 0);
  std::string out = ReadFile(dir.File("out"));
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

TEST(CliHelpTest, BashCompletionCompletesCommandsOptionsAndValues) {
  TempDir dir;
  std::string script;
  ASSERT_EQ(RunArgv({Bin(), "completion"}, &script), 0);
  WriteFile(dir.File("edgespool"), script);
  std::string s = dir.File("edgespool");
  EXPECT_EQ(Complete(s, {"edgespool", "pu"}), "publish");
  EXPECT_EQ(Complete(s, {"edgespool", "co"}), "config consume");
  EXPECT_EQ(Complete(s, {"edgespool", "conf"}), "config");
  EXPECT_EQ(Complete(s, {"edgespool", "config", ""}), "check keys show");
  EXPECT_EQ(Complete(s, {"edgespool", "publish", "--pri"}), "--priority");
  EXPECT_EQ(Complete(s, {"edgespool", "publish", "--priority", ""}), "high normal low");
  EXPECT_EQ(Complete(s, {"edgespool", "publish", "--ack", "d"}), "delivered");
  EXPECT_EQ(Complete(s, {"edgespool", "publish", "--priority", "=", "n"}), "normal");
  EXPECT_EQ(Complete(s, {"edgespool", "fleet", "--wa"}), "--watch --wait");
  EXPECT_EQ(Complete(s, {"edgespool", "config", "check", "--con"}), "--config");
  EXPECT_EQ(Complete(s, {"edgespool", "publish", "--ttl", ""}), "");  // a value: no guess
  // Files where a file goes.
  WriteFile(dir.File("frames.bin"), "x");
  EXPECT_EQ(Complete(s, {"edgespool", "decode", dir.File("frames.")}), dir.File("frames.bin"));
  EXPECT_EQ(Complete(s, {"edgespool", "publish", "-f", dir.File("frames.")}),
            dir.File("frames.bin"));
  EXPECT_EQ(Complete(s, {"edgespool", "publish", "--", "--pri"}), "");  // after --: positional
  EXPECT_EQ(Complete(s, {"edgespool", "help", "st"}), "status");
  // Hidden commands are not offered.
  EXPECT_EQ(Complete(s, {"edgespool", "man"}), "");
}

TEST(CliHelpTest, ManPagesAreWarningFreeRoff) {
  if (std::system("command -v groff >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "groff not installed (groff-base)";
  }
  TempDir dir;
  for (const char* section : {"8", "5"}) {
    std::string page;
    ASSERT_EQ(RunArgv({Bin(), "manpage", section}, &page), 0);
    std::string file = dir.File(std::string("page.") + section);
    WriteFile(file, page);
    std::string warnings;
    EXPECT_EQ(RunArgv({"groff", "-man", "-Tutf8", "-ww", "-z", file}, &warnings), 0) << warnings;
    EXPECT_EQ(warnings, "") << "section " << section;
    EXPECT_NE(page.find(".TH EDGESPOOL"), std::string::npos);
  }
  std::string page8, page5, out;
  RunArgv({Bin(), "manpage", "8"}, &page8);
  RunArgv({Bin(), "manpage", "5"}, &page5);
  // Every visible command and each of its options are in edgespool(8).
  for (const agent::cli::CommandSpec* c : agent::CliCommands()) {
    if (c->hidden) continue;
    EXPECT_NE(page8.find(".SS \"" + std::string(c->name) + "\""), std::string::npos) << c->name;
  }
  EXPECT_NE(page8.find("\\fB\\-\\-ttl\\fR"), std::string::npos);
  // edgespool.toml(5): keys with their defaults and their documentation.
  EXPECT_NE(page5.find("\\fBmax_bytes\\fR = \"256MiB\""), std::string::npos);
  EXPECT_NE(page5.find("Cap on the journal file"), std::string::npos);
  EXPECT_NE(page5.find("EDGESPOOL_STORE_MAX_BYTES"), std::string::npos);
  EXPECT_NE(page5.find(".SS \"[[route]]\""), std::string::npos);
  EXPECT_EQ(RunArgv({Bin(), "manpage", "3"}, &out), 64);
}

}  // namespace
}  // namespace edgespool
