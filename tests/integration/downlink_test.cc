// The downlink end to end: a central publisher (mosquitto_pub, QoS 1) on a
// real mosquitto, the agent as a process, local consumers through the SDK.
// Counted like the uplink's queue checker (TESTING.md): lost = published to
// the broker (PUBACKed to the publisher, so the broker holds it for the
// agent's persistent session) and never received by the consumer.
#include <gtest/gtest.h>
#include <mosquitto.h>
#include <signal.h>

#include <atomic>
#include <cstdlib>
#include <chrono>
#include <fstream>
#include <functional>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "agent/client/consumer.h"
#include "tests/support/downlink_fixture.h"
#include "tests/support/e2e.h"
#include "tests/support/test_env.h"

namespace edgespool::testing {
namespace {

using client::Consumer;
using client::ConsumerOptions;

// Agent RSS in KiB, from /proc (0 when the process is gone).
long RssKiB(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return 0;
}

class DownlinkTest : public DownlinkFixture {
 protected:
  void SetUp() override {
    mosquitto_lib_init();
    StartBroker();
  }
  // Many ("m<first>".."m<first+count-1>"), over one libmosquitto connection
  // on a thread, QoS 1 with 100 in flight. (mosquitto_pub -l was measured
  // here to stop reading its input after ~34,000 lines, yet exit 0.)
  // Join the thread: it ends once every message was PUBACKed (or after 120 s).
  std::thread PublishMany(const std::string& suffix, int first, int count,
                          std::atomic<int>* acked) {
    uint16_t port = broker_->port();
    std::string topic = kDownTopic + suffix;
    return std::thread([port, topic, first, count, acked] {
      mosquitto* m = mosquitto_new("central-pub", true, acked);
      mosquitto_max_inflight_messages_set(m, 100);
      mosquitto_publish_callback_set(m, [](mosquitto*, void* p, int) {
        ++*static_cast<std::atomic<int>*>(p);
      });
      if (mosquitto_connect(m, "127.0.0.1", port, 60) != MOSQ_ERR_SUCCESS) {
        mosquitto_destroy(m);
        return;
      }
      auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
      int published = 0;
      while (*acked < count && std::chrono::steady_clock::now() < deadline) {
        while (published < count && published - *acked < 100) {
          std::string p = "m" + std::to_string(first + published);
          if (mosquitto_publish(m, nullptr, topic.c_str(), static_cast<int>(p.size()), p.data(),
                                1, false) != MOSQ_ERR_SUCCESS) {
            break;
          }
          ++published;
        }
        if (mosquitto_loop(m, 10, 1) != MOSQ_ERR_SUCCESS) {
          mosquitto_reconnect(m);  // the broker stays up in these tests
        }
      }
      mosquitto_disconnect(m);
      mosquitto_destroy(m);
    });
  }
  std::unique_ptr<Consumer> Open(const std::string& session, uint32_t window = 100,
                                 ConsumerOptions::From from = ConsumerOptions::From::kDefault) {
    ConsumerOptions o;
    o.socket_path = agent_->socket();
    o.session = session;
    o.filters = {"down/#"};
    o.window = window;
    o.from = from;
    auto c = Consumer::Open(o);
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return c.ok() ? std::move(*c) : nullptr;
  }
};

TEST_F(DownlinkTest, CommandReachesALocalConsumerWithItsLocalTopic) {
  StartAgent();
  auto c = Open("cmd");
  ASSERT_TRUE(c);
  WaitUntilSubscribed(*c);
  ASSERT_TRUE(Publish("cmd/reboot", "now"));
  auto m = c->Next(5000);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->topic, "down/cmd/reboot");
  EXPECT_EQ(m->broker_topic, "edgespool/test-node/down/cmd/reboot");
  EXPECT_EQ(m->payload, "now");
  EXPECT_TRUE(c->Ack(m->seq).ok());
  // The status document reports the downlink and the session.
  Process status;
  ASSERT_TRUE(status.Start({std::getenv("EDGESPOOL_BIN"), "status", "--json", "--socket",
                            agent_->socket()},
                           dir_.File("status.out")));
  ASSERT_EQ(status.Wait(10000), 0);
  std::string doc = ReadFile(dir_.File("status.out"));
  EXPECT_NE(doc.find("\"downlink\":{\"inbox\":"), std::string::npos) << doc;
  EXPECT_NE(doc.find("\"name\":\"cmd\""), std::string::npos) << doc;
  EXPECT_EQ(doc.find("\"stored\":0,"), std::string::npos) << doc;
}

TEST_F(DownlinkTest, DurableSessionGetsWhatArrivedWhileItWasAway) {
  StartAgent();
  auto c = Open("away");
  ASSERT_TRUE(c);
  WaitUntilSubscribed(*c);
  ASSERT_TRUE(c->Close().ok());
  c.reset();
  ASSERT_TRUE(Publish("cmd", "while-away"));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto again = Open("away");
  ASSERT_TRUE(again);
  auto m = again->Next(5000);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->payload, "while-away");
  ASSERT_TRUE(again->Ack(m->seq).ok());
  EXPECT_FALSE(again->Next(500).ok()) << "nothing else is due";
}

TEST_F(DownlinkTest, MessageSentWhileTheAgentIsDownArrivesAfterItStarts) {
  StartAgent();
  {
    auto c = Open("restart");
    ASSERT_TRUE(c);
    WaitUntilSubscribed(*c);
  }
  ASSERT_EQ(agent_->Stop(), 0) << agent_->log();
  // The broker keeps it for the agent's persistent session.
  ASSERT_TRUE(Publish("cmd", "while-agent-down"));
  ASSERT_TRUE(agent_->Start()) << agent_->log();
  auto c = Open("restart");
  ASSERT_TRUE(c);
  auto m = c->Next(10000);
  ASSERT_TRUE(m.ok()) << m.status().ToString() << agent_->log();
  EXPECT_EQ(m->payload, "while-agent-down");
}

TEST_F(DownlinkTest, UnackedMessageIsDeliveredAgainAfterReconnect) {
  StartAgent();
  auto c = Open("redo");
  ASSERT_TRUE(c);
  WaitUntilSubscribed(*c);
  ASSERT_TRUE(Publish("cmd", "once"));
  auto m = c->Next(5000);
  ASSERT_TRUE(m.ok());
  c.reset();  // gone without acking
  auto again = Open("redo");
  ASSERT_TRUE(again);
  auto m2 = again->Next(5000);
  ASSERT_TRUE(m2.ok()) << m2.status().ToString();
  EXPECT_EQ(m2->payload, "once");
  EXPECT_EQ(m2->seq, m->seq);
}

TEST_F(DownlinkTest, OversizedMessageIsAcknowledgedAndNeverDelivered) {
  StartAgent({{"downlink", "max_message_bytes = \"1KiB\""}});
  auto c = Open("big");
  ASSERT_TRUE(c);
  WaitUntilSubscribed(*c);
  ASSERT_TRUE(Publish("cmd", std::string(4096, 'x')));  // PUBACKed: mosquitto_pub exits 0
  ASSERT_TRUE(Publish("cmd", "small"));
  auto m = c->Next(5000);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->payload, "small");
  EXPECT_NE(agent_->log().find("dead-lettered"), std::string::npos) << agent_->log();
}

// A consumer that never acks holds only its window; the other session keeps
// flowing and the agent's memory stays bounded.
TEST_F(DownlinkTest, StalledConsumerHoldsOnlyItsWindow) {
  StartAgent({{"downlink", "max_bytes = \"256MiB\""}, {"store", "max_bytes = \"512MiB\""}});
  auto stalled = Open("stalled", 10);
  auto fast = Open("fast", 1000);
  ASSERT_TRUE(stalled && fast);
  WaitUntilSubscribed(*fast);
  const int kCount = 100000;
  std::atomic<int> acked{0};
  std::thread pub = PublishMany("load", 0, kCount, &acked);
  std::set<std::string> got;
  long peak_rss = 0;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (got.size() < static_cast<size_t>(kCount) && std::chrono::steady_clock::now() < deadline) {
    auto m = fast->Next(1000);
    if (!m.ok()) continue;
    if (m->topic == "down/load") got.insert(m->payload);
    if (m->seq % 500 == 0 || got.size() == static_cast<size_t>(kCount)) {
      ASSERT_TRUE(fast->AckUpTo(m->seq).ok());
      peak_rss = std::max(peak_rss, RssKiB(agent_->pid()));
    }
  }
  pub.join();
  EXPECT_EQ(acked, kCount);
  EXPECT_EQ(got.size(), static_cast<size_t>(kCount));
  // The stalled session got exactly its window (a probe or two may be among them).
  int stalled_got = 0;
  while (stalled->Next(300).ok()) ++stalled_got;
  EXPECT_EQ(stalled_got, 10);
  std::printf("agent peak RSS with a stalled consumer and %d messages: %ld KiB\n", kCount,
              peak_rss);
  EXPECT_LT(peak_rss, 64 * 1024) << "RSS bound";
}

// SIGKILL at random points while 20,000 downlink messages flow: every
// message the broker PUBACKed to the publisher reaches the consumer.
TEST_F(DownlinkTest, NothingLostOverTenKillsOfTheAgent) {
  StartAgent();
  {
    auto c = Open("kills", 1000);
    ASSERT_TRUE(c);
    WaitUntilSubscribed(*c);
  }
  const int kCount = 20000;
  std::mutex mu;
  std::set<std::string> got;
  size_t duplicates = 0;
  std::atomic<bool> stop{false};
  std::thread consumer([&] {
    while (!stop) {
      ConsumerOptions o;
      o.socket_path = agent_->socket();
      o.session = "kills";
      o.filters = {"down/load"};
      o.window = 1000;
      auto c = Consumer::Open(o);
      if (!c.ok()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        continue;
      }
      while (!stop) {
        auto m = (*c)->Next(200);
        if (!m.ok()) {
          if (m.status().code() == Code::kTimeout) continue;
          break;  // the agent died: reconnect
        }
        {
          std::lock_guard<std::mutex> l(mu);
          if (!got.insert(m->payload).second) ++duplicates;
        }
        (void)(*c)->AckUpTo(m->seq);
      }
    }
  });
  std::atomic<int> acked{0};
  std::thread pub = PublishMany("load", 0, kCount, &acked);
  std::mt19937 rng(7);
  for (int kill = 0; kill < 10; ++kill) {
    std::this_thread::sleep_for(std::chrono::milliseconds(300 + rng() % 700));
    agent_->Kill();
    ASSERT_TRUE(agent_->Start()) << agent_->log();
  }
  pub.join();
  EXPECT_EQ(acked, kCount) << "the publisher did not get every PUBACK";
  bool all = WaitUntil(
      [&] {
        std::lock_guard<std::mutex> l(mu);
        return got.size() >= static_cast<size_t>(kCount);
      },
      60000);
  stop = true;
  consumer.join();
  size_t lost = 0;
  for (int i = 0; i < kCount; ++i) lost += got.count("m" + std::to_string(i)) == 0;
  std::printf("downlink over 10 kills: published %d, lost %zu, duplicated %zu\n", kCount, lost,
              duplicates);
  EXPECT_TRUE(all);
  EXPECT_EQ(lost, 0u);
}

}  // namespace
}  // namespace edgespool::testing
