// `edgespool publish|query|status` against a real server: exit codes (0, 64,
// 65, 69), every message source (argument, --file, stdin lines) and the load
// generator. Runs the command functions in-process, and the real binary
// (EDGESPOOL_BIN, set by CTest) for the stdin path.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdlib>
#include <future>
#include <map>
#include <string>
#include <vector>

#include "agent/cli/producer_commands.h"
#include "tests/integration/producer_test_util.h"

namespace edgespool::testing {
namespace {

int RunCommand(int (*cmd)(int, char**), std::vector<std::string> args) {
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  return cmd(static_cast<int>(args.size()), argv.data());
}

class ProducerCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    HarnessOptions o;
    o.journal.durability = store::Durability::kNormal;
    harness_ = std::make_unique<ServerHarness>(dir_.path(), o);
    ASSERT_TRUE(harness_->Start().ok());
    sock_ = harness_->socket_path();
  }
  TempDir dir_;
  std::unique_ptr<ServerHarness> harness_;
  std::string sock_;
};

TEST_F(ProducerCliTest, PublishQueryStatus) {
  using agent::PublishCommand;
  EXPECT_EQ(RunCommand(PublishCommand,
                       {"cli/t", "hello", "--socket", sock_, "--id", "cli-1", "--priority", "high",
                        "--ttl", "60000", "--header", "a=b", "--ts", "1700000000000"}),
            0);
  auto q = harness_->QueryById("cli-1");
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->state, store::MessageState::kPending);
  EXPECT_EQ(q->ts_ms, 1700000000000);
  std::string file = dir_.File("payload.bin");
  WriteFile(file, std::string("\x00\x01\x02", 3));
  EXPECT_EQ(
      RunCommand(PublishCommand, {"cli/f", "--file", file, "--socket", sock_, "--id", "cli-f"}), 0);
  EXPECT_TRUE(harness_->QueryById("cli-f").ok());

  EXPECT_EQ(RunCommand(agent::QueryCommand, {std::to_string(q->seq), "--socket", sock_}), 0);
  EXPECT_EQ(RunCommand(agent::QueryCommand, {"--id", "cli-1", "--socket", sock_, "--json"}), 0);
  EXPECT_EQ(RunCommand(agent::QueryCommand, {"--id", "unknown-id", "--socket", sock_}), 0);
  EXPECT_EQ(RunCommand(agent::StatusCommand, {"--socket", sock_}), 0);
  EXPECT_EQ(RunCommand(agent::StatusCommand, {"--socket", sock_, "--json"}), 0);
}

TEST_F(ProducerCliTest, ExitCodes) {
  using agent::PublishCommand;
  EXPECT_EQ(RunCommand(PublishCommand, {}), 64);
  EXPECT_EQ(RunCommand(PublishCommand, {"t", "m", "--priority", "urgent", "--socket", sock_}), 64);
  EXPECT_EQ(RunCommand(PublishCommand, {"t", "m", "--count"}), 64);
  EXPECT_EQ(RunCommand(PublishCommand, {"t", "m", "--file", "x", "--socket", sock_}), 64);
  EXPECT_EQ(RunCommand(PublishCommand, {"bad/#", "m", "--socket", sock_}), 65);
  EXPECT_EQ(RunCommand(PublishCommand, {"t", "--file", dir_.File("missing"), "--socket", sock_}),
            65);
  EXPECT_EQ(RunCommand(PublishCommand, {"t", "m", "--socket", dir_.File("nobody.sock")}), 69);
  EXPECT_EQ(RunCommand(agent::QueryCommand, {"--socket", sock_}), 64);
  EXPECT_EQ(RunCommand(agent::QueryCommand, {"abc", "--socket", sock_}), 64);
  EXPECT_EQ(RunCommand(agent::StatusCommand, {"--bogus"}), 64);
  EXPECT_EQ(RunCommand(agent::StatusCommand, {"--socket", dir_.File("nobody.sock")}), 69);
  ::setenv("EDGESPOOL_PRODUCER_SOCKET", sock_.c_str(), 1);
  EXPECT_EQ(RunCommand(agent::StatusCommand, {}), 0) << "socket from the environment";
  ::unsetenv("EDGESPOOL_PRODUCER_SOCKET");
}

// Generated ids are <ms>-<the producer's random prefix>-<counter>: the
// middle part names the connection a message came over.
std::map<std::string, size_t> MessagesPerConnection(ServerHarness& h, const std::string& topic) {
  std::promise<Result<std::vector<store::StoredMessage>>> fetched;
  h.WithJournal([&](store::Journal& j) {
    store::FetchSpec spec;
    spec.max_messages = 100000;
    spec.max_bytes = 64u << 20;
    spec.topic_filter = topic;
    j.FetchPending(spec, [&](Result<std::vector<store::StoredMessage>> r) {
      fetched.set_value(std::move(r));
    });
  });
  auto rows = fetched.get_future().get();
  std::map<std::string, size_t> per;
  if (!rows.ok()) return per;
  for (const store::StoredMessage& m : *rows) {
    const std::string& id = m.message.msg_id;
    size_t a = id.find('-'), b = id.rfind('-');
    per[a < b ? id.substr(a + 1, b - a - 1) : id]++;
  }
  return per;
}

// Paced (one thread drives the 4 connections) and flat out (a thread per
// connection): every message stored once, spread evenly over the connections.
TEST_F(ProducerCliTest, LoadGenerator) {
  for (const char* rate : {"20000", "0"}) {
    std::string topic = std::string("load/") + rate;
    EXPECT_EQ(RunCommand(agent::PublishCommand,
                         {topic, "--count", "2000", "--size", "100", "--connections", "4", "--rate",
                          rate, "--socket", sock_}),
              0);
    auto per = MessagesPerConnection(*harness_, topic);
    ASSERT_EQ(per.size(), 4u) << "rate " << rate;
    for (const auto& [conn, n] : per) EXPECT_EQ(n, 500u) << "rate " << rate << " conn " << conn;
  }
}

TEST_F(ProducerCliTest, StdinLinesThroughTheBinary) {
  const char* bin = std::getenv("EDGESPOOL_BIN");
  if (!bin) GTEST_SKIP() << "EDGESPOOL_BIN not set (run through ctest)";
  std::string in = dir_.File("lines.txt"), out = dir_.File("out.txt");
  WriteFile(in, "one\ntwo\nthree\n");
  uint64_t before = harness_->JournalStats().pending_count;
  std::string cmd =
      std::string(bin) + " publish lines/t --socket " + sock_ + " < " + in + " > " + out + " 2>&1";
  int rc = std::system(cmd.c_str());
  ASSERT_TRUE(WIFEXITED(rc)) << ReadFile(out);
  EXPECT_EQ(WEXITSTATUS(rc), 0) << ReadFile(out);
  EXPECT_EQ(harness_->JournalStats().pending_count, before + 3);
  EXPECT_NE(ReadFile(out).find("stored 3"), std::string::npos) << ReadFile(out);
}

// The messages stored on `topic`, in seq order.
std::vector<store::Message> Stored(ServerHarness& h, const std::string& topic) {
  std::promise<Result<std::vector<store::StoredMessage>>> fetched;
  h.WithJournal([&](store::Journal& j) {
    store::FetchSpec spec;
    spec.max_messages = 1000;
    spec.max_bytes = 1 << 20;
    spec.topic_filter = topic;
    j.FetchPending(spec, [&](Result<std::vector<store::StoredMessage>> r) {
      fetched.set_value(std::move(r));
    });
  });
  auto rows = fetched.get_future().get();
  std::vector<store::Message> out;
  if (rows.ok()) {
    std::sort(rows->begin(), rows->end(),
              [](const auto& a, const auto& b) { return a.seq < b.seq; });
    for (auto& m : *rows) out.push_back(std::move(m.message));
  }
  return out;
}

// mosquitto_pub's habits through the binary: -t/-m, -f, -l and -s from
// stdin, -n, clustered flags, --x=y, '--' before a topic that starts with
// '-', durations with units.
TEST_F(ProducerCliTest, MosquittoPubHabitsThroughTheBinary) {
  const char* bin = std::getenv("EDGESPOOL_BIN");
  if (!bin) GTEST_SKIP() << "EDGESPOOL_BIN not set (run through ctest)";
  std::string lines = dir_.File("lines.txt"), out = dir_.File("out.txt");
  WriteFile(lines, "one\ntwo\nthree\n");
  auto run = [&](const std::string& args, const std::string& stdin_file = "/dev/null") {
    std::string cmd = std::string(bin) + " publish --socket " + sock_ + " " + args + " < " +
                      stdin_file + " > " + out + " 2>&1";
    int rc = std::system(cmd.c_str());
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  };
  ASSERT_EQ(run("-t mq/m -m hello --ttl 10m --priority=low"), 0) << ReadFile(out);
  auto m = Stored(*harness_, "mq/m");
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m[0].payload, "hello");
  EXPECT_EQ(m[0].priority, store::Priority::kLow);
  ASSERT_TRUE(m[0].expires_at_ms.has_value());
  EXPECT_NEAR(static_cast<double>(*m[0].expires_at_ms - m[0].ts_ms), 600000, 5000);

  ASSERT_EQ(run("-t mq/f -f " + lines), 0) << ReadFile(out);
  EXPECT_EQ(Stored(*harness_, "mq/f").at(0).payload, "one\ntwo\nthree\n");
  ASSERT_EQ(run("-lt mq/l", lines), 0) << ReadFile(out);  // a cluster: -l, then -t TOPIC
  auto l = Stored(*harness_, "mq/l");
  ASSERT_EQ(l.size(), 3u);
  EXPECT_EQ(l[0].payload, "one");
  EXPECT_EQ(l[2].payload, "three");
  ASSERT_EQ(run("-s -t mq/s", lines), 0) << ReadFile(out);
  EXPECT_EQ(Stored(*harness_, "mq/s").at(0).payload, "one\ntwo\nthree\n");
  ASSERT_EQ(run("-n -tmq/n"), 0) << ReadFile(out);
  EXPECT_EQ(Stored(*harness_, "mq/n").at(0).payload, "");
  ASSERT_EQ(run("--header=k=v=w --header unit=C -- -dash/t msg"), 0) << ReadFile(out);
  auto d = Stored(*harness_, "-dash/t");
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].payload, "msg");
  ASSERT_EQ(d[0].headers.size(), 2u);
  EXPECT_EQ(d[0].headers[0].first, "k");
  EXPECT_EQ(d[0].headers[0].second, "v=w");

  EXPECT_EQ(run("-t mq/x -m a -f " + lines), 64) << ReadFile(out);  // two sources
  EXPECT_EQ(run("-t mq/x -l -s", lines), 64);
  EXPECT_EQ(run("-t mq/x a b"), 64);  // with -t, one argument at most: MESSAGE
  EXPECT_EQ(run("-m a"), 64);         // no topic
  EXPECT_NE(ReadFile(out).find("no TOPIC"), std::string::npos) << ReadFile(out);
  EXPECT_EQ(run("-t mq/x -m a --ttl 0s"), 64);
  EXPECT_EQ(run("-t mq/x -m a --header novalue"), 64);
  EXPECT_NE(ReadFile(out).find("KEY=VALUE"), std::string::npos) << ReadFile(out);
  EXPECT_TRUE(Stored(*harness_, "mq/x").empty());
}

}  // namespace
}  // namespace edgespool::testing
