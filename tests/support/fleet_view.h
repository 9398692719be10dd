// `edgespool fleet --http/--metrics` as a real process, for the tests and
// the fleet benchmark: started on port 0, it prints the URLs it listens on,
// which Start() reads back.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tests/support/test_env.h"

namespace edgespool::testing {

class FleetView {
 public:
  // extra: more flags, e.g. {"--stale", "3s"}.
  FleetView(std::string dir, std::string broker_url, std::vector<std::string> extra = {});
  ~FleetView();
  // Starts with --http 127.0.0.1:0 --metrics 127.0.0.1:0 and waits until
  // both ports are printed (false after 10 s, or if it exits).
  bool Start();
  int Stop();  // SIGTERM; the exit status (waitpid form), -1 on timeout
  uint16_t http_port() const { return http_port_; }
  uint16_t metrics_port() const { return metrics_port_; }
  pid_t pid() const { return process_.pid(); }
  std::string log() const;

 private:
  std::string dir_, broker_url_;
  std::vector<std::string> extra_;
  Process process_;
  uint16_t http_port_ = 0, metrics_port_ = 0;
};

// The body of an HTTP response (after the blank line), "" if none.
std::string HttpBody(const std::string& response);

}  // namespace edgespool::testing
