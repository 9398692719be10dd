// request_bench: a request's round trip through the agent against a direct
// MQTT 5 request/response on the same broker, in the same run (issue 22).
//
//   (a) direct: a libmosquitto MQTT 5 client publishes the request (QoS 1,
//       response topic + correlation data) and waits for the answer on its
//       own subscription: what an application would do without edgespool;
//   (b) edgespool: Producer::Request over the agent's socket; the agent
//       publishes it (MQTT 5, QoS 1) and hands the answer back.
// One central responder (libmosquitto, MQTT 5, QoS 1) answers both. One
// request in flight at a time; the two paths alternate in blocks of 100 so
// that drift on this shared machine hits both alike. Prints p50/p99/max per
// path and what the agent adds (goal: p99 + 2 ms at most). Then 1,000
// requests in flight at once through the agent: the time they all take.
//
// Usage: request_bench [requests_per_path=2000]   (EDGESPOOL_BIN: the agent)
#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <mutex>
#include <string>
#include <vector>

#include "agent/client/producer.h"
#include "tests/support/central_client.h"
#include "tests/support/e2e.h"
#include "tests/support/test_env.h"

namespace edgespool::bench {
namespace {

using Clock = std::chrono::steady_clock;
using testing::CentralClient;
using testing::CentralMessage;

double Us(Clock::duration d) {
  return static_cast<double>(std::chrono::duration_cast<std::chrono::nanoseconds>(d).count()) /
         1000.0;
}

struct Figures {
  double p50, p99, max;
};
Figures Summarize(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  auto at = [&](double q) { return v[static_cast<size_t>(q * static_cast<double>(v.size() - 1))]; };
  return {at(0.5), at(0.99), v.back()};
}

// The direct MQTT 5 requester: one request at a time.
class DirectRequester {
 public:
  explicit DirectRequester(uint16_t port)
      : client_(port, 5, "direct-requester", [this](CentralClient&, const CentralMessage& m) {
          std::lock_guard<std::mutex> lock(mu_);
          answered_ = m.correlation;
          cv_.notify_all();
        }) {}
  bool Start() { return client_.Start({"direct/reply/#"}); }
  bool Request(int i, const std::string& payload) {
    std::string id = "d" + std::to_string(i);
    if (!client_.Publish("svc/bench", payload, "direct/reply/" + id, id)) return false;
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(5), [&] { return answered_ == id; });
  }

 private:
  CentralClient client_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::string answered_;
};

int Run(int n) {
  testing::TempDir dir;
  // Without TCP_NODELAY mosquitto holds small packets back (Nagle against
  // delayed ACKs): 40+ ms per round trip on loopback, for both paths alike.
  testing::MosquittoOptions mo;
  mo.extra_config = "set_tcp_nodelay true\n";
  testing::Mosquitto broker(dir.path(), mo);
  if (!broker.Start()) return std::fprintf(stderr, "broker: %s\n", broker.log().c_str()), 1;
  testing::AgentProcess agent(dir.path(), broker.url(), {{"uplink", "protocol = 5"}});
  if (!agent.Start()) return std::fprintf(stderr, "agent: %s\n", agent.log().c_str()), 1;
  CentralClient responder(broker.port(), 5, "responder", testing::EchoResponder);
  if (!responder.Start({"svc/#"})) return std::fprintf(stderr, "responder failed\n"), 1;
  DirectRequester direct(broker.port());
  if (!direct.Start()) return std::fprintf(stderr, "direct requester failed\n"), 1;
  client::ProducerOptions po;
  po.socket_path = agent.socket();
  auto producer = client::Producer::Connect(po);
  if (!producer.ok()) return std::fprintf(stderr, "%s\n", producer.status().ToString().c_str()), 1;
  client::Producer& p = **producer;
  // Until the agent's reply subscription is in place.
  client::RequestOptions probe;
  probe.timeout_ms = 500;
  for (int i = 0; i < 100 && !p.Request("svc/bench", "warm", probe).get().status.ok(); ++i) {
  }
  std::string payload(100, 'x');
  for (int i = 0; i < 200; ++i) {  // warm both paths
    (void)p.Request("svc/bench", payload).get();
    (void)direct.Request(-i - 1, payload);
  }
  std::vector<double> via_agent, via_direct;
  int failures = 0;
  for (int block = 0; block * 100 < n; ++block) {
    for (int i = 0; i < 100; ++i) {
      auto t0 = Clock::now();
      bool ok = direct.Request(block * 100 + i, payload);
      via_direct.push_back(Us(Clock::now() - t0));
      failures += ok ? 0 : 1;
    }
    for (int i = 0; i < 100; ++i) {
      auto t0 = Clock::now();
      auto r = p.Request("svc/bench", payload).get();
      via_agent.push_back(Us(Clock::now() - t0));
      failures += r.status.ok() && r.payload == "re:" + payload ? 0 : 1;
    }
  }
  Figures d = Summarize(via_direct), a = Summarize(via_agent);
  std::printf("request round trip, %d each, 100-byte payload, QoS 1, one in flight (us)\n", n);
  std::printf("  %-26s p50 %8.0f  p99 %8.0f  max %8.0f\n", "direct MQTT 5 (libmosquitto)", d.p50,
              d.p99, d.max);
  std::printf("  %-26s p50 %8.0f  p99 %8.0f  max %8.0f\n", "through the agent", a.p50, a.p99,
              a.max);
  std::printf("  added by the agent:        p50 %8.0f  p99 %8.0f   (goal: p99 <= 2000)\n",
              a.p50 - d.p50, a.p99 - d.p99);
  std::printf("  ratio agent/direct:        p50 %8.2f  p99 %8.2f\n", a.p50 / d.p50, a.p99 / d.p99);

  // Throughput with 1,000 in flight at once.
  std::vector<std::future<client::RequestResult>> futures;
  auto t0 = Clock::now();
  for (int i = 0; i < 1000; ++i) futures.push_back(p.Request("svc/bench", payload));
  int wrong = 0;
  for (auto& f : futures) wrong += f.get().status.ok() ? 0 : 1;
  double ms = Us(Clock::now() - t0) / 1000.0;
  std::printf("1000 concurrent requests through the agent: %.0f ms (%.0f req/s), %d failed\n", ms,
              1000.0 / ms * 1000.0, wrong);
  if (failures + wrong > 0) std::printf("FAILURES: %d\n", failures + wrong);
  return failures + wrong > 0 ? 1 : 0;
}

}  // namespace
}  // namespace edgespool::bench

int main(int argc, char** argv) {
  int n = argc > 1 ? std::atoi(argv[1]) : 2000;
  return edgespool::bench::Run(n < 100 ? 100 : n);
}
