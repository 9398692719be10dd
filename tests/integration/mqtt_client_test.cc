// The MQTT client against a real mosquitto (plain TCP), for protocol 4 and 5:
// 100,000 QoS 1 publishes through a window of 1000 with a subscriber that
// must see every one in order; a broker restart mid-stream (nothing lost, in-
// flight resent in order); a SIGSTOPped broker found dead by keepalive; a
// wrong password that backs off instead of spinning.
//
// Counting follows TESTING.md's queue checker: lost = acked to us but never
// delivered to the subscriber, unexpected = delivered but never published,
// duplicated and reordered are reported.
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "platform/log.h"
#include "platform/loop.h"
#include "sync/mqtt/client.h"
#include "tests/support/test_env.h"

namespace edgespool::sync::mqtt {
namespace {

using Clock = std::chrono::steady_clock;

double CpuSeconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

int64_t MsSince(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t).count();
}

std::string Payload(uint64_t seq) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%010llu:", static_cast<unsigned long long>(seq));
  std::string p(buf);
  p.resize(100, 'x');  // ~100-byte telemetry
  return p;
}

uint64_t SeqOf(std::string_view payload) {
  return std::stoull(std::string(payload.substr(0, 10)));
}

// Publishes seq 0..total-1 on one topic, keeping the window full.
struct Publisher : ClientListener {
  void Fill() {
    if (paused) return;
    while (client->connected() && next < total && client->capacity() > 0) {
      OutgoingMessage m;
      m.topic = topic;
      m.payload = Payload(next);
      m.qos = 1;
      if (client->protocol() == kProtocol5) m.user_properties = {{"es-seq", std::to_string(next)}};
      auto t = client->Publish(std::move(m));
      ASSERT_TRUE(t.ok()) << t.status().ToString();
      seq_of[t.value()] = next++;
    }
  }
  void OnConnected(const ConnectInfo& info) override {
    ++connects;
    connected_at = Clock::now();
  }
  void OnDisconnected(const Status& why) override {
    errors.push_back(why);
    disconnected_at = Clock::now();
  }
  void OnWritable() override { Fill(); }
  void OnPublishAcked(uint64_t token, const Status& st, uint8_t rc) override {
    ASSERT_TRUE(st.ok()) << st.ToString();
    auto it = seq_of.find(token);
    ASSERT_NE(it, seq_of.end()) << "ack for an unknown token";
    ASSERT_TRUE(acked.insert(it->second).second) << "acked twice: " << it->second;
    seq_of.erase(it);
  }

  std::unique_ptr<Client> client;
  std::string topic = "edgespool/test/seq";
  uint64_t total = 0;
  uint64_t next = 0;
  bool paused = false;
  std::map<uint64_t, uint64_t> seq_of;  // token -> seq
  std::set<uint64_t> acked;
  int connects = 0;
  std::vector<Status> errors;
  Clock::time_point connected_at, disconnected_at;
};

struct Subscriber : ClientListener {
  void OnConnected(const ConnectInfo&) override { ++connects; }
  void OnSubscribed(const std::vector<uint8_t>& rcs) override {
    for (uint8_t rc : rcs) EXPECT_LT(rc, 0x80);
    ++subacks;
  }
  void OnMessage(const IncomingMessage& m) override {
    uint64_t seq = SeqOf(m.payload);
    if (++count[seq] == 1) {
      if (!first_order.empty() && seq < first_order.back()) ++reordered;
      first_order.push_back(seq);
    } else {
      ++duplicated;
    }
    ++received;
  }
  void OnPublishAcked(uint64_t, const Status&, uint8_t) override {}

  std::unique_ptr<Client> client;
  int connects = 0;
  int subacks = 0;
  uint64_t received = 0;
  uint64_t duplicated = 0;
  uint64_t reordered = 0;
  std::map<uint64_t, int> count;
  std::vector<uint64_t> first_order;
};

class MqttClientTest : public ::testing::TestWithParam<uint8_t> {
 protected:
  void SetUp() override {
    if (!testing::CommandExists("mosquitto")) GTEST_SKIP() << "mosquitto not installed";
    auto l = platform::Loop::Create();
    ASSERT_TRUE(l.ok()) << l.status().ToString();
    loop_ = std::move(l).value();
    platform::IgnoreSigpipe();
  }
  void TearDown() override {
    if (!loop_) return;
    for (Client* client : {pub_.client.get(), sub_.client.get()}) {
      if (!client) continue;
      bool stopped = false;
      client->Stop([&] { stopped = true; });
      RunUntil([&] { return stopped; }, 3000);
    }
    pub_.client.reset();
    sub_.client.reset();
    for (int i = 0; i < 5; ++i) loop_->RunNoWait();
    if (broker_ && HasFailure()) std::printf("mosquitto log:\n%s\n", broker_->log().c_str());
    broker_.reset();
  }

  testing::Mosquitto& StartBroker(testing::MosquittoOptions mo = {}) {
    broker_ = std::make_unique<testing::Mosquitto>(dir_.path(), mo);
    EXPECT_TRUE(broker_->Start()) << broker_->log();
    return *broker_;
  }

  bool RunUntil(const std::function<bool()>& pred, int timeout_ms) {
    auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
    // A timer keeps RunOnce from blocking past the deadline with no I/O.
    platform::TimerHandle wake(*loop_);
    wake.Start(20, 20, [] {});
    while (!pred() && Clock::now() < deadline) loop_->RunOnce();
    return pred();
  }
  void RunFor(int ms) {
    auto until = Clock::now() + std::chrono::milliseconds(ms);
    RunUntil([&] { return Clock::now() >= until; }, ms + 100);
  }

  ClientOptions Options(const std::string& url, const std::string& client_id) {
    ClientOptions o;
    o.url = url;
    o.session.protocol = GetParam();
    o.session.client_id = client_id + "-v" + std::to_string(GetParam());
    o.session.keepalive_s = 10;
    o.session.inflight = 1000;
    o.session.ack_timeout_ms = 10000;
    o.session.connect_timeout_ms = 2000;
    o.backoff_initial_ms = 100;
    o.backoff_max_ms = 1000;
    o.backoff_seed = 1234;
    return o;
  }

  void StartSubscriber(const std::string& url, bool persistent) {
    ClientOptions o = Options(url, "sub");
    o.subscriptions = {{pub_.topic, 1}};
    if (persistent) {
      o.session.clean_start = false;
      o.session.session_expiry_s = 3600;
    }
    auto c = Client::Create(*loop_, o, &sub_);
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    sub_.client = std::move(c).value();
    sub_.client->Start();
    ASSERT_TRUE(RunUntil([&] { return sub_.subacks > 0; }, 5000)) << "subscriber never subscribed";
  }

  void StartPublisher(const std::string& url, uint64_t total, ClientOptions* override = nullptr) {
    ClientOptions o = override ? *override : Options(url, "pub");
    pub_.total = total;
    auto c = Client::Create(*loop_, o, &pub_);
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    pub_.client = std::move(c).value();
    pub_.client->Start();
  }

  // Lost / unexpected per the queue checker.
  void CheckDelivery(uint64_t total) {
    uint64_t lost = 0, unexpected = 0;
    for (uint64_t s : pub_.acked) lost += sub_.count.count(s) ? 0 : 1;
    for (const auto& [s, n] : sub_.count) unexpected += s < total ? 0 : 1;
    EXPECT_EQ(pub_.acked.size(), total);
    EXPECT_EQ(lost, 0u);
    EXPECT_EQ(unexpected, 0u);
    RecordProperty("duplicated", std::to_string(sub_.duplicated));
    RecordProperty("reordered", std::to_string(sub_.reordered));
    std::printf("[ figures  ] protocol %d: acked %zu, received %llu, lost %llu, unexpected %llu, "
                "duplicated %llu, reordered %llu\n",
                GetParam(), pub_.acked.size(), static_cast<unsigned long long>(sub_.received),
                static_cast<unsigned long long>(lost), static_cast<unsigned long long>(unexpected),
                static_cast<unsigned long long>(sub_.duplicated),
                static_cast<unsigned long long>(sub_.reordered));
  }

  testing::TempDir dir_;
  std::unique_ptr<platform::Loop> loop_;
  std::unique_ptr<testing::Mosquitto> broker_;
  Publisher pub_;
  Subscriber sub_;
};

TEST_P(MqttClientTest, HundredThousandQos1InOrderThroughAWindowOf1000) {
  testing::Mosquitto& broker = StartBroker();
  ASSERT_FALSE(HasFailure());
  StartSubscriber(broker.url(), false);
  constexpr uint64_t kTotal = 100000;
  auto t0 = Clock::now();
  double cpu0 = CpuSeconds();
  StartPublisher(broker.url(), kTotal);
  // Generous: ~5 s on an idle machine, but sanitizers and a loaded CI box
  // slow the broker and us by 5-10x.
  ASSERT_TRUE(RunUntil([&] { return pub_.acked.size() == kTotal && sub_.count.size() == kTotal; },
                       180000))
      << "acked " << pub_.acked.size() << ", received " << sub_.count.size();
  int64_t ms = MsSince(t0);
  double cpu_us = (CpuSeconds() - cpu0) * 1e6 / kTotal;
  EXPECT_EQ(pub_.client->inflight(), 0u);
  EXPECT_EQ(sub_.duplicated, 0u);
  EXPECT_EQ(sub_.reordered, 0u);
  EXPECT_EQ(pub_.connects, 1);
  CheckDelivery(kTotal);
  std::printf("[ figures  ] protocol %d: %llu QoS 1 publishes acked and delivered in %lld ms "
              "(%.0f msg/s), %llu wire bytes, window %u, %.1f CPU us/msg for publisher and "
              "subscriber together\n",
              GetParam(), static_cast<unsigned long long>(kTotal), static_cast<long long>(ms),
              kTotal * 1000.0 / std::max<int64_t>(ms, 1),
              static_cast<unsigned long long>(pub_.client->wire_bytes()),
              pub_.client->connect_info().window, cpu_us);
}

TEST_P(MqttClientTest, BrokerRestartMidStreamLosesNothing) {
  testing::MosquittoOptions mo;
  mo.persistence = true;
  testing::Mosquitto& broker = StartBroker(mo);
  ASSERT_FALSE(HasFailure());
  StartSubscriber(broker.url(), true);
  constexpr uint64_t kTotal = 20000;
  StartPublisher(broker.url(), kTotal);
  ASSERT_TRUE(RunUntil([&] { return pub_.acked.size() >= 6000; }, 30000));
  size_t inflight_at_stop = pub_.client->inflight();
  // SIGTERM: mosquitto writes its persistence file (SIGKILL would lose the
  // subscriber's queue in the broker itself; see TESTING.md).
  broker.Stop();
  ASSERT_TRUE(RunUntil([&] { return !pub_.client->connected(); }, 5000));
  RunFor(300);
  ASSERT_TRUE(broker.Start()) << broker.log();
  auto up = Clock::now();
  ASSERT_TRUE(RunUntil([&] { return pub_.connects >= 2; }, 10000)) << "no reconnect";
  int64_t reconnect_ms = MsSince(up);
  // Within the backoff ceiling (1 s) plus the connect itself.
  EXPECT_LE(reconnect_ms, 2500);
  ASSERT_TRUE(RunUntil([&] { return pub_.acked.size() == kTotal && sub_.count.size() == kTotal; },
                       60000))
      << "acked " << pub_.acked.size() << ", received " << sub_.count.size();
  CheckDelivery(kTotal);
  EXPECT_EQ(sub_.reordered, 0u);
  std::printf("[ figures  ] protocol %d: %zu in flight at the stop; reconnected %lld ms after the "
              "broker was back; first error: %s\n",
              GetParam(), inflight_at_stop, static_cast<long long>(reconnect_ms),
              pub_.errors.empty() ? "-" : pub_.errors[0].ToString().c_str());
}

TEST_P(MqttClientTest, KeepaliveDetectsAStoppedBrokerAndReconnects) {
  testing::Mosquitto& broker = StartBroker();
  ASSERT_FALSE(HasFailure());
  ClientOptions o = Options(broker.url(), "ka");
  o.session.keepalive_s = 1;
  o.session.connect_timeout_ms = 1000;
  StartPublisher(broker.url(), 0, &o);
  ASSERT_TRUE(RunUntil([&] { return pub_.client->connected(); }, 5000));
  RunFor(1200);  // at least one PINGREQ/PINGRESP round while healthy
  EXPECT_TRUE(pub_.client->connected());
  broker.Pause();
  auto paused = Clock::now();
  // Some publishes go out into the void; they must survive.
  pub_.total = 10;
  pub_.Fill();
  ASSERT_TRUE(RunUntil([&] { return !pub_.client->connected(); }, 5000));
  int64_t detect_ms = MsSince(paused);
  EXPECT_LE(detect_ms, 1500 + 500);  // 1.5 x keepalive plus a tick and slack
  ASSERT_FALSE(pub_.errors.empty());
  EXPECT_EQ(pub_.errors[0].code(), Code::kTimeout) << pub_.errors[0].ToString();
  EXPECT_NE(pub_.errors[0].message().find("keepalive"), std::string::npos)
      << pub_.errors[0].ToString();
  RunFor(2000);  // connects to a stopped broker time out (no CONNACK), with backoff
  size_t attempts_while_stopped = pub_.client->connect_attempts();
  broker.Resume();
  auto resumed = Clock::now();
  ASSERT_TRUE(RunUntil([&] { return pub_.connects >= 2; }, 10000));
  int64_t back_ms = MsSince(resumed);
  ASSERT_TRUE(RunUntil([&] { return pub_.acked.size() == 10; }, 10000));
  std::printf("[ figures  ] protocol %d: dead link detected %lld ms after SIGSTOP (%s); "
              "%zu attempts while stopped; reconnected %lld ms after SIGCONT\n",
              GetParam(), static_cast<long long>(detect_ms), pub_.errors[0].ToString().c_str(),
              attempts_while_stopped, static_cast<long long>(back_ms));
}

TEST_P(MqttClientTest, WrongPasswordIsAClearErrorWithBackoffNotAHotLoop) {
  if (!testing::CommandExists("mosquitto_passwd")) GTEST_SKIP() << "no mosquitto_passwd";
  std::string pwfile = dir_.File("passwd");
  testing::Process mkpw;
  ASSERT_TRUE(mkpw.Start({"mosquitto_passwd", "-b", "-c", pwfile, "edge", "right-password"},
                         dir_.File("passwd.log")));
  ASSERT_EQ(mkpw.Wait(10000), 0) << testing::ReadFile(dir_.File("passwd.log"));
  testing::MosquittoOptions mo;
  mo.password_file = pwfile;
  testing::Mosquitto& broker = StartBroker(mo);
  ASSERT_FALSE(HasFailure());

  ClientOptions o = Options(broker.url(), "pw");
  o.session.username = "edge";
  o.session.password = "wrong-password";
  o.backoff_initial_ms = 200;
  o.backoff_max_ms = 1000;
  StartPublisher(broker.url(), 0, &o);
  RunFor(3000);
  EXPECT_EQ(pub_.connects, 0);
  uint64_t attempts = pub_.client->connect_attempts();
  // 3 s with delays of 200..1000 ms: a handful of attempts, never hundreds.
  EXPECT_GE(attempts, 2u);
  EXPECT_LE(attempts, 12u);
  ASSERT_FALSE(pub_.errors.empty());
  for (const Status& e : pub_.errors) {
    EXPECT_EQ(e.code(), Code::kPermissionDenied) << e.ToString();
    bool clear = e.message().find("bad user name or password") != std::string::npos ||
                 e.message().find("not authorized") != std::string::npos;
    EXPECT_TRUE(clear) << e.ToString();
  }
  EXPECT_EQ(pub_.client->protocol(), GetParam());  // a refusal is not a reason to fall back
  std::printf("[ figures  ] protocol %d: %llu attempts in 3 s with a wrong password: %s\n",
              GetParam(), static_cast<unsigned long long>(attempts),
              pub_.errors[0].ToString().c_str());

  bool stopped = false;
  pub_.client->Stop([&] { stopped = true; });
  ASSERT_TRUE(RunUntil([&] { return stopped; }, 3000));
  pub_.client.reset();
  pub_.errors.clear();
  o.session.password = "right-password";
  StartPublisher(broker.url(), 5, &o);
  ASSERT_TRUE(RunUntil([&] { return pub_.acked.size() == 5; }, 5000));
  EXPECT_EQ(pub_.connects, 1);
}

INSTANTIATE_TEST_SUITE_P(Protocols, MqttClientTest, ::testing::Values(4, 5),
                         [](const ::testing::TestParamInfo<uint8_t>& p) {
                           return p.param == 5 ? "Mqtt5" : "Mqtt311";
                         });

}  // namespace
}  // namespace edgespool::sync::mqtt
