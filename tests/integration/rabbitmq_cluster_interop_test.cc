// The clustered central broker: the agent against a 3-node RabbitMQ cluster
// (Debian's 3.10 with its MQTT plugin; durable MQTT subscriptions as quorum
// queues, `mqtt.durable_queue_type = quorum`), uplink.url listing the three
// nodes. Under producer load the node the agent is connected to is stopped:
// the agent must be on another node within 5 s, and of the acknowledged
// messages none may be lost (counted by unique id at a persistent subscriber
// on a surviving node, TESTING.md's queue checker). Prints lost / duplicated
// and the failover time.
//
// Skips unless rabbitmq-server is installed. Slow to start: three nodes boot
// side by side, then two of them join the first (rabbitmqctl join_cluster).
#include <gtest/gtest.h>

#include <chrono>
#include <regex>
#include <set>
#include <thread>

#include "tests/support/e2e_fixture.h"
#include "tests/support/publish_load.h"
#include "tests/support/rabbitmq.h"

namespace edgespool::testing {
namespace {

using Clock = std::chrono::steady_clock;

double Since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

std::string Field(const std::string& json, const std::string& key) {
  std::smatch m;
  std::regex re("\"" + key + "\":\"?([^\",}]*)\"?");
  return std::regex_search(json, m, re) ? m[1].str() : "";
}

class RabbitMqClusterTest : public AgentE2ETest {
 protected:
  void SetUp() override {
    if (!RabbitMqInstalled()) {
      GTEST_SKIP() << kRabbitServer << " not installed (apt-get install rabbitmq-server to run "
                   << "the cluster failover test)";
    }
    if (!std::getenv("EDGESPOOL_BIN")) GTEST_SKIP() << "EDGESPOOL_BIN not set (run through ctest)";
    if (!CommandExists("mosquitto_sub")) GTEST_SKIP() << "mosquitto_sub not installed";
  }
  std::string Status(client::Producer& p) {
    auto doc = p.GetStatus().get();
    return doc.ok() ? *doc : "";
  }
  // Waits until the uplink is connected to a broker other than `not_url`;
  // returns that broker's url ("" on timeout).
  std::string ConnectedElsewhere(client::Producer& p, const std::string& not_url, int timeout_ms) {
    std::string url;
    WaitUntil(
        [&] {
          std::string s = Status(p);
          url = Field(s, "url");
          return s.find("\"state\":\"connected\"") != std::string::npos && url != not_url;
        },
        timeout_ms);
    return url;
  }
};

TEST_F(RabbitMqClusterTest, NodeInUseStopsUnderLoadAgentMovesWithinFiveSecondsLosingNothing) {
  auto t0 = Clock::now();
  // A prefetch above the default 10: the checker reads fast, but a small
  // window makes the drain after the stop needlessly slow.
  RabbitMqCluster cluster(3, "mqtt.durable_queue_type = quorum\nmqtt.prefetch = 1000\n");
  ASSERT_TRUE(cluster.Start()) << cluster.error() << "\n" << cluster.logs();
  double boot_s = Since(t0);
  std::string status_out;
  ASSERT_TRUE(cluster.node(0).Ctl({"cluster_status"}, &status_out)) << status_out;
  for (int i = 0; i < 3; ++i) {
    EXPECT_NE(status_out.find(cluster.node(i).node_name()), std::string::npos) << status_out;
  }

  // The checker: a persistent session (clean session off: a durable queue,
  // here a quorum queue replicated on the three nodes) on the node that
  // stays up.
  RabbitMq& survivor = cluster.node(2);
  sub_ = std::make_unique<Subscriber>(dir_.path(), survivor.mqtt_port(), "sensors/#", "checker");
  ASSERT_TRUE(sub_->Start()) << survivor.log();
  std::string queues;
  ASSERT_TRUE(cluster.node(0).Ctl({"list_queues", "name", "type"}, &queues)) << queues;
  std::printf("queues:\n%s", queues.c_str());
  EXPECT_NE(queues.find("mqtt-subscription-checkerqos1\tquorum"), std::string::npos) << queues;

  std::string urls = "url = [\"" + cluster.node(0).mqtt_url() + "\", \"" +
                     cluster.node(1).mqtt_url() + "\", \"" + cluster.node(2).mqtt_url() + "\"]";
  agent_ = std::make_unique<AgentProcess>(dir_.path(), "unused",
                                          std::multimap<std::string, std::string>{
                                              {"uplink", urls}, {"uplink", "protocol = 4"}});
  ASSERT_TRUE(agent_->Start()) << agent_->log();
  auto producer = Connect();
  ASSERT_TRUE(producer);
  auto status_p = Connect();
  ASSERT_TRUE(status_p);
  // Ordered: the first node.
  std::string first = ConnectedElsewhere(*status_p, "", 20000);
  ASSERT_EQ(first, cluster.node(0).mqtt_url()) << agent_->log();

  // Paced (100 messages, then 20 ms): producers still publish for seconds
  // after the stop, and the uplink is mid-stream when it comes.
  const int kCount = 20000;
  Load load(
      *producer, "r", kCount, [](int i) { return "sensors/t" + std::to_string(i % 8); }, 100, 20);
  load.Start();
  ASSERT_TRUE(load.WaitAnswered(kCount * 3 / 10, 120000));
  size_t delivered_at_stop = sub_->Count();
  int answered_at_stop = load.answered();
  auto stop_at = Clock::now();
  // rabbitmqctl stop's equivalent: SIGTERM, the node shuts down (closing its
  // client connections) and exits.
  std::thread stopper([&] { cluster.node(0).Stop(); });
  std::string moved_to = ConnectedElsewhere(*status_p, first, 20000);
  double failover_s = Since(stop_at);
  int answered_at_move = load.answered();
  stopper.join();
  load.Join();
  load.Record(&checker_);
  EXPECT_EQ(moved_to, cluster.node(1).mqtt_url()) << "ordered: the next node\n" << agent_->log();
  std::printf("at the stop: %d acknowledged to producers, %zu delivered; at the move: %d\n",
              answered_at_stop, delivered_at_stop, answered_at_move);
  EXPECT_LT(delivered_at_stop, static_cast<size_t>(kCount)) << "the uplink was idle at the stop";
  EXPECT_LT(answered_at_move, kCount) << "the load ended before the failover: make it longer";

  std::set<std::string> ids;
  WaitUntil(
      [&] {
        ids.clear();
        for (const auto& d : ToDeliveries(sub_->Read())) ids.insert(d.id);
        return ids.size() >= checker_.acked().size();
      },
      120000);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  for (const auto& d : ToDeliveries(sub_->Read())) checker_.Deliver(d);
  auto counts = checker_.Check(false);
  std::string status = Status(*status_p);
  std::printf(
      "rabbitmq 3-node cluster (quorum queues): boot+join %.1f s; failover %.2f s (%s -> %s); "
      "queue checker: %s; total %.1f s\n",
      boot_s, failover_s, first.c_str(), moved_to.c_str(), counts.ToString().c_str(), Since(t0));
  EXPECT_LT(failover_s, 5.0) << agent_->log();
  EXPECT_EQ(counts.acked, static_cast<size_t>(kCount));
  EXPECT_EQ(counts.lost, 0u) << counts.ToString();
  EXPECT_EQ(counts.unexpected, 0u) << counts.ToString();
  EXPECT_EQ(Field(status, "failovers"), "1") << status;

  // Where RabbitMQ keeps retained messages: does a new subscriber on node 3,
  // which the agent never connected to, get the status document retained
  // through nodes 1 and 2? 3.10's store is node-local (seen: absent); printed,
  // not asserted, because the README's limit is RabbitMQ's, not ours.
  Process retained;
  std::string retained_out = dir_.File("retained.out");
  ASSERT_TRUE(retained.Start({"mosquitto_sub", "-h", "127.0.0.1", "-p",
                              std::to_string(survivor.mqtt_port()), "-t",
                              "edgespool/test-node/status", "-C", "1", "-W", "3", "-q", "1",
                              "-F", "retain=%r"},
                             retained_out));
  retained.Wait(10000);
  // The agent republishes its status every second (status.interval): only
  // a message flagged retained is the store's answer.
  bool seen = ReadFile(retained_out).find("retain=1") != std::string::npos;
  std::printf("retained status on node 3 (never connected to by the agent): %s\n",
              seen ? "present" : "absent");
  if (HasFailure()) std::printf("agent log:\n%s\n", agent_->log().c_str());
}

}  // namespace
}  // namespace edgespool::testing
