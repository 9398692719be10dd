// MQTT 3.1.1 / 5.0 codec: framing, strict decoding and encoding of the
// packets in packets.h.
//
// Fixed header (spec 2.1): one byte (type << 4 | flags), then the Remaining
// Length as a Variable Byte Integer of at most 4 bytes, then that many bytes
// of variable header and payload. Decoding is strict: every violation of the
// spec's "MUST" for a well-formed packet (reserved flags, lengths past the
// packet, trailing bytes, invalid UTF-8, U+0000, unknown or duplicate
// properties, packet id 0 where one is required...) becomes a kProtocolError
// naming the problem. The decoder never reads outside the frame it is given.
//
// Encoding appends to a caller-provided std::string, so many packets coalesce
// into one buffer and one write. Encoders trust their input: the session
// validates topics, strings and sizes before it encodes.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "platform/status.h"
#include "sync/mqtt/packets.h"

namespace edgespool::sync::mqtt {

// Largest packet MQTT can express: 1 + 4 + 268,435,455.
inline constexpr uint32_t kMaxPacketSize = 268435460;

// One whole packet as it came off the wire.
struct Frame {
  uint8_t header = 0;      // type << 4 | flags
  std::string_view body;   // variable header + payload
  size_t wire_size = 0;    // fixed header included
  PacketType type() const { return static_cast<PacketType>(header >> 4); }
  uint8_t flags() const { return header & 0x0F; }
};

// Reassembles packets from a byte stream cut at arbitrary points. Whole
// packets inside a chunk are handed out in place (no copy); only a packet
// split across chunks is buffered. A packet whose declared size exceeds
// max_packet_size is refused as soon as its fixed header is seen, before any
// of it is buffered.
class FrameSplitter {
 public:
  using FrameCallback = std::function<Status(const Frame&)>;

  explicit FrameSplitter(uint32_t max_packet_size = kMaxPacketSize)
      : max_packet_size_(max_packet_size) {}
  void set_max_packet_size(uint32_t n) { max_packet_size_ = n; }

  // Calls on_frame for each whole packet, in order. A Frame's body is valid
  // only during the call. Stops at the first error (framing, or one returned
  // by on_frame) and returns it; after an error the splitter refuses all
  // further input (the stream is out of sync).
  Status Feed(std::string_view chunk, const FrameCallback& on_frame);
  size_t buffered() const { return buffer_.size(); }
  void Reset();

 private:
  // Parses whole frames from the front of `data`; returns bytes consumed.
  Status Drain(std::string_view data, const FrameCallback& on_frame, size_t* consumed);

  uint32_t max_packet_size_;
  std::string buffer_;
  Status error_;
};

// Decodes one frame for a connection at protocol level 4 or 5.
Result<Packet> Decode(const Frame& frame, uint8_t protocol_level);
// Splits exactly one packet off `bytes` and decodes it (tests, tools).
Result<Packet> DecodeOne(std::string_view bytes, uint8_t protocol_level,
                         uint32_t max_packet_size = kMaxPacketSize);

void Encode(const Connect& p, std::string* out);  // level from p.protocol_level
void Encode(const Connack& p, uint8_t level, std::string* out);
void Encode(const Publish& p, uint8_t level, std::string* out);
void Encode(const Puback& p, uint8_t level, std::string* out);
void Encode(const Subscribe& p, uint8_t level, std::string* out);
void Encode(const Suback& p, uint8_t level, std::string* out);
void Encode(const Unsubscribe& p, uint8_t level, std::string* out);
void Encode(const Unsuback& p, uint8_t level, std::string* out);
void Encode(const Pingreq& p, uint8_t level, std::string* out);
void Encode(const Pingresp& p, uint8_t level, std::string* out);
void Encode(const Disconnect& p, uint8_t level, std::string* out);
void EncodePacket(const Packet& p, uint8_t level, std::string* out);

}  // namespace edgespool::sync::mqtt
