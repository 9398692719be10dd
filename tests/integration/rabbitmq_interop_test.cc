// Interop: our transport against RabbitMQ's MQTT plugin, an independent
// MQTT 3.1.1 implementation (TESTING.md, "RabbitMQ as a second broker").
// Raw MQTT bytes for now: CONNECT/CONNACK and QoS 1 PUBLISH/PUBACK.
//
// Skips unless Debian's rabbitmq-server is installed (it is not a build
// dependency). Costs ~10 s when it runs: RabbitMQ's start on a fresh data
// directory dominates.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <cassert>
#include <chrono>
#include <cstdio>
#include <functional>
#include <optional>
#include <unistd.h>

#include "platform/loop.h"
#include "sync/transport.h"
#include "tests/support/test_env.h"
#include "tests/support/raw_mqtt.h"

namespace edgespool::sync {
namespace {

using ::edgespool::testing::RemainingLength;
using ::edgespool::testing::Utf8;

using edgespool::testing::FreePort;
using edgespool::testing::Process;
using edgespool::testing::TempDir;

constexpr const char* kRabbitServer = "/usr/lib/rabbitmq/bin/rabbitmq-server";

std::string Packet(char type, const std::string& body) {
  assert(body.size() < 128);
  return std::string(1, type) + static_cast<char>(body.size()) + body;
}

// RabbitMQ on free loopback ports, all state in a TempDir; stopped (and its
// epmd killed) on destruction.
class RabbitMq {
 public:
  RabbitMq()
      : amqp_port_(FreePort()), mqtt_port_(FreePort()), dist_port_(FreePort()),
        epmd_port_(FreePort()) {}
  ~RabbitMq() { Stop(); }

  bool Start() {
    const std::string& t = dir_.path();
    testing::WriteFile(dir_.File("rabbitmq.conf"),
                       "listeners.tcp.default = 127.0.0.1:" + std::to_string(amqp_port_) +
                           "\nmqtt.listeners.tcp.default = 127.0.0.1:" +
                           std::to_string(mqtt_port_) + "\n");
    std::map<std::string, std::string> env = {
        {"HOME", t + "/home"},
        {"RABBITMQ_NODENAME", "interop" + std::to_string(getpid()) + "@localhost"},
        {"RABBITMQ_CONFIG_FILE", t + "/rabbitmq.conf"},
        {"RABBITMQ_CONF_ENV_FILE", t + "/none"},
        {"RABBITMQ_MNESIA_BASE", t + "/mnesia"},
        {"RABBITMQ_LOG_BASE", t + "/log"},
        {"RABBITMQ_PID_FILE", t + "/rabbit.pid"},
        {"RABBITMQ_ENABLED_PLUGINS_FILE", t + "/enabled_plugins"},
        {"RABBITMQ_ENABLED_PLUGINS", "rabbitmq_mqtt"},
        {"RABBITMQ_DIST_PORT", std::to_string(dist_port_)},
        {"ERL_EPMD_PORT", std::to_string(epmd_port_)},
        {"ERL_EPMD_ADDRESS", "127.0.0.1"},
        {"RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS", "-kernel inet_dist_use_interface {127,0,0,1}"},
    };
    ::mkdir((t + "/home").c_str(), 0755);
    if (!server_.Start({kRabbitServer}, dir_.File("server.log"), env)) return false;
    started_ = true;
    return testing::WaitForPort(mqtt_port_, 60000);
  }

  void Stop() {
    if (!started_) return;
    started_ = false;
    server_.Signal(SIGTERM);
    if (server_.Wait(15000) == -1) {
      server_.Signal(SIGKILL);
      server_.Wait(5000);
    }
    // epmd outlives the node; it was started on our private port.
    Process epmd;
    if (epmd.Start({"epmd", "-kill"}, dir_.File("epmd.log"),
                   {{"ERL_EPMD_PORT", std::to_string(epmd_port_)}})) {
      epmd.Wait(5000);
    }
  }

  uint16_t mqtt_port() const { return mqtt_port_; }
  std::string log() const { return testing::ReadFile(dir_.File("server.log")); }

 private:
  TempDir dir_;
  uint16_t amqp_port_, mqtt_port_, dist_port_, epmd_port_;
  Process server_;
  bool started_ = false;
};

TEST(RabbitMqInteropTest, ConnectAndQos1PublishOverRawMqtt) {
  if (access(kRabbitServer, X_OK) != 0) {
    GTEST_SKIP() << kRabbitServer << " not installed (apt-get install rabbitmq-server to run "
                 << "this interop test)";
  }
  auto t0 = std::chrono::steady_clock::now();
  RabbitMq rabbit;
  ASSERT_TRUE(rabbit.Start()) << "RabbitMQ did not open its MQTT port:\n" << rabbit.log();
  auto started = std::chrono::steady_clock::now();

  auto loop_or = platform::Loop::Create();
  ASSERT_TRUE(loop_or.ok());
  platform::Loop& loop = **loop_or;
  auto run_until = [&](const std::function<bool()>& pred, int timeout_ms) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    platform::TimerHandle tick(loop);
    tick.Start(5, 5, [] {});
    while (!pred() && std::chrono::steady_clock::now() < deadline) loop.RunOnce();
    return pred();
  };

  {
    auto url = ParseBrokerUrl("mqtt://127.0.0.1:" + std::to_string(rabbit.mqtt_port()));
    ASSERT_TRUE(url.ok());
    std::optional<Result<std::unique_ptr<Transport>>> res;
    auto req = Connect(loop, *url, TlsOptions{},
                       [&](Result<std::unique_ptr<Transport>> r) { res.emplace(std::move(r)); });
    ASSERT_TRUE(run_until([&] { return res.has_value(); }, 10000));
    ASSERT_TRUE(res->ok()) << res->status().ToString();
    std::unique_ptr<Transport> t = std::move(*res).value();
    std::string rx;
    std::optional<Status> end;
    t->StartReading([&](const char* d, size_t n) { rx.append(d, n); },
                    [&](const Status& why) { end = why; });

    // CONNECT, MQTT 3.1.1 (RabbitMQ closes an MQTT 5 CONNECT without CONNACK).
    std::string connect = Utf8("MQTT") + std::string("\x04\x02\x00\x3c", 4) + Utf8("es-interop");
    ASSERT_TRUE(t->Write({Packet('\x10', connect)}).ok());
    ASSERT_TRUE(run_until([&] { return rx.size() >= 4 || end.has_value(); }, 10000));
    ASSERT_EQ(rx.substr(0, 4), std::string("\x20\x02\x00\x00", 4)) << rabbit.log();
    rx.erase(0, 4);

    // Ten QoS 1 PUBLISHes in one write; ten PUBACKs, in order.
    constexpr int kMessages = 10;
    std::vector<std::string> publishes;
    std::string expected;
    for (int id = 1; id <= kMessages; ++id) {
      std::string pid{0, static_cast<char>(id)};
      publishes.push_back(Packet('\x32', Utf8("edgespool/interop") + pid + "payload " +
                                             std::to_string(id)));
      expected += std::string("\x40\x02", 2) + pid;
    }
    ASSERT_TRUE(t->Write(std::move(publishes)).ok());
    ASSERT_TRUE(run_until([&] { return rx.size() >= expected.size() || end.has_value(); }, 10000))
        << "got " << rx.size() << " bytes of PUBACKs";
    EXPECT_EQ(rx, expected);
    EXPECT_FALSE(end.has_value()) << end->ToString();

    ASSERT_TRUE(t->Write({std::string("\xe0\x00", 2)}).ok());  // DISCONNECT
    EXPECT_TRUE(run_until([&] { return end.has_value(); }, 5000));
    t.reset();
    run_until([] { return false; }, 20);
  }
  rabbit.Stop();
  auto secs = [](auto a, auto b) { return std::chrono::duration<double>(b - a).count(); };
  std::printf("RabbitMQ interop: start %.1f s, test+stop %.1f s\n", secs(t0, started),
              secs(started, std::chrono::steady_clock::now()));
}

}  // namespace
}  // namespace edgespool::sync
