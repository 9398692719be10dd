// MQTT codec: packets written out byte by byte from the spec's examples,
// seeded random round trips, the frame splitter on arbitrary chunking, and
// every strict-decoding error on purpose.
#include <gtest/gtest.h>

#include <algorithm>
#include <deque>
#include <random>
#include <string>
#include <vector>

#include "sync/mqtt/codec.h"
#include "sync/mqtt/wire.h"

namespace edgespool::sync::mqtt {
namespace {

std::string Bytes(std::initializer_list<int> b) {
  std::string s;
  for (int x : b) s.push_back(static_cast<char>(x));
  return s;
}

std::string Hex(const std::string& s) {
  static const char* d = "0123456789ABCDEF";
  std::string h;
  for (unsigned char c : s) {
    h += d[c >> 4];
    h += d[c & 15];
    h += ' ';
  }
  return h;
}

template <typename T>
T DecodeAs(const std::string& bytes, uint8_t level) {
  auto r = DecodeOne(bytes, level);
  EXPECT_TRUE(r.ok()) << r.status().ToString() << " for " << Hex(bytes);
  if (!r.ok()) return T{};
  EXPECT_TRUE(std::holds_alternative<T>(r.value()));
  if (!std::holds_alternative<T>(r.value())) return T{};
  return std::get<T>(r.value());
}

void ExpectMalformed(const std::string& bytes, uint8_t level, const std::string& reason_part) {
  auto r = DecodeOne(bytes, level);
  ASSERT_FALSE(r.ok()) << "accepted " << Hex(bytes);
  EXPECT_EQ(r.status().code(), Code::kProtocolError);
  EXPECT_NE(r.status().message().find(reason_part), std::string::npos)
      << "reason was: " << r.status().message();
}

// ------------------------------------------------------------ primitives

TEST(MqttWire, VariableByteIntegerSpecTable) {
  // Spec 1.5.5, table 1-1: the boundaries of each encoded size.
  struct Case {
    uint32_t value;
    std::string bytes;
  } cases[] = {
      {0, Bytes({0x00})},
      {127, Bytes({0x7F})},
      {128, Bytes({0x80, 0x01})},
      {16383, Bytes({0xFF, 0x7F})},
      {16384, Bytes({0x80, 0x80, 0x01})},
      {2097151, Bytes({0xFF, 0xFF, 0x7F})},
      {2097152, Bytes({0x80, 0x80, 0x80, 0x01})},
      {268435455, Bytes({0xFF, 0xFF, 0xFF, 0x7F})},
  };
  for (const Case& c : cases) {
    std::string out;
    PutVarInt(c.value, &out);
    EXPECT_EQ(out, c.bytes) << c.value;
    EXPECT_EQ(VarIntSize(c.value), c.bytes.size());
    uint32_t v = 0;
    EXPECT_EQ(ParseVarInt(reinterpret_cast<const uint8_t*>(c.bytes.data()), c.bytes.size(), &v),
              static_cast<int>(c.bytes.size()));
    EXPECT_EQ(v, c.value);
    // Every strict prefix asks for more bytes.
    for (size_t n = 0; n < c.bytes.size(); ++n) {
      EXPECT_EQ(ParseVarInt(reinterpret_cast<const uint8_t*>(c.bytes.data()), n, &v), 0);
    }
  }
}

TEST(MqttWire, VariableByteIntegerOverFourBytesAndNonMinimalRejected) {
  std::string five = Bytes({0xFF, 0xFF, 0xFF, 0xFF, 0x7F});
  uint32_t v = 0;
  EXPECT_EQ(ParseVarInt(reinterpret_cast<const uint8_t*>(five.data()), five.size(), &v), -1);
  std::string padded = Bytes({0x80, 0x00});
  EXPECT_EQ(ParseVarInt(reinterpret_cast<const uint8_t*>(padded.data()), padded.size(), &v), -1);
}

TEST(MqttWire, Utf8Validation) {
  EXPECT_TRUE(IsValidMqttUtf8("sensors/temp"));
  EXPECT_TRUE(IsValidMqttUtf8("caf\xC3\xA9"));                   // U+00E9
  EXPECT_TRUE(IsValidMqttUtf8("\xE2\x82\xAC"));                  // U+20AC
  EXPECT_TRUE(IsValidMqttUtf8("\xF0\x9F\x98\x80"));              // U+1F600
  EXPECT_TRUE(IsValidMqttUtf8("\xEF\xBB\xBF"));                  // BOM is allowed
  EXPECT_TRUE(IsValidMqttUtf8("\xF4\x8F\xBF\xBF"));              // U+10FFFF
  EXPECT_FALSE(IsValidMqttUtf8(std::string("a\0b", 3)));         // U+0000
  EXPECT_FALSE(IsValidMqttUtf8("\xC0\x80"));                     // overlong NUL
  EXPECT_FALSE(IsValidMqttUtf8("\xC1\xBF"));                     // overlong
  EXPECT_FALSE(IsValidMqttUtf8("\xE0\x80\xAF"));                 // overlong '/'
  EXPECT_FALSE(IsValidMqttUtf8("\xED\xA0\x80"));                 // U+D800 surrogate
  EXPECT_FALSE(IsValidMqttUtf8("\xED\xBF\xBF"));                 // U+DFFF surrogate
  EXPECT_FALSE(IsValidMqttUtf8("\xF4\x90\x80\x80"));             // U+110000
  EXPECT_FALSE(IsValidMqttUtf8("\xF5\x80\x80\x80"));
  EXPECT_FALSE(IsValidMqttUtf8("\x80"));                         // lone continuation
  EXPECT_FALSE(IsValidMqttUtf8("\xC3"));                         // truncated
  EXPECT_FALSE(IsValidMqttUtf8("\xE2\x82"));                     // truncated
  EXPECT_FALSE(IsValidMqttUtf8("\xF0\x9F\x98"));                 // truncated
}

TEST(MqttWire, TopicNamesAndFilters) {
  EXPECT_TRUE(IsValidTopicName("a/b/c"));
  EXPECT_TRUE(IsValidTopicName("/"));
  EXPECT_FALSE(IsValidTopicName(""));
  EXPECT_FALSE(IsValidTopicName("a/+/c"));
  EXPECT_FALSE(IsValidTopicName("a/#"));
  EXPECT_TRUE(IsValidTopicFilter("#"));
  EXPECT_TRUE(IsValidTopicFilter("a/+/c"));
  EXPECT_TRUE(IsValidTopicFilter("+/+"));
  EXPECT_TRUE(IsValidTopicFilter("a/#"));
  EXPECT_FALSE(IsValidTopicFilter("a/#/b"));
  EXPECT_FALSE(IsValidTopicFilter("a#"));
  EXPECT_FALSE(IsValidTopicFilter("a+/b"));
  EXPECT_FALSE(IsValidTopicFilter(""));
}

// ------------------------------------------------------------ spec bytes

TEST(MqttCodec, Connect311ByteByByte) {
  Connect c;
  c.protocol_level = kProtocol311;
  c.client_id = "a";
  c.clean_start = true;
  c.keepalive_s = 60;
  std::string out;
  Encode(c, &out);
  EXPECT_EQ(Hex(out), Hex(Bytes({0x10, 0x0D, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x02, 0x00,
                                 0x3C, 0x00, 0x01, 'a'})));
  Connect d = DecodeAs<Connect>(out, kProtocol311);
  EXPECT_EQ(d.client_id, "a");
  EXPECT_EQ(d.keepalive_s, 60);
  EXPECT_TRUE(d.clean_start);
}

TEST(MqttCodec, Connect5SpecExampleVariableHeader) {
  // Spec 3.1.2.11, figure 3-6: "MQTT", level 5, flags 0xC2 (user name,
  // password, clean start), keep alive 10, properties: session expiry 10.
  std::string bytes = Bytes({0x10, 0x18, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x05, 0xC2, 0x00, 0x0A,
                             0x05, 0x11, 0x00, 0x00, 0x00, 0x0A, 0x00, 0x00,  // empty client id
                             0x00, 0x01, 'u', 0x00, 0x01, 'p'});
  Connect c = DecodeAs<Connect>(bytes, kProtocol5);
  EXPECT_EQ(c.protocol_level, 5);
  EXPECT_EQ(c.keepalive_s, 10);
  EXPECT_TRUE(c.clean_start);
  ASSERT_TRUE(c.properties.session_expiry_s.has_value());
  EXPECT_EQ(*c.properties.session_expiry_s, 10u);
  EXPECT_EQ(c.client_id, "");
  EXPECT_EQ(c.username.value_or("?"), "u");
  EXPECT_EQ(c.password.value_or("?"), "p");
  std::string again;
  Encode(c, &again);
  EXPECT_EQ(Hex(again), Hex(bytes));
}

TEST(MqttCodec, ConnectWithWill5) {
  Connect c;
  c.client_id = "edge-1";
  c.will = Will{"edgespool/edge-1/status", "{\"online\":false}", 1, true, {}};
  c.will->properties.will_delay_s = 5;
  c.properties.receive_maximum = 100;
  c.properties.maximum_packet_size = 1 << 20;
  std::string out;
  Encode(c, &out);
  Connect d = DecodeAs<Connect>(out, kProtocol5);
  ASSERT_TRUE(d.will.has_value());
  EXPECT_EQ(d.will->topic, "edgespool/edge-1/status");
  EXPECT_EQ(d.will->payload, "{\"online\":false}");
  EXPECT_EQ(d.will->qos, 1);
  EXPECT_TRUE(d.will->retain);
  EXPECT_EQ(d.will->properties.will_delay_s.value_or(0), 5u);
  EXPECT_EQ(d.properties.receive_maximum.value_or(0), 100);
  // Flags byte: will flag, will QoS 1, will retain, clean start.
  EXPECT_EQ(static_cast<uint8_t>(out[9]), 0x02 | 0x04 | 0x08 | 0x20);
}

TEST(MqttCodec, Connack311AndConnack5) {
  Connack a = DecodeAs<Connack>(Bytes({0x20, 0x02, 0x01, 0x00}), kProtocol311);
  EXPECT_TRUE(a.session_present);
  EXPECT_EQ(a.reason_code, 0);
  Connack r = DecodeAs<Connack>(Bytes({0x20, 0x02, 0x00, 0x05}), kProtocol311);
  EXPECT_EQ(r.reason_code, 5);  // not authorized
  // MQTT 5: receive maximum 20, topic alias maximum 10, max packet 1024,
  // assigned client id "x".
  // (Encoders write properties in id order; the bytes here follow it.)
  std::string five = Bytes({0x20, 0x12, 0x00, 0x00, 0x0F, 0x12, 0x00, 0x01, 'x', 0x21, 0x00,
                            0x14, 0x22, 0x00, 0x0A, 0x27, 0x00, 0x00, 0x04, 0x00});
  Connack c = DecodeAs<Connack>(five, kProtocol5);
  EXPECT_EQ(c.properties.receive_maximum.value_or(0), 20);
  EXPECT_EQ(c.properties.topic_alias_maximum.value_or(0), 10);
  EXPECT_EQ(c.properties.maximum_packet_size.value_or(0), 1024u);
  EXPECT_EQ(c.properties.assigned_client_id.value_or(""), "x");
  std::string again;
  Encode(c, kProtocol5, &again);
  EXPECT_EQ(Hex(again), Hex(five));
}

TEST(MqttCodec, Publish311ByteByByte) {
  Publish p;
  p.topic = "a/b";
  p.payload = "hi";
  p.qos = 1;
  p.packet_id = 10;
  std::string out;
  Encode(p, kProtocol311, &out);
  EXPECT_EQ(Hex(out), Hex(Bytes({0x32, 0x09, 0x00, 0x03, 'a', '/', 'b', 0x00, 0x0A, 'h', 'i'})));
  p.qos = 0;
  p.retain = true;
  out.clear();
  Encode(p, kProtocol311, &out);
  EXPECT_EQ(Hex(out), Hex(Bytes({0x31, 0x07, 0x00, 0x03, 'a', '/', 'b', 'h', 'i'})));
}

TEST(MqttCodec, Publish5WithPropertiesIsZeroCopy) {
  std::string bytes = Bytes({0x3A, 0x13, 0x00, 0x01, 't', 0x00, 0x07,  // QoS1 DUP, id 7
                             0x0C,                                       // properties: 12 bytes
                             0x02, 0x00, 0x00, 0x00, 0x3C,               // message expiry 60
                             0x26, 0x00, 0x01, 'k', 0x00, 0x01, 'v',     // user property k=v
                             'x', 'y'});
  bytes[1] = static_cast<char>(bytes.size() - 2);
  auto r = DecodeOne(bytes, kProtocol5);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const Publish& p = std::get<Publish>(r.value());
  EXPECT_TRUE(p.dup);
  EXPECT_EQ(p.qos, 1);
  EXPECT_EQ(p.packet_id, 7);
  EXPECT_EQ(p.properties.message_expiry_s.value_or(0), 60u);
  ASSERT_EQ(p.properties.user_properties.size(), 1u);
  EXPECT_EQ(p.properties.user_properties[0].key, "k");
  EXPECT_EQ(p.payload, "xy");
  // The payload and topic are views into the input.
  EXPECT_EQ(p.payload.data(), bytes.data() + bytes.size() - 2);
  EXPECT_EQ(p.topic.data(), bytes.data() + 4);
}

TEST(MqttCodec, AcksPingsDisconnect) {
  Puback a = DecodeAs<Puback>(Bytes({0x40, 0x02, 0x00, 0x01}), kProtocol311);
  EXPECT_EQ(a.packet_id, 1);
  // MQTT 5 short forms: reason omitted (= success) or present without props.
  EXPECT_EQ(DecodeAs<Puback>(Bytes({0x40, 0x02, 0x12, 0x34}), kProtocol5).packet_id, 0x1234);
  EXPECT_EQ(DecodeAs<Puback>(Bytes({0x40, 0x03, 0x00, 0x01, 0x10}), kProtocol5).reason_code, 0x10);
  // Decoded packets are views: keep the bytes alive while reading them.
  const std::string refused = Bytes({0x40, 0x08, 0x00, 0x02, 0x97, 0x04, 0x1F, 0x00, 0x01, 'q'});
  Puback rs = DecodeAs<Puback>(refused, kProtocol5);
  EXPECT_EQ(rs.reason_code, 0x97);
  EXPECT_EQ(rs.properties.reason_string.value_or(""), "q");

  std::string out;
  Encode(Puback{5, 0, {}}, kProtocol5, &out);
  EXPECT_EQ(Hex(out), Hex(Bytes({0x40, 0x02, 0x00, 0x05})));
  out.clear();
  Encode(Pingreq{}, kProtocol5, &out);
  Encode(Pingresp{}, kProtocol5, &out);
  Encode(Disconnect{}, kProtocol5, &out);
  EXPECT_EQ(Hex(out), Hex(Bytes({0xC0, 0x00, 0xD0, 0x00, 0xE0, 0x00})));
  out.clear();
  Encode(Disconnect{reason::kProtocolError, {}}, kProtocol5, &out);
  EXPECT_EQ(Hex(out), Hex(Bytes({0xE0, 0x01, 0x82})));
  Disconnect d = DecodeAs<Disconnect>(Bytes({0xE0, 0x01, 0x8B}), kProtocol5);
  EXPECT_EQ(d.reason_code, 0x8B);
}

TEST(MqttCodec, SubscribeAndSuback) {
  Subscribe s;
  s.packet_id = 1;
  s.topics.push_back({"a/+", 1});
  s.topics.push_back({"b/#", 0});
  std::string out;
  Encode(s, kProtocol311, &out);
  EXPECT_EQ(Hex(out), Hex(Bytes({0x82, 0x0E, 0x00, 0x01, 0x00, 0x03, 'a', '/', '+', 0x01, 0x00,
                                 0x03, 'b', '/', '#', 0x00})));
  Subscribe d = DecodeAs<Subscribe>(out, kProtocol311);
  ASSERT_EQ(d.topics.size(), 2u);
  EXPECT_EQ(d.topics[1].filter, "b/#");
  Suback sa = DecodeAs<Suback>(Bytes({0x90, 0x04, 0x00, 0x01, 0x01, 0x80}), kProtocol311);
  EXPECT_EQ(sa.reason_codes, (std::vector<uint8_t>{0x01, 0x80}));
  Suback s5 = DecodeAs<Suback>(Bytes({0x90, 0x04, 0x00, 0x01, 0x00, 0x87}), kProtocol5);
  EXPECT_EQ(s5.reason_codes, (std::vector<uint8_t>{0x87}));
  Unsuback u4 = DecodeAs<Unsuback>(Bytes({0xB0, 0x02, 0x00, 0x09}), kProtocol311);
  EXPECT_EQ(u4.packet_id, 9);
}

// ------------------------------------------------------------ strict errors

TEST(MqttStrict, RemainingLengthOverFourBytes) {
  ExpectMalformed(Bytes({0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F}), kProtocol311, "over 4 bytes");
}

TEST(MqttStrict, RemainingLengthPastTheData) {
  ExpectMalformed(Bytes({0x30, 0x0A, 0x00, 0x01, 'a'}), kProtocol311, "runs past");
}

TEST(MqttStrict, StringLengthPastThePacket) {
  // Topic length 0x10 but only 2 bytes follow: the classic over-read.
  ExpectMalformed(Bytes({0x30, 0x04, 0x00, 0x10, 'a', 'b'}), kProtocol311, "runs past");
  ExpectMalformed(Bytes({0x30, 0x01, 0x00}), kProtocol311, "runs past");
  ExpectMalformed(Bytes({0x32, 0x04, 0x00, 0x01, 't', 0x00}), kProtocol311, "runs past");
}

TEST(MqttStrict, InvalidUtf8InTopic) {
  ExpectMalformed(Bytes({0x30, 0x04, 0x00, 0x02, 0xC0, 0x80}), kProtocol311, "UTF-8");
  ExpectMalformed(Bytes({0x30, 0x03, 0x00, 0x01, 0x00}), kProtocol311, "UTF-8");
  ExpectMalformed(Bytes({0x30, 0x05, 0x00, 0x03, 0xED, 0xA0, 0x80}), kProtocol311, "UTF-8");
  ExpectMalformed(Bytes({0x30, 0x06, 0x00, 0x04, 0xF4, 0x90, 0x80, 0x80}), kProtocol311, "UTF-8");
}

TEST(MqttStrict, ReservedFlags) {
  ExpectMalformed(Bytes({0x41, 0x02, 0x00, 0x01}), kProtocol311, "reserved fixed header");
  ExpectMalformed(Bytes({0x80, 0x06, 0x00, 0x01, 0x00, 0x01, 'a', 0x00}), kProtocol311,
                  "reserved fixed header");
  ExpectMalformed(Bytes({0x36, 0x05, 0x00, 0x01, 't', 0x00, 0x01}), kProtocol311, "QoS 3");
  ExpectMalformed(Bytes({0x38, 0x03, 0x00, 0x01, 't'}), kProtocol311, "DUP");
  ExpectMalformed(Bytes({0x20, 0x02, 0x02, 0x00}), kProtocol311, "reserved CONNACK");
  ExpectMalformed(Bytes({0x82, 0x06, 0x00, 0x01, 0x00, 0x01, 'a', 0x04}), kProtocol311,
                  "reserved subscription option");
  ExpectMalformed(Bytes({0x00, 0x00}), kProtocol311, "reserved");
}

TEST(MqttStrict, UnknownPropertyId) {
  ExpectMalformed(Bytes({0x30, 0x06, 0x00, 0x01, 't', 0x02, 0x04, 0x00}), kProtocol5,
                  "unknown property id 0x04");
}

TEST(MqttStrict, DuplicateSingleValuedProperty) {
  std::string b = Bytes({0x30, 0x00, 0x00, 0x01, 't', 0x0A, 0x02, 0x00, 0x00, 0x00, 0x01, 0x02,
                         0x00, 0x00, 0x00, 0x02});
  b[1] = static_cast<char>(b.size() - 2);
  ExpectMalformed(b, kProtocol5, "appears twice");
}

TEST(MqttStrict, PropertyNotAllowedInPacket) {
  // Topic Alias (0x23) in a CONNACK.
  ExpectMalformed(Bytes({0x20, 0x06, 0x00, 0x00, 0x03, 0x23, 0x00, 0x01}), kProtocol5,
                  "not allowed");
}

TEST(MqttStrict, PropertyValuesOutOfRange) {
  ExpectMalformed(Bytes({0x20, 0x06, 0x00, 0x00, 0x03, 0x21, 0x00, 0x00}), kProtocol5,
                  "receive maximum of 0");
  ExpectMalformed(Bytes({0x20, 0x05, 0x00, 0x00, 0x02, 0x24, 0x02}), kProtocol5, "maximum QoS");
  ExpectMalformed(Bytes({0x20, 0x08, 0x00, 0x00, 0x05, 0x27, 0x00, 0x00, 0x00, 0x00}), kProtocol5,
                  "maximum packet size of 0");
}

TEST(MqttStrict, PropertyLengthPastTheBlock) {
  ExpectMalformed(Bytes({0x20, 0x04, 0x00, 0x00, 0x09, 0x21}), kProtocol5, "runs past");
  // A user property whose value length overruns the property block.
  ExpectMalformed(Bytes({0x20, 0x0A, 0x00, 0x00, 0x07, 0x26, 0x00, 0x01, 'k', 0x00, 0x09, 'v'}),
                  kProtocol5, "runs past");
}

TEST(MqttStrict, PacketIdZero) {
  ExpectMalformed(Bytes({0x32, 0x05, 0x00, 0x01, 't', 0x00, 0x00}), kProtocol311,
                  "packet identifier 0");
  ExpectMalformed(Bytes({0x40, 0x02, 0x00, 0x00}), kProtocol311, "packet identifier 0");
}

TEST(MqttStrict, SubackWithoutReasonCodes) {
  ExpectMalformed(Bytes({0x90, 0x02, 0x00, 0x01}), kProtocol311, "SUBACK without reason codes");
  ExpectMalformed(Bytes({0x90, 0x03, 0x00, 0x01, 0x00}), kProtocol5,
                  "SUBACK without reason codes");
}

TEST(MqttStrict, TrailingBytesAndBadReasonCodes) {
  ExpectMalformed(Bytes({0xD0, 0x01, 0x00}), kProtocol311, "unexpected bytes");
  ExpectMalformed(Bytes({0x40, 0x03, 0x00, 0x01, 0x00}), kProtocol311, "unexpected bytes");
  ExpectMalformed(Bytes({0x40, 0x03, 0x00, 0x01, 0x42}), kProtocol5, "reason code 0x42");
  ExpectMalformed(Bytes({0x20, 0x02, 0x00, 0x06}), kProtocol311, "reason code 0x06");
  ExpectMalformed(Bytes({0x90, 0x03, 0x00, 0x01, 0x03}), kProtocol311, "reason code 0x03");
  ExpectMalformed(Bytes({0x20, 0x02, 0x01, 0x05}), kProtocol311, "session present");
}

TEST(MqttStrict, WildcardInPublishedTopicAndEmptyTopic) {
  ExpectMalformed(Bytes({0x30, 0x05, 0x00, 0x03, 'a', '/', '#'}), kProtocol311, "wildcard");
  ExpectMalformed(Bytes({0x30, 0x02, 0x00, 0x00}), kProtocol311, "empty topic");
  // MQTT 5: an empty topic is fine with a topic alias.
  auto r = DecodeOne(Bytes({0x30, 0x06, 0x00, 0x00, 0x03, 0x23, 0x00, 0x01}), kProtocol5);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
}

TEST(MqttStrict, Qos2AndAuthRefused) {
  auto r = DecodeOne(Bytes({0x50, 0x02, 0x00, 0x01}), kProtocol311);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("QoS 2"), std::string::npos);
  EXPECT_FALSE(DecodeOne(Bytes({0xF0, 0x00}), kProtocol5).ok());
}

TEST(MqttStrict, PacketOverNegotiatedMaximum) {
  std::string pub = Bytes({0x30, 0x09, 0x00, 0x01, 't', 'a', 'b', 'c', 'd', 'e', 'f'});
  auto r = DecodeOne(pub, kProtocol311, 10);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("exceeds the maximum packet size of 10"), std::string::npos);
  EXPECT_TRUE(DecodeOne(pub, kProtocol311, 11).ok());
  // The splitter refuses on the fixed header alone, before buffering a body.
  FrameSplitter splitter(10);
  int frames = 0;
  Status st = splitter.Feed(pub.substr(0, 2), [&](const Frame&) {
    ++frames;
    return Status::Ok();
  });
  EXPECT_EQ(st.code(), Code::kProtocolError);
  EXPECT_EQ(frames, 0);
  EXPECT_EQ(splitter.buffered(), 0u);
  // And stays failed: the stream is out of sync.
  EXPECT_FALSE(splitter.Feed(Bytes({0xD0, 0x00}), [](const Frame&) { return Status::Ok(); }).ok());
}

TEST(MqttStrict, EveryTruncationOfValidPacketsFailsCleanly) {
  // Each valid packet cut at every length, and with its declared length
  // made to match the cut, must fail (or decode) without reading outside.
  Connect c;
  c.client_id = "cid";
  c.username = "u";
  c.password = "p";
  c.will = Will{"w/t", "bye", 1, false, {}};
  c.properties.user_properties.push_back({"k", "v"});
  std::string out;
  Encode(c, &out);
  Publish p;
  p.topic = "x/y";
  p.qos = 1;
  p.packet_id = 3;
  p.payload = "payload";
  p.properties.content_type = "text/plain";
  Encode(p, kProtocol5, &out);
  for (size_t cut = 0; cut < out.size(); ++cut) {
    std::string prefix = out.substr(0, cut);
    (void)DecodeOne(prefix, kProtocol5);
    if (cut >= 2) {
      std::string relen = prefix;
      relen[1] = static_cast<char>(std::min<size_t>(cut - 2, 127));
      (void)DecodeOne(relen.substr(0, std::min<size_t>(relen.size(), 2 + 127)), kProtocol5);
    }
  }
}

// ------------------------------------------------------------ round trips

class RandomPackets {
 public:
  explicit RandomPackets(uint32_t seed) : rng_(seed) {}

  std::string Str(size_t max_len) {
    // Random valid UTF-8 from a few planes, stored so views stay valid.
    std::string s;
    size_t n = Pick(0, max_len);
    static const char* const kPieces[] = {"a", "Z", "/", "0", "\xC3\xA9", "\xE2\x82\xAC",
                                          "\xF0\x9F\x98\x80", " ", "_"};
    for (size_t i = 0; i < n; ++i) s += kPieces[Pick(0, 8)];
    store_.push_back(s);
    return store_.back();
  }
  std::string_view View(size_t max_len) {
    Str(max_len);
    return store_.back();
  }
  std::string_view Topic() {
    std::string_view t;
    do {
      t = View(20);
    } while (t.empty());
    return t;
  }
  std::string_view Binary(size_t max_len) {
    std::string s(Pick(0, max_len), '\0');
    for (char& c : s) c = static_cast<char>(Pick(0, 255));
    store_.push_back(s);
    return store_.back();
  }
  size_t Pick(size_t lo, size_t hi) { return std::uniform_int_distribution<size_t>(lo, hi)(rng_); }
  bool Coin() { return Pick(0, 1) == 1; }

  Properties PublishProps() {
    Properties p;
    if (Coin()) p.payload_format = static_cast<uint8_t>(Pick(0, 1));
    if (Coin()) p.message_expiry_s = static_cast<uint32_t>(Pick(0, 0xFFFFFFFF));
    if (Coin()) p.content_type = View(10);
    if (Coin()) p.response_topic = Topic();
    if (Coin()) p.correlation_data = Binary(16);
    if (Coin()) p.topic_alias = static_cast<uint16_t>(Pick(1, 65535));
    for (size_t i = Pick(0, 2); i > 0; --i) {
      p.subscription_ids.push_back(static_cast<uint32_t>(Pick(1, kMaxVarInt)));
    }
    for (size_t i = Pick(0, 3); i > 0; --i) p.user_properties.push_back({View(8), View(8)});
    return p;
  }
  Properties ConnackProps() {
    Properties p;
    if (Coin()) p.session_expiry_s = static_cast<uint32_t>(Pick(0, 0xFFFFFFFF));
    if (Coin()) p.receive_maximum = static_cast<uint16_t>(Pick(1, 65535));
    if (Coin()) p.maximum_qos = static_cast<uint8_t>(Pick(0, 1));
    if (Coin()) p.retain_available = static_cast<uint8_t>(Pick(0, 1));
    if (Coin()) p.maximum_packet_size = static_cast<uint32_t>(Pick(1, 0xFFFFFFFF));
    if (Coin()) p.assigned_client_id = View(12);
    if (Coin()) p.topic_alias_maximum = static_cast<uint16_t>(Pick(0, 65535));
    if (Coin()) p.reason_string = View(20);
    if (Coin()) p.server_keepalive_s = static_cast<uint16_t>(Pick(0, 65535));
    if (Coin()) p.response_info = View(5);
    if (Coin()) p.server_reference = View(5);
    if (Coin()) p.wildcard_subscription_available = static_cast<uint8_t>(Pick(0, 1));
    if (Coin()) p.subscription_ids_available = static_cast<uint8_t>(Pick(0, 1));
    if (Coin()) p.shared_subscription_available = static_cast<uint8_t>(Pick(0, 1));
    for (size_t i = Pick(0, 3); i > 0; --i) p.user_properties.push_back({View(8), View(8)});
    return p;
  }

 private:
  std::mt19937 rng_;
  std::deque<std::string> store_;  // stable addresses for the views
};

TEST(MqttRoundTrip, SeededRandomPackets) {
  for (uint32_t seed = 1; seed <= 300; ++seed) {
    RandomPackets g(seed);
    for (uint8_t level : {kProtocol311, kProtocol5}) {
      bool v5 = level == kProtocol5;
      std::vector<Packet> packets;
      Publish pub;
      pub.topic = g.Topic();
      pub.payload = g.Binary(g.Coin() ? 300 : 20);
      pub.qos = static_cast<uint8_t>(g.Pick(0, 1));
      pub.retain = g.Coin();
      pub.dup = pub.qos > 0 && g.Coin();
      pub.packet_id = pub.qos ? static_cast<uint16_t>(g.Pick(1, 65535)) : 0;
      if (v5) pub.properties = g.PublishProps();
      packets.push_back(pub);
      Connack ca;
      ca.session_present = g.Coin();
      if (v5) ca.properties = g.ConnackProps();
      packets.push_back(ca);
      Connect co;
      co.protocol_level = level;
      co.client_id = g.View(23);
      co.keepalive_s = static_cast<uint16_t>(g.Pick(0, 65535));
      co.clean_start = g.Coin();
      if (g.Coin()) co.username = g.View(10);
      if (co.username && g.Coin()) co.password = g.Binary(10);
      if (g.Coin()) co.will = Will{g.Topic(), g.Binary(30), static_cast<uint8_t>(g.Pick(0, 2)),
                                   g.Coin(), {}};
      if (v5) {
        co.properties.session_expiry_s = static_cast<uint32_t>(g.Pick(0, 1000));
        co.properties.receive_maximum = static_cast<uint16_t>(g.Pick(1, 65535));
        if (co.will && g.Coin()) co.will->properties.message_expiry_s = 7;
      }
      packets.push_back(co);
      Puback pa;
      pa.packet_id = static_cast<uint16_t>(g.Pick(1, 65535));
      if (v5 && g.Coin()) pa.reason_code = 0x10;
      if (v5 && g.Coin()) pa.properties.reason_string = g.View(10);
      packets.push_back(pa);
      Subscribe su;
      su.packet_id = static_cast<uint16_t>(g.Pick(1, 65535));
      for (size_t i = g.Pick(1, 4); i > 0; --i) {
        su.topics.push_back({g.Topic(), static_cast<uint8_t>(g.Pick(0, 2)), v5 && g.Coin(),
                             v5 && g.Coin(), v5 ? static_cast<uint8_t>(g.Pick(0, 2)) : uint8_t{0}});
      }
      packets.push_back(su);
      Suback sa;
      sa.packet_id = su.packet_id;
      for (size_t i = g.Pick(1, 4); i > 0; --i) sa.reason_codes.push_back(g.Coin() ? 1 : 0x80);
      packets.push_back(sa);
      Unsubscribe un;
      un.packet_id = 4;
      un.filters.push_back(g.Topic());
      packets.push_back(un);
      Unsuback ua;
      ua.packet_id = 4;
      if (v5) ua.reason_codes.push_back(0x11);
      packets.push_back(ua);
      packets.push_back(Pingreq{});
      packets.push_back(Pingresp{});
      Disconnect di;
      if (v5 && g.Coin()) di.reason_code = 0x8B;
      packets.push_back(di);

      std::string stream;
      for (const Packet& p : packets) {
        std::string one;
        EncodePacket(p, level, &one);
        auto d = DecodeOne(one, level);
        ASSERT_TRUE(d.ok()) << "seed " << seed << " level " << int(level) << " "
                            << PacketTypeName(TypeOf(p)) << ": " << d.status().ToString() << "\n"
                            << Hex(one);
        ASSERT_EQ(TypeOf(d.value()), TypeOf(p));
        std::string again;
        EncodePacket(d.value(), level, &again);
        ASSERT_EQ(Hex(again), Hex(one)) << "seed " << seed << " " << PacketTypeName(TypeOf(p));
        stream += one;
      }
      // Field-level check on the packet that matters most.
      std::string pub_bytes;
      Encode(pub, level, &pub_bytes);
      auto dp = DecodeOne(pub_bytes, level);
      ASSERT_TRUE(dp.ok());
      const Publish& back = std::get<Publish>(dp.value());
      EXPECT_EQ(back.topic, pub.topic);
      EXPECT_EQ(back.payload, pub.payload);
      EXPECT_EQ(back.qos, pub.qos);
      EXPECT_EQ(back.retain, pub.retain);
      EXPECT_EQ(back.dup, pub.dup);
      EXPECT_EQ(back.packet_id, pub.packet_id);
      EXPECT_TRUE(back.properties == pub.properties) << "seed " << seed;

      // The same stream through the splitter in random chunks.
      FrameSplitter splitter;
      size_t frames = 0;
      size_t pos = 0;
      while (pos < stream.size()) {
        size_t n = std::min(stream.size() - pos, g.Pick(1, 40));
        Status st = splitter.Feed(std::string_view(stream).substr(pos, n), [&](const Frame& f) {
          auto r = Decode(f, level);
          EXPECT_TRUE(r.ok()) << r.status().ToString();
          if (r.ok()) {
            EXPECT_EQ(TypeOf(r.value()), TypeOf(packets[frames]));
          }
          ++frames;
          return Status::Ok();
        });
        ASSERT_TRUE(st.ok()) << st.ToString();
        pos += n;
      }
      EXPECT_EQ(frames, packets.size());
      EXPECT_EQ(splitter.buffered(), 0u);
    }
  }
}

TEST(MqttSplitter, WholePacketsInAChunkAreNotCopied) {
  std::string stream;
  Publish p;
  p.topic = "t";
  p.payload = "payload-1";
  Encode(p, kProtocol311, &stream);
  p.payload = "payload-2";
  Encode(p, kProtocol311, &stream);
  stream += Bytes({0x30, 0x10});  // a third, incomplete
  FrameSplitter splitter;
  std::vector<const char*> where;
  ASSERT_TRUE(splitter
                  .Feed(stream,
                        [&](const Frame& f) {
                          where.push_back(f.body.data());
                          return Status::Ok();
                        })
                  .ok());
  ASSERT_EQ(where.size(), 2u);
  EXPECT_GE(where[0], stream.data());
  EXPECT_LT(where[1], stream.data() + stream.size());
  EXPECT_EQ(splitter.buffered(), 2u);
}

TEST(MqttSplitter, ByteAtATime) {
  std::string stream;
  for (int i = 0; i < 50; ++i) {
    Publish p;
    p.topic = "a/b";
    std::string payload(static_cast<size_t>(i * 7), 'x');
    p.payload = payload;
    p.qos = 1;
    p.packet_id = static_cast<uint16_t>(i + 1);
    Encode(p, kProtocol5, &stream);
  }
  FrameSplitter splitter;
  int n = 0;
  for (char c : stream) {
    ASSERT_TRUE(splitter
                    .Feed(std::string_view(&c, 1),
                          [&](const Frame& f) {
                            auto r = Decode(f, kProtocol5);
                            EXPECT_TRUE(r.ok());
                            EXPECT_EQ(std::get<Publish>(r.value()).packet_id, n + 1);
                            EXPECT_EQ(std::get<Publish>(r.value()).payload.size(),
                                      static_cast<size_t>(n * 7));
                            ++n;
                            return Status::Ok();
                          })
                    .ok());
  }
  EXPECT_EQ(n, 50);
}

TEST(MqttSplitter, CallbackErrorStopsTheStream) {
  std::string stream = Bytes({0xD0, 0x00, 0xD0, 0x00, 0xD0, 0x00});
  FrameSplitter splitter;
  int n = 0;
  Status st = splitter.Feed(stream, [&](const Frame&) {
    return ++n == 2 ? Status::ProtocolError("stop") : Status::Ok();
  });
  EXPECT_FALSE(st.ok());
  EXPECT_EQ(n, 2);
}

}  // namespace
}  // namespace edgespool::sync::mqtt
