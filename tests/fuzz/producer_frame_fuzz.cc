// libFuzzer target: the producer frame decoder and the request header
// parser/validator, fed exactly as the server feeds them (arbitrary chunking),
// plus the client's reply parser on the same bytes. Each header is parsed by
// both the flat fast path and the cJSON path, which must agree.
//
//   build/fuzz/tests/fuzz/producer_frame_fuzz tests/fuzz/corpus/producer_frame_fuzz
//
// Input: byte 0 picks the chunk size used to feed the decoder, the rest is
// the byte stream of one connection.
#include <cstddef>
#include <cstdint>
#include <string>

#include "agent/protocol/frame.h"
#include "agent/protocol/reply.h"
#include "agent/protocol/request.h"

using namespace edgespool::protocol;  // NOLINT: a fuzz driver

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  size_t chunk = 1 + data[0] % 64;
  const char* p = reinterpret_cast<const char*>(data + 1);
  size_t n = size - 1;
  FrameDecoder decoder(/*max_body_bytes=*/4096, /*max_skip_bytes=*/16384);
  auto on_frame = [](const Frame& f) {
    Request r, slow;
    RequestError e, slow_e;
    bool ok = ParseRequest(f.header, &r, &e);
    if (ok != ParseRequestSlow(f.header, &slow, &slow_e)) __builtin_trap();
    if (ok ? (slow.op != r.op || slow.req != r.req || slow.publish.topic != r.publish.topic ||
              slow.publish.id != r.publish.id || slow.publish.ts_ms != r.publish.ts_ms ||
              slow.publish.ack != r.publish.ack || slow.query_seq != r.query_seq)
           : (slow_e.code != e.code || slow_e.message != e.message || slow_e.req != e.req)) {
      __builtin_trap();
    }
    if (ok) {
      // A valid request must survive re-encoding (the client's path).
      std::string again = EncodeRequestHeader(r);
      Request r2;
      RequestError e2;
      if (!ParseRequest(again, &r2, &e2)) __builtin_trap();
      if (r2.op != r.op || r2.req != r.req || r2.publish.topic != r.publish.topic ||
          r2.publish.headers != r.publish.headers || r2.publish.id != r.publish.id) {
        __builtin_trap();
      }
    } else if (e.message.empty()) {
      __builtin_trap();  // every refusal says why
    }
    Reply reply, slow_reply;
    std::string error, slow_error;
    bool reply_ok = ParseReply(f.header, &reply, &error);
    if (reply_ok != ParseReplySlow(f.header, &slow_reply, &slow_error)) __builtin_trap();
    if (reply_ok && EncodeReplyHeader(reply) != EncodeReplyHeader(slow_reply)) __builtin_trap();
    return true;
  };
  for (size_t off = 0; off < n && !decoder.failed(); off += chunk) {
    size_t len = n - off < chunk ? n - off : chunk;
    (void)decoder.Feed(p + off, len, on_frame);
    if (decoder.buffered_bytes() > 8 + kMaxHeaderBytes + 4096 + 64) __builtin_trap();
  }
  return 0;
}
