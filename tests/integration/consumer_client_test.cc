// The Consumer SDK, its C API and `edgespool subscribe` against the real
// agent and a real mosquitto: what the in-test peer of
// tests/unit/agent/client_consumer_test.cc cannot show (the agent's own
// window, positions kept by the agent, the SDK reconnecting by itself after
// an agent restart). Central messages go in with mosquitto_pub, QoS 1.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "agent/client/consumer.h"
#include "agent/client/edgespool_client.h"
#include "tests/support/downlink_fixture.h"
#include "tests/support/e2e.h"
#include "tests/support/test_env.h"

namespace edgespool::testing {
namespace {

using client::Consumer;
using client::ConsumerOptions;
using client::ReceivedMessage;

class ConsumerClientTest : public DownlinkFixture {
 protected:
  void SetUp() override {
    StartBroker();
    StartAgent();
  }
  ConsumerOptions Options(const std::string& session) {
    ConsumerOptions o;
    o.socket_path = agent_->socket();
    o.session = session;
    o.filters = {"down/#"};
    o.window = 10;
    return o;
  }
};

// The SDK's own reconnect: the same Consumer, no new Open(), gets what was
// published while the agent was down, and not what it had acked before.
TEST_F(ConsumerClientTest, SameConsumerResumesAfterAnAgentRestart) {
  auto c = Consumer::Open(Options("hmi"));
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  WaitUntilSubscribed(**c);
  ASSERT_TRUE(Publish("cmd", "before"));
  auto before = (*c)->Next(5000);
  ASSERT_TRUE(before.ok()) << before.status().ToString();
  EXPECT_EQ(before->topic, "down/cmd");
  EXPECT_EQ(before->broker_topic, std::string(kDownTopic) + "cmd");
  EXPECT_EQ(before->payload, "before");
  ASSERT_TRUE((*c)->Ack(before->seq).ok());
  EXPECT_EQ((*c)->acked_position(), before->seq);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the ack reaches the agent

  ASSERT_EQ(agent_->Stop(), 0) << agent_->log();
  ASSERT_TRUE(WaitUntil([&] { return !(*c)->connected(); }, 5000));
  ASSERT_TRUE(Publish("cmd", "while-down"));  // the broker keeps it for the agent's session
  ASSERT_TRUE(agent_->Start()) << agent_->log();

  auto after = (*c)->Next(15000);
  ASSERT_TRUE(after.ok()) << after.status().ToString() << "\n" << agent_->log();
  EXPECT_EQ(after->payload, "while-down");
  EXPECT_GT(after->seq, before->seq);
  EXPECT_GE((*c)->reconnects(), 1u);
  ASSERT_TRUE((*c)->Ack(after->seq).ok());
  EXPECT_FALSE((*c)->Next(500).ok());  // "before" was acked: not again
  EXPECT_TRUE((*c)->Close().ok());
}

// The agent's window, seen from the SDK: with window 3 and no acks, three
// arrive and the fourth waits until one is acked.
TEST_F(ConsumerClientTest, AgentKeepsToTheWindowTheSdkAskedFor) {
  ConsumerOptions o = Options("win");
  auto c = Consumer::Open(o);
  ASSERT_TRUE(c.ok());
  WaitUntilSubscribed(**c);
  EXPECT_TRUE((*c)->Close().ok());
  o.window = 3;
  c = Consumer::Open(o);
  ASSERT_TRUE(c.ok());
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(Publish("w", "m" + std::to_string(i)));
  std::vector<uint64_t> seqs;
  for (auto m = (*c)->Next(1500); m.ok(); m = (*c)->Next(1500)) seqs.push_back(m->seq);
  ASSERT_EQ(seqs.size(), 3u);
  ASSERT_TRUE((*c)->Ack(seqs[0]).ok());
  auto fourth = (*c)->Next(5000);
  ASSERT_TRUE(fourth.ok()) << fourth.status().ToString();
  EXPECT_EQ(fourth->payload, "m3");
  EXPECT_FALSE((*c)->Next(700).ok());  // the fifth waits for another ack
  ASSERT_TRUE((*c)->AckUpTo(fourth->seq).ok());
  auto fifth = (*c)->Next(5000);
  ASSERT_TRUE(fifth.ok());
  EXPECT_EQ(fifth->payload, "m4");
}

TEST_F(ConsumerClientTest, AgentRefusesABadFilter) {
  ConsumerOptions o = Options("bad");
  o.filters = {"down/#/x"};
  auto c = Consumer::Open(o);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), Code::kInvalidArgument) << c.status().ToString();
}

struct CState {
  std::mutex mu;
  std::vector<std::string> payloads;
  edgespool_consumer* consumer = nullptr;
  std::atomic<bool> ready{false};
};

TEST_F(ConsumerClientTest, CApiCallbackReceivesAndAcks) {
  {
    auto c = Consumer::Open(Options("c-api"));  // the session, with the agent subscribed
    ASSERT_TRUE(c.ok());
    WaitUntilSubscribed(**c);
    ASSERT_TRUE((*c)->Close().ok());
  }
  CState state;
  const char* filters[] = {"down/cmd"};
  edgespool_consumer* c = nullptr;
  ASSERT_EQ(edgespool_consumer_open(agent_->socket().c_str(), "c-api", filters, 1,
                                    EDGESPOOL_FROM_DEFAULT,
                                    [](const edgespool_message* m, void* user) {
                                      auto* s = static_cast<CState*>(user);
                                      while (!s->ready) std::this_thread::yield();
                                      std::lock_guard<std::mutex> lock(s->mu);
                                      s->payloads.emplace_back(
                                          static_cast<const char*>(m->payload), m->payload_len);
                                      edgespool_consumer_ack(s->consumer, m->seq);
                                    },
                                    &state, &c),
            EDGESPOOL_OK);
  state.consumer = c;
  state.ready = true;
  ASSERT_TRUE(Publish("cmd", "one"));
  ASSERT_TRUE(Publish("cmd", "two"));
  ASSERT_TRUE(WaitUntil(
      [&] {
        std::lock_guard<std::mutex> lock(state.mu);
        return state.payloads.size() == 2;
      },
      10000));
  EXPECT_EQ(state.payloads, (std::vector<std::string>{"one", "two"}));
  EXPECT_TRUE(WaitUntil([&] { return edgespool_consumer_position(c) > 0; }, 1000));
  EXPECT_EQ(edgespool_consumer_close(c), EDGESPOOL_OK);
  const char* bad[] = {"a/#/b"};
  EXPECT_EQ(edgespool_consumer_open(agent_->socket().c_str(), "x", bad, 1, EDGESPOOL_FROM_NEW,
                                    [](const edgespool_message*, void*) {}, nullptr, &c),
            EDGESPOOL_ERR_BAD_REQUEST);
}

TEST_F(ConsumerClientTest, CliSubscribePrintsAndAcks) {
  const char* bin = std::getenv("EDGESPOOL_BIN");
  if (!bin) GTEST_SKIP() << "EDGESPOOL_BIN not set (run through ctest)";
  {
    auto c = Consumer::Open(Options("cli"));
    ASSERT_TRUE(c.ok());
    WaitUntilSubscribed(**c);
    ASSERT_TRUE((*c)->Close().ok());
  }
  ASSERT_TRUE(Publish("cmd/reboot", "now"));
  ASSERT_TRUE(Publish("cmd/json", "second"));
  std::string out = dir_.File("sub.out");
  Process plain;
  ASSERT_TRUE(plain.Start({bin, "subscribe", "down/cmd/#", "--session", "cli", "--count", "1",
                           "--socket", agent_->socket()},
                          out));
  int rc = plain.Wait(10000);
  ASSERT_TRUE(WIFEXITED(rc)) << ReadFile(out);
  EXPECT_EQ(WEXITSTATUS(rc), 0) << ReadFile(out);
  EXPECT_EQ(ReadFile(out), "down/cmd/reboot now\n");

  // The first was acked: the session goes on with the second.
  Process json;
  ASSERT_TRUE(json.Start({bin, "subscribe", "down/cmd/#", "--session", "cli", "--count", "1",
                          "--json", "--socket", agent_->socket()},
                         out));
  rc = json.Wait(10000);
  EXPECT_EQ(WEXITSTATUS(rc), 0) << ReadFile(out);
  std::string line = ReadFile(out);
  EXPECT_NE(line.find("\"topic\":\"down/cmd/json\""), std::string::npos) << line;
  EXPECT_NE(line.find("\"payload\":\"second\""), std::string::npos) << line;
  EXPECT_NE(line.find("\"seq\":"), std::string::npos) << line;

  // Until SIGINT: exits 0.
  Process until;
  ASSERT_TRUE(until.Start({bin, "subscribe", "down/#", "--socket", agent_->socket()}, out));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  until.Signal(SIGINT);
  rc = until.Wait(5000);
  EXPECT_EQ(WEXITSTATUS(rc), 0) << ReadFile(out);

  Process bad;
  ASSERT_TRUE(bad.Start({bin, "subscribe", "a/#/b", "--socket", agent_->socket()}, out));
  rc = bad.Wait(10000);
  EXPECT_EQ(WEXITSTATUS(rc), 65) << ReadFile(out);
  Process usage;
  ASSERT_TRUE(usage.Start({bin, "subscribe", "--window", "0", "a"}, out));
  EXPECT_EQ(WEXITSTATUS(usage.Wait(5000)), 64) << ReadFile(out);
  Process nobody;
  ASSERT_TRUE(nobody.Start({bin, "subscribe", "a", "--socket", dir_.File("none.sock")}, out));
  EXPECT_EQ(WEXITSTATUS(nobody.Wait(15000)), 69) << ReadFile(out);
}

}  // namespace
}  // namespace edgespool::testing
