// The shipped Prometheus alert rules (platform/prometheus/): promtool checks
// and unit-tests them, and every metric name they (and their tests) use is
// one the exporters really emit, scraped from a real fleet view and a real
// agent: a renamed gauge cannot leave an alert that never fires.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <regex>
#include <set>

#include "tests/support/e2e.h"
#include "tests/support/e2e_fixture.h"
#include "tests/support/fleet_view.h"
#include "tests/support/http_get.h"

namespace edgespool {
namespace {

using namespace edgespool::testing;

std::string RulesDir() {
  return std::string(std::getenv("EDGESPOOL_SOURCE_DIR")) + "/platform/prometheus";
}

int RunTool(const std::vector<std::string>& argv, const std::string& log) {
  Process p;
  if (!p.Start(argv, log)) return -1;
  int st = p.Wait(60000);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

TEST(FleetAlertsTest, PromtoolChecksAndTestsTheRules) {
  if (!CommandExists("promtool")) GTEST_SKIP() << "promtool not installed (Debian: prometheus)";
  TempDir dir;
  EXPECT_EQ(RunTool({"promtool", "check", "rules", RulesDir() + "/edgespool-alerts.yml"},
                    dir.File("check.log")),
            0)
      << ReadFile(dir.File("check.log"));
  EXPECT_EQ(RunTool({"promtool", "test", "rules", RulesDir() + "/edgespool-alerts.test.yml"},
                    dir.File("test.log")),
            0)
      << ReadFile(dir.File("test.log"));
}

// Every edgespool_* name in text.
std::set<std::string> NamesIn(const std::string& text) {
  std::set<std::string> out;
  std::regex name("edgespool_[a-zA-Z0-9_]+");
  for (auto it = std::sregex_iterator(text.begin(), text.end(), name); it != std::sregex_iterator();
       ++it) {
    out.insert(it->str());
  }
  return out;
}

// The sample names of an exposition (histograms as _bucket/_sum/_count).
std::set<std::string> SampleNames(const std::string& exposition) {
  std::set<std::string> out;
  size_t at = 0;
  while (at < exposition.size()) {
    size_t end = exposition.find('\n', at);
    if (end == std::string::npos) end = exposition.size();
    std::string line = exposition.substr(at, end - at);
    if (!line.empty() && line[0] != '#') out.insert(line.substr(0, line.find_first_of("{ ")));
    at = end + 1;
  }
  return out;
}

TEST(FleetAlertsTest, EveryNameTheRulesUseIsEmitted) {
  TempDir dir, agent_dir;
  Mosquitto broker(dir.path());
  ASSERT_TRUE(broker.Start());
  uint16_t agent_metrics = FreePort();
  AgentProcess agent(agent_dir.path(), broker.url(),
                     {{"node", "id = \"gw-a\""},
                      {"metrics", "listen = \"127.0.0.1:" + std::to_string(agent_metrics) + "\""}});
  ASSERT_TRUE(agent.Start()) << agent.log();
  FleetView view(dir.path(), broker.url());
  ASSERT_TRUE(view.Start()) << view.log();
  std::string fleet;
  ASSERT_TRUE(WaitUntil(
      [&] {
        fleet = HttpBody(HttpGet(view.metrics_port(), "/metrics"));
        return fleet.find("edgespool_fleet_node_up{node=\"gw-a\"} 1") != std::string::npos;
      },
      15000))
      << fleet;
  std::set<std::string> fleet_names = SampleNames(fleet);
  std::set<std::string> agent_names = SampleNames(HttpBody(HttpGet(agent_metrics, "/metrics")));
  ASSERT_GT(agent_names.size(), 10u);
  // The fleet group must use the fleet exporter's names, the agent group
  // the agent's; the unit tests' input series must be real names too.
  std::string rules = ReadFile(RulesDir() + "/edgespool-alerts.yml");
  size_t split = rules.find("- name: edgespool-agent");
  ASSERT_NE(split, std::string::npos);
  std::set<std::string> fleet_used = NamesIn(rules.substr(0, split));
  std::set<std::string> agent_used = NamesIn(rules.substr(split));
  EXPECT_GE(fleet_used.size(), 8u);
  EXPECT_GE(agent_used.size(), 5u);
  for (const auto& n : fleet_used) EXPECT_TRUE(fleet_names.count(n)) << n << " not emitted";
  for (const auto& n : agent_used) EXPECT_TRUE(agent_names.count(n)) << n << " not emitted";
  for (const auto& n : NamesIn(ReadFile(RulesDir() + "/edgespool-alerts.test.yml"))) {
    EXPECT_TRUE(fleet_names.count(n) || agent_names.count(n)) << n << " (test input) not emitted";
  }
}

}  // namespace
}  // namespace edgespool
