// The WebSocket listener against the real agent and a real mosquitto
// (DownlinkFixture). The clients are the ones a dashboard would use, so they
// live in Python and a browser:
//   Protocol  tests/integration/websocket/ws_protocol_test.py (Debian's
//             python3-websockets): auth, origins, messages both ways, resume
//             after reconnect from the last acked position, the window,
//             garbage frames closing only their session, max_sessions,
//             max_frame_bytes, the idle timeout; each case prints PASS/FAIL.
//   Page      tests/integration/websocket/ws_browser_test.py: headless
//             Chromium (DevTools protocol) loads `/`, a message is published
//             once the page is connected, the page shows it, and a screenshot
//             is written (kept in the build dir for a person to look at).
// Each skips (exit 77) when its client is not installed.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdlib>
#include <iostream>
#include <string>

#include "tests/support/downlink_fixture.h"
#include "tests/support/e2e.h"
#include "tests/support/e2e_fixture.h"
#include "tests/support/http_get.h"
#include "tests/support/test_env.h"

namespace edgespool::testing {
namespace {

constexpr char kToken[] = "hmi-token-5b1f";

std::string SourceDir() {
  const char* d = std::getenv("EDGESPOOL_SOURCE_DIR");
  return d ? d : ".";
}

std::string Bin() {
  const char* b = std::getenv("EDGESPOOL_BIN");
  return b ? b : "edgespool";
}

class WebSocketTest : public DownlinkFixture {
 protected:
  // Settings a derived fixture adds to the agent's configuration.
  virtual std::multimap<std::string, std::string> Extra() const { return {}; }

  void SetUp() override {
    if (!CommandExists("mosquitto")) GTEST_SKIP() << "mosquitto not installed";
    ws_port_ = FreePort();
    metrics_port_ = FreePort();
    WriteFile(dir_.File("token"), std::string(kToken) + "\n");
    StartBroker();
    std::multimap<std::string, std::string> settings = Extra();
    settings.insert({{"websocket", "listen = \"127.0.0.1:" + std::to_string(ws_port_) + "\""},
                     {"websocket", "token_file = \"" + dir_.File("token") + "\""},
                     {"websocket", "allowed_origins = [\"http://hmi.local\"]"},
                     {"websocket", "max_sessions = 8"},
                     {"websocket", "max_frame_bytes = 4096"},
                     {"websocket", "idle_timeout = \"2s\""},
                     {"websocket", "status_interval = \"500ms\""},
                     {"metrics", "listen = \"127.0.0.1:" + std::to_string(metrics_port_) + "\""}});
    StartAgent(std::move(settings));
  }

  // Runs a Python test script with the ports; its exit status.
  int RunScript(const std::string& script, std::vector<std::string> extra, int timeout_ms) {
    std::vector<std::string> argv = {
        "/usr/bin/python3", SourceDir() + "/tests/integration/websocket/" + script,
        "--ws-port",        std::to_string(ws_port_),
        "--broker-port",    std::to_string(broker_->port()),
        "--token",          kToken,
        "--socket",         agent_->socket(),
        "--edgespool",      Bin()};
    argv.insert(argv.end(), extra.begin(), extra.end());
    Process p;
    log_ = dir_.File(script + ".log");
    if (!p.Start(argv, log_)) return -1;
    int st = p.Wait(timeout_ms);
    return st >= 0 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  }

  uint16_t ws_port_ = 0;
  uint16_t metrics_port_ = 0;
  std::string log_;
};

TEST_F(WebSocketTest, ProtocolAuthResumeAndLimits) {
  int rc = RunScript("ws_protocol_test.py", {}, 300000);
  if (rc == 77) GTEST_SKIP() << ReadFile(log_);
  EXPECT_EQ(rc, 0) << ReadFile(log_) << "\nagent log:\n" << agent_->log();
  std::cout << ReadFile(log_);
  // What the script did, as the agent counted it: 6 refusals (3 wrong or
  // missing tokens, 1 auth timeout, 1 origin, 1 over max_sessions), 5
  // sessions closed for a bad message (3 x 4400, 1003, 1009), 1 idle close,
  // and every session gone at the end.
  auto metric = [&](const char* name) {
    return MetricValue(HttpGet(metrics_port_, "/metrics"), name);
  };
  EXPECT_EQ(metric("edgespool_websocket_refused_total"), 6);
  EXPECT_EQ(metric("edgespool_websocket_closed_bad_total"), 5);
  EXPECT_EQ(metric("edgespool_websocket_closed_idle_total"), 1);
  EXPECT_TRUE(WaitUntil([&] { return metric("edgespool_websocket_sessions") == 0; }, 5000));
  EXPECT_GE(metric("edgespool_websocket_uplink_delivered_total"), 1);
  // The agent lived through all of it.
  EXPECT_NE(agent_->pid(), -1);
  EXPECT_EQ(agent_->Stop(), 0) << agent_->log();
}

TEST_F(WebSocketTest, StopClosesSessionsWith1001) {
  int rc =
      RunScript("ws_protocol_test.py",
                {"--only", "case_shutdown", "--agent-pid", std::to_string(agent_->pid())}, 60000);
  if (rc == 77) GTEST_SKIP() << ReadFile(log_);
  EXPECT_EQ(rc, 0) << ReadFile(log_) << "\nagent log:\n" << agent_->log();
  EXPECT_EQ(agent_->Stop(), 0) << agent_->log();  // exit status 0 after SIGTERM
}

// Sent rows deleted at once: a named uplink session that resumes after its
// rows were uploaded is told how many it missed (ws_protocol_test.py,
// case_uplink_retention).
class WebSocketNoRetentionTest : public WebSocketTest {
 protected:
  std::multimap<std::string, std::string> Extra() const override {
    return {{"store", "sent_retention = \"0s\""}};
  }
};

TEST_F(WebSocketNoRetentionTest, UplinkResumePastRetentionCountsMissed) {
  int rc = RunScript("ws_protocol_test.py", {"--only", "case_uplink_retention"}, 60000);
  if (rc == 77) GTEST_SKIP() << ReadFile(log_);
  EXPECT_EQ(rc, 0) << ReadFile(log_) << "\nagent log:\n" << agent_->log();
  std::cout << ReadFile(log_);
  EXPECT_EQ(
      MetricValue(HttpGet(metrics_port_, "/metrics"), "edgespool_websocket_uplink_dropped_total"),
      5);
}

TEST_F(WebSocketTest, BrowserPageShowsLiveMessage) {
  if (!CommandExists("chromium")) GTEST_SKIP() << "chromium not installed";
  const char* out = std::getenv("EDGESPOOL_SCREENSHOT");
  std::string shot = out ? out : dir_.File("page.png");
  int rc = RunScript("ws_browser_test.py", {"--screenshot", shot}, 120000);
  if (rc == 77) GTEST_SKIP() << ReadFile(log_);
  EXPECT_EQ(rc, 0) << ReadFile(log_) << "\nagent log:\n" << agent_->log();
  std::cout << ReadFile(log_);
}

}  // namespace
}  // namespace edgespool::testing
