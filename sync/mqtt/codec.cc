// Framing and encoding. Decoding of each packet type is in decode.cc.
#include "sync/mqtt/codec.h"

#include <cstring>
#include <string>

#include "sync/mqtt/wire.h"

namespace edgespool::sync::mqtt {

// ---------------------------------------------------------------- framing

namespace {

// Parses a fixed header at the front of data. Returns 0 when more bytes are
// needed, -1 on error (*err set), else the header size (1 + length bytes).
int ParseFixedHeader(std::string_view data, uint32_t max_packet_size, uint32_t* remaining,
                     Status* err) {
  if (data.empty()) return 0;
  auto header = static_cast<uint8_t>(data[0]);
  if ((header >> 4) == 0) {
    *err = Malformed("packet type 0 is reserved");
    return -1;
  }
  int n = ParseVarInt(reinterpret_cast<const uint8_t*>(data.data()) + 1, data.size() - 1,
                      remaining);
  if (n == 0) return 0;
  if (n < 0) {
    *err = Malformed("remaining length is over 4 bytes or not minimal");
    return -1;
  }
  uint64_t total = 1 + static_cast<uint64_t>(n) + *remaining;
  if (total > max_packet_size) {
    *err = Status::ProtocolError("packet of " + std::to_string(total) +
                                 " bytes exceeds the maximum packet size of " +
                                 std::to_string(max_packet_size));
    return -1;
  }
  return 1 + n;
}

}  // namespace

Status FrameSplitter::Drain(std::string_view data, const FrameCallback& on_frame,
                            size_t* consumed) {
  size_t pos = 0;
  while (pos < data.size()) {
    uint32_t remaining = 0;
    Status err;
    int hdr = ParseFixedHeader(data.substr(pos), max_packet_size_, &remaining, &err);
    if (hdr < 0) return err;
    if (hdr == 0 || data.size() - pos < hdr + static_cast<size_t>(remaining)) break;
    Frame f;
    f.header = static_cast<uint8_t>(data[pos]);
    f.body = data.substr(pos + hdr, remaining);
    f.wire_size = hdr + static_cast<size_t>(remaining);
    pos += f.wire_size;
    *consumed = pos;
    ES_RETURN_IF_ERROR(on_frame(f));
  }
  *consumed = pos;
  return Status::Ok();
}

Status FrameSplitter::Feed(std::string_view chunk, const FrameCallback& on_frame) {
  if (!error_.ok()) return error_;
  size_t consumed = 0;
  Status st;
  if (buffer_.empty()) {
    st = Drain(chunk, on_frame, &consumed);
    if (st.ok()) buffer_.assign(chunk.data() + consumed, chunk.size() - consumed);
  } else {
    buffer_.append(chunk.data(), chunk.size());
    // Drain from a moved-out copy: on_frame must see stable bytes even if it
    // were to feed us again, and erase() afterwards is one memmove.
    std::string pending = std::move(buffer_);
    buffer_.clear();
    st = Drain(pending, on_frame, &consumed);
    if (st.ok()) {
      pending.erase(0, consumed);
      buffer_ = std::move(pending);
    }
  }
  if (!st.ok()) {
    buffer_.clear();
    error_ = st;
  }
  return st;
}

void FrameSplitter::Reset() {
  buffer_.clear();
  error_ = Status::Ok();
}

Result<Packet> DecodeOne(std::string_view bytes, uint8_t level, uint32_t max_packet_size) {
  uint32_t remaining = 0;
  Status err;
  int hdr = ParseFixedHeader(bytes, max_packet_size, &remaining, &err);
  if (hdr < 0) return err;
  if (hdr == 0 || bytes.size() < hdr + static_cast<size_t>(remaining)) {
    return Malformed("remaining length runs past the packet");
  }
  if (bytes.size() > hdr + static_cast<size_t>(remaining)) {
    return Malformed("bytes after the packet");
  }
  Frame f;
  f.header = static_cast<uint8_t>(bytes[0]);
  f.body = bytes.substr(hdr);
  f.wire_size = bytes.size();
  return Decode(f, level);
}

// ---------------------------------------------------------------- encoding

namespace {

// Writes the fixed header byte and reserves 4 bytes for the Remaining
// Length; EndPacket writes the real length and closes the gap. This avoids a
// sizing pass over every field at the cost of one memmove of the body.
size_t BeginPacket(PacketType type, uint8_t flags, std::string* out) {
  out->push_back(static_cast<char>((static_cast<uint8_t>(type) << 4) | flags));
  size_t at = out->size();
  out->append(4, '\0');
  return at;
}

void EndPacket(size_t at, std::string* out) {
  auto len = static_cast<uint32_t>(out->size() - at - 4);
  std::string tmp;
  PutVarInt(len, &tmp);
  std::memcpy(&(*out)[at], tmp.data(), tmp.size());
  if (tmp.size() < 4) out->erase(at + tmp.size(), 4 - tmp.size());
}

bool V5(uint8_t level) { return level >= kProtocol5; }

}  // namespace

void Encode(const Connect& p, std::string* out) {
  bool v5 = V5(p.protocol_level);
  size_t at = BeginPacket(PacketType::kConnect, 0, out);
  PutString("MQTT", out);
  PutU8(p.protocol_level, out);
  uint8_t flags = 0;
  if (p.clean_start) flags |= 0x02;
  if (p.will) {
    flags |= 0x04 | static_cast<uint8_t>(p.will->qos << 3);
    if (p.will->retain) flags |= 0x20;
  }
  if (p.password) flags |= 0x40;
  if (p.username) flags |= 0x80;
  PutU8(flags, out);
  PutU16(p.keepalive_s, out);
  if (v5) EncodeProperties(p.properties, out);
  PutString(p.client_id, out);
  if (p.will) {
    if (v5) EncodeProperties(p.will->properties, out);
    PutString(p.will->topic, out);
    PutString(p.will->payload, out);
  }
  if (p.username) PutString(*p.username, out);
  if (p.password) PutString(*p.password, out);
  EndPacket(at, out);
}

void Encode(const Connack& p, uint8_t level, std::string* out) {
  size_t at = BeginPacket(PacketType::kConnack, 0, out);
  PutU8(p.session_present ? 1 : 0, out);
  PutU8(p.reason_code, out);
  if (V5(level)) EncodeProperties(p.properties, out);
  EndPacket(at, out);
}

void Encode(const Publish& p, uint8_t level, std::string* out) {
  uint8_t flags = static_cast<uint8_t>(p.qos << 1);
  if (p.dup) flags |= 0x08;
  if (p.retain) flags |= 0x01;
  size_t at = BeginPacket(PacketType::kPublish, flags, out);
  PutString(p.topic, out);
  if (p.qos > 0) PutU16(p.packet_id, out);
  if (V5(level)) EncodeProperties(p.properties, out);
  out->append(p.payload.data(), p.payload.size());
  EndPacket(at, out);
}

void Encode(const Puback& p, uint8_t level, std::string* out) {
  size_t at = BeginPacket(PacketType::kPuback, 0, out);
  PutU16(p.packet_id, out);
  // MQTT 5 lets a success without properties stay 2 bytes (spec 3.4.2.1).
  if (V5(level) && (p.reason_code != 0 || !p.properties.empty())) {
    PutU8(p.reason_code, out);
    if (!p.properties.empty()) EncodeProperties(p.properties, out);
  }
  EndPacket(at, out);
}

void Encode(const Subscribe& p, uint8_t level, std::string* out) {
  size_t at = BeginPacket(PacketType::kSubscribe, 0x02, out);
  PutU16(p.packet_id, out);
  if (V5(level)) EncodeProperties(p.properties, out);
  for (const SubscribeTopic& t : p.topics) {
    PutString(t.filter, out);
    uint8_t options = t.qos;
    if (V5(level)) {
      if (t.no_local) options |= 0x04;
      if (t.retain_as_published) options |= 0x08;
      options |= static_cast<uint8_t>(t.retain_handling << 4);
    }
    PutU8(options, out);
  }
  EndPacket(at, out);
}

void Encode(const Suback& p, uint8_t level, std::string* out) {
  size_t at = BeginPacket(PacketType::kSuback, 0, out);
  PutU16(p.packet_id, out);
  if (V5(level)) EncodeProperties(p.properties, out);
  for (uint8_t rc : p.reason_codes) PutU8(rc, out);
  EndPacket(at, out);
}

void Encode(const Unsubscribe& p, uint8_t level, std::string* out) {
  size_t at = BeginPacket(PacketType::kUnsubscribe, 0x02, out);
  PutU16(p.packet_id, out);
  if (V5(level)) EncodeProperties(p.properties, out);
  for (std::string_view f : p.filters) PutString(f, out);
  EndPacket(at, out);
}

void Encode(const Unsuback& p, uint8_t level, std::string* out) {
  size_t at = BeginPacket(PacketType::kUnsuback, 0, out);
  PutU16(p.packet_id, out);
  if (V5(level)) {
    EncodeProperties(p.properties, out);
    for (uint8_t rc : p.reason_codes) PutU8(rc, out);
  }
  EndPacket(at, out);
}

void Encode(const Pingreq&, uint8_t, std::string* out) {
  EndPacket(BeginPacket(PacketType::kPingreq, 0, out), out);
}

void Encode(const Pingresp&, uint8_t, std::string* out) {
  EndPacket(BeginPacket(PacketType::kPingresp, 0, out), out);
}

void Encode(const Disconnect& p, uint8_t level, std::string* out) {
  size_t at = BeginPacket(PacketType::kDisconnect, 0, out);
  if (V5(level) && (p.reason_code != 0 || !p.properties.empty())) {
    PutU8(p.reason_code, out);
    if (!p.properties.empty()) EncodeProperties(p.properties, out);
  }
  EndPacket(at, out);
}

void EncodePacket(const Packet& packet, uint8_t level, std::string* out) {
  std::visit(
      [&](const auto& p) {
        using T = std::decay_t<decltype(p)>;
        if constexpr (std::is_same_v<T, Connect>) {
          Encode(p, out);
        } else {
          Encode(p, level, out);
        }
      },
      packet);
}

// ---------------------------------------------------------------- names

const char* PacketTypeName(PacketType type) {
  static const char* const kNames[] = {"RESERVED", "CONNECT",  "CONNACK",     "PUBLISH",
                                       "PUBACK",   "PUBREC",   "PUBREL",      "PUBCOMP",
                                       "SUBSCRIBE", "SUBACK",  "UNSUBSCRIBE", "UNSUBACK",
                                       "PINGREQ",  "PINGRESP", "DISCONNECT",  "AUTH"};
  return kNames[static_cast<uint8_t>(type) & 0x0F];
}

PacketType TypeOf(const Packet& packet) {
  static const PacketType kTypes[] = {
      PacketType::kConnect,     PacketType::kConnack, PacketType::kPublish,
      PacketType::kPuback,      PacketType::kSubscribe, PacketType::kSuback,
      PacketType::kUnsubscribe, PacketType::kUnsuback, PacketType::kPingreq,
      PacketType::kPingresp,    PacketType::kDisconnect};
  return kTypes[packet.index()];
}

const char* ReasonName(uint8_t code) {
  switch (code) {
    case 0x00: return "success";
    case 0x04: return "disconnect with will message";
    case 0x10: return "no matching subscribers";
    case 0x11: return "no subscription existed";
    case 0x80: return "unspecified error";
    case 0x81: return "malformed packet";
    case 0x82: return "protocol error";
    case 0x83: return "implementation specific error";
    case 0x84: return "unsupported protocol version";
    case 0x85: return "client identifier not valid";
    case 0x86: return "bad user name or password";
    case 0x87: return "not authorized";
    case 0x88: return "server unavailable";
    case 0x89: return "server busy";
    case 0x8A: return "banned";
    case 0x8B: return "server shutting down";
    case 0x8C: return "bad authentication method";
    case 0x8D: return "keep alive timeout";
    case 0x8E: return "session taken over";
    case 0x8F: return "topic filter invalid";
    case 0x90: return "topic name invalid";
    case 0x91: return "packet identifier in use";
    case 0x92: return "packet identifier not found";
    case 0x93: return "receive maximum exceeded";
    case 0x94: return "topic alias invalid";
    case 0x95: return "packet too large";
    case 0x96: return "message rate too high";
    case 0x97: return "quota exceeded";
    case 0x98: return "administrative action";
    case 0x99: return "payload format invalid";
    case 0x9A: return "retain not supported";
    case 0x9B: return "QoS not supported";
    case 0x9C: return "use another server";
    case 0x9D: return "server moved";
    case 0x9E: return "shared subscriptions not supported";
    case 0x9F: return "connection rate exceeded";
    case 0xA0: return "maximum connect time";
    case 0xA1: return "subscription identifiers not supported";
    case 0xA2: return "wildcard subscriptions not supported";
    default: return "unknown reason code";
  }
}

}  // namespace edgespool::sync::mqtt
