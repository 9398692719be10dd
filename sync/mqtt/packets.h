// MQTT control packets as plain structs, for protocol levels 4 (3.1.1) and 5.
//
// Strings and binary fields are std::string_view: a decoded packet points into
// the buffer it was decoded from (zero-copy), so it is valid only as long as
// that buffer; a packet to encode points into the caller's strings. Only what
// a QoS 0/1 client sends or receives is modelled; QoS 2 packets (PUBREC,
// PUBREL, PUBCOMP) and AUTH are rejected by the decoder.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <variant>
#include <vector>

#include "sync/mqtt/properties.h"

namespace edgespool::sync::mqtt {

inline constexpr uint8_t kProtocol311 = 4;
inline constexpr uint8_t kProtocol5 = 5;

enum class PacketType : uint8_t {
  kConnect = 1,
  kConnack = 2,
  kPublish = 3,
  kPuback = 4,
  kPubrec = 5,
  kPubrel = 6,
  kPubcomp = 7,
  kSubscribe = 8,
  kSuback = 9,
  kUnsubscribe = 10,
  kUnsuback = 11,
  kPingreq = 12,
  kPingresp = 13,
  kDisconnect = 14,
  kAuth = 15,
};
const char* PacketTypeName(PacketType type);

struct Will {
  std::string_view topic;
  std::string_view payload;
  uint8_t qos = 0;
  bool retain = false;
  Properties properties;  // MQTT 5 will properties
};

struct Connect {
  uint8_t protocol_level = kProtocol5;
  std::string_view client_id;
  bool clean_start = true;
  uint16_t keepalive_s = 60;
  std::optional<std::string_view> username;
  std::optional<std::string_view> password;
  std::optional<Will> will;
  Properties properties;
};

struct Connack {
  bool session_present = false;
  uint8_t reason_code = 0;  // 3.1.1: the return code (0..5)
  Properties properties;
};

struct Publish {
  std::string_view topic;
  std::string_view payload;
  uint8_t qos = 0;
  bool retain = false;
  bool dup = false;
  uint16_t packet_id = 0;  // only for qos > 0, never 0 then
  Properties properties;
};

struct Puback {
  uint16_t packet_id = 0;
  uint8_t reason_code = 0;
  Properties properties;
};

struct SubscribeTopic {
  std::string_view filter;
  uint8_t qos = 1;
  bool no_local = false;           // MQTT 5 only
  bool retain_as_published = false;  // MQTT 5 only
  uint8_t retain_handling = 0;     // MQTT 5 only, 0..2
};

struct Subscribe {
  uint16_t packet_id = 0;
  std::vector<SubscribeTopic> topics;
  Properties properties;
};

struct Suback {
  uint16_t packet_id = 0;
  std::vector<uint8_t> reason_codes;
  Properties properties;
};

struct Unsubscribe {
  uint16_t packet_id = 0;
  std::vector<std::string_view> filters;
  Properties properties;
};

struct Unsuback {
  uint16_t packet_id = 0;
  std::vector<uint8_t> reason_codes;  // MQTT 5 only (3.1.1 has none)
  Properties properties;
};

struct Pingreq {};
struct Pingresp {};

struct Disconnect {
  uint8_t reason_code = 0;  // MQTT 5 only
  Properties properties;
};

using Packet = std::variant<Connect, Connack, Publish, Puback, Subscribe, Suback, Unsubscribe,
                            Unsuback, Pingreq, Pingresp, Disconnect>;
PacketType TypeOf(const Packet& packet);

// MQTT 5 reason codes the client acts on (spec 2.4).
namespace reason {
inline constexpr uint8_t kSuccess = 0x00;
inline constexpr uint8_t kNoMatchingSubscribers = 0x10;
inline constexpr uint8_t kUnspecifiedError = 0x80;
inline constexpr uint8_t kMalformedPacket = 0x81;
inline constexpr uint8_t kProtocolError = 0x82;
inline constexpr uint8_t kImplementationSpecific = 0x83;
inline constexpr uint8_t kUnsupportedProtocolVersion = 0x84;
inline constexpr uint8_t kClientIdNotValid = 0x85;
inline constexpr uint8_t kBadUserNameOrPassword = 0x86;
inline constexpr uint8_t kNotAuthorized = 0x87;
inline constexpr uint8_t kServerUnavailable = 0x88;
inline constexpr uint8_t kServerBusy = 0x89;
inline constexpr uint8_t kBanned = 0x8A;
inline constexpr uint8_t kKeepAliveTimeout = 0x8D;
inline constexpr uint8_t kTopicNameInvalid = 0x90;
inline constexpr uint8_t kPacketTooLarge = 0x95;
inline constexpr uint8_t kQuotaExceeded = 0x97;
inline constexpr uint8_t kPayloadFormatInvalid = 0x99;
inline constexpr uint8_t kTopicAliasInvalid = 0x94;
inline constexpr uint8_t kReceiveMaximumExceeded = 0x93;
}  // namespace reason

// A human-readable name for an MQTT 5 reason code ("not authorized").
const char* ReasonName(uint8_t code);

}  // namespace edgespool::sync::mqtt
