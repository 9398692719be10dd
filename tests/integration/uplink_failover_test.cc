// uplink.url as a list of brokers, against two real mosquittos: the first
// dead -> the agent connects to the second at once (no backoff in between);
// ordered stays on the first live broker, random spreads over them; the
// broker in use dies under load -> the agent moves to the other with nothing
// lost; a reload that only extends the list keeps the connection. The
// RabbitMQ cluster version of the failover is rabbitmq_cluster_interop_test.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <regex>
#include <set>
#include <thread>

#include "tests/support/e2e_fixture.h"
#include "tests/support/http_get.h"
#include "tests/support/publish_load.h"

namespace edgespool::testing {
namespace {

using Clock = std::chrono::steady_clock;
using Settings = std::multimap<std::string, std::string>;

std::string Field(const std::string& json, const std::string& key) {
  std::smatch m;
  std::regex re("\"" + key + "\":\"?([^\",}]*)\"?");
  return std::regex_search(json, m, re) ? m[1].str() : "";
}

std::string UrlList(const std::vector<std::string>& urls) {
  std::string out = "url = [";
  for (size_t i = 0; i < urls.size(); ++i) out += (i ? ", \"" : "\"") + urls[i] + "\"";
  return out + "]";
}

class UplinkFailoverTest : public AgentE2ETest {
 protected:
  void SetUp() override {
    if (!std::getenv("EDGESPOOL_BIN")) GTEST_SKIP() << "EDGESPOOL_BIN not set (run through ctest)";
    if (!CommandExists("mosquitto") || !CommandExists("mosquitto_sub")) {
      GTEST_SKIP() << "mosquitto not installed";
    }
  }
  // A second broker with its own persistent checker.
  void StartSecond() {
    MosquittoOptions o;
    o.persistence = true;
    broker_b_ = std::make_unique<Mosquitto>(dir_b_.path(), o);
    ASSERT_TRUE(broker_b_->Start()) << broker_b_->log();
    sub_b_ = std::make_unique<Subscriber>(dir_b_.path(), broker_b_->port(), "sensors/#", "checker-b");
    ASSERT_TRUE(sub_b_->Start());
  }
  std::string Status(client::Producer& p) {
    auto doc = p.GetStatus().get();
    EXPECT_TRUE(doc.ok()) << doc.status().ToString();
    return doc.ok() ? *doc : "";
  }
  // Polls the status until the uplink is connected (to `want`, when given);
  // returns its url ("" on timeout).
  std::string ConnectedUrl(client::Producer& p, int timeout_ms, const std::string& want = "") {
    std::string url;
    WaitUntil(
        [&] {
          std::string s = Status(p);
          if (s.find("\"state\":\"connected\"") == std::string::npos) return false;
          url = Field(s, "url");
          return want.empty() || url == want;
        },
        timeout_ms);
    return url;
  }
  // The url of the broker a freshly started agent connects to, then stops it.
  std::string FirstChoice(const Settings& settings) {
    agent_ = std::make_unique<AgentProcess>(dir_.path(), "unused", settings);
    if (!agent_->Start()) return "start failed: " + agent_->log();
    auto p = Connect();
    std::string url = p ? ConnectedUrl(*p, 5000) : "";
    p.reset();
    agent_->Stop();
    return url;
  }

  TempDir dir_b_;
  std::unique_ptr<Mosquitto> broker_b_;
  std::unique_ptr<Subscriber> sub_b_;
};

TEST_F(UplinkFailoverTest, FirstBrokerDeadConnectsToTheSecondAtOnce) {
  StartSecond();
  uint16_t dead = FreePort();  // nothing listens: connection refused
  std::string dead_url = "mqtt://127.0.0.1:" + std::to_string(dead);
  // A backoff of 5 s or more: connecting sooner shows the second broker was
  // tried at once, within the round.
  Settings s = {{"uplink", UrlList({dead_url, broker_b_->url()})},
                {"sync", "backoff_initial = \"5s\""},
                {"sync", "backoff_max = \"10s\""}};
  agent_ = std::make_unique<AgentProcess>(dir_.path(), "unused", s);
  auto t0 = Clock::now();
  ASSERT_TRUE(agent_->Start()) << agent_->log();
  auto p = Connect();
  ASSERT_TRUE(p);
  std::string url = ConnectedUrl(*p, 10000);
  double took_s = std::chrono::duration<double>(Clock::now() - t0).count();
  std::printf("dead first broker: connected to the second after %.2f s (backoff_initial 5 s)\n",
              took_s);
  EXPECT_EQ(url, broker_b_->url()) << agent_->log();
  EXPECT_LT(took_s, 4.0) << "the second broker waited for a backoff:\n" << agent_->log();
  std::string status = Status(*p);
  EXPECT_NE(status.find("\"brokers\":[\"" + dead_url + "\",\"" + broker_b_->url() + "\"]"),
            std::string::npos)
      << status;

  Publish(*p, 500, 4, false, "d");
  WaitUntil([&] { return sub_b_->Count() >= 500; }, 20000);
  for (const auto& d : ToDeliveries(sub_b_->Read())) checker_.Deliver(d);
  auto counts = checker_.Check(false);
  EXPECT_EQ(counts.lost, 0u) << counts.ToString();
  EXPECT_EQ(counts.unexpected, 0u) << counts.ToString();
}

TEST_F(UplinkFailoverTest, OrderedTakesTheFirstLiveBrokerRandomSpreadsOverThem) {
  StartBroker();
  StartSecond();
  Settings ordered = {{"uplink", UrlList({broker_->url(), broker_b_->url()})}};
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(FirstChoice(ordered), broker_->url()) << "ordered: always the first URL";
  }
  Settings random = ordered;
  random.emplace("uplink", "failover = \"random\"");
  std::map<std::string, int> chosen;
  // Each start draws its own order: the chance that 16 starts all pick the
  // same one of two brokers is 2^-15.
  for (int i = 0; i < 16 && chosen.size() < 2; ++i) ++chosen[FirstChoice(random)];
  EXPECT_EQ(chosen.size(), 2u) << "random: both brokers were chosen; " << chosen.begin()->first;
  for (const auto& [url, n] : chosen) {
    EXPECT_TRUE(url == broker_->url() || url == broker_b_->url()) << url;
    std::printf("random: %s chosen %d times\n", url.c_str(), n);
  }
}

// The broker in use stops under load: the agent moves to the other within a
// fraction of the 5 s budget, and of the acknowledged messages none is lost
// over the two brokers together.
TEST_F(UplinkFailoverTest, BrokerInUseStopsUnderLoadMovesToTheOtherLosingNothing) {
  StartBroker();
  StartSubscriber("sensors/#");
  StartSecond();
  uint16_t metrics_port = FreePort();
  Settings s = {{"uplink", UrlList({broker_->url(), broker_b_->url()})},
                {"metrics", "listen = \"127.0.0.1:" + std::to_string(metrics_port) + "\""}};
  agent_ = std::make_unique<AgentProcess>(dir_.path(), "unused", s);
  ASSERT_TRUE(agent_->Start()) << agent_->log();
  auto producer = Connect();
  ASSERT_TRUE(producer);
  ASSERT_EQ(ConnectedUrl(*producer, 5000), broker_->url());
  auto status_p = Connect();  // status polls beside the load's connection
  ASSERT_TRUE(status_p);

  const int kCount = 20000;
  Load load(
      *producer, "f", kCount, [](int i) { return "sensors/t" + std::to_string(i % 8); }, 200, 5);
  load.Start();
  ASSERT_TRUE(load.WaitAnswered(kCount * 2 / 5, 60000));
  // SIGTERM: mosquitto saves what it queued for its subscriber, which gets
  // it after the restart below (a SIGKILL would lose it in the broker).
  auto t0 = Clock::now();
  broker_->Stop();
  std::string url = ConnectedUrl(*status_p, 10000, broker_b_->url());
  double failover_s = std::chrono::duration<double>(Clock::now() - t0).count();
  int stopped_at = load.answered();
  load.Join();
  load.Record(&checker_);
  EXPECT_EQ(url, broker_b_->url()) << agent_->log();
  EXPECT_LT(failover_s, 5.0) << agent_->log();
  EXPECT_LT(stopped_at, kCount) << "the load ended before the stop: make it longer";
  ASSERT_TRUE(broker_->Start()) << broker_->log();  // its subscriber drains what it held

  auto distinct = [&] {
    std::set<std::string> ids;
    for (const auto& d : ToDeliveries(sub_->Read())) ids.insert(d.id);
    for (const auto& d : ToDeliveries(sub_b_->Read())) ids.insert(d.id);
    return ids.size();
  };
  WaitUntil([&] { return distinct() >= checker_.acked().size(); }, 60000);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto on_a = ToDeliveries(sub_->Read());
  auto on_b = ToDeliveries(sub_b_->Read());
  for (const auto& d : on_a) checker_.Deliver(d);
  for (const auto& d : on_b) checker_.Deliver(d);
  auto counts = checker_.Check(false);
  std::printf("mosquitto failover: %.2f s to the other broker; queue checker: %s (a: %zu, b: %zu)\n",
              failover_s, counts.ToString().c_str(), on_a.size(), on_b.size());
  EXPECT_EQ(counts.acked, static_cast<size_t>(kCount));
  EXPECT_EQ(counts.lost, 0u) << counts.ToString();
  EXPECT_EQ(counts.unexpected, 0u) << counts.ToString();
  EXPECT_GT(on_a.size(), 0u);
  EXPECT_GT(on_b.size(), 0u);

  std::string status = Status(*status_p);
  EXPECT_EQ(Field(status, "failovers"), "1") << status;
  std::string metrics = HttpGet(metrics_port, "/metrics");
  EXPECT_NE(metrics.find("edgespool_uplink_broker{url=\"" + broker_b_->url() + "\"} 1"),
            std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("edgespool_uplink_broker{url=\"" + broker_->url() + "\"} 0"),
            std::string::npos);
  EXPECT_EQ(MetricValue(metrics, "edgespool_uplink_failovers_total"), 1.0);
}

// A reload that only adds a broker keeps the connection (connected_since_ms
// unchanged); one that drops the current broker moves to the other.
TEST_F(UplinkFailoverTest, ReloadOfTheListKeepsAListedBrokerAndLeavesAnUnlistedOne) {
  StartBroker();
  StartSecond();
  Settings s = {{"uplink", UrlList({broker_->url()})}};
  agent_ = std::make_unique<AgentProcess>(dir_.path(), "unused", s);
  ASSERT_TRUE(agent_->Start()) << agent_->log();
  auto p = Connect();
  ASSERT_TRUE(p);
  ASSERT_EQ(ConnectedUrl(*p, 5000), broker_->url());
  std::string since = Field(Status(*p), "connected_since_ms");

  auto reload = [&](const std::vector<std::string>& urls) {
    std::string before = Field(Status(*p), "config_digest");
    agent_->Rewrite("unused", {{"uplink", UrlList(urls)}});
    agent_->Signal(SIGHUP);
    return WaitUntil([&] { return Field(Status(*p), "config_digest") != before; }, 10000);
  };
  ASSERT_TRUE(reload({broker_b_->url(), broker_->url()})) << agent_->log();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  std::string status = Status(*p);
  EXPECT_EQ(Field(status, "connected_since_ms"), since) << "reconnected:\n" << status;
  EXPECT_EQ(Field(status, "url"), broker_->url());
  EXPECT_NE(status.find("\"brokers\":[\"" + broker_b_->url() + "\",\"" + broker_->url() + "\"]"),
            std::string::npos)
      << status;

  ASSERT_TRUE(reload({broker_b_->url()})) << agent_->log();
  EXPECT_EQ(ConnectedUrl(*p, 5000, broker_b_->url()), broker_b_->url());
  Publish(*p, 100, 2, false, "r");
  EXPECT_TRUE(WaitUntil([&] { return sub_b_->Count() >= 100; }, 20000));
}

}  // namespace
}  // namespace edgespool::testing
