// Network faults between the agent and a real broker, counted as a queue
// checker does: lost (acknowledged, never delivered) must stay zero.
//
// With a TCP proxy in the test (always): added delay, a silent stall that only
// keepalive can detect, resets in the middle of a packet, a black hole.
// In a network namespace with a veth pair (root only; skipped otherwise, as
// TESTING.md advises): 20% random packet loss (iptables statistic), a
// 256 kbit/s link (tc tbf), and a black hole (iptables DROP) during which
// reconnects follow the configured backoff.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <regex>

#include "tests/support/e2e_fixture.h"
#include "tests/support/netns.h"
#include "tests/support/tcp_proxy.h"

namespace edgespool::testing {
namespace {

using Clock = std::chrono::steady_clock;

class NetworkFaultsTest : public AgentE2ETest {
 protected:
  // The agent with a 1 s keepalive, its uplink pointed at `url`.
  void StartAgentAt(const std::string& url, std::vector<std::string> prefix = {}) {
    agent_ = std::make_unique<AgentProcess>(
        dir_.path(), url,
        std::multimap<std::string, std::string>{{"uplink", "keepalive = \"1s\""}});
    agent_->SetCommandPrefix(std::move(prefix));
    ASSERT_TRUE(agent_->Start()) << agent_->log();
  }
  // Publishes n messages with ids prefix0.. and waits for everything
  // published so far; returns the checker's counts (call once per test: the
  // checker takes every delivery each time).
  QueueChecker::Counts PublishAndCheck(int n, const std::string& prefix, int timeout_ms = 60000,
                                       bool order = true) {
    auto p = Connect();
    EXPECT_TRUE(p);
    if (!p) return {};
    Publish(*p, n, 4, false, prefix);
    return WaitAndCheck(checker_.acked().size(), order, timeout_ms);
  }
  bool WaitDelivered(size_t n, int timeout_ms) {
    return WaitUntil([&] { return sub_->Count() >= n; }, timeout_ms);
  }
  // Every "retry_in_ms=N" the agent logged, in order.
  std::vector<int> RetryDelays() const {
    std::vector<int> out;
    std::string log = agent_->log();
    std::regex re("retry_in_ms=([0-9]+)");
    for (auto it = std::sregex_iterator(log.begin(), log.end(), re); it != std::sregex_iterator();
         ++it) {
      out.push_back(std::stoi((*it)[1]));
    }
    return out;
  }
  void ExpectBackoffCadence() {
    // The e2e agent's backoff: 100 ms initial, 1 s max, full jitter (never
    // below the initial delay).
    for (int d : RetryDelays()) {
      EXPECT_GE(d, 100);
      EXPECT_LE(d, 1000);
    }
  }
};

TEST_F(NetworkFaultsTest, DelayedLinkDeliversEverythingInOrder) {
  StartBroker();
  StartSubscriber("sensors/#");
  TcpProxy proxy(broker_->port());
  ASSERT_TRUE(proxy.Start());
  proxy.SetDelayMs(20);  // every chunk, both ways
  StartAgentAt(proxy.url());
  auto c = PublishAndCheck(2000, "delay-");
  EXPECT_EQ(c.lost, 0u);
  EXPECT_EQ(c.unexpected, 0u);
  EXPECT_EQ(c.reordered, 0u);
  EXPECT_EQ(proxy.connections(), 1) << "a delay alone must not cost the connection";
}

TEST_F(NetworkFaultsTest, SilentStallIsDetectedByKeepaliveAndNothingIsLost) {
  StartBroker();
  StartSubscriber("sensors/#");
  TcpProxy proxy(broker_->port());
  ASSERT_TRUE(proxy.Start());
  StartAgentAt(proxy.url());
  auto p = Connect();
  ASSERT_TRUE(p);
  Publish(*p, 500, 4, false, "before-");
  ASSERT_TRUE(WaitDelivered(500, 20000));
  // The connection stays open and says nothing: no FIN, no RST.
  proxy.StallExisting();
  auto stalled_at = Clock::now();
  // (Order is not checked: both rounds reuse the same timestamps.)
  auto c = PublishAndCheck(1000, "after-", 60000, /*order=*/false);
  double secs = std::chrono::duration<double>(Clock::now() - stalled_at).count();
  std::printf("silent stall: everything delivered %.1f s after the stall (keepalive 1 s)\n", secs);
  EXPECT_EQ(c.lost, 0u);
  EXPECT_EQ(c.unexpected, 0u);
  EXPECT_GE(proxy.connections(), 2) << "the stalled connection was never given up";
  EXPECT_LT(secs, 15.0);
}

TEST_F(NetworkFaultsTest, ResetsInTheMiddleOfPacketsLoseNothing) {
  StartBroker();
  StartSubscriber("sensors/#");
  TcpProxy proxy(broker_->port());
  ASSERT_TRUE(proxy.Start());
  proxy.ResetAfter(20000, 5);  // five connections cut after ~20 KB, mid-packet
  StartAgentAt(proxy.url());
  auto c = PublishAndCheck(3000, "reset-");
  EXPECT_EQ(proxy.resets_done(), 5);
  EXPECT_EQ(c.lost, 0u);
  EXPECT_EQ(c.unexpected, 0u);
  EXPECT_GE(proxy.connections(), 6);
  ExpectBackoffCadence();
}

TEST_F(NetworkFaultsTest, BlackHoleThenRecoveryLosesNothing) {
  StartBroker();
  StartSubscriber("sensors/#");
  TcpProxy proxy(broker_->port());
  ASSERT_TRUE(proxy.Start());
  StartAgentAt(proxy.url());
  proxy.SetBlackHole(true);
  auto p = Connect();
  ASSERT_TRUE(p);
  Publish(*p, 1000, 4, false, "hole-");  // acked: the journal has them
  std::this_thread::sleep_for(std::chrono::seconds(3));
  EXPECT_EQ(sub_->Count(), 0u);
  proxy.SetBlackHole(false);
  auto c = WaitAndCheck(1000, /*order=*/true, 30000);
  EXPECT_EQ(c.lost, 0u);
  EXPECT_EQ(c.unexpected, 0u);
}

// --- in a network namespace --------------------------------------------------

class NamespaceFaultsTest : public NetworkFaultsTest {
 protected:
  void SetUp() override {
    if (!IsRoot()) GTEST_SKIP() << "network namespaces need root (CI runs as root)";
    ns_ = std::make_unique<NetNs>();
    if (!ns_->ok()) GTEST_SKIP() << "this environment refuses network namespaces or veth pairs";
    // The broker also listens on the veth address; the checker stays on loopback.
    ns_port_ = FreePort();
    MosquittoOptions o;
    o.extra_config = "listener " + std::to_string(ns_port_) + " " + ns_->host_ip() + "\n";
    StartBroker(o);
    StartSubscriber("sensors/#");
    StartAgentAt("mqtt://" + ns_->host_ip() + ":" + std::to_string(ns_port_), ns_->prefix());
  }
  void TearDown() override {
    agent_.reset();  // before the namespace goes
    ns_.reset();
  }
  std::unique_ptr<NetNs> ns_;
  uint16_t ns_port_ = 0;
};

TEST_F(NamespaceFaultsTest, TwentyPercentPacketLossLosesNothing) {
  for (const char* chain : {"INPUT", "OUTPUT"}) {
    ASSERT_TRUE(ns_->In(std::string("iptables -A ") + chain +
                        " -m statistic --mode random --probability 0.2 -j DROP"));
  }
  auto start = Clock::now();
  auto c = PublishAndCheck(1000, "loss-", 90000);
  uint64_t dropped = ns_->RulePackets("INPUT") + ns_->RulePackets("OUTPUT");
  std::printf("20%% loss: 1000 messages in %.1f s, %llu packets dropped\n",
              std::chrono::duration<double>(Clock::now() - start).count(),
              static_cast<unsigned long long>(dropped));
  EXPECT_GT(dropped, 0u) << "the loss rules never matched";
  EXPECT_EQ(c.lost, 0u);
  EXPECT_EQ(c.unexpected, 0u);
}

TEST_F(NamespaceFaultsTest, SlowLinkDeliversEverythingInOrder) {
  ASSERT_TRUE(ns_->In("tc qdisc add dev " + ns_->dev() +
                      " root tbf rate 256kbit burst 16kb latency 400ms"));
  auto start = Clock::now();
  auto c = PublishAndCheck(600, "slow-", 60000);
  double secs = std::chrono::duration<double>(Clock::now() - start).count();
  std::printf("256 kbit/s: 600 messages in %.1f s\n", secs);
  EXPECT_EQ(c.lost, 0u);
  EXPECT_EQ(c.unexpected, 0u);
  EXPECT_EQ(c.reordered, 0u);
}

TEST_F(NamespaceFaultsTest, BlackHoleReconnectsWithBackoffAndLosesNothing) {
  auto p = Connect();
  ASSERT_TRUE(p);
  std::string drop_out = "iptables -A OUTPUT -d " + ns_->host_ip() + " -j DROP";
  std::string drop_in = "iptables -A INPUT -s " + ns_->host_ip() + " -j DROP";
  ASSERT_TRUE(ns_->In(drop_out) && ns_->In(drop_in));
  Publish(*p, 1000, 4, false, "hole-");
  std::this_thread::sleep_for(std::chrono::seconds(5));
  EXPECT_EQ(sub_->Count(), 0u);
  ASSERT_TRUE(ns_->In("iptables -F"));
  auto lifted = Clock::now();
  auto c = WaitAndCheck(1000, /*order=*/true, 40000);
  double secs = std::chrono::duration<double>(Clock::now() - lifted).count();
  std::printf("black hole (5 s): delivered %.1f s after it lifted\n", secs);
  EXPECT_EQ(c.lost, 0u);
  EXPECT_EQ(c.unexpected, 0u);
  // Keepalive gives the dead link up; a connect into the hole times out
  // (10 s) instead of waiting out the kernel's SYN retries; then backoff.
  EXPECT_LT(secs, 20.0);
  ExpectBackoffCadence();
}

}  // namespace
}  // namespace edgespool::testing
