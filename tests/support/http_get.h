// A blocking HTTP/1.1 GET against the agent's metrics endpoint on
// 127.0.0.1, and reading one sample out of a Prometheus exposition, for the
// tests that look at /metrics, /healthz and /readyz from outside the agent.
#pragma once

#include <cstdint>
#include <string>

namespace edgespool::testing {

// The whole response (status line, headers, body), read until the server
// closes; "" if nothing listens on the port.
std::string HttpGet(uint16_t port, const std::string& path);

// The value of the unlabelled sample `name` in an exposition body; -1 when
// it is not there.
double MetricValue(const std::string& body, const std::string& name);

}  // namespace edgespool::testing
