// The fleet dashboard and exporter against real agents on a real broker:
// headless Chromium watches the page while an agent is killed; an agent
// stopped with SIGSTOP (no will: its connection stays open) turns silent.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <csignal>
#include <cstdlib>
#include <memory>

#include "tests/support/e2e.h"
#include "tests/support/e2e_fixture.h"
#include "tests/support/fleet_view.h"
#include "tests/support/http_get.h"

namespace edgespool {
namespace {

using namespace edgespool::testing;

// A broker, three agents (gw-a, gw-b, gw-c, status every second) and the
// fleet view with the given --stale.
class FleetDashboardTest : public ::testing::Test {
 protected:
  void StartFleet(const std::string& stale) {
    broker_ = std::make_unique<Mosquitto>(dir_.path());
    ASSERT_TRUE(broker_->Start());
    for (const char* node : {"gw-a", "gw-b", "gw-c"}) {
      dirs_.push_back(std::make_unique<TempDir>());
      agents_.push_back(std::make_unique<AgentProcess>(
          dirs_.back()->path(), broker_->url(),
          std::multimap<std::string, std::string>{{"node", std::string("id = \"") + node + "\""}}));
      ASSERT_TRUE(agents_.back()->Start()) << agents_.back()->log();
    }
    view_ = std::make_unique<FleetView>(dir_.path(), broker_->url(),
                                        std::vector<std::string>{"--stale", stale});
    ASSERT_TRUE(view_->Start()) << view_->log();
    ASSERT_TRUE(WaitUntil([&] { return Count(Api(), "\"state\":\"ok\"") == 3; }, 15000)) << Api();
  }
  std::string Api() { return HttpBody(HttpGet(view_->http_port(), "/api/fleet")); }
  std::string Metrics() { return HttpBody(HttpGet(view_->metrics_port(), "/metrics")); }
  static size_t Count(const std::string& s, const std::string& needle) {
    size_t n = 0;
    for (size_t at = s.find(needle); at != std::string::npos; at = s.find(needle, at + 1)) ++n;
    return n;
  }

  TempDir dir_;
  std::unique_ptr<Mosquitto> broker_;
  std::vector<std::unique_ptr<TempDir>> dirs_;
  std::vector<std::unique_ptr<AgentProcess>> agents_;
  std::unique_ptr<FleetView> view_;
};

bool IsPng(const std::string& bytes, uint32_t* width, uint32_t* height) {
  if (bytes.size() < 24 || bytes.compare(0, 8, "\x89PNG\r\n\x1a\n") != 0) return false;
  auto be32 = [&](size_t at) {
    return (uint32_t(uint8_t(bytes[at])) << 24) | (uint32_t(uint8_t(bytes[at + 1])) << 16) |
           (uint32_t(uint8_t(bytes[at + 2])) << 8) | uint32_t(uint8_t(bytes[at + 3]));
  };
  *width = be32(16);
  *height = be32(20);
  return true;
}

TEST_F(FleetDashboardTest, ChromiumSeesAKilledNodeGoOfflineLive) {
  if (!CommandExists("chromium") || !CommandExists("python3")) {
    GTEST_SKIP() << "chromium or python3 not installed (Debian: chromium, python3)";
  }
  StartFleet("5s");
  // Screenshots stay in the test's working directory for a look afterwards.
  const std::string before = "fleet_dashboard_before.png", after = "fleet_dashboard_after.png";
  ::unlink(before.c_str());
  ::unlink(after.c_str());
  std::string ready = dir_.File("ready");
  Process driver;
  ASSERT_TRUE(driver.Start({"python3",
                            std::string(std::getenv("EDGESPOOL_SOURCE_DIR")) +
                                "/tests/integration/fleet_dashboard_driver.py",
                            "--url", "http://127.0.0.1:" + std::to_string(view_->http_port()) + "/",
                            "--nodes", "gw-a,gw-b,gw-c", "--stop", "gw-c", "--shot1", before,
                            "--shot2", after, "--ready-file", ready, "--timeout", "40"},
                           dir_.File("driver.log")));
  // The page shows all three ok (and has its first picture): stop gw-c.
  ASSERT_TRUE(WaitUntil([&] { return !ReadFile(ready).empty() || !driver.running(); }, 60000))
      << ReadFile(dir_.File("driver.log"));
  ASSERT_FALSE(ReadFile(ready).empty()) << ReadFile(dir_.File("driver.log"));
  agents_[2]->Kill();
  int st = driver.Wait(60000);
  std::string out = ReadFile(dir_.File("driver.log"));
  ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << out;
  // Worst first: the killed node leads, offline; the others are ok.
  EXPECT_NE(out.find(R"("after": {"rows": [["gw-c", "offline"])"), std::string::npos) << out;
  for (const std::string& shot : {before, after}) {
    uint32_t w = 0, h = 0;
    ASSERT_TRUE(IsPng(ReadFile(shot), &w, &h)) << shot;
    EXPECT_EQ(w, 1280u);
    EXPECT_GT(h, 0u);
  }
}

TEST_F(FleetDashboardTest, AFrozenAgentTurnsSilentAndTheExporterSaysSo) {
  StartFleet("3s");
  std::string m = Metrics();
  EXPECT_NE(m.find("edgespool_fleet_nodes{state=\"ok\"} 3\n"), std::string::npos) << m;
  EXPECT_NE(m.find("edgespool_fleet_node_up{node=\"gw-b\"} 1\n"), std::string::npos) << m;
  // SIGSTOP: the TCP connection stays open, so no will: only silence tells.
  agents_[1]->Signal(SIGSTOP);
  ASSERT_TRUE(WaitUntil(
      [&] {
        return Api().find(R"({"node":"gw-b","online":true,"stale":true,"state":"silent")") == 1;
      },
      15000))
      << Api();
  m = Metrics();
  EXPECT_NE(m.find("edgespool_fleet_node_up{node=\"gw-b\"} 0\n"), std::string::npos) << m;
  EXPECT_NE(m.find("edgespool_fleet_node_stale{node=\"gw-b\"} 1\n"), std::string::npos) << m;
  EXPECT_NE(m.find("edgespool_fleet_node_state{node=\"gw-b\",state=\"silent\"} 1\n"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("edgespool_fleet_nodes{state=\"silent\"} 1\n"), std::string::npos) << m;
  agents_[1]->Signal(SIGCONT);
  ASSERT_TRUE(WaitUntil([&] { return Count(Api(), "\"state\":\"ok\"") == 3; }, 15000)) << Api();
  // A kill: the broker publishes the will at once.
  agents_[2]->Kill();
  ASSERT_TRUE(WaitUntil([&] { return Api().find(R"({"node":"gw-c","online":false)") == 1; }, 10000))
      << Api();
  m = Metrics();
  EXPECT_NE(m.find("edgespool_fleet_node_online{node=\"gw-c\"} 0\n"), std::string::npos) << m;
  EXPECT_NE(m.find("edgespool_fleet_nodes{state=\"offline\"} 1\n"), std::string::npos) << m;
  EXPECT_EQ(view_->Stop(), 0) << view_->log();
}

}  // namespace
}  // namespace edgespool
