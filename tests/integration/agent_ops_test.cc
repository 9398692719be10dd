// Operating the agent as a supervisor and a monitoring system see it:
// sd_notify READY/STATUS/WATCHDOG/STOPPING, the Prometheus endpoint, and a
// graceful stop under load that loses nothing acknowledged.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <mutex>
#include <set>
#include <thread>

#include "agent/client/producer.h"
#include "tests/support/e2e.h"
#include "tests/support/http_get.h"

namespace edgespool {
namespace {

using namespace edgespool::testing;

TEST(AgentOpsTest, NotifiesSystemdAndServesMetrics) {
  TempDir dir;
  Mosquitto broker(dir.path());
  ASSERT_TRUE(broker.Start());
  // The supervisor's side of $NOTIFY_SOCKET.
  std::string notify_path = dir.File("notify.sock");
  int nfd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, notify_path.c_str(), sizeof addr.sun_path - 1);
  ASSERT_EQ(bind(nfd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  timeval tv{0, 200000};
  setsockopt(nfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);

  uint16_t mport = FreePort();
  AgentProcess agent(dir.path(), broker.url(),
                     {{"metrics", "listen = \"127.0.0.1:" + std::to_string(mport) + "\""}});
  setenv("NOTIFY_SOCKET", notify_path.c_str(), 1);
  setenv("WATCHDOG_USEC", "400000", 1);  // ping every 200 ms
  bool started = agent.Start();
  unsetenv("NOTIFY_SOCKET");
  unsetenv("WATCHDOG_USEC");
  ASSERT_TRUE(started) << agent.log();

  std::vector<std::string> got;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  int watchdogs = 0;
  while (std::chrono::steady_clock::now() < deadline && watchdogs < 3) {
    char buf[4096];
    ssize_t n = recv(nfd, buf, sizeof buf, 0);
    if (n <= 0) continue;
    got.emplace_back(buf, static_cast<size_t>(n));
    if (got.back().find("WATCHDOG=1") != std::string::npos) ++watchdogs;
  }
  std::string all;
  for (const auto& g : got) all += g + "|";
  EXPECT_NE(all.find("READY=1"), std::string::npos) << all;
  EXPECT_NE(all.find("STATUS=uplink"), std::string::npos) << all;
  EXPECT_GE(watchdogs, 3) << all;

  // Metrics: strict-enough checks here; the exposition format itself is
  // tested line by line in tests/unit/agent/metrics_test.cc.
  std::string health = HttpGet(mport, "/healthz");
  EXPECT_NE(health.find("200"), std::string::npos) << health;
  std::string ready = HttpGet(mport, "/readyz");
  EXPECT_NE(ready.find("200"), std::string::npos) << ready;
  std::string m1 = HttpGet(mport, "/metrics");
  ASSERT_NE(m1.find("# TYPE edgespool_messages_appended_total counter"), std::string::npos) << m1;
  double appended1 = MetricValue(m1, "edgespool_messages_appended_total");
  {
    client::ProducerOptions o;
    o.socket_path = agent.socket();
    auto p = client::Producer::Connect(o);
    ASSERT_TRUE(p.ok());
    for (int i = 0; i < 100; ++i) ASSERT_TRUE((*p)->Publish("m/t", "x").get().status.ok());
  }
  std::string m2 = HttpGet(mport, "/metrics");
  EXPECT_EQ(MetricValue(m2, "edgespool_messages_appended_total"), appended1 + 100) << m2;
  EXPECT_EQ(MetricValue(m2, "edgespool_uplink_connected"), 1) << m2;
  // 100 small messages stay far below a checkpoint pass, so nothing failed
  // and nothing waited; the series exist for alerting.
  EXPECT_EQ(MetricValue(m2, "edgespool_journal_checkpoint_failures_total"), 0) << m2;
  EXPECT_EQ(MetricValue(m2, "edgespool_journal_wal_restart_wait_seconds_total"), 0) << m2;
  EXPECT_GE(MetricValue(m2, "edgespool_journal_checkpoints_total"), 0) << m2;
  EXPECT_EQ(MetricValue(m2, "edgespool_ack_latency_seconds_count"),
            MetricValue(m1, "edgespool_ack_latency_seconds_count") + 100)
      << m2;
  EXPECT_NE(m2.find("edgespool_upload_latency_seconds_bucket{le=\"+Inf\"}"), std::string::npos);
  // The loop-lag probe fires every 100 ms while the agent runs.
  EXPECT_GE(MetricValue(m2, "edgespool_loop_lag_seconds_count"), 1) << m2;
  EXPECT_GE(MetricValue(m2, "edgespool_messages_sent_total"),
            MetricValue(m1, "edgespool_messages_sent_total"));

  int st = agent.Stop();
  ASSERT_TRUE(WIFEXITED(st)) << "status " << st << "\n" << agent.log();
  EXPECT_EQ(WEXITSTATUS(st), 0) << agent.log();
  char buf[4096];
  std::string rest;
  ssize_t n;
  while ((n = recv(nfd, buf, sizeof buf, 0)) > 0)
    rest.append(buf, static_cast<size_t>(n)).append("|");
  EXPECT_NE(rest.find("STOPPING=1"), std::string::npos) << rest;
  close(nfd);
}

TEST(AgentOpsTest, SigtermUnderLoadExitsZeroAndLosesNothingAcknowledged) {
  TempDir dir;
  MosquittoOptions mo;
  mo.persistence = true;
  Mosquitto broker(dir.path(), mo);
  ASSERT_TRUE(broker.Start());
  Subscriber sub(dir.path(), broker.port(), "load/#", "shutdown-checker");
  ASSERT_TRUE(sub.Start());
  AgentProcess agent(dir.path(), broker.url());
  ASSERT_TRUE(agent.Start()) << agent.log();
  QueueChecker checker;
  std::atomic<bool> stop{false};
  std::mutex mu;
  std::thread producer([&] {
    client::ProducerOptions o;
    o.socket_path = agent.socket();
    o.backoff_max_ms = 100;
    o.max_queued = 1 << 20;  // never block the producing thread while the agent is down
    auto p = client::Producer::Connect(o);
    if (!p.ok()) return;
    for (int i = 0; i < 60000 && !stop; ++i) {
      client::PublishOptions po;
      po.id = "sd-" + std::to_string(i);
      po.ts_ms = 1000 + i;
      (*p)->Publish("load/t", TelemetryPayload(po.id, po.ts_ms.value(), i), po,
                    [&, id = po.id](client::PublishResult r) {
                      std::lock_guard<std::mutex> l(mu);
                      checker.Published(id, r.status.ok());
                    });
    }
    (*p)->Drain(2000);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  int st = agent.Stop();
  stop = true;
  producer.join();
  ASSERT_TRUE(WIFEXITED(st)) << agent.log();
  EXPECT_EQ(WEXITSTATUS(st), 0) << agent.log();
  // Restart to drain whatever was acknowledged but not yet sent.
  ASSERT_TRUE(agent.Start()) << agent.log();
  size_t acked;
  {
    std::lock_guard<std::mutex> l(mu);
    acked = checker.acked().size();
  }
  ASSERT_GT(acked, 0u);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  auto distinct = [&] {
    std::set<std::string> ids;
    for (const auto& d : ToDeliveries(sub.Read())) ids.insert(d.id);
    return ids.size();
  };
  while (distinct() < acked && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  std::lock_guard<std::mutex> l(mu);
  for (const auto& d : ToDeliveries(sub.Read())) checker.Deliver(d);
  auto c = checker.Check(false);
  std::printf("shutdown under load: %s\n", c.ToString().c_str());
  EXPECT_EQ(c.lost, 0u);
  EXPECT_EQ(c.unexpected, 0u);
}

// A supervisor that loses patience sends a second SIGTERM: the agent exits at
// once (exit 0) instead of waiting for PUBACKs that will not come, and loses
// nothing acknowledged — it is all in the journal and goes out after a restart.
TEST(AgentOpsTest, SecondSigtermExitsAtOnceWithoutLosingAnything) {
  TempDir dir;
  MosquittoOptions mo;
  mo.persistence = true;
  Mosquitto broker(dir.path(), mo);
  ASSERT_TRUE(broker.Start());
  Subscriber sub(dir.path(), broker.port(), "stuck/#", "second-sigterm");
  ASSERT_TRUE(sub.Start());
  AgentProcess agent(
      dir.path(), broker.url(),
      {{"uplink", "shutdown_timeout = \"60s\""}, {"uplink", "ack_timeout = \"60s\""}});
  ASSERT_TRUE(agent.Start()) << agent.log();
  // Connected first: paused before its CONNACK, the uplink would hold
  // nothing in flight and the first SIGTERM alone would end the agent.
  auto connect_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (agent.log().find("state=connected") == std::string::npos &&
         std::chrono::steady_clock::now() < connect_deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_NE(agent.log().find("state=connected"), std::string::npos) << agent.log();
  broker.Pause();  // PUBACKs stop: the graceful stop would wait the full minute
  QueueChecker checker;
  {
    client::ProducerOptions o;
    o.socket_path = agent.socket();
    auto p = client::Producer::Connect(o);
    ASSERT_TRUE(p.ok());
    for (int i = 0; i < 500; ++i) {
      client::PublishOptions po;
      po.id = "stuck-" + std::to_string(i);
      auto r = (*p)->Publish("stuck/t", TelemetryPayload(po.id, 1000 + i, i), po).get();
      checker.Published(po.id, r.status.ok());
    }
  }
  agent.Signal(SIGTERM);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  auto t0 = std::chrono::steady_clock::now();
  int st = agent.Stop();  // the second SIGTERM
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_TRUE(WIFEXITED(st)) << agent.log();
  EXPECT_EQ(WEXITSTATUS(st), 0) << agent.log();
  EXPECT_LT(secs, 5.0) << "second SIGTERM did not exit at once";
  EXPECT_NE(agent.log().find("second signal"), std::string::npos) << agent.log();
  broker.Resume();
  ASSERT_TRUE(agent.Start()) << agent.log();
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  auto distinct = [&] {
    std::set<std::string> ids;
    for (const auto& d : ToDeliveries(sub.Read())) ids.insert(d.id);
    return ids.size();
  };
  while (distinct() < 500 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  for (const auto& d : ToDeliveries(sub.Read())) checker.Deliver(d);
  auto c = checker.Check(false);
  std::printf("second SIGTERM after %.2f s: %s\n", secs, c.ToString().c_str());
  EXPECT_EQ(c.lost, 0u);
  EXPECT_EQ(c.acked, 500u);
}

}  // namespace
}  // namespace edgespool
