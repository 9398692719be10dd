#include "sync/mqtt/properties.h"

#include <cstdio>
#include <string>

#include "sync/mqtt/wire.h"

namespace edgespool::sync::mqtt {

namespace {

// Wire sizes of one property (id byte included: every defined id is < 128).
size_t SizeOf(const std::optional<uint8_t>& v) { return v ? 2 : 0; }
size_t SizeOf(const std::optional<uint16_t>& v) { return v ? 3 : 0; }
size_t SizeOf(const std::optional<uint32_t>& v) { return v ? 5 : 0; }
size_t SizeOf(const std::optional<std::string_view>& v) { return v ? 3 + v->size() : 0; }

void Put(uint8_t id, const std::optional<uint8_t>& v, std::string* out) {
  if (!v) return;
  PutU8(id, out);
  PutU8(*v, out);
}
void Put(uint8_t id, const std::optional<uint16_t>& v, std::string* out) {
  if (!v) return;
  PutU8(id, out);
  PutU16(*v, out);
}
void Put(uint8_t id, const std::optional<uint32_t>& v, std::string* out) {
  if (!v) return;
  PutU8(id, out);
  PutU32(*v, out);
}
void Put(uint8_t id, const std::optional<std::string_view>& v, std::string* out) {
  if (!v) return;
  PutU8(id, out);
  PutString(*v, out);
}

std::string Name(const char* member, uint32_t id) {
  char buf[96];
  std::snprintf(buf, sizeof buf, "property %s (0x%02X)", member, id);
  return buf;
}

// Common checks before reading a single-valued property.
template <typename T>
Status Admit(uint16_t allowed, PropertyContext ctx, const char* member, uint32_t id,
             const std::optional<T>& slot) {
  if ((allowed & ctx) == 0) return Malformed(Name(member, id) + " is not allowed in this packet");
  if (slot) return Malformed(Name(member, id) + " appears twice");
  return Status::Ok();
}

Status GetByte(Reader* r, std::optional<uint8_t>* v) {
  uint8_t x = 0;
  ES_RETURN_IF_ERROR(r->U8(&x, "property value"));
  *v = x;
  return Status::Ok();
}
Status GetU16(Reader* r, std::optional<uint16_t>* v) {
  uint16_t x = 0;
  ES_RETURN_IF_ERROR(r->U16(&x, "property value"));
  *v = x;
  return Status::Ok();
}
Status GetU32(Reader* r, std::optional<uint32_t>* v) {
  uint32_t x = 0;
  ES_RETURN_IF_ERROR(r->U32(&x, "property value"));
  *v = x;
  return Status::Ok();
}
Status GetUtf8(Reader* r, std::optional<std::string_view>* v) {
  std::string_view x;
  ES_RETURN_IF_ERROR(r->Utf8(&x, "property string"));
  *v = x;
  return Status::Ok();
}
Status GetBinary(Reader* r, std::optional<std::string_view>* v) {
  std::string_view x;
  ES_RETURN_IF_ERROR(r->Binary(&x, "property binary data"));
  *v = x;
  return Status::Ok();
}

// Value ranges the spec fixes (a 0 where 0 is meaningless, booleans as 0/1).
Status CheckRanges(const Properties& p) {
  auto boolean = [](const std::optional<uint8_t>& v, const char* name) {
    if (v && *v > 1) return Malformed(std::string(name) + " must be 0 or 1");
    return Status::Ok();
  };
  ES_RETURN_IF_ERROR(boolean(p.payload_format, "payload format indicator"));
  ES_RETURN_IF_ERROR(boolean(p.request_problem_info, "request problem information"));
  ES_RETURN_IF_ERROR(boolean(p.request_response_info, "request response information"));
  ES_RETURN_IF_ERROR(boolean(p.maximum_qos, "maximum QoS"));
  ES_RETURN_IF_ERROR(boolean(p.retain_available, "retain available"));
  ES_RETURN_IF_ERROR(boolean(p.wildcard_subscription_available, "wildcard subscription available"));
  ES_RETURN_IF_ERROR(boolean(p.subscription_ids_available, "subscription identifiers available"));
  ES_RETURN_IF_ERROR(boolean(p.shared_subscription_available, "shared subscription available"));
  if (p.receive_maximum && *p.receive_maximum == 0) return Malformed("receive maximum of 0");
  if (p.maximum_packet_size && *p.maximum_packet_size == 0) {
    return Malformed("maximum packet size of 0");
  }
  if (p.topic_alias && *p.topic_alias == 0) return Malformed("topic alias of 0");
  for (uint32_t id : p.subscription_ids) {
    if (id == 0) return Malformed("subscription identifier of 0");
  }
  return Status::Ok();
}

}  // namespace

bool Properties::operator==(const Properties& o) const {
#define ES_MQTT_EQ(id, type, member, ctx) \
  if (member != o.member) return false;
  ES_MQTT_SINGLE_PROPERTIES(ES_MQTT_EQ)
#undef ES_MQTT_EQ
  return subscription_ids == o.subscription_ids && user_properties == o.user_properties;
}

bool Properties::empty() const { return *this == Properties(); }

size_t PropertiesBodySize(const Properties& p) {
  size_t n = 0;
#define ES_MQTT_SIZE(id, type, member, ctx) n += SizeOf(p.member);
  ES_MQTT_SINGLE_PROPERTIES(ES_MQTT_SIZE)
#undef ES_MQTT_SIZE
  for (uint32_t id : p.subscription_ids) n += 1 + VarIntSize(id);
  for (const UserProperty& up : p.user_properties) n += 5 + up.key.size() + up.value.size();
  return n;
}

void EncodeProperties(const Properties& p, std::string* out) {
  PutVarInt(static_cast<uint32_t>(PropertiesBodySize(p)), out);
#define ES_MQTT_PUT(id, type, member, ctx) Put(id, p.member, out);
  ES_MQTT_SINGLE_PROPERTIES(ES_MQTT_PUT)
#undef ES_MQTT_PUT
  for (uint32_t id : p.subscription_ids) {
    PutU8(kPropSubscriptionId, out);
    PutVarInt(id, out);
  }
  for (const UserProperty& up : p.user_properties) {
    PutU8(kPropUserProperty, out);
    PutString(up.key, out);
    PutString(up.value, out);
  }
}

Status DecodeProperties(std::string_view* in, PropertyContext ctx, Properties* props) {
  Reader outer(*in);
  uint32_t len = 0;
  ES_RETURN_IF_ERROR(outer.VarInt(&len, "property length"));
  std::string_view block;
  ES_RETURN_IF_ERROR(outer.Bytes(len, &block, "property block"));
  *in = outer.rest();

  Reader r(block);
  while (!r.empty()) {
    uint32_t id = 0;
    ES_RETURN_IF_ERROR(r.VarInt(&id, "property id"));
    switch (id) {
#define ES_MQTT_GET(id_, type, member, allowed)                                 \
  case id_:                                                                     \
    ES_RETURN_IF_ERROR(Admit(allowed, ctx, #member, id_, props->member));       \
    ES_RETURN_IF_ERROR(Get##type(&r, &props->member));                          \
    break;
      ES_MQTT_SINGLE_PROPERTIES(ES_MQTT_GET)
#undef ES_MQTT_GET
      case kPropSubscriptionId: {
        if ((ctx & (kCtxPublish | kCtxSubscribe)) == 0) {
          return Malformed(Name("subscription_id", id) + " is not allowed in this packet");
        }
        if (ctx == kCtxSubscribe && !props->subscription_ids.empty()) {
          return Malformed(Name("subscription_id", id) + " appears twice");
        }
        uint32_t v = 0;
        ES_RETURN_IF_ERROR(r.VarInt(&v, "subscription identifier"));
        props->subscription_ids.push_back(v);
        break;
      }
      case kPropUserProperty: {
        UserProperty up;
        ES_RETURN_IF_ERROR(r.Utf8(&up.key, "user property key"));
        ES_RETURN_IF_ERROR(r.Utf8(&up.value, "user property value"));
        props->user_properties.push_back(up);
        break;
      }
      default: {
        char buf[64];
        std::snprintf(buf, sizeof buf, "unknown property id 0x%02X", id);
        return Malformed(buf);
      }
    }
  }
  return CheckRanges(*props);
}

}  // namespace edgespool::sync::mqtt
