// `edgespool fleet` against real agents on a real broker: two running, one
// SIGKILLed (its last will marks it offline).
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <chrono>
#include <thread>

#include "agent/fleet/fleet_model.h"
#include "agent/fleet/render.h"
#include "tests/support/e2e.h"

namespace edgespool {
namespace {

using namespace edgespool::testing;

TEST(FleetRankTest, OfflineThenStaleThenOldestSyncFirst) {
  const int64_t now = 1'800'000'000'000;
  agent::fleet::FleetModel model;
  std::string node;
  auto doc = [&](const char* name, bool online, int64_t last_sync, int pending) {
    std::string json = std::string(R"({"node":")") + name + R"(","online":)" +
                       (online ? "true" : "false") + R"(,"ts_ms":)" + std::to_string(now) +
                       R"(,"last_sync_ms":)" + std::to_string(last_sync) +
                       R"(,"pending":{"messages":)" + std::to_string(pending) + "}}";
    return model.Apply(std::string("edgespool/") + name + "/status", json, false, now, &node);
  };
  doc("fine", true, now - 1000, 5);
  doc("behind", true, now - 3600000, 5000);
  doc("dead", false, 0, 0);
  doc("idle", true, 0, 0);  // nothing pending: never synced is fine
  auto rows = model.Ranked();
  ASSERT_EQ(rows.size(), 4u);
  ASSERT_EQ(rows[0]->status.node, "dead");
  EXPECT_TRUE(rows[0]->stale());
  EXPECT_EQ(rows[1]->status.node, "behind");
  EXPECT_TRUE(rows[1]->stale());
  EXPECT_FALSE(rows[2]->stale());
  EXPECT_FALSE(rows[3]->stale());
  std::string table = agent::fleet::FleetTable(rows, now);
  EXPECT_NE(table.find("4 nodes: 2 ok, 1 stale, 1 offline"), std::string::npos) << table;
  agent::fleet::NodeStatus parsed;
  EXPECT_FALSE(agent::fleet::ParseNodeStatus("not json", &parsed));
  EXPECT_TRUE(agent::fleet::ParseNodeStatus(
      R"({"node":"n","online":true,"pending":{"messages":3,"oldest_ts_ms":5},"uplink":{"state":"connected","last_error":"x"}})",
      &parsed));
  EXPECT_EQ(parsed.pending_messages, 3u);
  EXPECT_EQ(parsed.last_error, "x");
}

int RunFleet(const std::string& dir, const std::vector<std::string>& args, std::string* out) {
  Process p;
  std::vector<std::string> argv = {std::getenv("EDGESPOOL_BIN"), "fleet"};
  argv.insert(argv.end(), args.begin(), args.end());
  EXPECT_TRUE(p.Start(argv, dir + "/fleet.out"));
  int st = p.Wait(30000);
  *out = ReadFile(dir + "/fleet.out");
  ::unlink((dir + "/fleet.out").c_str());
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

TEST(FleetTest, ShowsEveryNodeWorstFirstAndExits2ForAnOfflineOne) {
  TempDir dir;
  Mosquitto broker(dir.path());
  ASSERT_TRUE(broker.Start());
  std::vector<std::unique_ptr<TempDir>> dirs;
  std::vector<std::unique_ptr<AgentProcess>> agents;
  for (const char* node : {"gw-a", "gw-b", "gw-c"}) {
    dirs.push_back(std::make_unique<TempDir>());
    agents.push_back(std::make_unique<AgentProcess>(
        dirs.back()->path(), broker.url(),
        std::multimap<std::string, std::string>{{"node", std::string("id = \"") + node + "\""}}));
    ASSERT_TRUE(agents.back()->Start()) << agents.back()->log();
  }
  std::string out;
  // All three online: exit 0.
  ASSERT_EQ(RunFleet(dir.path(), {"--broker", broker.url(), "--wait", "500ms"}, &out), 0) << out;
  EXPECT_NE(out.find("3 nodes: 3 ok"), std::string::npos) << out;
  agents[2]->Kill();
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  ASSERT_EQ(RunFleet(dir.path(), {"--broker", broker.url(), "--wait", "500ms"}, &out), 2) << out;
  // Worst first: the killed node is the first row after the header.
  auto first_row = out.substr(out.find('\n') + 1);
  EXPECT_EQ(first_row.rfind("gw-c", 0), 0u) << out;
  EXPECT_NE(out.find("1 offline"), std::string::npos) << out;
  ASSERT_EQ(RunFleet(dir.path(), {"--broker", broker.url(), "--json", "--wait", "300ms"}, &out), 2);
  EXPECT_NE(out.find(R"({"node":"gw-c","online":false,"stale":true)"), std::string::npos) << out;
  EXPECT_EQ(RunFleet(dir.path(), {"--stale", "5x", "--broker", broker.url()}, &out), 64);
}

}  // namespace
}  // namespace edgespool
