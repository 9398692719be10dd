// Strict decoding of each packet type (spec chapter 3). Every function reads
// through a bounds-checked Reader over the frame's body and insists that the
// body is consumed exactly.
#include <algorithm>
#include <cstdio>
#include <initializer_list>
#include <string>

#include "sync/mqtt/codec.h"
#include "sync/mqtt/wire.h"

namespace edgespool::sync::mqtt {

namespace {

bool V5(uint8_t level) { return level >= kProtocol5; }

Status ExpectEnd(const Reader& r, PacketType type) {
  if (r.empty()) return Status::Ok();
  return Malformed(std::to_string(r.remaining()) + " unexpected bytes at the end of " +
                   PacketTypeName(type));
}

bool OneOf(uint8_t code, std::initializer_list<uint8_t> allowed) {
  return std::find(allowed.begin(), allowed.end(), code) != allowed.end();
}

Status BadReason(PacketType type, uint8_t code) {
  char buf[80];
  std::snprintf(buf, sizeof buf, "reason code 0x%02X is not valid in %s", code,
                PacketTypeName(type));
  return Malformed(buf);
}

Status PacketId(Reader* r, uint16_t* id, PacketType type) {
  ES_RETURN_IF_ERROR(r->U16(id, "packet identifier"));
  if (*id == 0) return Malformed(std::string("packet identifier 0 in ") + PacketTypeName(type));
  return Status::Ok();
}

// Reads the property block at the reader's front.
Status Props(Reader* r, PropertyContext ctx, Properties* props) {
  std::string_view rest = r->rest();
  size_t before = rest.size();
  ES_RETURN_IF_ERROR(DecodeProperties(&rest, ctx, props));
  r->Skip(before - rest.size());
  return Status::Ok();
}

Result<Packet> DecodeConnect(Reader r, uint8_t) {
  Connect c;
  std::string_view name;
  ES_RETURN_IF_ERROR(r.Utf8(&name, "protocol name"));
  if (name != "MQTT") return Malformed("protocol name is not MQTT");
  ES_RETURN_IF_ERROR(r.U8(&c.protocol_level, "protocol level"));
  if (c.protocol_level != kProtocol311 && c.protocol_level != kProtocol5) {
    return Malformed("unsupported protocol level " + std::to_string(c.protocol_level));
  }
  bool v5 = V5(c.protocol_level);
  uint8_t flags = 0;
  ES_RETURN_IF_ERROR(r.U8(&flags, "connect flags"));
  if (flags & 0x01) return Malformed("reserved connect flag set");
  c.clean_start = flags & 0x02;
  bool will = flags & 0x04;
  auto will_qos = static_cast<uint8_t>((flags >> 3) & 0x03);
  bool will_retain = flags & 0x20;
  bool password = flags & 0x40;
  bool username = flags & 0x80;
  if (!will && (will_qos != 0 || will_retain)) return Malformed("will QoS/retain without a will");
  if (will_qos == 3) return Malformed("will QoS 3");
  if (!v5 && password && !username) return Malformed("password without user name (3.1.1)");
  ES_RETURN_IF_ERROR(r.U16(&c.keepalive_s, "keep alive"));
  if (v5) ES_RETURN_IF_ERROR(Props(&r, kCtxConnect, &c.properties));
  ES_RETURN_IF_ERROR(r.Utf8(&c.client_id, "client identifier"));
  if (will) {
    Will w;
    w.qos = will_qos;
    w.retain = will_retain;
    if (v5) ES_RETURN_IF_ERROR(Props(&r, kCtxWill, &w.properties));
    ES_RETURN_IF_ERROR(r.Utf8(&w.topic, "will topic"));
    if (!IsValidTopicName(w.topic)) return Malformed("will topic is not a valid topic name");
    ES_RETURN_IF_ERROR(r.Binary(&w.payload, "will payload"));
    c.will = w;
  }
  if (username) {
    std::string_view u;
    ES_RETURN_IF_ERROR(r.Utf8(&u, "user name"));
    c.username = u;
  }
  if (password) {
    std::string_view p;
    ES_RETURN_IF_ERROR(r.Binary(&p, "password"));
    c.password = p;
  }
  ES_RETURN_IF_ERROR(ExpectEnd(r, PacketType::kConnect));
  return Packet(std::move(c));
}

Result<Packet> DecodeConnack(Reader r, uint8_t level) {
  Connack c;
  uint8_t ack_flags = 0;
  ES_RETURN_IF_ERROR(r.U8(&ack_flags, "connect acknowledge flags"));
  if (ack_flags & 0xFE) return Malformed("reserved CONNACK flags set");
  c.session_present = ack_flags & 0x01;
  ES_RETURN_IF_ERROR(r.U8(&c.reason_code, "connect reason code"));
  if (V5(level)) {
    if (!OneOf(c.reason_code, {0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89,
                               0x8A, 0x8C, 0x90, 0x95, 0x97, 0x99, 0x9A, 0x9B, 0x9C, 0x9D,
                               0x9F})) {
      return BadReason(PacketType::kConnack, c.reason_code);
    }
    ES_RETURN_IF_ERROR(Props(&r, kCtxConnack, &c.properties));
  } else if (c.reason_code > 5) {
    return BadReason(PacketType::kConnack, c.reason_code);
  }
  if (c.session_present && c.reason_code != 0) {
    return Malformed("session present with a refused connection");
  }
  ES_RETURN_IF_ERROR(ExpectEnd(r, PacketType::kConnack));
  return Packet(std::move(c));
}

Result<Packet> DecodePublish(Reader r, uint8_t level, uint8_t flags) {
  Publish p;
  p.dup = flags & 0x08;
  p.qos = static_cast<uint8_t>((flags >> 1) & 0x03);
  p.retain = flags & 0x01;
  if (p.qos == 3) return Malformed("PUBLISH with QoS 3");
  if (p.qos == 0 && p.dup) return Malformed("PUBLISH with QoS 0 and DUP set");
  ES_RETURN_IF_ERROR(r.Utf8(&p.topic, "topic name"));
  if (p.qos > 0) ES_RETURN_IF_ERROR(PacketId(&r, &p.packet_id, PacketType::kPublish));
  if (V5(level)) ES_RETURN_IF_ERROR(Props(&r, kCtxPublish, &p.properties));
  if (p.topic.empty()) {
    // Only an established topic alias may stand in for the topic (3.3.2.3.4).
    if (!p.properties.topic_alias) return Malformed("empty topic name without a topic alias");
  } else if (p.topic.find_first_of("+#") != std::string_view::npos) {
    return Malformed("topic name contains a wildcard");
  }
  p.payload = r.rest();
  return Packet(std::move(p));
}

Result<Packet> DecodePuback(Reader r, uint8_t level) {
  Puback a;
  ES_RETURN_IF_ERROR(PacketId(&r, &a.packet_id, PacketType::kPuback));
  if (V5(level) && !r.empty()) {
    ES_RETURN_IF_ERROR(r.U8(&a.reason_code, "reason code"));
    if (!OneOf(a.reason_code, {0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99})) {
      return BadReason(PacketType::kPuback, a.reason_code);
    }
    if (!r.empty()) ES_RETURN_IF_ERROR(Props(&r, kCtxPuback, &a.properties));
  }
  ES_RETURN_IF_ERROR(ExpectEnd(r, PacketType::kPuback));
  return Packet(std::move(a));
}

Result<Packet> DecodeSubscribe(Reader r, uint8_t level) {
  Subscribe s;
  ES_RETURN_IF_ERROR(PacketId(&r, &s.packet_id, PacketType::kSubscribe));
  if (V5(level)) ES_RETURN_IF_ERROR(Props(&r, kCtxSubscribe, &s.properties));
  if (r.empty()) return Malformed("SUBSCRIBE without a topic filter");
  while (!r.empty()) {
    SubscribeTopic t;
    ES_RETURN_IF_ERROR(r.Utf8(&t.filter, "topic filter"));
    if (!IsValidTopicFilter(t.filter)) return Malformed("invalid topic filter");
    uint8_t options = 0;
    ES_RETURN_IF_ERROR(r.U8(&options, "subscription options"));
    if (options & (V5(level) ? 0xC0 : 0xFC)) return Malformed("reserved subscription option set");
    t.qos = options & 0x03;
    if (t.qos == 3) return Malformed("subscription with QoS 3");
    t.no_local = options & 0x04;
    t.retain_as_published = options & 0x08;
    t.retain_handling = static_cast<uint8_t>((options >> 4) & 0x03);
    if (t.retain_handling == 3) return Malformed("retain handling 3");
    s.topics.push_back(t);
  }
  return Packet(std::move(s));
}

Result<Packet> DecodeSuback(Reader r, uint8_t level) {
  Suback s;
  ES_RETURN_IF_ERROR(PacketId(&r, &s.packet_id, PacketType::kSuback));
  if (V5(level)) ES_RETURN_IF_ERROR(Props(&r, kCtxSuback, &s.properties));
  // A SUBSCRIBE carries at least one filter, so a SUBACK without a reason
  // code answers nothing: some clients indexed past the end of that list.
  if (r.empty()) return Malformed("SUBACK without reason codes");
  while (!r.empty()) {
    uint8_t rc = 0;
    ES_RETURN_IF_ERROR(r.U8(&rc, "subscribe reason code"));
    bool ok = V5(level) ? OneOf(rc, {0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8F, 0x91, 0x97, 0x9E,
                                     0xA1, 0xA2})
                        : OneOf(rc, {0x00, 0x01, 0x02, 0x80});
    if (!ok) return BadReason(PacketType::kSuback, rc);
    s.reason_codes.push_back(rc);
  }
  return Packet(std::move(s));
}

Result<Packet> DecodeUnsubscribe(Reader r, uint8_t level) {
  Unsubscribe u;
  ES_RETURN_IF_ERROR(PacketId(&r, &u.packet_id, PacketType::kUnsubscribe));
  if (V5(level)) ES_RETURN_IF_ERROR(Props(&r, kCtxUnsubscribe, &u.properties));
  if (r.empty()) return Malformed("UNSUBSCRIBE without a topic filter");
  while (!r.empty()) {
    std::string_view f;
    ES_RETURN_IF_ERROR(r.Utf8(&f, "topic filter"));
    if (!IsValidTopicFilter(f)) return Malformed("invalid topic filter");
    u.filters.push_back(f);
  }
  return Packet(std::move(u));
}

Result<Packet> DecodeUnsuback(Reader r, uint8_t level) {
  Unsuback u;
  ES_RETURN_IF_ERROR(PacketId(&r, &u.packet_id, PacketType::kUnsuback));
  if (V5(level)) {
    ES_RETURN_IF_ERROR(Props(&r, kCtxUnsuback, &u.properties));
    if (r.empty()) return Malformed("UNSUBACK without reason codes");
    while (!r.empty()) {
      uint8_t rc = 0;
      ES_RETURN_IF_ERROR(r.U8(&rc, "unsubscribe reason code"));
      if (!OneOf(rc, {0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91})) {
        return BadReason(PacketType::kUnsuback, rc);
      }
      u.reason_codes.push_back(rc);
    }
  }
  ES_RETURN_IF_ERROR(ExpectEnd(r, PacketType::kUnsuback));
  return Packet(std::move(u));
}

Result<Packet> DecodeDisconnect(Reader r, uint8_t level) {
  Disconnect d;
  if (V5(level) && !r.empty()) {
    ES_RETURN_IF_ERROR(r.U8(&d.reason_code, "reason code"));
    if (d.reason_code != 0x00 && d.reason_code != 0x04 &&
        (d.reason_code < 0x80 || d.reason_code > 0xA2 || d.reason_code == 0x84 ||
         d.reason_code == 0x85 || d.reason_code == 0x86 || d.reason_code == 0x88 ||
         d.reason_code == 0x8A || d.reason_code == 0x8C || d.reason_code == 0x91 ||
         d.reason_code == 0x92)) {
      return BadReason(PacketType::kDisconnect, d.reason_code);
    }
    if (!r.empty()) ES_RETURN_IF_ERROR(Props(&r, kCtxDisconnect, &d.properties));
  }
  ES_RETURN_IF_ERROR(ExpectEnd(r, PacketType::kDisconnect));
  return Packet(std::move(d));
}

Status CheckFixedFlags(PacketType type, uint8_t flags) {
  uint8_t want = 0;
  switch (type) {
    case PacketType::kPublish:
      return Status::Ok();  // checked in DecodePublish
    case PacketType::kPubrel:
    case PacketType::kSubscribe:
    case PacketType::kUnsubscribe:
      want = 0x02;
      break;
    default:
      break;
  }
  if (flags != want) {
    return Malformed(std::string("reserved fixed header flags in ") + PacketTypeName(type));
  }
  return Status::Ok();
}

}  // namespace

Result<Packet> Decode(const Frame& frame, uint8_t level) {
  PacketType type = frame.type();
  ES_RETURN_IF_ERROR(CheckFixedFlags(type, frame.flags()));
  Reader r(frame.body);
  switch (type) {
    case PacketType::kConnect: return DecodeConnect(r, level);
    case PacketType::kConnack: return DecodeConnack(r, level);
    case PacketType::kPublish: return DecodePublish(r, level, frame.flags());
    case PacketType::kPuback: return DecodePuback(r, level);
    case PacketType::kSubscribe: return DecodeSubscribe(r, level);
    case PacketType::kSuback: return DecodeSuback(r, level);
    case PacketType::kUnsubscribe: return DecodeUnsubscribe(r, level);
    case PacketType::kUnsuback: return DecodeUnsuback(r, level);
    case PacketType::kPingreq:
      ES_RETURN_IF_ERROR(ExpectEnd(r, type));
      return Packet(Pingreq{});
    case PacketType::kPingresp:
      ES_RETURN_IF_ERROR(ExpectEnd(r, type));
      return Packet(Pingresp{});
    case PacketType::kDisconnect: return DecodeDisconnect(r, level);
    case PacketType::kPubrec:
    case PacketType::kPubrel:
    case PacketType::kPubcomp:
      return Status::ProtocolError(std::string(PacketTypeName(type)) +
                                   ": QoS 2 is not supported by this client");
    case PacketType::kAuth:
      if (!V5(level)) return Malformed("AUTH in MQTT 3.1.1");
      return Status::ProtocolError("AUTH: enhanced authentication is not supported");
    default:
      return Malformed("packet type 0 is reserved");
  }
}

}  // namespace edgespool::sync::mqtt
