// MqttUplink's inbound half against a real mosquitto, for MQTT 3.1.1 and 5:
// subscriptions on a persistent session and PUBACKs deferred until
// AckInbound. The publisher is mosquitto_pub (an independent client).
//
// What proves that no PUBACK left before AckInbound: the uplink closes its
// connection with some messages unacked and reconnects; the broker redelivers
// exactly those (DUP set) and none of the acked ones. On MQTT 5 the broker
// also stops sending once Receive Maximum messages are unacked, and sends
// the next one only after an ack. Messages published while the uplink is
// away arrive when it is back (the broker kept the session).
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "platform/loop.h"
#include "sync/mqtt_uplink.h"
#include "sync/transport.h"
#include "tests/support/test_env.h"

namespace edgespool::sync {
namespace {

using Clock = std::chrono::steady_clock;

constexpr char kFilter[] = "edgespool/gw1/down/#";
constexpr char kTopic[] = "edgespool/gw1/down/cmd";

class MqttUplinkInboundTest : public ::testing::TestWithParam<uint8_t> {
 protected:
  void SetUp() override {
    if (!testing::CommandExists("mosquitto") || !testing::CommandExists("mosquitto_pub")) {
      GTEST_SKIP() << "mosquitto or mosquitto_pub not installed";
    }
    auto l = platform::Loop::Create();
    ASSERT_TRUE(l.ok()) << l.status().ToString();
    loop_ = std::move(l).value();
    platform::IgnoreSigpipe();
    StartBroker();
  }
  void StartBroker(testing::MosquittoOptions mo = {}) {
    broker_.reset();
    broker_ = std::make_unique<testing::Mosquitto>(dir_.path(), mo);
    ASSERT_TRUE(broker_->Start()) << broker_->log();
  }
  void TearDown() override {
    if (!loop_) return;
    StopUplink();
    for (int i = 0; i < 5; ++i) loop_->RunNoWait();
    if (broker_ && HasFailure()) std::printf("mosquitto log:\n%s\n", broker_->log().c_str());
    broker_.reset();
  }

  MqttUplinkOptions Options(uint16_t receive_maximum = 0) {
    MqttUplinkOptions o;
    auto url = ParseBrokerUrl(broker_->url());
    EXPECT_TRUE(url.ok());
    if (url.ok()) o.urls = {*url};
    o.protocol = GetParam();
    o.client_id = "edgespool-gw1-v" + std::to_string(GetParam());
    o.keepalive_s = 10;
    o.backoff_initial_ms = 100;
    o.backoff_max_ms = 500;
    o.clean_start = false;
    o.session_expiry_s = 3600;
    o.receive_maximum = receive_maximum;
    o.subscriptions = {kFilter};
    return o;
  }
  // Creates and starts the uplink; waits until its subscription is granted.
  void StartUplink(MqttUplinkOptions o) {
    auto up = MqttUplink::Create(*loop_, std::move(o));
    ASSERT_TRUE(up.ok()) << up.status().ToString();
    uplink_ = std::move(up).value();
    uplink_->SetInboundListener([this](InboundPublish p) { inbox_.push_back(std::move(p)); });
    uint64_t granted = uplink_->subscriptions_granted();
    uplink_->Start();
    ASSERT_TRUE(RunUntil([&] { return uplink_->subscriptions_granted() > granted; }, 5000))
        << "never subscribed";
    EXPECT_EQ(uplink_->subscribe_refusals(), 0u);
  }
  // Graceful: DISCONNECT after what is queued (the PUBACKs written so far).
  void StopUplink() {
    if (!uplink_) return;
    bool stopped = false;
    uplink_->Stop([&] { stopped = true; });
    EXPECT_TRUE(RunUntil([&] { return stopped; }, 3000));
  }
  void RestartUplink() {
    StopUplink();
    uint64_t granted = uplink_->subscriptions_granted();
    uplink_->Start();
    ASSERT_TRUE(RunUntil([&] { return uplink_->subscriptions_granted() > granted; }, 5000));
  }

  // mosquitto_pub, QoS 1, one message per payload; waits for it to finish
  // (each has its PUBACK from the broker then).
  void PublishCentrally(const std::vector<std::string>& payloads,
                        const std::vector<std::string>& extra = {}) {
    std::string lines;
    for (const std::string& p : payloads) lines += p + "\n";
    std::string file = dir_.File("lines-" + std::to_string(++publishes_));
    testing::WriteFile(file, lines);
    std::string cmd = "mosquitto_pub -h 127.0.0.1 -p " + std::to_string(broker_->port()) +
                      " -V mqttv5 -q 1 -i central-" + std::to_string(publishes_) + " -t " +
                      kTopic + " -l";
    for (const std::string& e : extra) cmd += " " + e;
    cmd += " < " + file;
    testing::Process pub;
    std::string log = dir_.File("pub.log");
    ASSERT_TRUE(pub.Start({"sh", "-c", cmd}, log));
    // The loop keeps running meanwhile: the uplink must read what arrives.
    int status = -1;
    ASSERT_TRUE(RunUntil(
        [&] {
          if (status == -1) status = pub.Wait(0);  // reaps once
          return status != -1;
        },
        10000))
        << testing::ReadFile(log);
    ASSERT_EQ(status, 0) << testing::ReadFile(log);
  }

  bool RunUntil(const std::function<bool()>& pred, int timeout_ms) {
    auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
    platform::TimerHandle wake(*loop_);
    wake.Start(10, 10, [] {});
    while (!pred() && Clock::now() < deadline) loop_->RunOnce();
    return pred();
  }
  // A marker published after everything else: once it is in, whatever the
  // broker had to (re)deliver before it has arrived too.
  void PublishMarkerAndWait(const std::string& marker) {
    PublishCentrally({marker});
    ASSERT_TRUE(RunUntil([&] { return Has(marker); }, 5000)) << "marker " << marker;
  }
  bool Has(const std::string& payload) const { return Count(payload) > 0; }
  int Count(const std::string& payload) const {
    int n = 0;
    for (const InboundPublish& p : inbox_) n += p.payload == payload ? 1 : 0;
    return n;
  }
  const InboundPublish* Last(const std::string& payload) const {
    for (auto it = inbox_.rbegin(); it != inbox_.rend(); ++it) {
      if (it->payload == payload) return &*it;
    }
    return nullptr;
  }
  void AckAll() {
    for (const InboundPublish& p : inbox_) uplink_->AckInbound(p.ack_token);
  }

  testing::TempDir dir_;
  std::unique_ptr<platform::Loop> loop_;
  std::unique_ptr<testing::Mosquitto> broker_;
  std::unique_ptr<MqttUplink> uplink_;
  std::vector<InboundPublish> inbox_;
  int publishes_ = 0;
};

std::vector<std::string> Payloads(const std::string& prefix, int n) {
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) out.push_back(prefix + std::to_string(i));
  return out;
}

TEST_P(MqttUplinkInboundTest, UnackedAreRedeliveredAfterReconnectAckedAreNot) {
  StartUplink(Options());
  ASSERT_FALSE(HasFailure());
  PublishCentrally(Payloads("m", 10));
  ASSERT_TRUE(RunUntil([&] { return inbox_.size() == 10; }, 5000)) << inbox_.size();
  std::set<uint64_t> tokens;
  for (int i = 0; i < 10; ++i) {
    const InboundPublish& p = inbox_[i];
    EXPECT_EQ(p.payload, "m" + std::to_string(i));  // one publisher: in order
    EXPECT_EQ(p.topic, kTopic);
    EXPECT_EQ(p.qos, 1);
    EXPECT_FALSE(p.dup);
    EXPECT_NE(p.ack_token, 0u);
    tokens.insert(p.ack_token);
  }
  EXPECT_EQ(tokens.size(), 10u);
  // m0..m3 acked: their PUBACKs go out. m6 acked too, but its PUBACK must
  // wait for m4 and m5 (arrival order), so the broker never gets it.
  std::vector<InboundPublish> first(inbox_.begin(), inbox_.end());
  for (int i : {0, 1, 2, 3, 6}) uplink_->AckInbound(first[i].ack_token);
  EXPECT_EQ(uplink_->inbound_acked(), 5u);

  RestartUplink();
  ASSERT_FALSE(HasFailure());
  PublishMarkerAndWait("after-reconnect");
  for (int i = 0; i < 4; ++i) EXPECT_EQ(Count("m" + std::to_string(i)), 1) << "m" << i;
  for (int i = 4; i < 10; ++i) {
    std::string m = "m" + std::to_string(i);
    ASSERT_EQ(Count(m), 2) << m << " not redelivered";
    const InboundPublish* again = Last(m);
    EXPECT_TRUE(again->dup) << m;
    EXPECT_NE(again->ack_token, first[i].ack_token) << m;
  }
  EXPECT_EQ(inbox_.size(), 10u + 6u + 1u);
  EXPECT_EQ(uplink_->inbound_received(), inbox_.size());

  // The first connection's tokens are ignored now, even where the packet id
  // came back for another message.
  for (int i = 4; i < 10; ++i) uplink_->AckInbound(first[i].ack_token);
  EXPECT_EQ(uplink_->stale_acks(), 6u);
  EXPECT_EQ(uplink_->inbound_acked(), 5u);
  // Ack everything of this connection; nothing comes back after another one.
  for (size_t i = 10; i < inbox_.size(); ++i) uplink_->AckInbound(inbox_[i].ack_token);
  EXPECT_EQ(uplink_->inbound_acked(), 5u + 7u);
  size_t before = inbox_.size();
  RestartUplink();
  ASSERT_FALSE(HasFailure());
  PublishMarkerAndWait("after-second-reconnect");
  EXPECT_EQ(inbox_.size(), before + 1) << "something acked came back";
  std::printf("[ figures  ] protocol %d: 10 received, 5 acked (1 held behind unacked ones), "
              "6 redelivered with DUP, %llu stale acks ignored\n",
              GetParam(), static_cast<unsigned long long>(uplink_->stale_acks()));
}

TEST_P(MqttUplinkInboundTest, PublishedWhileAwayArrivesAfterReconnect) {
  StartUplink(Options());
  ASSERT_FALSE(HasFailure());
  // Gone without a DISCONNECT, as after a crash.
  uplink_.reset();
  for (int i = 0; i < 5; ++i) loop_->RunNoWait();
  PublishCentrally(Payloads("away", 20));
  StartUplink(Options());
  ASSERT_FALSE(HasFailure());
  ASSERT_TRUE(RunUntil([&] { return inbox_.size() >= 20; }, 5000)) << inbox_.size();
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(inbox_[i].payload, "away" + std::to_string(i));
    EXPECT_FALSE(inbox_[i].dup);
  }
  AckAll();
  EXPECT_EQ(uplink_->inbound_acked(), 20u);
  // Acked: a later connection gets nothing again.
  RestartUplink();
  ASSERT_FALSE(HasFailure());
  PublishMarkerAndWait("end");
  EXPECT_EQ(inbox_.size(), 21u);
}

TEST_P(MqttUplinkInboundTest, ReceiveMaximumHoldsTheBrokerBack) {
  if (GetParam() != 5) GTEST_SKIP() << "Receive Maximum is MQTT 5";
  StartUplink(Options(3));
  ASSERT_FALSE(HasFailure());
  PublishCentrally(Payloads("r", 10));
  ASSERT_TRUE(RunUntil([&] { return inbox_.size() >= 3; }, 5000));
  // Nothing acked: the broker has no PUBACK, so it sends no fourth.
  RunUntil([] { return false; }, 500);
  EXPECT_EQ(inbox_.size(), 3u);
  uplink_->AckInbound(inbox_[0].ack_token);
  ASSERT_TRUE(RunUntil([&] { return inbox_.size() >= 4; }, 5000));
  // mosquitto 2.0.11 then sends past the window (strict_receive_maximum is
  // off by default for that reason): tolerated, counted, nothing lost.
  for (size_t acked = 1; acked < 10; ++acked) {
    ASSERT_TRUE(RunUntil([&] { return inbox_.size() > acked; }, 5000)) << acked;
    uplink_->AckInbound(inbox_[acked].ack_token);
  }
  EXPECT_EQ(uplink_->inbound_acked(), 10u);
  EXPECT_EQ(inbox_.size(), 10u);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(inbox_[i].payload, "r" + std::to_string(i));
  EXPECT_TRUE(uplink_->connected());
  EXPECT_EQ(uplink_->reconnects(), 0u);
  std::printf("[ figures  ] Receive Maximum 3: the broker held back until the first PUBACK, "
              "then sent %llu messages beyond it\n",
              static_cast<unsigned long long>(uplink_->receive_maximum_exceeded()));
}

TEST_P(MqttUplinkInboundTest, StrictReceiveMaximumEndsTheConnectionOnExcess) {
  if (GetParam() != 5) GTEST_SKIP() << "Receive Maximum is MQTT 5";
  MqttUplinkOptions o = Options(2);
  o.strict_receive_maximum = true;
  StartUplink(o);
  ASSERT_FALSE(HasFailure());
  PublishCentrally(Payloads("s", 10));
  ASSERT_TRUE(RunUntil([&] { return inbox_.size() >= 2; }, 5000));
  uplink_->AckInbound(inbox_[0].ack_token);
  RunUntil([&] { return uplink_->reconnects() > 0; }, 1500);
  if (uplink_->reconnects() == 0) GTEST_SKIP() << "this broker keeps to Receive Maximum";
  EXPECT_NE(uplink_->last_error().find("Receive Maximum of 2"), std::string::npos)
      << uplink_->last_error();
}

TEST_P(MqttUplinkInboundTest, Mqtt5PropertiesReachTheListener) {
  if (GetParam() != 5) GTEST_SKIP() << "properties are MQTT 5";
  StartUplink(Options());
  ASSERT_FALSE(HasFailure());
  PublishCentrally({"with-props"},
                   {"-D publish message-expiry-interval 3600", "-D publish response-topic reply/here",
                    "-D publish correlation-data abc123", "-D publish content-type text/plain",
                    "-D publish user-property k1 v1", "-D publish user-property k2 v2"});
  ASSERT_TRUE(RunUntil([&] { return inbox_.size() == 1; }, 5000));
  const InboundPublish& p = inbox_[0];
  ASSERT_TRUE(p.message_expiry_s.has_value());
  EXPECT_GT(*p.message_expiry_s, 3500u);
  EXPECT_LE(*p.message_expiry_s, 3600u);
  EXPECT_EQ(p.response_topic, "reply/here");
  EXPECT_EQ(p.correlation_data, "abc123");
  EXPECT_EQ(p.content_type, "text/plain");
  using KV = std::pair<std::string, std::string>;
  EXPECT_EQ(p.user_properties, (std::vector<KV>{{"k1", "v1"}, {"k2", "v2"}}));
  uplink_->AckInbound(p.ack_token);
}

TEST_P(MqttUplinkInboundTest, WithoutAListenerMessagesAreAckedOnReceipt) {
  auto up = MqttUplink::Create(*loop_, Options());
  ASSERT_TRUE(up.ok()) << up.status().ToString();
  uplink_ = std::move(up).value();
  uplink_->Start();
  ASSERT_TRUE(RunUntil([&] { return uplink_->subscriptions_granted() > 0; }, 5000));
  PublishCentrally(Payloads("n", 5));
  ASSERT_TRUE(RunUntil([&] { return uplink_->inbound_acked() == 5; }, 5000));
  EXPECT_EQ(uplink_->inbound_received(), 5u);
  // Acked on receipt: nothing is redelivered to a listener that comes later.
  uplink_->SetInboundListener([this](InboundPublish p) { inbox_.push_back(std::move(p)); });
  RestartUplink();
  ASSERT_FALSE(HasFailure());
  PublishMarkerAndWait("end");
  EXPECT_EQ(inbox_.size(), 1u);
}

TEST_P(MqttUplinkInboundTest, RefusedSubscriptionIsCountedOthersStillWork) {
  // mosquitto's acl_file never refuses a SUBSCRIBE (it filters at delivery);
  // its dynamic-security plugin does (0x87 on 5, 0x80 on 3.1.1).
  const std::string plugin = "/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so";
  if (access(plugin.c_str(), R_OK) != 0) GTEST_SKIP() << "no " << plugin;
  std::string dynsec = dir_.File("dynsec.json");
  testing::WriteFile(dynsec, R"({"defaultACLAccess":{"publishClientSend":true,
    "publishClientReceive":true,"subscribe":false,"unsubscribe":true},"clients":[],
    "groups":[{"groupname":"anon","roles":[{"rolename":"down"}]}],
    "roles":[{"rolename":"down","acls":[{"acltype":"subscribePattern","topic":"edgespool/#",
    "allow":true}]}],"anonymousGroup":"anon"})");
  testing::MosquittoOptions mo;
  mo.extra_config = "plugin " + plugin + "\nplugin_opt_config_file " + dynsec + "\n";
  StartBroker(mo);
  ASSERT_FALSE(HasFailure());
  MqttUplinkOptions o = Options();
  o.subscriptions.push_back("forbidden/#");
  auto up = MqttUplink::Create(*loop_, o);
  ASSERT_TRUE(up.ok()) << up.status().ToString();
  uplink_ = std::move(up).value();
  uplink_->SetInboundListener([this](InboundPublish p) { inbox_.push_back(std::move(p)); });
  uplink_->Start();
  ASSERT_TRUE(RunUntil([&] { return uplink_->subscribe_refusals() > 0; }, 5000))
      << "granted " << uplink_->subscriptions_granted();
  EXPECT_EQ(uplink_->subscribe_refusals(), 1u);
  EXPECT_EQ(uplink_->subscriptions_granted(), 1u);
  PublishMarkerAndWait("still-works");
  EXPECT_TRUE(uplink_->connected());
  // Subscribed again on every connection: refused again, counted again.
  RestartUplink();
  EXPECT_EQ(uplink_->subscribe_refusals(), 2u);
}

INSTANTIATE_TEST_SUITE_P(Protocols, MqttUplinkInboundTest, ::testing::Values(4, 5),
                         [](const ::testing::TestParamInfo<uint8_t>& p) {
                           return p.param == 5 ? "Mqtt5" : "Mqtt311";
                         });

}  // namespace
}  // namespace edgespool::sync
