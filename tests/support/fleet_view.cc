#include "tests/support/fleet_view.h"

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <thread>

namespace edgespool::testing {

namespace {

// The port in a line "<what>: http://127.0.0.1:PORT/...", 0 if absent.
uint16_t PortAfter(const std::string& log, const std::string& what) {
  size_t at = log.find(what + ": http://127.0.0.1:");
  if (at == std::string::npos) return 0;
  return static_cast<uint16_t>(std::atoi(log.c_str() + at + what.size() + 19));
}

}  // namespace

FleetView::FleetView(std::string dir, std::string broker_url, std::vector<std::string> extra)
    : dir_(std::move(dir)), broker_url_(std::move(broker_url)), extra_(std::move(extra)) {}

FleetView::~FleetView() = default;

std::string FleetView::log() const { return ReadFile(dir_ + "/fleet.log"); }

bool FleetView::Start() {
  std::vector<std::string> argv = {std::getenv("EDGESPOOL_BIN"),
                                   "fleet",
                                   "--broker",
                                   broker_url_,
                                   "--http",
                                   "127.0.0.1:0",
                                   "--metrics",
                                   "127.0.0.1:0"};
  argv.insert(argv.end(), extra_.begin(), extra_.end());
  if (!process_.Start(argv, dir_ + "/fleet.log")) return false;
  for (int i = 0; i < 200; ++i) {
    std::string out = log();
    http_port_ = PortAfter(out, "dashboard");
    metrics_port_ = PortAfter(out, "metrics");
    if (http_port_ && metrics_port_) return true;
    if (!process_.running()) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

int FleetView::Stop() {
  process_.Signal(SIGTERM);
  return process_.Wait(10000);
}

std::string HttpBody(const std::string& response) {
  size_t at = response.find("\r\n\r\n");
  return at == std::string::npos ? "" : response.substr(at + 4);
}

}  // namespace edgespool::testing
