// Batch frames: many journal messages in one MQTT PUBLISH, zstd-compressed.
//
// A frame is what sync.mode = "batch" publishes on edgespool/{node}/batch and
// what `edgespool decode` and the client library read. All integers are
// big-endian; strings are UTF-8 with a length prefix, no terminator.
//
//   frame   := magic "ESB1" (4 bytes)
//              version  u8   = 1
//              codec    u8   0 = none, 1 = zstd
//              flags    u16  bit 0 (kFlagSealFields): records carry `seal`;
//                            other bits reserved (decoders reject them)
//              node     str16
//              first_seq u64  seq of the first record
//              count    u32  number of records (>= 1)
//              body_len u32  length of the body once decoded (uncompressed)
//              body     the rest of the frame: `count` records, compressed per codec
//   record  := seq u64 | ts_ms i64 | topic str16 | id str16
//              | header_count u16 | header_count x (key str16, value str32)
//              | [seal, only with flags bit 0]
//              | payload str32
//   seal    := alg u8:  0 = payload in clear
//                       1 = aes-256-gcm: key_id str16 | nonce 12 bytes, and the
//                           payload is ciphertext || 16-byte tag
//              (message-level encryption: docs/encryption.md)
//   str16   := u16 length | bytes        str32 := u32 length | bytes
//
// Records are in upload order; seqs are strictly increasing within a frame,
// but not necessarily consecutive (other routes interleave). The header stays
// uncompressed so a consumer can route or drop a frame without inflating it.
// A frame is acknowledged as a whole (one PUBACK marks every record sent).
// Compatibility: a frame with no sealed record is written without flag bit 0
// and is byte for byte what earlier versions wrote; a decoder from before the
// flag rejects a frame that has it ("unknown flags") rather than misread it.
// The version stays 1.
// Full description for other languages: docs/batch-frame.md.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "platform/status.h"

namespace edgespool::batch {

enum class Codec : uint8_t { kNone = 0, kZstd = 1 };

inline constexpr char kMagic[4] = {'E', 'S', 'B', '1'};
inline constexpr uint8_t kVersion = 1;
inline constexpr size_t kFixedHeaderBytes = 4 + 1 + 1 + 2;  // before node
inline constexpr uint16_t kFlagSealFields = 0x0001;
inline constexpr uint8_t kSealAesGcm = 1;
inline constexpr size_t kSealNonceBytes = 12;

// How a record's payload was sealed (message-level encryption); the key
// itself never travels.
struct RecordSeal {
  std::string key_id;
  std::array<uint8_t, kSealNonceBytes> nonce{};
};

struct Record {
  uint64_t seq = 0;
  int64_t ts_ms = 0;
  std::string topic;
  std::string id;
  std::vector<std::pair<std::string, std::string>> headers;
  std::optional<RecordSeal> seal;  // set: payload is ciphertext || tag
  std::string payload;
};

struct Frame {
  std::string node;
  uint64_t first_seq = 0;
  Codec codec = Codec::kNone;
  std::vector<Record> records;
};

struct DecodeLimits {
  uint32_t max_records = 1000000;
  uint32_t max_body_bytes = 256u << 20;
};

// Builds one frame. Not thread-safe; reuse one encoder (it keeps its zstd
// context) for many frames: Add..., Finish, Add..., Finish.
class FrameEncoder {
 public:
  FrameEncoder(std::string node, Codec codec, int zstd_level);
  ~FrameEncoder();
  FrameEncoder(const FrameEncoder&) = delete;
  FrameEncoder& operator=(const FrameEncoder&) = delete;

  void Add(uint64_t seq, int64_t ts_ms, std::string_view topic, std::string_view id,
           const std::vector<std::pair<std::string, std::string>>& headers,
           std::string_view payload, const RecordSeal* seal = nullptr);
  // Whether a record (sealed or not) fits this frame: a sealed one needs the
  // seal fields, which a frame turns on only while it is empty (the records
  // before it were written without the field). Flush first when false.
  bool CanAdd(bool sealed) const { return !sealed || seal_fields_ || count_ == 0; }
  size_t count() const { return count_; }
  // Body bytes so far (before compression): what batch_bytes bounds.
  size_t raw_bytes() const { return body_.size(); }
  // The encoded frame; resets the encoder for the next one.
  Result<std::string> Finish();

 private:
  std::string node_;
  Codec codec_;
  int level_;
  std::string body_;
  uint64_t first_seq_ = 0;
  uint32_t count_ = 0;
  bool seal_fields_ = false;  // this frame's flags bit 0
  struct ZstdContext;
  std::unique_ptr<ZstdContext> zstd_;
};

// Strict decoding: every length is checked against what remains, the record
// count and decoded length must match the header, and zstd output must be
// exactly body_len. Corruption is reported, never over-read.
Result<Frame> DecodeFrame(std::string_view bytes, const DecodeLimits& limits = {});
// Length of the first frame in bytes (frames may be concatenated, e.g. in a
// capture file): header + body, where a zstd body ends where its zstd frame
// ends. Corruption if the header is incomplete or the body runs past the end.
Result<size_t> FrameLength(std::string_view bytes);
// True if bytes start with the frame magic (cheap sniffing).
bool LooksLikeFrame(std::string_view bytes);

}  // namespace edgespool::batch
