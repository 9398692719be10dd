// libFuzzer target: the producer frame decoder and the request header
// parser/validator (every op, the consumer ops included), fed exactly as the
// server feeds them (arbitrary chunking), plus the client's parsers on the
// same bytes: replies, pushed "message" frames and ParseServerFrame, which
// tells the two apart. Each header is parsed by both the flat fast path and
// the cJSON path, which must agree; what parses must survive re-encoding.
//
//   build/fuzz/tests/fuzz/producer_frame_fuzz tests/fuzz/corpus/producer_frame_fuzz
//
// Input: byte 0 picks the chunk size used to feed the decoder, the rest is
// the byte stream of one connection.
#include <cstddef>
#include <cstdint>
#include <string>

#include "agent/protocol/frame.h"
#include "agent/protocol/message.h"
#include "agent/protocol/reply.h"
#include "agent/protocol/request.h"

using namespace edgespool::protocol;  // NOLINT: a fuzz driver

namespace {

bool SameConsumerFields(const Request& a, const Request& b) {
  return a.subscribe.session == b.subscribe.session && a.subscribe.filters == b.subscribe.filters &&
         a.subscribe.from == b.subscribe.from && a.subscribe.from_seq == b.subscribe.from_seq &&
         a.subscribe.window == b.subscribe.window && a.ack.session == b.ack.session &&
         a.ack.seq == b.ack.seq && a.ack.up_to == b.ack.up_to &&
         a.unsubscribe.session == b.unsubscribe.session && a.unsubscribe.end == b.unsubscribe.end;
}

bool SameMessage(const PushedMessage& a, const PushedMessage& b) {
  return a.session == b.session && a.seq == b.seq && a.topic == b.topic &&
         a.broker_topic == b.broker_topic && a.ts_ms == b.ts_ms && a.headers == b.headers &&
         a.response_topic == b.response_topic && a.correlation == b.correlation;
}

// The consumer's side: a message parses the same through ParseMessage and
// ParseServerFrame and re-encodes to itself; a reply ParseServerFrame finds
// is the one ParseReply finds.
void CheckServerFrame(const Frame& f) {
  PushedMessage m;
  std::string error;
  bool is_message = ParseMessage(f.header, &m, &error);
  if (!is_message && error.empty()) __builtin_trap();
  ServerFrame sf;
  bool ok = ParseServerFrame(f.header, &sf, &error);
  if (is_message) {
    if (!ok || sf.kind != ServerFrame::kMessage || !SameMessage(sf.message, m)) __builtin_trap();
    PushedMessage again;
    if (!ParseMessage(EncodeMessageHeader(m), &again, &error) || !SameMessage(again, m)) {
      __builtin_trap();
    }
  } else if (ok) {
    Reply reply;
    if (sf.kind != ServerFrame::kReply || !ParseReply(f.header, &reply, &error) ||
        EncodeReplyHeader(reply) != EncodeReplyHeader(sf.reply)) {
      __builtin_trap();
    }
  }
}

}  // namespace

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
              slow.publish.ack != r.publish.ack || slow.query_seq != r.query_seq ||
              slow.publish.deliver_at_ms != r.publish.deliver_at_ms ||
              slow.publish.delay_ms != r.publish.delay_ms ||
              !SameConsumerFields(slow, r))
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
          r2.publish.headers != r.publish.headers || r2.publish.id != r.publish.id ||
          r2.publish.deliver_at_ms != r.publish.deliver_at_ms ||
          r2.publish.delay_ms != r.publish.delay_ms || !SameConsumerFields(r2, r)) {
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
    CheckServerFrame(f);
    return true;
  };
  for (size_t off = 0; off < n && !decoder.failed(); off += chunk) {
    size_t len = n - off < chunk ? n - off : chunk;
    (void)decoder.Feed(p + off, len, on_frame);
    if (decoder.buffered_bytes() > 8 + kMaxHeaderBytes + 4096 + 64) __builtin_trap();
  }
  return 0;
}
