// The fleet model (agent/fleet/fleet_model.h) and its exporter, without a
// broker: documents are applied as the watcher would apply them.
#include "agent/fleet/fleet_model.h"

#include <gtest/gtest.h>

#include "agent/fleet/render.h"
#include "agent/http/metrics.h"

namespace edgespool::agent::fleet {
namespace {

constexpr int64_t kNow = 1'800'000'000'000;

std::string Doc(const std::string& node, bool online, int64_t ts, int64_t last_sync,
                uint64_t pending, int64_t oldest = 0) {
  return R"({"node":")" + node + R"(","version":"1.2.3","online":)" + (online ? "true" : "false") +
         R"(,"ts_ms":)" + std::to_string(ts) + R"(,"last_sync_ms":)" + std::to_string(last_sync) +
         R"(,"pending":{"messages":)" + std::to_string(pending) + R"(,"bytes":)" +
         std::to_string(pending * 100) + R"(,"oldest_ts_ms":)" + std::to_string(oldest) +
         R"(},"uplink":{"state":"connected","last_error":""},"drain_eta_s":12,)"
         R"("totals":{"sent":7,"dead":1,"dropped":2},"journal":{"fill":0.25}})";
}

TEST(FleetModelTest, LiveDocumentsCorrectTheNodesClock) {
  FleetModel model;
  std::string node;
  // The node's clock is 10 minutes behind ours.
  int64_t skew = 600000;
  ASSERT_EQ(model.Apply("edgespool/a/status",
                        Doc("a", true, kNow - skew, kNow - skew - 5000, 10, kNow - skew - 60000),
                        false, kNow, &node),
            FleetModel::Change::kUpdated);
  EXPECT_EQ(node, "a");
  const NodeView* v = model.Find("a");
  ASSERT_NE(v, nullptr);
  EXPECT_EQ(v->skew_ms, skew);
  EXPECT_EQ(v->LastSyncMs(), kNow - 5000);
  EXPECT_EQ(v->OldestPendingMs(), kNow - 60000);
  EXPECT_DOUBLE_EQ(v->OldestPendingAgeS(kNow), 60.0);
  EXPECT_EQ(v->health, Health::kOk);
}

TEST(FleetModelTest, ARetainedDocumentIsAsOldAsItsStamp) {
  FleetOptions o;
  o.stale_ms = 60000;
  FleetModel model(o);
  std::string node;
  // Retained at subscribe time, written an hour ago: silent, not fresh.
  model.Apply("edgespool/a/status", Doc("a", true, kNow - 3600000, kNow - 3600000, 0), true, kNow,
              &node);
  EXPECT_EQ(model.Find("a")->report_ms, kNow - 3600000);
  EXPECT_EQ(model.Find("a")->health, Health::kSilent);
  // A live one arrives: fresh again.
  model.Apply("edgespool/a/status", Doc("a", true, kNow, kNow, 0), false, kNow, &node);
  EXPECT_EQ(model.Find("a")->health, Health::kOk);
}

// An idle agent publishes only every status.interval (1 min), not every
// watermark_interval: with the default --stale (15 min) it stays ok between
// its heartbeats, however old its last upload; only real silence is stale.
TEST(FleetModelTest, AnIdleNodeThatPublishesOnlyEveryIntervalIsNotStale) {
  FleetModel model;
  std::string node;
  std::string idle = Doc("a", true, kNow, kNow - 3600000, 0);
  idle.insert(
      idle.size() - 1,
      R"(,"watermark_ms":1,"watermark_follow":{"lag_ms":1000,"for_ms":90000,"expiry_s":604800})");
  ASSERT_EQ(model.Apply("edgespool/a/status", idle, false, kNow, &node),
            FleetModel::Change::kUpdated);
  for (int64_t t = kNow; t < kNow + 60000; t += 10000) {
    model.Refresh(t);
    EXPECT_EQ(model.Find("a")->health, Health::kOk) << t - kNow;
  }
  model.Refresh(kNow + 15 * 60000 + 1);  // no heartbeat for --stale: silent
  EXPECT_EQ(model.Find("a")->health, Health::kSilent);
}

TEST(FleetModelTest, OfflineKeepsTheLastFiguresAndRanksFirst) {
  FleetModel model;
  std::string node;
  model.Apply("edgespool/a/status", Doc("a", true, kNow, kNow - 1000, 42, kNow - 9000), false, kNow,
              &node);
  model.Apply("edgespool/b/status", Doc("b", true, kNow, kNow - 1000, 0), false, kNow, &node);
  // The last will: {"node","version","online":false,"ts_ms":0}.
  model.Apply("edgespool/a/status", R"({"node":"a","version":"1.2.3","online":false,"ts_ms":0})",
              false, kNow + 5000, &node);
  const NodeView* a = model.Find("a");
  EXPECT_FALSE(a->online);
  EXPECT_EQ(a->health, Health::kOffline);
  EXPECT_EQ(a->status.pending_messages, 42u);  // what it left behind
  EXPECT_EQ(a->offline_since_ms, kNow + 5000);
  auto ranked = model.Ranked();
  EXPECT_EQ(ranked[0]->status.node, "a");
  std::string json = NodeJson(*a);
  EXPECT_EQ(json.rfind(R"({"node":"a","online":false,"stale":true,"state":"offline")", 0), 0u)
      << json;
  // Back online: offline_since clears.
  model.Apply("edgespool/a/status", Doc("a", true, kNow + 9000, kNow + 9000, 0), false, kNow + 9000,
              &node);
  EXPECT_EQ(model.Find("a")->offline_since_ms, 0);
  EXPECT_EQ(model.Find("a")->health, Health::kOk);
}

TEST(FleetModelTest, ARetainedWillSaysOfflineButNotSinceWhen) {
  FleetModel model;
  std::string node;
  model.Apply("edgespool/a/status", R"({"node":"a","online":false,"ts_ms":0})", true, kNow, &node);
  EXPECT_EQ(model.Find("a")->health, Health::kOffline);
  EXPECT_EQ(model.Find("a")->offline_since_ms, 0);
}

TEST(FleetModelTest, RefreshFindsSilentAndBehindNodes) {
  FleetOptions o;
  o.stale_ms = 10000;
  FleetModel model(o);
  std::string node;
  model.Apply("t/quiet", Doc("quiet", true, kNow, kNow, 0), false, kNow, &node);
  model.Apply("t/stuck", Doc("stuck", true, kNow, kNow - 1000, 5, kNow - 1000), false, kNow, &node);
  EXPECT_TRUE(model.Refresh(kNow + 5000).empty());
  // 'stuck' reports on, but its last sync falls behind; 'quiet' stops reporting.
  model.Apply("t/stuck", Doc("stuck", true, kNow + 12000, kNow - 1000, 5, kNow - 1000), false,
              kNow + 12000, &node);
  auto changed = model.Refresh(kNow + 12000);
  ASSERT_EQ(changed.size(), 1u);
  EXPECT_EQ(changed[0], "quiet");
  EXPECT_EQ(model.Find("quiet")->health, Health::kSilent);
  EXPECT_EQ(model.Find("stuck")->health, Health::kBehind);
  FleetCounts c = model.Counts(kNow + 12000);
  EXPECT_EQ(c.silent, 1u);
  EXPECT_EQ(c.behind, 1u);
  EXPECT_EQ(c.backlog_messages, 5u);
}

TEST(FleetModelTest, GarbageClearedTopicsAndTheNodeLimit) {
  FleetOptions o;
  o.max_nodes = 2;
  FleetModel model(o);
  std::string node;
  for (const char* bad : {"", "{", "[]", R"({"node":""})", R"({"node":5})", "null"}) {
    EXPECT_EQ(model.Apply("t/x", bad, false, kNow, &node), FleetModel::Change::kNone) << bad;
  }
  std::string long_name(kMaxNodeNameBytes + 1, 'n');
  EXPECT_EQ(model.Apply("t/x", R"({"node":")" + long_name + R"("})", false, kNow, &node),
            FleetModel::Change::kNone);
  EXPECT_EQ(model.stats().invalid, 6u);  // the empty payload is a removal, not garbage
  // Mistyped fields keep their defaults; negative counts read as 0.
  EXPECT_EQ(model.Apply("t/a", R"({"node":"a","online":true,"pending":{"messages":-5},"uplink":7})",
                        false, kNow, &node),
            FleetModel::Change::kUpdated);
  EXPECT_EQ(model.Find("a")->status.pending_messages, 0u);
  model.Apply("t/b", Doc("b", true, kNow, kNow, 0), false, kNow, &node);
  EXPECT_EQ(model.Apply("t/c", Doc("c", true, kNow, kNow, 0), false, kNow, &node),
            FleetModel::Change::kNone);
  EXPECT_EQ(model.stats().over_limit, 1u);
  // A cleared retained status removes the node, and frees its place.
  EXPECT_EQ(model.Apply("t/a", "", false, kNow, &node), FleetModel::Change::kRemoved);
  EXPECT_EQ(node, "a");
  EXPECT_EQ(model.Find("a"), nullptr);
  EXPECT_EQ(model.Apply("t/c", Doc("c", true, kNow, kNow, 0), false, kNow, &node),
            FleetModel::Change::kUpdated);
  EXPECT_EQ(model.size(), 2u);
}

TEST(SampleVecTest, RendersPerScrapeSeriesEscaped) {
  MetricsRegistry r;
  SampleVec* up = r.AddGaugeVec("edgespool_test_node_up", "Up.", {"node"});
  SampleVec* sent = r.AddCounterVec("edgespool_test_node_sent_total", "Sent.", {"node", "kind"});
  up->Set({"a"}, 1);
  up->Set({"b\"\n\\"}, 0);
  sent->Set({"a", "x"}, 12345678);
  std::string text = r.Render();
  EXPECT_NE(text.find("# TYPE edgespool_test_node_up gauge\n"
                      "edgespool_test_node_up{node=\"a\"} 1\n"
                      "edgespool_test_node_up{node=\"b\\\"\\n\\\\\"} 0\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("# TYPE edgespool_test_node_sent_total counter\n"
                      "edgespool_test_node_sent_total{node=\"a\",kind=\"x\"} 12345678\n"),
            std::string::npos)
      << text;
  up->Clear();
  EXPECT_EQ(r.Render().find("edgespool_test_node_up{"), std::string::npos);
}

}  // namespace
}  // namespace edgespool::agent::fleet
