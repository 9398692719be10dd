// MQTT session state machine, driven with hand-made broker bytes and a
// manual clock: negotiation, the window, out-of-order acks, resend after a
// reconnect, refusals and the 5 -> 3.1.1 fallback, keepalive, ack timeout,
// topic aliases, maximum packet size, and regressions for bug classes that
// hit other MQTT clients.
#include "sync/mqtt/session.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

namespace edgespool::sync::mqtt {
namespace {

struct Recorder : SessionListener {
  void OnConnected(const ConnectInfo& i) override {
    ++connected;
    info = i;
  }
  void OnPublishAcked(uint64_t token, uint8_t rc) override { acked.push_back({token, rc}); }
  void OnPublishRejected(uint64_t token, const Status& why, uint8_t rc) override {
    rejected.push_back({token, rc});
    last_reject = why;
  }
  void OnMessage(const IncomingMessage& m) override {
    messages.push_back({std::string(m.topic), std::string(m.payload)});
    tokens.push_back(m.ack_token);
    dups.push_back(m.dup);
    if (ack_in_callback) {
      EXPECT_TRUE(ack_in_callback(m.ack_token).ok());
    }
  }
  void OnSubscribed(uint16_t id, const std::vector<uint8_t>& rcs) override {
    subscribed[id] = rcs;
  }
  int connected = 0;
  ConnectInfo info;
  std::vector<std::pair<uint64_t, uint8_t>> acked, rejected;
  Status last_reject;
  std::vector<std::pair<std::string, std::string>> messages;
  std::vector<uint64_t> tokens;  // IncomingMessage::ack_token, per message
  std::vector<bool> dups;
  std::function<Status(uint64_t token)> ack_in_callback;
  std::map<uint16_t, std::vector<uint8_t>> subscribed;
};

// Decodes every packet in a byte stream written by the session.
std::vector<Packet> Parse(const std::string& bytes, uint8_t level,
                          std::vector<std::string>* keep) {
  keep->push_back(bytes);
  const std::string& stable = keep->back();
  std::vector<Packet> out;
  FrameSplitter splitter;
  Status st = splitter.Feed(stable, [&](const Frame& f) {
    auto r = Decode(f, level);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (r.ok()) out.push_back(r.value());
    return Status::Ok();
  });
  EXPECT_TRUE(st.ok());
  EXPECT_EQ(splitter.buffered(), 0u);
  return out;
}

std::string Connack5(Properties props = {}, uint8_t rc = 0, bool session_present = false) {
  std::string s;
  Encode(Connack{session_present, rc, props}, kProtocol5, &s);
  return s;
}
std::string Connack4(uint8_t rc = 0) {
  std::string s;
  Encode(Connack{false, rc, {}}, kProtocol311, &s);
  return s;
}
std::string Ack(uint16_t id, uint8_t level = kProtocol5, uint8_t rc = 0) {
  std::string s;
  Encode(Puback{id, rc, {}}, level, &s);
  return s;
}
std::string Raw(std::initializer_list<int> b) {
  std::string s;
  for (int x : b) s.push_back(static_cast<char>(x));
  return s;
}

std::string InPub(uint16_t id, const std::string& payload, bool dup = false,
                  uint8_t level = kProtocol5, uint8_t qos = 1) {
  Publish p;
  p.topic = "down/cmd";
  p.payload = payload;
  p.qos = qos;
  p.dup = dup;
  p.packet_id = qos ? id : 0;
  std::string s;
  Encode(p, level, &s);
  return s;
}

OutgoingMessage Msg(const std::string& topic, const std::string& payload, uint8_t qos = 1) {
  OutgoingMessage m;
  m.topic = topic;
  m.payload = payload;
  m.qos = qos;
  return m;
}

class SessionTest : public ::testing::Test {
 protected:
  void Make(SessionOptions o) { session = std::make_unique<Session>(std::move(o), &rec); }
  SessionOptions Opts(uint8_t protocol = kProtocol5) {
    SessionOptions o;
    o.protocol = protocol;
    o.client_id = "edge-1";
    o.keepalive_s = 10;
    o.inflight = 10;
    o.ack_timeout_ms = 5000;
    return o;
  }
  // Connects with the given CONNACK bytes; returns what the session wrote.
  std::string Connect(const std::string& connack) {
    std::string out;
    session->StartConnect(now, &out);
    Status st = session->OnBytes(connack, now, &out);
    EXPECT_TRUE(st.ok()) << st.ToString();
    return out;
  }
  std::vector<Publish> Publishes(const std::string& bytes) {
    std::vector<Publish> pubs;
    for (Packet& p : Parse(bytes, session->protocol(), &keep)) {
      if (std::holds_alternative<Publish>(p)) pubs.push_back(std::get<Publish>(p));
    }
    return pubs;
  }
  uint64_t Pub(const std::string& topic, const std::string& payload, uint8_t qos = 1) {
    auto r = session->Publish(Msg(topic, payload, qos));
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? r.value() : 0;
  }

  Recorder rec;
  std::unique_ptr<Session> session;
  uint64_t now = 1000;
  std::vector<std::string> keep;
};

TEST_F(SessionTest, ConnectCarriesOptions) {
  SessionOptions o = Opts();
  o.username = "user";
  o.password = "secret";
  o.session_expiry_s = 3600;
  o.clean_start = false;
  o.will = WillMessage{"edgespool/edge-1/status", "{\"online\":false}", 1, true, 5};
  Make(o);
  std::string out;
  session->StartConnect(now, &out);
  auto packets = Parse(out, kProtocol5, &keep);
  ASSERT_EQ(packets.size(), 1u);
  const auto& c = std::get<mqtt::Connect>(packets[0]);
  EXPECT_EQ(c.protocol_level, 5);
  EXPECT_EQ(c.client_id, "edge-1");
  EXPECT_EQ(c.keepalive_s, 10);
  EXPECT_FALSE(c.clean_start);
  EXPECT_EQ(c.username.value_or(""), "user");
  EXPECT_EQ(c.password.value_or(""), "secret");
  EXPECT_EQ(c.properties.session_expiry_s.value_or(0), 3600u);
  EXPECT_EQ(c.properties.maximum_packet_size.value_or(0), o.max_incoming_packet_bytes);
  ASSERT_TRUE(c.will.has_value());
  EXPECT_EQ(c.will->topic, "edgespool/edge-1/status");
  EXPECT_TRUE(c.will->retain);
  EXPECT_EQ(c.will->properties.will_delay_s.value_or(0), 5u);
  EXPECT_TRUE(session->connecting());
}

TEST_F(SessionTest, WindowIsCappedByReceiveMaximum) {
  Make(Opts());
  Properties p;
  p.receive_maximum = 4;
  p.maximum_packet_size = 1 << 20;
  p.assigned_client_id = "auto-1";
  Connect(Connack5(p));
  ASSERT_TRUE(session->connected());
  EXPECT_EQ(rec.connected, 1);
  EXPECT_EQ(rec.info.window, 4);
  EXPECT_EQ(rec.info.assigned_client_id, "auto-1");
  EXPECT_EQ(session->max_packet_size(), 1u << 20);
  for (int i = 0; i < 20; ++i) Pub("t", "m" + std::to_string(i));
  EXPECT_EQ(session->capacity(), 0u);
  std::string out;
  session->Pump(now, &out);
  auto pubs = Publishes(out);
  ASSERT_EQ(pubs.size(), 4u);
  EXPECT_EQ(session->inflight_count(), 4u);
  EXPECT_EQ(session->queued_count(), 16u);
  std::set<uint16_t> ids;
  for (const Publish& p2 : pubs) {
    EXPECT_NE(p2.packet_id, 0);
    EXPECT_FALSE(p2.dup);
    ids.insert(p2.packet_id);
  }
  EXPECT_EQ(ids.size(), 4u);
}

TEST_F(SessionTest, OutOfOrderPubacksAckTheRightMessages) {
  Make(Opts());
  Connect(Connack5());
  std::vector<uint64_t> tokens;
  for (int i = 0; i < 5; ++i) tokens.push_back(Pub("t", std::to_string(i)));
  std::string out;
  session->Pump(now, &out);
  auto pubs = Publishes(out);
  ASSERT_EQ(pubs.size(), 5u);
  std::map<uint16_t, std::string> by_id;
  for (const Publish& p : pubs) by_id[p.packet_id] = std::string(p.payload);
  out.clear();
  for (int i : {3, 0, 4, 1, 2}) {
    ASSERT_TRUE(session->OnBytes(Ack(pubs[i].packet_id), now, &out).ok());
  }
  ASSERT_EQ(rec.acked.size(), 5u);
  std::vector<uint64_t> order;
  for (auto [t, rc] : rec.acked) order.push_back(t);
  EXPECT_EQ(order, (std::vector<uint64_t>{tokens[3], tokens[0], tokens[4], tokens[1], tokens[2]}));
  EXPECT_EQ(session->inflight_count(), 0u);
}

TEST_F(SessionTest, PacketIdsNeverZeroNeverReusedWhileInFlight) {
  SessionOptions o = Opts();
  o.inflight = 300;
  Make(o);
  Connect(Connack5());
  std::mt19937 rng(5);
  std::set<uint16_t> in_flight;
  std::vector<uint16_t> pending_ids;
  size_t total_sent = 0;
  std::string wire;  // everything the session wrote, parsed each round
  for (int round = 0; round < 700; ++round) {
    while (session->queued_count() < 300) Pub("t", "x");
    session->Pump(now, &wire);
    for (const Publish& p : Publishes(wire)) {
      ASSERT_NE(p.packet_id, 0);
      ASSERT_TRUE(in_flight.insert(p.packet_id).second) << "id reused: " << p.packet_id;
      pending_ids.push_back(p.packet_id);
      ++total_sent;
    }
    wire.clear();
    keep.clear();
    // Ack a random half, in random order (acks refill the window into wire).
    std::shuffle(pending_ids.begin(), pending_ids.end(), rng);
    size_t n = pending_ids.size() / 2 + 1;
    for (size_t i = 0; i < n && !pending_ids.empty(); ++i) {
      uint16_t id = pending_ids.back();
      pending_ids.pop_back();
      in_flight.erase(id);
      ASSERT_TRUE(session->OnBytes(Ack(id), now, &wire).ok());
    }
  }
  EXPECT_GT(total_sent, 70000u);  // the id space wrapped at least once
  EXPECT_LE(session->inflight_count(), 300u);
}

TEST_F(SessionTest, InflightResentInOrderWithDupAfterReconnect) {
  Make(Opts());
  Connect(Connack5());
  std::vector<uint64_t> tokens;
  for (int i = 0; i < 15; ++i) tokens.push_back(Pub("t", "p" + std::to_string(i)));
  std::string out;
  session->Pump(now, &out);
  auto first = Publishes(out);
  ASSERT_EQ(first.size(), 10u);
  out.clear();
  // Ack #2 and #5 only, then the link dies.
  ASSERT_TRUE(session->OnBytes(Ack(first[2].packet_id) + Ack(first[5].packet_id), now, &out).ok());
  session->OnConnectionLost(Status::IoError("connection reset"));
  EXPECT_FALSE(session->connected());
  EXPECT_EQ(session->inflight_count(), 0u);
  EXPECT_EQ(session->queued_count(), 13u);

  // Reconnect with a smaller window: the oldest unacked go first, DUP set.
  Properties p;
  p.receive_maximum = 5;
  out = Connect(Connack5(p, 0, true));
  auto resent = Publishes(out);
  ASSERT_EQ(resent.size(), 5u);
  std::vector<std::string> want = {"p0", "p1", "p3", "p4", "p6"};
  for (size_t i = 0; i < resent.size(); ++i) {
    EXPECT_EQ(resent[i].payload, want[i]);
    EXPECT_TRUE(resent[i].dup);
  }
  // Drain everything: each message acked exactly once, in the end all 15.
  for (int guard = 0; guard < 20 && session->inflight_count() > 0; ++guard) {
    std::string acks;
    for (const Publish& pub : resent) acks += Ack(pub.packet_id);
    out.clear();
    ASSERT_TRUE(session->OnBytes(acks, now, &out).ok());
    resent = Publishes(out);
  }
  std::set<uint64_t> all;
  for (auto [t, rc] : rec.acked) EXPECT_TRUE(all.insert(t).second) << "acked twice: " << t;
  EXPECT_EQ(all.size(), 15u);
}

TEST_F(SessionTest, PublishRejectedPerMessageIsNotResent) {
  Make(Opts());
  Connect(Connack5());
  uint64_t a = Pub("t", "a");
  uint64_t b = Pub("t", "b");
  std::string out;
  session->Pump(now, &out);
  auto pubs = Publishes(out);
  out.clear();
  ASSERT_TRUE(session->OnBytes(Ack(pubs[0].packet_id, kProtocol5, 0x87) +
                                   Ack(pubs[1].packet_id, kProtocol5, 0x10),
                               now, &out)
                  .ok());
  ASSERT_EQ(rec.rejected.size(), 1u);
  EXPECT_EQ(rec.rejected[0].first, a);
  EXPECT_EQ(rec.rejected[0].second, 0x87);
  EXPECT_EQ(rec.last_reject.code(), Code::kPermissionDenied);
  EXPECT_NE(rec.last_reject.message().find("not authorized"), std::string::npos);
  ASSERT_EQ(rec.acked.size(), 1u);
  EXPECT_EQ(rec.acked[0], std::make_pair(b, uint8_t{0x10}));
  session->OnConnectionLost(Status::IoError("x"));
  EXPECT_EQ(session->queued_count(), 0u);
}

TEST_F(SessionTest, OversizedPublishIsRejectedNotSent) {
  Make(Opts());
  Properties p;
  p.maximum_packet_size = 100;
  Connect(Connack5(p));
  uint64_t big = Pub("t", std::string(200, 'x'));
  uint64_t small = Pub("t", std::string(50, 'y'));
  std::string out;
  session->Pump(now, &out);
  auto pubs = Publishes(out);
  ASSERT_EQ(pubs.size(), 1u);
  EXPECT_EQ(pubs[0].payload, std::string(50, 'y'));
  ASSERT_EQ(rec.rejected.size(), 1u);
  EXPECT_EQ(rec.rejected[0].first, big);
  EXPECT_EQ(rec.last_reject.code(), Code::kResourceExhausted);
  EXPECT_NE(rec.last_reject.message().find("maximum packet size of 100"), std::string::npos);
  ASSERT_TRUE(session->OnBytes(Ack(pubs[0].packet_id), now, &out).ok());
  EXPECT_EQ(rec.acked.back().first, small);
}

TEST_F(SessionTest, TopicAliasesSaveBytesOnRepeatedTopics) {
  const std::string topic = "edgespool/gateway-0042/sensors/temperature/room-17";
  auto run = [&](bool aliases) {
    SessionOptions o = Opts();
    o.inflight = 200;
    o.topic_aliases = aliases;
    Make(o);
    Properties p;
    p.topic_alias_maximum = 10;
    Connect(Connack5(p));
    for (int i = 0; i < 100; ++i) Pub(topic, "21.5");
    std::string out;
    session->Pump(now, &out);
    return out;
  };
  std::string with = run(true);
  auto pubs = Publishes(with);
  ASSERT_EQ(pubs.size(), 100u);
  EXPECT_EQ(pubs[0].topic, topic);
  EXPECT_EQ(pubs[0].properties.topic_alias.value_or(0), 1);
  for (size_t i = 1; i < pubs.size(); ++i) {
    EXPECT_EQ(pubs[i].topic, "");
    EXPECT_EQ(pubs[i].properties.topic_alias.value_or(0), 1);
  }
  std::string without = run(false);
  for (const Publish& p : Publishes(without)) EXPECT_FALSE(p.properties.topic_alias.has_value());
  // 99 repeats save (topic length - alias property) bytes each.
  EXPECT_LT(with.size() * 100, without.size() * 60)
      << "with aliases " << with.size() << " bytes, without " << without.size();
  RecordProperty("bytes_with_aliases", std::to_string(with.size()));
  RecordProperty("bytes_without_aliases", std::to_string(without.size()));
}

TEST_F(SessionTest, TopicAliasesResetOnReconnect) {
  Make(Opts());
  Properties p;
  p.topic_alias_maximum = 2;
  Connect(Connack5(p));
  Pub("a", "1");
  Pub("b", "1");
  Pub("c", "1");  // no alias left: full topic, no alias
  std::string out;
  session->Pump(now, &out);
  auto pubs = Publishes(out);
  ASSERT_EQ(pubs.size(), 3u);
  EXPECT_EQ(pubs[2].topic, "c");
  EXPECT_FALSE(pubs[2].properties.topic_alias.has_value());
  session->OnConnectionLost(Status::IoError("x"));
  out = Connect(Connack5(p));
  pubs = Publishes(out);
  ASSERT_EQ(pubs.size(), 3u);
  EXPECT_EQ(pubs[0].topic, "a");  // the alias must be established again
}

TEST_F(SessionTest, KeepalivePingsWhenIdleAndDetectsADeadBroker) {
  Make(Opts());
  Connect(Connack5());
  std::string out;
  ASSERT_TRUE(session->Tick(now + 9000, &out).ok());
  EXPECT_TRUE(out.empty());
  ASSERT_TRUE(session->Tick(now + 10000, &out).ok());
  auto packets = Parse(out, kProtocol5, &keep);
  ASSERT_EQ(packets.size(), 1u);
  EXPECT_TRUE(std::holds_alternative<Pingreq>(packets[0]));
  out.clear();
  ASSERT_TRUE(session->OnBytes(Raw({0xD0, 0x00}), now + 10050, &out).ok());
  // Alive: the next ping is a keepalive later; then the broker goes silent.
  ASSERT_TRUE(session->Tick(now + 20050, &out).ok());
  EXPECT_FALSE(out.empty());
  out.clear();
  ASSERT_TRUE(session->Tick(now + 25000, &out).ok());
  Status st = session->Tick(now + 25050, &out);
  EXPECT_EQ(st.code(), Code::kTimeout);
  EXPECT_NE(st.message().find("1.5 x keepalive"), std::string::npos);
  EXPECT_FALSE(session->connected());
}

TEST_F(SessionTest, ServerKeepAliveOverridesOurs) {
  Make(Opts());
  Properties p;
  p.server_keepalive_s = 2;
  Connect(Connack5(p));
  std::string out;
  ASSERT_TRUE(session->Tick(now + 2000, &out).ok());
  EXPECT_FALSE(out.empty());
}

TEST_F(SessionTest, OverduePubackMeansDeadLink) {
  Make(Opts());
  Connect(Connack5());
  Pub("t", "x");
  std::string out;
  session->Pump(now, &out);
  out.clear();
  // Pings keep flowing (the broker answers them), but the PUBACK never comes.
  ASSERT_TRUE(session->OnBytes(Raw({0xD0, 0x00}), now + 4000, &out).ok());
  ASSERT_TRUE(session->Tick(now + 4999, &out).ok());
  Status st = session->Tick(now + 5000, &out);
  EXPECT_EQ(st.code(), Code::kTimeout);
  EXPECT_NE(st.message().find("overdue"), std::string::npos);
  EXPECT_EQ(session->queued_count(), 1u);  // will be resent
}

TEST_F(SessionTest, ConnectTimeout) {
  Make(Opts());
  std::string out;
  session->StartConnect(now, &out);
  EXPECT_TRUE(session->Tick(now + 9999, &out).ok());
  EXPECT_EQ(session->Tick(now + 10000, &out).code(), Code::kTimeout);
  session->OnConnectionLost(Status::Timeout("no CONNACK"));
  EXPECT_EQ(session->protocol(), kProtocol5);  // silence is no reason to fall back
}

TEST_F(SessionTest, IncomingMessagesAreAckedAndDelivered) {
  Make(Opts());
  Connect(Connack5());
  std::string out;
  auto sub = session->Subscribe({{"cmd/#", 1}, {"cfg/+", 2}}, &out);
  ASSERT_TRUE(sub.ok());
  auto packets = Parse(out, kProtocol5, &keep);
  ASSERT_EQ(packets.size(), 1u);
  const auto& s = std::get<mqtt::Subscribe>(packets[0]);
  EXPECT_EQ(s.topics[1].qos, 1);  // capped
  std::string suback;
  Encode(Suback{sub.value(), {0x01, 0x01}, {}}, kProtocol5, &suback);
  Publish in;
  in.topic = "cmd/reboot";
  in.payload = "now";
  in.qos = 1;
  in.packet_id = 77;
  std::string pub;
  Encode(in, kProtocol5, &pub);
  out.clear();
  ASSERT_TRUE(session->OnBytes(suback + pub, now, &out).ok());
  EXPECT_EQ(rec.subscribed[sub.value()], (std::vector<uint8_t>{1, 1}));
  ASSERT_EQ(rec.messages.size(), 1u);
  EXPECT_EQ(rec.messages[0], std::make_pair(std::string("cmd/reboot"), std::string("now")));
  auto acks = Parse(out, kProtocol5, &keep);
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_EQ(std::get<Puback>(acks[0]).packet_id, 77);
}

// ------------------------------------------------------------ refusals

TEST_F(SessionTest, BadCredentialsAreAClearPermissionError) {
  Make(Opts());
  std::string out;
  session->StartConnect(now, &out);
  Status st = session->OnBytes(Connack5({}, 0x86), now, &out);
  EXPECT_EQ(st.code(), Code::kPermissionDenied);
  EXPECT_NE(st.message().find("bad user name or password"), std::string::npos) << st.ToString();
  EXPECT_FALSE(session->connected());
  Make(Opts(kProtocol311));
  session->StartConnect(now, &out);
  st = session->OnBytes(Connack4(5), now, &out);
  EXPECT_EQ(st.code(), Code::kPermissionDenied);
  EXPECT_NE(st.message().find("not authorized"), std::string::npos) << st.ToString();
  session->StartConnect(now, &out);
  st = session->OnBytes(Connack4(3), now, &out);
  EXPECT_EQ(st.code(), Code::kUnavailable);
  EXPECT_NE(st.message().find("server unavailable"), std::string::npos) << st.ToString();
}

TEST_F(SessionTest, UnsupportedProtocolFallsBackTo311Once) {
  Make(Opts());
  std::string out;
  session->StartConnect(now, &out);
  Status st = session->OnBytes(Connack5({}, 0x84), now, &out);
  EXPECT_EQ(st.code(), Code::kProtocolError);
  EXPECT_NE(st.message().find("falling back to MQTT 3.1.1"), std::string::npos);
  EXPECT_EQ(session->protocol(), kProtocol311);
  out.clear();
  session->StartConnect(now, &out);
  EXPECT_EQ(std::get<mqtt::Connect>(Parse(out, kProtocol311, &keep)[0]).protocol_level, 4);
  st = session->OnBytes(Connack4(1), now, &out);
  EXPECT_EQ(session->protocol(), kProtocol311);  // no second switch
  EXPECT_EQ(st.message().find("falling back"), std::string::npos);
}

TEST_F(SessionTest, A311ConnackToAnMqtt5ConnectFallsBack) {
  Make(Opts());
  std::string out;
  session->StartConnect(now, &out);
  Status st = session->OnBytes(Raw({0x20, 0x02, 0x00, 0x01}), now, &out);
  EXPECT_FALSE(st.ok());
  EXPECT_EQ(session->protocol(), kProtocol311);
}

TEST_F(SessionTest, ClosedBeforeConnackFallsBackOnlyIfFiveNeverWorked) {
  Make(Opts());
  std::string out;
  session->StartConnect(now, &out);
  session->OnConnectionLost(Status::Ok());
  EXPECT_EQ(session->protocol(), kProtocol311);

  Make(Opts());
  Connect(Connack5());
  session->OnConnectionLost(Status::IoError("reset"));
  session->StartConnect(now, &out);
  session->OnConnectionLost(Status::Ok());  // broker restarting: not a reason to downgrade
  EXPECT_EQ(session->protocol(), kProtocol5);
}

// ------------------------------------------------------------ regressions

void ExpectProtocolError(Session* s, const std::string& bytes, uint64_t now,
                         const std::string& part) {
  std::string out;
  Status st = s->OnBytes(bytes, now, &out);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), Code::kProtocolError) << st.ToString();
  EXPECT_NE(st.message().find(part), std::string::npos) << st.ToString();
  EXPECT_FALSE(s->connected());
}

TEST_F(SessionTest, PubackForUnknownIdIsAProtocolErrorWithDisconnect) {
  Make(Opts());
  Connect(Connack5());
  std::string out;
  Status st = session->OnBytes(Ack(42), now, &out);
  EXPECT_EQ(st.code(), Code::kProtocolError);
  EXPECT_NE(st.message().find("PUBACK for packet id 42"), std::string::npos);
  auto packets = Parse(out, kProtocol5, &keep);
  ASSERT_EQ(packets.size(), 1u);
  EXPECT_EQ(std::get<mqtt::Disconnect>(packets[0]).reason_code, reason::kProtocolError);
}

TEST_F(SessionTest, PubackTwiceForTheSameIdIsAProtocolError) {
  Make(Opts());
  Connect(Connack5());
  Pub("t", "x");
  std::string out;
  session->Pump(now, &out);
  uint16_t id = Publishes(out)[0].packet_id;
  out.clear();
  ExpectProtocolError(session.get(), Ack(id) + Ack(id), now, "not in flight");
  EXPECT_EQ(rec.acked.size(), 1u);
}

TEST_F(SessionTest, SecondConnackIsAProtocolError) {
  Make(Opts());
  Connect(Connack5());
  ExpectProtocolError(session.get(), Connack5(), now, "second CONNACK");
}

TEST_F(SessionTest, PacketsBeforeConnackAreAProtocolError) {
  Make(Opts());
  std::string out;
  session->StartConnect(now, &out);
  ExpectProtocolError(session.get(), Ack(1), now, "PUBACK before CONNACK");
}

TEST_F(SessionTest, SubackWithoutReasonCodesIsAProtocolError) {
  Make(Opts(kProtocol311));
  Connect(Connack4());
  std::string out;
  auto id = session->Subscribe({{"a/#", 1}}, &out);
  ASSERT_TRUE(id.ok());
  ExpectProtocolError(session.get(), Raw({0x90, 0x02, 0x00, static_cast<int>(id.value())}), now,
                      "SUBACK without reason codes");
}

TEST_F(SessionTest, SubackCountMismatchOrUnknownIdIsAProtocolError) {
  Make(Opts(kProtocol311));
  Connect(Connack4());
  std::string out;
  auto id = session->Subscribe({{"a/#", 1}, {"b", 0}}, &out);
  ASSERT_TRUE(id.ok());
  ExpectProtocolError(session.get(), Raw({0x90, 0x03, 0x00, static_cast<int>(id.value()), 0x01}),
                      now, "1 reason codes for a SUBSCRIBE of 2");
  Make(Opts(kProtocol311));
  Connect(Connack4());
  ExpectProtocolError(session.get(), Raw({0x90, 0x03, 0x00, 0x09, 0x01}), now,
                      "never used for SUBSCRIBE");
}

TEST_F(SessionTest, BrokerPublishWithBadTopicOrPacketIdZero) {
  Make(Opts(kProtocol311));
  Connect(Connack4());
  ExpectProtocolError(session.get(), Raw({0x30, 0x05, 0x00, 0x03, 'a', '/', '+'}), now,
                      "wildcard");
  Make(Opts(kProtocol311));
  Connect(Connack4());
  ExpectProtocolError(session.get(), Raw({0x32, 0x05, 0x00, 0x01, 't', 0x00, 0x00}), now,
                      "packet identifier 0");
  Make(Opts(kProtocol311));
  Connect(Connack4());
  ExpectProtocolError(session.get(), Raw({0x30, 0x04, 0x00, 0x02, 0xC0, 0x80}), now, "UTF-8");
  // A topic alias we never allowed.
  Make(Opts());
  Connect(Connack5());
  ExpectProtocolError(session.get(), Raw({0x30, 0x06, 0x00, 0x00, 0x03, 0x23, 0x00, 0x01}), now,
                      "topic alias");
  EXPECT_TRUE(rec.messages.empty());
}

TEST_F(SessionTest, RemainingLengthOverflowAndOverRead) {
  Make(Opts());
  Connect(Connack5());
  ExpectProtocolError(session.get(), Raw({0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F}), now,
                      "over 4 bytes");
  Make(Opts());
  Connect(Connack5());
  // 256 MiB declared: refused by the incoming maximum before any buffering.
  ExpectProtocolError(session.get(), Raw({0x30, 0xFF, 0xFF, 0xFF, 0x7F}), now,
                      "exceeds the maximum packet size");
  Make(Opts());
  Connect(Connack5());
  // A string length that points past the packet.
  ExpectProtocolError(session.get(), Raw({0x30, 0x04, 0x00, 0x7F, 'a', 'b'}), now, "runs past");
}

TEST_F(SessionTest, BrokerDisconnectCarriesItsReason) {
  Make(Opts());
  Connect(Connack5());
  Disconnect d;
  d.reason_code = 0x8B;
  d.properties.reason_string = "maintenance";
  std::string bytes, out;
  Encode(d, kProtocol5, &bytes);
  Status st = session->OnBytes(bytes, now, &out);
  EXPECT_EQ(st.code(), Code::kUnavailable);
  EXPECT_NE(st.message().find("server shutting down (0x8B): maintenance"), std::string::npos)
      << st.ToString();
}

TEST_F(SessionTest, InvalidPublishesAreRefusedUpFront) {
  Make(Opts());
  EXPECT_EQ(session->Publish(Msg("a/#", "x")).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(session->Publish(Msg("", "x")).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(session->Publish(Msg(std::string("a\0b", 3), "x")).status().code(),
            Code::kInvalidArgument);
  EXPECT_EQ(session->Publish(Msg("t", "x", 2)).status().code(), Code::kInvalidArgument);
  OutgoingMessage m = Msg("t", "x");
  m.user_properties.push_back({"k", "\xED\xA0\x80"});
  EXPECT_EQ(session->Publish(m).status().code(), Code::kInvalidArgument);
}

TEST_F(SessionTest, Mqtt5PropertiesReachTheWire) {
  Make(Opts());
  Connect(Connack5());
  OutgoingMessage m = Msg("t", "x");
  m.message_expiry_s = 3600;
  m.content_type = "application/json";
  m.user_properties = {{"es-seq", "42"}, {"es-node", "edge-1"}};
  ASSERT_TRUE(session->Publish(m).ok());
  std::string out;
  session->Pump(now, &out);
  auto pubs = Publishes(out);
  ASSERT_EQ(pubs.size(), 1u);
  EXPECT_EQ(pubs[0].properties.message_expiry_s.value_or(0), 3600u);
  EXPECT_EQ(pubs[0].properties.content_type.value_or(""), "application/json");
  ASSERT_EQ(pubs[0].properties.user_properties.size(), 2u);
  EXPECT_EQ(pubs[0].properties.user_properties[1].value, "edge-1");
}

TEST_F(SessionTest, Qos0IsCompletedWhenWritten) {
  Make(Opts(kProtocol311));
  Connect(Connack4());
  uint64_t t = Pub("t", "x", 0);
  std::string out;
  session->Pump(now, &out);
  auto pubs = Publishes(out);
  ASSERT_EQ(pubs.size(), 1u);
  EXPECT_EQ(pubs[0].qos, 0);
  ASSERT_EQ(rec.acked.size(), 1u);
  EXPECT_EQ(rec.acked[0].first, t);
  EXPECT_EQ(session->inflight_count(), 0u);
}

// ------------------------------------------------------------ deferred PUBACK

class ManualAckTest : public SessionTest {
 protected:
  SessionOptions ManualOpts(uint8_t protocol = kProtocol5, uint16_t receive_maximum = 0) {
    SessionOptions o = Opts(protocol);
    o.manual_acks = true;
    o.receive_maximum = receive_maximum;
    return o;
  }
  // Feeds broker bytes; returns what the session wrote in answer.
  std::string Feed(const std::string& bytes) {
    std::string out;
    Status st = session->OnBytes(bytes, now, &out);
    EXPECT_TRUE(st.ok()) << st.ToString();
    return out;
  }
  std::vector<uint16_t> AckedIds(const std::string& bytes) {
    std::vector<uint16_t> ids;
    for (Packet& p : Parse(bytes, session->protocol(), &keep)) {
      EXPECT_TRUE(std::holds_alternative<Puback>(p)) << "not a PUBACK";
      if (std::holds_alternative<Puback>(p)) ids.push_back(std::get<Puback>(p).packet_id);
    }
    return ids;
  }
  std::string Ack(uint64_t token, uint8_t rc = 0) {
    std::string out;
    Status st = session->AckIncoming(token, rc, &out);
    EXPECT_TRUE(st.ok()) << st.ToString();
    return out;
  }
};

TEST_F(ManualAckTest, PubackIsWrittenOnlyByAckIncoming) {
  for (uint8_t level : {kProtocol5, kProtocol311}) {
    SCOPED_TRACE(int(level));
    Make(ManualOpts(level));
    Connect(level == kProtocol5 ? Connack5() : Connack4());
    rec.tokens.clear();
    EXPECT_EQ(Feed(InPub(7, "a", false, level) + InPub(9, "b", false, level)), "");
    ASSERT_EQ(rec.tokens.size(), 2u);
    EXPECT_EQ(rec.tokens[0], session->epoch() << 16 | 7);
    EXPECT_EQ(rec.tokens[1], session->epoch() << 16 | 9);
    EXPECT_EQ(session->inbound_unacked(), 2u);
    EXPECT_EQ(AckedIds(Ack(rec.tokens[0])), std::vector<uint16_t>{7});
    EXPECT_EQ(AckedIds(Ack(rec.tokens[1])), std::vector<uint16_t>{9});
    EXPECT_EQ(session->inbound_unacked(), 0u);
  }
}

TEST_F(ManualAckTest, PubacksGoOutInArrivalOrder) {
  Make(ManualOpts());
  Connect(Connack5());
  Feed(InPub(30, "a") + InPub(10, "b") + InPub(20, "c"));
  ASSERT_EQ(rec.tokens.size(), 3u);
  // Acked last-first: nothing may overtake the PUBACK of 30 [MQTT-4.6.0-2].
  EXPECT_EQ(Ack(rec.tokens[2], reason::kQuotaExceeded), "");
  EXPECT_EQ(Ack(rec.tokens[1]), "");
  std::string out = Ack(rec.tokens[0]);
  EXPECT_EQ(AckedIds(out), (std::vector<uint16_t>{30, 10, 20}));
  auto packets = Parse(out, kProtocol5, &keep);
  EXPECT_EQ(std::get<Puback>(packets[2]).reason_code, reason::kQuotaExceeded);
  EXPECT_EQ(session->inbound_unacked(), 0u);
}

TEST_F(ManualAckTest, AckFromInsideOnMessageGoesIntoTheSameBuffer) {
  Make(ManualOpts());
  Connect(Connack5());
  std::string out;
  rec.ack_in_callback = [&](uint64_t t) { return session->AckIncoming(t, 0, &out); };
  ASSERT_TRUE(session->OnBytes(InPub(5, "a") + InPub(6, "b"), now, &out).ok());
  EXPECT_EQ(AckedIds(out), (std::vector<uint16_t>{5, 6}));
}

TEST_F(ManualAckTest, StaleTokenAfterReconnectIsIgnoredAndCounted) {
  Make(ManualOpts());
  Connect(Connack5({}, 0, true));
  Feed(InPub(1, "a") + InPub(2, "b"));
  ASSERT_EQ(rec.tokens.size(), 2u);
  uint64_t old_epoch = session->epoch();
  EXPECT_EQ(AckedIds(Ack(rec.tokens[0])), std::vector<uint16_t>{1});
  session->OnConnectionLost(Status::Unavailable("cut"));
  // Acked while disconnected: nothing to write it to.
  EXPECT_EQ(Ack(rec.tokens[1]), "");
  EXPECT_EQ(session->stale_acks(), 1u);
  Connect(Connack5({}, 0, true));
  EXPECT_EQ(session->epoch(), old_epoch + 1);
  EXPECT_EQ(session->inbound_unacked(), 0u);
  // The broker resends "b" (DUP) under id 1, and a new message takes id 2.
  Feed(InPub(1, "b", true) + InPub(2, "c"));
  ASSERT_EQ(rec.tokens.size(), 4u);
  EXPECT_TRUE(rec.dups[2]);
  EXPECT_NE(rec.tokens[2] >> 16, old_epoch);
  // The old connection's token for id 2 must not ack the new message 2.
  EXPECT_EQ(Ack(rec.tokens[1]), "");
  EXPECT_EQ(Ack(old_epoch << 16 | 1), "");
  EXPECT_EQ(session->stale_acks(), 3u);
  EXPECT_EQ(session->inbound_unacked(), 2u);
  EXPECT_EQ(AckedIds(Ack(rec.tokens[2]) + Ack(rec.tokens[3])), (std::vector<uint16_t>{1, 2}));
}

TEST_F(ManualAckTest, DupWhileOutstandingIsNotHandedUpTwice) {
  Make(ManualOpts(kProtocol311));
  Connect(Connack4());
  Feed(InPub(4, "a", false, kProtocol311) + InPub(4, "a", true, kProtocol311));
  EXPECT_EQ(rec.messages.size(), 1u);
  EXPECT_EQ(session->duplicates_dropped(), 1u);
  EXPECT_EQ(AckedIds(Ack(rec.tokens[0])), std::vector<uint16_t>{4});
  // Once PUBACKed the id is free: the broker may use it for a new message.
  Feed(InPub(4, "next", false, kProtocol311));
  ASSERT_EQ(rec.messages.size(), 2u);
  EXPECT_EQ(rec.messages[1].second, "next");
}

TEST_F(ManualAckTest, ReusedIdWithoutDupIsAProtocolError) {
  Make(ManualOpts());
  Connect(Connack5());
  Feed(InPub(4, "a"));
  std::string out;
  Status st = session->OnBytes(InPub(4, "b"), now, &out);
  EXPECT_EQ(st.code(), Code::kProtocolError);
  EXPECT_NE(st.message().find("reuses packet id 4"), std::string::npos) << st.ToString();
  EXPECT_EQ(rec.messages.size(), 1u);
  EXPECT_FALSE(session->connected());
}

TEST_F(ManualAckTest, BadAcksAreRefused) {
  Make(ManualOpts());
  Connect(Connack5());
  Feed(InPub(8, "a") + InPub(9, "b"));
  std::string out;
  EXPECT_EQ(session->AckIncoming(0, 0, &out).code(), Code::kInvalidArgument);
  EXPECT_EQ(session->AckIncoming(session->epoch() << 16 | 99, 0, &out).code(),
            Code::kInvalidArgument);
  EXPECT_TRUE(session->AckIncoming(rec.tokens[1], 0, &out).ok());
  EXPECT_EQ(session->AckIncoming(rec.tokens[1], 0, &out).code(), Code::kInvalidArgument);
  EXPECT_EQ(out, "");
  EXPECT_EQ(session->stale_acks(), 0u);
}

TEST_F(ManualAckTest, Qos0HasTokenZeroAndQos1WithoutManualAcksIsAckedAtOnce) {
  Make(ManualOpts());
  Connect(Connack5());
  EXPECT_EQ(Feed(InPub(0, "q0", false, kProtocol5, 0)), "");
  ASSERT_EQ(rec.tokens.size(), 1u);
  EXPECT_EQ(rec.tokens[0], 0u);
  EXPECT_EQ(session->inbound_unacked(), 0u);

  Make(Opts());
  Connect(Connack5());
  EXPECT_EQ(AckedIds(Feed(InPub(3, "q1"))), std::vector<uint16_t>{3});
  EXPECT_EQ(rec.tokens.back(), 0u);
}

TEST_F(ManualAckTest, ReceiveMaximumIsSentInConnect) {
  for (uint16_t rm : {0, 1000}) {
    Make(ManualOpts(kProtocol5, rm));
    std::string out;
    session->StartConnect(now, &out);
    auto packets = Parse(out, kProtocol5, &keep);
    ASSERT_EQ(packets.size(), 1u);
    const auto& c = std::get<mqtt::Connect>(packets[0]);
    EXPECT_EQ(c.properties.receive_maximum.has_value(), rm != 0);
    EXPECT_EQ(c.properties.receive_maximum.value_or(0), rm);
  }
  // 3.1.1 has no properties at all.
  Make(ManualOpts(kProtocol311, 1000));
  std::string out;
  session->StartConnect(now, &out);
  EXPECT_FALSE(std::get<mqtt::Connect>(Parse(out, kProtocol311, &keep)[0])
                   .properties.receive_maximum.has_value());
}

TEST_F(ManualAckTest, ExceedingReceiveMaximumIsAProtocolError) {
  Make(ManualOpts(kProtocol5, 2));
  Connect(Connack5());
  Feed(InPub(1, "a") + InPub(2, "b"));
  // A PUBACK written makes room; one acked but held behind an earlier one does not.
  Ack(rec.tokens[0]);
  Feed(InPub(3, "c"));
  EXPECT_EQ(Ack(rec.tokens[2]), "");  // held behind 2
  std::string out;
  Status st = session->OnBytes(InPub(4, "d"), now, &out);
  EXPECT_EQ(st.code(), Code::kProtocolError);
  EXPECT_NE(st.message().find("Receive Maximum of 2"), std::string::npos) << st.ToString();
  EXPECT_EQ(rec.messages.size(), 3u);
  EXPECT_FALSE(session->connected());
  auto packets = Parse(out, kProtocol5, &keep);
  ASSERT_EQ(packets.size(), 1u);
  EXPECT_EQ(std::get<mqtt::Disconnect>(packets[0]).reason_code, reason::kReceiveMaximumExceeded);
}

TEST_F(ManualAckTest, LenientReceiveMaximumCountsTheExcessAndStaysConnected) {
  SessionOptions o = ManualOpts(kProtocol5, 2);
  o.strict_receive_maximum = false;
  Make(o);
  Connect(Connack5());
  Feed(InPub(1, "a") + InPub(2, "b") + InPub(3, "c") + InPub(4, "d"));
  EXPECT_TRUE(session->connected());
  EXPECT_EQ(rec.messages.size(), 4u);
  EXPECT_EQ(session->receive_maximum_exceeded(), 2u);
  std::string out;
  for (uint64_t t : rec.tokens) out += Ack(t);
  EXPECT_EQ(AckedIds(out), (std::vector<uint16_t>{1, 2, 3, 4}));
}

}  // namespace
}  // namespace edgespool::sync::mqtt
