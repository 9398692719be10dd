// websocket_bench: the WebSocket listener (issue 23), each figure beside its
// baseline from the same run.
//
//   memory    the agent's RSS with no WebSocket session, then with 1,000 idle
//             sessions (authenticated, each subscribed to a downlink filter
//             nothing is published on): the difference per session;
//   uplink    N producer messages through the producer socket with no
//             session (baseline producer rate), then with 100 sessions all
//             subscribed to them: the producer's rate beside the baseline,
//             and messages/s delivered to the sessions (or dropped, counted,
//             when a client reads too slowly);
//   downlink  M central messages (mosquitto_pub -l, QoS 1) to 1 session
//             (baseline), then to 100 sessions that ack every 25: messages/s
//             delivered in total.
// Clients: tests/bench/websocket_bench_client.py (python3-websockets), one
// process with every session of a phase, so on 2 cores the Python client is
// part of what is measured; the ratios are what to compare.
//
// Usage: websocket_bench [uplink_messages=20000] [downlink_messages=5000]
//        (EDGESPOOL_BIN: the agent binary; EDGESPOOL_SOURCE_DIR: the tree)
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/e2e.h"
#include "tests/support/test_env.h"

namespace edgespool::bench {
namespace {

using testing::AgentProcess;
using testing::Mosquitto;
using testing::Process;
using testing::ReadFile;
using testing::TempDir;

constexpr char kToken[] = "bench-token";

long RssKiB(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return 0;
}

// The agent's CPU time (user + system) in seconds, from /proc: what a phase
// cost the agent itself, apart from the clients sharing the machine.
double CpuSeconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t paren = text.rfind(')');
  if (paren == std::string::npos) return 0;
  std::istringstream fields(text.substr(paren + 2));
  std::string f;
  double ticks = 0;
  for (int i = 3; i <= 15 && fields >> f; ++i) {
    if (i == 14 || i == 15) ticks += std::atof(f.c_str());  // utime, stime
  }
  return ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
}

std::string Env(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v ? v : fallback;
}

// A run of the Python client; its RESULT line (or "" on failure).
class Client {
 public:
  Client(const TempDir& dir, const AgentProcess& agent, uint16_t ws_port, uint16_t broker_port,
         std::vector<std::string> args)
      : log_(dir.File("client-" + std::to_string(++runs_) + ".log")) {
    std::vector<std::string> argv = {
        "/usr/bin/python3",
        Env("EDGESPOOL_SOURCE_DIR", ".") + "/tests/bench/websocket_bench_client.py"};
    argv.insert(argv.end(), args.begin(), args.end());
    std::vector<std::string> common = {"--ws-port",     std::to_string(ws_port),
                                       "--broker-port", std::to_string(broker_port),
                                       "--token",       kToken,
                                       "--socket",      agent.socket(),
                                       "--edgespool",   Env("EDGESPOOL_BIN", "edgespool")};
    argv.insert(argv.end(), common.begin(), common.end());
    ok_ = p_.Start(argv, log_);
  }
  bool WaitLine(const std::string& prefix, int timeout_ms) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (std::chrono::steady_clock::now() < deadline) {
      if (!Line(prefix).empty()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }
  std::string Line(const std::string& prefix) const {
    std::string text = ReadFile(log_);
    size_t at = text.find(prefix);
    if (at == std::string::npos) return {};
    return text.substr(at + prefix.size(), text.find('\n', at) - at - prefix.size());
  }
  int Wait(int timeout_ms) { return p_.Wait(timeout_ms); }
  bool ok() const { return ok_; }
  std::string log() const { return ReadFile(log_); }

 private:
  static inline int runs_ = 0;
  std::string log_;
  Process p_;
  bool ok_ = false;
};

double Field(const std::string& json, const std::string& key) {
  size_t at = json.find("\"" + key + "\": ");
  return at == std::string::npos ? -1 : std::atof(json.c_str() + at + key.size() + 4);
}

int Main(int argc, char** argv) {
  int uplink_n = argc > 1 ? std::atoi(argv[1]) : 20000;
  int downlink_n = argc > 2 ? std::atoi(argv[2]) : 5000;
  TempDir dir;
  testing::WriteFile(dir.File("token"), kToken);
  Mosquitto broker(dir.path());
  if (!broker.Start()) {
    std::fprintf(stderr, "mosquitto: %s\n", broker.log().c_str());
    return 1;
  }
  uint16_t ws_port = testing::FreePort();
  AgentProcess agent(dir.path(), broker.url(),
                     {{"websocket", "listen = \"127.0.0.1:" + std::to_string(ws_port) + "\""},
                      {"websocket", "token_file = \"" + dir.File("token") + "\""},
                      {"websocket", "max_sessions = 1100"},
                      {"websocket", "idle_timeout = \"10m\""}});
  if (!agent.Start()) {
    std::fprintf(stderr, "agent: %s\n", agent.log().c_str());
    return 1;
  }
  auto run = [&](std::vector<std::string> args, std::string* result, double* cpu) {
    double cpu0 = CpuSeconds(agent.pid());
    Client c(dir, agent, ws_port, broker.port(), std::move(args));
    bool done = c.ok() && c.WaitLine("RESULT ", 280000);
    *result = c.Line("RESULT ");
    c.Wait(10000);
    *cpu = CpuSeconds(agent.pid()) - cpu0;
    if (!done) std::fprintf(stderr, "client failed:\n%s\n", c.log().c_str());
    return done;
  };

  // --- memory ---------------------------------------------------------------------
  std::this_thread::sleep_for(std::chrono::seconds(1));
  long rss_none = RssKiB(agent.pid());
  std::string stop = dir.File("stop");
  Client idle(dir, agent, ws_port, broker.port(),
              {"idle", "--sessions", "1000", "--stop-file", stop});
  if (!idle.ok() || !idle.WaitLine("READY ", 120000)) {
    std::fprintf(stderr, "idle sessions failed:\n%s\n", idle.log().c_str());
    return 1;
  }
  std::this_thread::sleep_for(std::chrono::seconds(2));
  long rss_idle = RssKiB(agent.pid());
  testing::WriteFile(stop, "");
  idle.WaitLine("RESULT ", 60000);
  idle.Wait(10000);

  // --- uplink fan-out -----------------------------------------------------------------
  std::string base, fan;
  double base_cpu = 0, fan_cpu = 0, one_cpu = 0, hundred_cpu = 0;
  std::string n = std::to_string(uplink_n);
  if (!run({"uplink", "--sessions", "0", "--count", n}, &base, &base_cpu) ||
      !run({"uplink", "--sessions", "100", "--count", n}, &fan, &fan_cpu)) {
    return 1;
  }
  // --- downlink -------------------------------------------------------------------------
  std::string one, hundred;
  std::string m = std::to_string(downlink_n);
  if (!run({"downlink", "--sessions", "1", "--count", m}, &one, &one_cpu) ||
      !run({"downlink", "--sessions", "100", "--count", m}, &hundred, &hundred_cpu)) {
    return 1;
  }
  long rss_end = RssKiB(agent.pid());
  int stopped = agent.Stop();

  std::printf("websocket_bench (2 cores shared with the Python client and mosquitto)\n\n");
  std::printf("| memory | agent RSS |\n|---|---|\n");
  std::printf("| no WebSocket session | %.1f MiB |\n", rss_none / 1024.0);
  std::printf("| 1,000 idle sessions | %.1f MiB (+%.1f MiB, %.1f KiB per session; ratio %.2fx) |\n",
              rss_idle / 1024.0, (rss_idle - rss_none) / 1024.0,
              static_cast<double>(rss_idle - rss_none) / 1000.0,
              static_cast<double>(rss_idle) / static_cast<double>(rss_none));
  std::printf("| after the load phases | %.1f MiB |\n\n", rss_end / 1024.0);
  double base_rate = Field(base, "producer_msgs_per_s");
  double fan_rate = Field(fan, "producer_msgs_per_s");
  std::printf(
      "| uplink, %d messages of 100 B | producer msg/s | agent CPU | delivered to sessions |\n",
      uplink_n);
  std::printf("|---|---|---|---|\n");
  std::printf("| no session (baseline) | %.0f | %.2f s | - |\n", base_rate, base_cpu);
  std::printf(
      "| 100 sessions | %.0f (%.2fx baseline) | %.2f s (%.2fx) | %.0f msg/s in total, "
      "%.0f delivered, %.0f dropped (counted), complete=%s |\n\n",
      fan_rate, fan_rate / base_rate, fan_cpu, fan_cpu / base_cpu, Field(fan, "delivered_per_s"),
      Field(fan, "delivered"), Field(fan, "dropped"),
      fan.find("\"complete\": true") != std::string::npos ? "yes" : "no");
  double one_per_k = one_cpu * 1000 / Field(one, "delivered");
  double hundred_per_k = hundred_cpu * 1000 / Field(hundred, "delivered");
  std::printf(
      "| downlink, %d central messages | delivered msg/s (total) | agent CPU per 1k "
      "deliveries | time |\n|---|---|---|---|\n",
      downlink_n);
  std::printf("| 1 session (baseline) | %.0f | %.1f ms | %.2f s |\n", Field(one, "delivered_per_s"),
              one_per_k * 1000, Field(one, "elapsed_s"));
  std::printf(
      "| 100 sessions | %.0f (%.1fx baseline) | %.1f ms (%.2fx) | %.2f s, %.0f of %d "
      "delivered |\n",
      Field(hundred, "delivered_per_s"),
      Field(hundred, "delivered_per_s") / Field(one, "delivered_per_s"), hundred_per_k * 1000,
      hundred_per_k / one_per_k, Field(hundred, "elapsed_s"), Field(hundred, "delivered"),
      downlink_n * 100);
  std::printf("\nagent stopped: %d\n", stopped);
  return 0;
}

}  // namespace
}  // namespace edgespool::bench

int main(int argc, char** argv) { return edgespool::bench::Main(argc, argv); }
