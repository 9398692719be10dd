// The producer protocol's framing, shared by the server and the client SDK.
//
// Wire format (every frame, both directions, on a Unix stream socket):
//
//   offset 0  u32 header_len   big-endian, 1 .. 65536 (kMaxHeaderBytes)
//   offset 4  u32 body_len     big-endian, 0 .. 2^32-1
//   offset 8  header           header_len bytes: one UTF-8 JSON object
//   then      body             body_len raw bytes (a publish's payload, a
//                              status reply's JSON document; else empty)
//
// A frame whose header_len is 0 or above kMaxHeaderBytes cannot be trusted to
// end anywhere sensible: it is a "bad frame" and the connection is closed
// after the error reply. A body above the receiver's max_body_bytes but within
// max_skip_bytes (the server uses 4x max_message_bytes) is "too large": the
// header is still delivered (so the reply can echo its `req`), the body bytes
// are skipped as they arrive, and the connection continues. A body above
// max_skip_bytes is a bad frame: skipping gigabytes would tie the connection
// up for no good reason.
//
// The JSON fields of requests and replies are described in request.h and
// reply.h.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "platform/status.h"

namespace edgespool::protocol {

inline constexpr uint32_t kMaxHeaderBytes = 64 * 1024;
inline constexpr size_t kPrefixBytes = 8;

// Appends one frame to *out.
void AppendFrame(std::string* out, std::string_view header, std::string_view body);
std::string EncodeFrame(std::string_view header, std::string_view body);
// Building a frame in place, for headers written straight into *out:
// BeginFrame reserves the prefix and returns where the frame starts; the
// caller appends the header; EndFrame appends the body and fills the prefix.
size_t BeginFrame(std::string* out);
void EndFrame(std::string* out, size_t start, std::string_view body);

// One decoded frame. The views point into the decoder's buffer or into the
// bytes passed to Feed(): valid only during the callback.
struct Frame {
  std::string_view header;
  std::string_view body;
  uint64_t declared_body_bytes = 0;
  bool body_skipped = false;  // too large: body not delivered, being skipped
};

// Incremental decoder: feed it whatever the socket delivered, get complete
// frames. Memory: at most one frame being assembled (8 + header + body bytes,
// so <= 8 + kMaxHeaderBytes + max_body_bytes); complete frames that arrive in
// one Feed() are handed out without copying. Not thread-safe.
class FrameDecoder {
 public:
  // Returns false to stop decoding: the unconsumed rest of the input is
  // dropped and the decoder refuses further input (the connection is closing).
  using FrameCallback = std::function<bool(const Frame&)>;

  FrameDecoder(uint64_t max_body_bytes, uint64_t max_skip_bytes)
      : max_body_bytes_(max_body_bytes), max_skip_bytes_(max_skip_bytes) {}

  // kProtocolError ("bad frame: ...") when the stream can no longer be
  // framed; the decoder then stays failed. kCancelled when a callback
  // stopped decoding.
  Status Feed(const char* data, size_t len, const FrameCallback& on_frame);

  // Bytes held for the frame being assembled (what a connection costs idle).
  size_t buffered_bytes() const { return buffer_.capacity(); }
  uint64_t skipping_bytes() const { return skip_remaining_; }
  bool failed() const { return failed_; }

 private:
  struct Prefix {
    uint32_t header_len;
    uint32_t body_len;
  };
  static Prefix ReadPrefix(const char* p);
  Status CheckPrefix(const Prefix& prefix);
  // Bytes of this frame that must be held before it can be delivered.
  size_t NeededBytes(const Prefix& prefix) const;
  // Also arms the skipping of a too-large body.
  Frame MakeFrame(const char* frame, const Prefix& prefix);
  void ReleaseBuffer();

  uint64_t max_body_bytes_;
  uint64_t max_skip_bytes_;
  std::string buffer_;
  uint64_t skip_remaining_ = 0;
  bool failed_ = false;
};

}  // namespace edgespool::protocol
