// downlink_bench: broker -> local consumer through the agent, beside a
// direct subscription to the same broker in the same run (issue 17).
//
//   (a) direct: a libmosquitto QoS 1 subscriber on the broker (what an
//       application would do without edgespool: no durability on the gateway);
//   (b) edgespool: the agent (store.durability = full) subscribed to
//       edgespool/{node}/down/#, every message committed to the inbox before
//       its PUBACK, delivered to an SDK Consumer (window 1000, acks batched).
// Both take the same N 200-byte QoS 1 messages from one libmosquitto
// publisher (1000 in flight) and are timed from the first publish to the last
// message received. Then latency: 1000 msg/s for 5 s, publish -> receipt
// (steady clock, same machine), p50/p99 for both paths.
//
// Usage: downlink_bench [messages=100000]   (EDGESPOOL_BIN: the agent binary)
#include <mosquitto.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "agent/client/consumer.h"
#include "tests/support/e2e.h"
#include "tests/support/test_env.h"

namespace edgespool::bench {
namespace {

using Clock = std::chrono::steady_clock;
constexpr size_t kPayloadBytes = 200;

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

// "<ns>;" then padding to kPayloadBytes.
std::string Payload(int64_t ns) {
  std::string p = std::to_string(ns) + ";";
  p.resize(kPayloadBytes, 'x');
  return p;
}
int64_t PayloadNs(const std::string& p) { return std::atoll(p.c_str()); }

struct Mqtt {
  mosquitto* m = nullptr;
  std::atomic<int> connack{-1};
  explicit Mqtt(const std::string& id, bool clean, void* user = nullptr) {
    m = mosquitto_new(id.c_str(), clean, user ? user : this);
    mosquitto_int_option(m, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
    mosquitto_int_option(m, MOSQ_OPT_TCP_NODELAY, 1);
    mosquitto_max_inflight_messages_set(m, 1000);
  }
  ~Mqtt() {
    mosquitto_disconnect(m);
    mosquitto_loop_stop(m, true);
    mosquitto_destroy(m);
  }
  bool Connect(uint16_t port) {
    if (mosquitto_connect(m, "127.0.0.1", port, 60) != MOSQ_ERR_SUCCESS) return false;
    return mosquitto_loop_start(m) == MOSQ_ERR_SUCCESS;
  }
};

// Publishes n messages on topic, paced at rate msg/s (0: flat out), with at
// most 1000 unacknowledged; returns once every PUBACK came. One thread runs
// libmosquitto's loop itself (as uplink_bench does): its threaded mode
// was measured here at ~100 msg/s for this pattern.
void PublishAll(uint16_t port, const std::string& topic, int n, int rate) {
  struct Ctx {
    int connack = -1;
    int acked = 0;
  } ctx;
  mosquitto* m = mosquitto_new("bench-pub", true, &ctx);
  mosquitto_int_option(m, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
  mosquitto_int_option(m, MOSQ_OPT_TCP_NODELAY, 1);
  mosquitto_max_inflight_messages_set(m, 1000);
  mosquitto_connect_callback_set(m, [](mosquitto*, void* p, int rc) {
    static_cast<Ctx*>(p)->connack = rc;
  });
  mosquitto_publish_callback_set(m, [](mosquitto*, void* p, int) { ++static_cast<Ctx*>(p)->acked; });
  if (mosquitto_connect(m, "127.0.0.1", port, 60) != MOSQ_ERR_SUCCESS) {
    std::fprintf(stderr, "publisher cannot connect\n");
    std::exit(1);
  }
  while (ctx.connack < 0) mosquitto_loop(m, 100, 1);
  auto start = Clock::now();
  auto deadline = start + std::chrono::seconds(120);
  int published = 0;
  while (ctx.acked < n && Clock::now() < deadline) {
    while (published < n && published - ctx.acked < 1000) {
      if (rate > 0 && Clock::now() < start + std::chrono::microseconds(published * 1000000ll / rate)) {
        break;
      }
      std::string p = Payload(NowNs());
      if (mosquitto_publish(m, nullptr, topic.c_str(), static_cast<int>(p.size()), p.data(), 1,
                            false) != MOSQ_ERR_SUCCESS) {
        break;
      }
      ++published;
    }
    if (mosquitto_loop(m, rate > 0 ? 0 : 10, 1) != MOSQ_ERR_SUCCESS) break;
    if (rate > 0) std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  mosquitto_disconnect(m);
  mosquitto_destroy(m);
}

struct Run {
  double seconds = 0;
  size_t received = 0;
  std::vector<double> latency_ms;
};

double Percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())))];
}

struct DirectState {
  std::mutex mu;
  Run run;
  std::atomic<size_t> count{0};
};

Run Direct(uint16_t port, int n, int rate) {
  DirectState st;
  Mqtt sub("bench-direct", true, &st);
  mosquitto_message_callback_set(sub.m, [](mosquitto*, void* u, const mosquitto_message* msg) {
    auto* s = static_cast<DirectState*>(u);
    std::string p(static_cast<const char*>(msg->payload), static_cast<size_t>(msg->payloadlen));
    std::lock_guard<std::mutex> l(s->mu);
    s->run.latency_ms.push_back(static_cast<double>(NowNs() - PayloadNs(p)) / 1e6);
    s->count++;
  });
  if (!sub.Connect(port)) std::exit(1);
  mosquitto_subscribe(sub.m, nullptr, "bench/direct", 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto t0 = Clock::now();
  std::thread pub([&] { PublishAll(port, "bench/direct", n, rate); });
  while (st.count < static_cast<size_t>(n) && Clock::now() - t0 < std::chrono::seconds(120)) {
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  Run r;
  r.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  pub.join();
  std::lock_guard<std::mutex> l(st.mu);
  r.received = st.count;
  r.latency_ms = st.run.latency_ms;
  return r;
}

Run ThroughAgent(testing::AgentProcess& agent, uint16_t port, int n, int rate) {
  client::ConsumerOptions o;
  o.socket_path = agent.socket();
  o.session = "bench";
  o.filters = {"down/bench"};
  o.window = 1000;
  auto c = client::Consumer::Open(o);
  if (!c.ok()) {
    std::fprintf(stderr, "consumer: %s\n", c.status().ToString().c_str());
    std::exit(1);
  }
  Run r;
  auto t0 = Clock::now();
  std::thread pub([&] { PublishAll(port, "edgespool/test-node/down/bench", n, rate); });
  while (r.received < static_cast<size_t>(n) && Clock::now() - t0 < std::chrono::seconds(120)) {
    auto m = (*c)->Next(1000);
    if (!m.ok()) continue;
    r.latency_ms.push_back(static_cast<double>(NowNs() - PayloadNs(m->payload)) / 1e6);
    if (++r.received % 100 == 0 || r.received == static_cast<size_t>(n)) {
      (void)(*c)->AckUpTo(m->seq);
    }
  }
  r.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  pub.join();
  (void)(*c)->Close();
  return r;
}

// Waits until the agent's downlink subscription is in place: probes until
// one reaches a consumer.
bool WaitSubscribed(testing::AgentProcess& agent, uint16_t port) {
  client::ConsumerOptions o;
  o.socket_path = agent.socket();
  o.filters = {"down/probe"};
  auto c = client::Consumer::Open(o);
  if (!c.ok()) return false;
  Mqtt pub("bench-probe", true);
  if (!pub.Connect(port)) return false;
  for (int i = 0; i < 100; ++i) {
    mosquitto_publish(pub.m, nullptr, "edgespool/test-node/down/probe", 5, "probe", 1, false);
    if ((*c)->Next(200).ok()) return true;
  }
  return false;
}

int Main(int argc, char** argv) {
  int n = argc > 1 ? std::atoi(argv[1]) : 100000;
  mosquitto_lib_init();
  testing::TempDir dir;
  testing::MosquittoOptions mo;
  testing::Mosquitto broker(dir.path(), mo);
  if (!broker.Start()) {
    std::fprintf(stderr, "broker: %s\n", broker.log().c_str());
    return 1;
  }
  testing::AgentProcess agent(dir.path(), broker.url(),
                              {{"store", "durability = \"full\""},
                               {"downlink", "max_bytes = \"256MiB\""},
                               {"store", "max_bytes = \"1GiB\""}});
  if (!agent.Start() || !WaitSubscribed(agent, broker.port())) {
    std::fprintf(stderr, "agent: %s\n", agent.log().c_str());
    return 1;
  }
  Run direct = Direct(broker.port(), n, 0);
  Run through = ThroughAgent(agent, broker.port(), n, 0);
  double direct_rate = static_cast<double>(direct.received) / direct.seconds;
  double agent_rate = static_cast<double>(through.received) / through.seconds;
  std::printf("downlink_bench: %d QoS 1 messages of %zu bytes, one publisher (1000 in flight)\n",
              n, kPayloadBytes);
  std::printf("  %-34s %9s %9s %7s\n", "", "received", "msg/s", "ratio");
  std::printf("  %-34s %9zu %9.0f %7s\n", "direct subscription (libmosquitto)", direct.received,
              direct_rate, "1.00");
  std::printf("  %-34s %9zu %9.0f %7.2f   goal >= 0.80\n", "edgespool -> SDK Consumer (full)",
              through.received, agent_rate, agent_rate / direct_rate);
  Run direct_lat = Direct(broker.port(), 5000, 1000);
  Run agent_lat = ThroughAgent(agent, broker.port(), 5000, 1000);
  std::printf("  latency at 1000 msg/s, publish -> receipt (ms):  p50     p99\n");
  std::printf("  %-34s %7.2f %7.2f\n", "direct subscription", Percentile(direct_lat.latency_ms, 0.5),
              Percentile(direct_lat.latency_ms, 0.99));
  std::printf("  %-34s %7.2f %7.2f   goal p99 < 20\n", "edgespool -> SDK Consumer",
              Percentile(agent_lat.latency_ms, 0.5), Percentile(agent_lat.latency_ms, 0.99));
  (void)agent.Stop();
  mosquitto_lib_cleanup();
  bool complete = direct.received == static_cast<size_t>(n) &&
                  through.received == static_cast<size_t>(n);
  return complete ? 0 : 1;
}

}  // namespace
}  // namespace edgespool::bench

int main(int argc, char** argv) { return edgespool::bench::Main(argc, argv); }
