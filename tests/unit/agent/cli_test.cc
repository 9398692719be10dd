// The binary as a user meets it: exit codes, messages, and a clean stop.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <regex>
#include <thread>

#include "sync/batch/batch_frame.h"
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

// Runs the binary to completion; returns the exit code and fills output.
int RunCli(const std::vector<std::string>& args, std::string* output,
           const std::map<std::string, std::string>& env = {}) {
  TempDir dir;
  Process p;
  std::vector<std::string> argv = {Bin()};
  argv.insert(argv.end(), args.begin(), args.end());
  std::map<std::string, std::string> e = env;
  e.emplace("EDGESPOOL_CONFIG", "");
  EXPECT_TRUE(p.Start(argv, dir.File("out"), e));
  int status = p.Wait(30000);
  *output = ReadFile(dir.File("out"));
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST(CliTest, HelpAndVersion) {
  std::string out;
  EXPECT_EQ(RunCli({"--help"}, &out), 0);
  EXPECT_NE(out.find("usage: edgespool"), std::string::npos);
  EXPECT_EQ(RunCli({"version"}, &out), 0);
  EXPECT_EQ(out.rfind("edgespool ", 0), 0u) << out;
}

TEST(CliTest, UsageErrorsExit64WithAHint) {
  std::string out;
  EXPECT_EQ(RunCli({}, &out), 64);
  EXPECT_EQ(RunCli({"frobnicate"}, &out), 64);
  EXPECT_NE(out.find("unknown command 'frobnicate'"), std::string::npos) << out;
  EXPECT_NE(out.find("--help"), std::string::npos);
  EXPECT_EQ(RunCli({"config"}, &out), 64);
  EXPECT_EQ(RunCli({"run", "--config"}, &out), 64);
}

TEST(CliTest, ConfigCheckExits78WithFileLineKeyReason) {
  TempDir dir;
  WriteFile(dir.File("bad.toml"), "[store]\n\ndurability = \"sometimes\"\n[uplink]\nnope = 1\n");
  std::string out;
  EXPECT_EQ(RunCli({"config", "check", dir.File("bad.toml")}, &out), 78);
  EXPECT_NE(out.find(dir.File("bad.toml") + ":3: store.durability: \"sometimes\" is not one of full,normal"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find(":5: uplink.nope: unknown key"), std::string::npos) << out;

  WriteFile(dir.File("good.toml"), "[sync]\nmode = \"batch\"\n");
  EXPECT_EQ(RunCli({"config", "check", "--config", dir.File("good.toml")}, &out), 0) << out;
  EXPECT_EQ(RunCli({"config", "check", dir.File("missing.toml")}, &out), 78);
  EXPECT_NE(out.find("missing.toml"), std::string::npos);
}

TEST(CliTest, ConfigShowPrintsEffectiveConfigWithEnvironment) {
  std::string out;
  EXPECT_EQ(RunCli({"config", "show"}, &out,
                   {{"EDGESPOOL_SYNC_MODE", "batch"},
                    {"EDGESPOOL_UPLINK_URL", "mqtt://me:secret@central:1883"}}),
            0);
  EXPECT_NE(out.find("mode = \"batch\""), std::string::npos) << out;
  EXPECT_EQ(out.find("secret"), std::string::npos) << out;
}

// `config keys`: every key with live or restart, from the schema's table.
TEST(CliTest, ConfigKeysSaysWhatAReloadApplies) {
  std::string out;
  EXPECT_EQ(RunCli({"config", "keys"}, &out), 0);
  EXPECT_TRUE(std::regex_search(out, std::regex(R"((^|\n)store\.path +restart\n)"))) << out;
  EXPECT_TRUE(std::regex_search(out, std::regex(R"((^|\n)uplink\.url +live\n)"))) << out;
  EXPECT_TRUE(std::regex_search(out, std::regex(R"((^|\n)route\.priority +live\n)"))) << out;
  EXPECT_EQ(RunCli({"config", "keys", "extra"}, &out), 64);
}

// `reload` without an agent, and its usage (the agent's answers are in
// tests/integration/agent_reload_test.cc).
TEST(CliTest, ReloadUsageAndUnavailable) {
  TempDir dir;
  std::string out;
  EXPECT_EQ(RunCli({"reload", "--help"}, &out), 0);
  EXPECT_NE(out.find("usage: edgespool reload"), std::string::npos) << out;
  EXPECT_EQ(RunCli({"reload", "--bogus"}, &out), 64);
  EXPECT_EQ(RunCli({"reload", "--socket", dir.File("none.sock")}, &out), 69);
  EXPECT_NE(out.find("unavailable"), std::string::npos) << out;
  WriteFile(dir.File("bad.toml"), "[sync]\nbatch_messages = 0\n");
  EXPECT_EQ(RunCli({"reload", "--config", dir.File("bad.toml")}, &out), 78);
  EXPECT_NE(out.find("bad.toml:2: sync.batch_messages"), std::string::npos) << out;
}

TEST(CliTest, RunStopsCleanlyOnSigterm) {
  TempDir dir;
  WriteFile(dir.File("c.toml"), "[producer]\nsocket = \"" + dir.File("es.sock") +
                                    "\"\n[store]\npath = \"" + dir.File("journal.db") +
                                    "\"\n[uplink]\nurl = \"mqtt://127.0.0.1:" +
                                    std::to_string(testing::FreePort()) + "\"\n");
  Process p;
  ASSERT_TRUE(p.Start({Bin(), "run", "--config", dir.File("c.toml")}, dir.File("log")));
  // Wait until it logs that it started, then stop it.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (ReadFile(dir.File("log")).find("edgespool starting") == std::string::npos &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  p.Signal(SIGTERM);
  int status = p.Wait(20000);
  std::string log = ReadFile(dir.File("log"));
  ASSERT_NE(status, -1) << "did not exit after SIGTERM\n" << log;
  ASSERT_TRUE(WIFEXITED(status)) << log;
  EXPECT_EQ(WEXITSTATUS(status), 0) << log;
  EXPECT_NE(log.find("stopping signal=SIGTERM"), std::string::npos) << log;
  EXPECT_NE(log.find("edgespool stopped"), std::string::npos) << log;
}

TEST(CliTest, DecodePrintsEveryRecordOfConcatenatedFrames) {
  TempDir dir;
  std::string bytes;
  for (auto codec : {batch::Codec::kZstd, batch::Codec::kNone}) {
    batch::FrameEncoder enc("gw-9", codec, 3);
    enc.Add(10, 1732300000123, "sensors/t1", "id-1", {{"unit", "C"}}, "{\"t\":21.5}");
    enc.Add(11, 1732300000124, "sensors/t2", "", {}, std::string("\xff\x00\x01", 3));
    bytes += *enc.Finish();
  }
  WriteFile(dir.File("frames.bin"), bytes);
  std::string out;
  ASSERT_EQ(RunCli({"decode", dir.File("frames.bin")}, &out), 0) << out;
  EXPECT_NE(out.find(R"({"node":"gw-9","seq":10,"ts":1732300000123,"topic":"sensors/t1","id":"id-1","headers":{"unit":"C"},"payload":"{\"t\":21.5}"})"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find(R"("seq":11,"ts":1732300000124,"topic":"sensors/t2","headers":{},"payload_b64":"/wAB")"),
            std::string::npos)
      << out;
  size_t lines = std::count(out.begin(), out.end(), '\n');
  EXPECT_EQ(lines, 4u);

  WriteFile(dir.File("bad.bin"), bytes.substr(0, bytes.size() - 3));
  EXPECT_EQ(RunCli({"decode", dir.File("bad.bin")}, &out), 65);
  EXPECT_NE(out.find("frame 2"), std::string::npos) << out;
  WriteFile(dir.File("junk.bin"), "hello");
  EXPECT_EQ(RunCli({"decode", dir.File("junk.bin")}, &out), 65);
}

}  // namespace
}  // namespace edgespool
