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
#include <unistd.h>

#include <cassert>
#include <chrono>
#include <cstdio>
#include <functional>
#include <optional>

#include "platform/loop.h"
#include "sync/transport.h"
#include "tests/support/rabbitmq.h"
#include "tests/support/raw_mqtt.h"
#include "tests/support/test_env.h"

namespace edgespool::sync {
namespace {

using ::edgespool::testing::RemainingLength;
using ::edgespool::testing::Utf8;

using edgespool::testing::FreePort;
using edgespool::testing::Process;
using edgespool::testing::TempDir;

using edgespool::testing::RabbitMq;

std::string Packet(char type, const std::string& body) {
  assert(body.size() < 128);
  return std::string(1, type) + static_cast<char>(body.size()) + body;
}

TEST(RabbitMqInteropTest, ConnectAndQos1PublishOverRawMqtt) {
  if (!testing::RabbitMqInstalled()) {
    GTEST_SKIP() << testing::kRabbitServer
                 << " not installed (apt-get install rabbitmq-server to run "
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
      publishes.push_back(
          Packet('\x32', Utf8("edgespool/interop") + pid + "payload " + std::to_string(id)));
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
