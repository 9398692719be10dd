// MQTT 5 properties (spec 2.2.2): the typed fields of a packet's property
// block, with strict decoding.
//
// Wire format: Variable Byte Integer length, then (id, value)* where id is a
// Variable Byte Integer (all defined ids fit in one byte) and the value's type
// is fixed by the id: Byte, Two Byte Integer, Four Byte Integer, Variable Byte
// Integer, UTF-8 string, Binary Data (u16 length + bytes) or a UTF-8 string
// pair. Decoding rejects unknown ids, ids not allowed in the packet at hand,
// a second copy of a single-valued property, out-of-range values (a Receive
// Maximum of 0, a boolean byte of 2...) and lengths past the block.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "platform/status.h"

namespace edgespool::sync::mqtt {

struct UserProperty {
  std::string_view key;
  std::string_view value;
  bool operator==(const UserProperty& o) const { return key == o.key && value == o.value; }
};

// Where a property may appear (a bit per context), per spec table 2-4.
enum PropertyContext : uint16_t {
  kCtxConnect = 1 << 0,
  kCtxConnack = 1 << 1,
  kCtxPublish = 1 << 2,
  kCtxWill = 1 << 3,
  kCtxPuback = 1 << 4,  // also PUBREC, PUBREL, PUBCOMP
  kCtxSubscribe = 1 << 5,
  kCtxSuback = 1 << 6,
  kCtxUnsubscribe = 1 << 7,
  kCtxUnsuback = 1 << 8,
  kCtxDisconnect = 1 << 9,
  kCtxAuth = 1 << 10,
};

// X(id, wire type, member, allowed contexts). Single-valued properties are
// std::optional members; Subscription Identifier and User Property repeat.
#define ES_MQTT_SINGLE_PROPERTIES(X)                                                      \
  X(0x01, Byte, payload_format, kCtxPublish | kCtxWill)                                    \
  X(0x02, U32, message_expiry_s, kCtxPublish | kCtxWill)                                   \
  X(0x03, Utf8, content_type, kCtxPublish | kCtxWill)                                      \
  X(0x08, Utf8, response_topic, kCtxPublish | kCtxWill)                                    \
  X(0x09, Binary, correlation_data, kCtxPublish | kCtxWill)                                \
  X(0x11, U32, session_expiry_s, kCtxConnect | kCtxConnack | kCtxDisconnect)               \
  X(0x12, Utf8, assigned_client_id, kCtxConnack)                                           \
  X(0x13, U16, server_keepalive_s, kCtxConnack)                                            \
  X(0x15, Utf8, auth_method, kCtxConnect | kCtxConnack | kCtxAuth)                         \
  X(0x16, Binary, auth_data, kCtxConnect | kCtxConnack | kCtxAuth)                         \
  X(0x17, Byte, request_problem_info, kCtxConnect)                                         \
  X(0x18, U32, will_delay_s, kCtxWill)                                                     \
  X(0x19, Byte, request_response_info, kCtxConnect)                                        \
  X(0x1A, Utf8, response_info, kCtxConnack)                                                \
  X(0x1C, Utf8, server_reference, kCtxConnack | kCtxDisconnect)                            \
  X(0x1F, Utf8, reason_string,                                                             \
    kCtxConnack | kCtxPuback | kCtxSuback | kCtxUnsuback | kCtxDisconnect | kCtxAuth)       \
  X(0x21, U16, receive_maximum, kCtxConnect | kCtxConnack)                                 \
  X(0x22, U16, topic_alias_maximum, kCtxConnect | kCtxConnack)                             \
  X(0x23, U16, topic_alias, kCtxPublish)                                                   \
  X(0x24, Byte, maximum_qos, kCtxConnack)                                                  \
  X(0x25, Byte, retain_available, kCtxConnack)                                             \
  X(0x27, U32, maximum_packet_size, kCtxConnect | kCtxConnack)                             \
  X(0x28, Byte, wildcard_subscription_available, kCtxConnack)                              \
  X(0x29, Byte, subscription_ids_available, kCtxConnack)                                   \
  X(0x2A, Byte, shared_subscription_available, kCtxConnack)

inline constexpr uint8_t kPropSubscriptionId = 0x0B;
inline constexpr uint8_t kPropUserProperty = 0x26;

struct Properties {
#define ES_MQTT_DECLARE_Byte(m) std::optional<uint8_t> m;
#define ES_MQTT_DECLARE_U16(m) std::optional<uint16_t> m;
#define ES_MQTT_DECLARE_U32(m) std::optional<uint32_t> m;
#define ES_MQTT_DECLARE_Utf8(m) std::optional<std::string_view> m;
#define ES_MQTT_DECLARE_Binary(m) std::optional<std::string_view> m;
#define ES_MQTT_DECLARE(id, type, member, ctx) ES_MQTT_DECLARE_##type(member)
  ES_MQTT_SINGLE_PROPERTIES(ES_MQTT_DECLARE)
#undef ES_MQTT_DECLARE
#undef ES_MQTT_DECLARE_Byte
#undef ES_MQTT_DECLARE_U16
#undef ES_MQTT_DECLARE_U32
#undef ES_MQTT_DECLARE_Utf8
#undef ES_MQTT_DECLARE_Binary
  // 0x0B: several in a PUBLISH from the server, at most one in SUBSCRIBE.
  std::vector<uint32_t> subscription_ids;
  // 0x26: any number, order preserved, keys may repeat.
  std::vector<UserProperty> user_properties;

  bool operator==(const Properties& o) const;
  bool empty() const;
};

// Bytes EncodeProperties appends, without the length prefix.
size_t PropertiesBodySize(const Properties& props);
// Appends the Variable Byte Integer length and the properties. The caller
// guarantees valid content (UTF-8 checked, lengths under 65536).
void EncodeProperties(const Properties& props, std::string* out);
// Decodes a property block (length prefix included) from the front of *in,
// advancing it; every property must be allowed in `context`.
Status DecodeProperties(std::string_view* in, PropertyContext context, Properties* props);

}  // namespace edgespool::sync::mqtt
