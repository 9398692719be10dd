// The WebSocket session messages: what a local HMI sends to the agent and what
// it gets back, one JSON object per text frame (docs/websocket.md). Parsing
// is a pure function over bytes, fuzzed on its own
// (tests/fuzz/websocket_message_fuzz.cc); the server only moves frames.
//
// Client -> agent (unknown members are ignored; a frame that is not one of
// these, or has a member of the wrong JSON type, closes the session with
// 4400; a bad value in one of them, such as an invalid filter, is answered
// with an error frame and the session stays):
//
//   {"type":"auth","token":"..."}
//       The bearer token, when it did not come in Sec-WebSocket-Protocol
//       ("bearer.<token>" beside "edgespool.v1"). Must be the first message
//       when the listener has a token_file; anything else first closes 4401.
//   {"type":"subscribe","session":"hmi","filters":["down/#"],"from":"new",
//    "window":100,"uplink":["sensors/#"],"status":true}
//       session  optional; "" or absent: anonymous (ends with the connection);
//                a name: the downlink's durable session of that name (the same
//                sessions as the Unix-socket consumers: docs/downlink.md)
//       filters  0..64 filters over the downlink's local topics (0: no
//                downlink); from, window as for the socket's subscribe:
//                from "new" | "oldest" | an inbox seq; window 1..10000
//       uplink   0..64 filters over producer topics: messages as they are
//                stored in the journal. Anonymous: live only, no acks. With
//                a session name: resumable (acks, a window, a persisted
//                position; docs/websocket.md "Resumable uplink sessions")
//       uplink_from  "new" | "oldest" | a journal seq (deliver from it);
//                absent: after the session's acked uplink position, or
//                "new" the first time. Without downlink filters, `from`
//                means this.
//       status   true: the status document now and every status_interval
//       One subscription per connection; a second replaces the first.
//   {"type":"ack","seq":42}       one downlink message
//   {"type":"ack","up_to":42}     every delivered downlink message <= 42
//   {"type":"ack","source":"uplink","seq":17}   the same for the uplink of
//                                 a named session (source "downlink" is the
//                                 default)
//   {"type":"unsubscribe","end":false}
//       ends the subscription; a durable session keeps its position unless
//       "end" is true, which deletes it
//
// Agent -> client:
//
//   {"type":"subscribed","session":"hmi","position":41,"resumed":true,
//    "uplink_position":16,"uplink_resumed":true}   (uplink_*: resumable
//                                                   uplink only)
//   {"type":"message","source":"downlink","session":"hmi","seq":42,
//    "topic":"down/cmd","broker_topic":"edgespool/gw1/down/cmd","ts":<ms>,
//    "headers":{"k":"v"},"response_topic":"..","correlation":"<hex>",
//    "payload":"<UTF-8 text>"}           or "payload_b64":"<base64>" when the
//                                         payload is not UTF-8
//   {"type":"message","source":"uplink","seq":17,"topic":"sensors/t",
//    "ts":<ms>,"headers":{...},"payload":"..."}
//   {"type":"dropped","source":"uplink","count":5,"total":12}
//       uplink messages this session could not take (it read too slowly),
//       or, for a resumable session, seqs no longer in the journal (sent
//       and past store.sent_retention, expired, dropped), sent before the
//       next one it gets
//   {"type":"status","status":{...the status document...}}
//   {"type":"unsubscribed"}
//   {"type":"error","code":"bad_request","message":"..."}
//       code: bad_request (a bad filter, an ack of a seq not in flight...),
//       busy (the session is attached to another connection, or too many
//       sessions); the session stays open.
//
// Limits enforced here: filters <= 64 per list, each a valid MQTT filter
// (agent/protocol/request.h ValidateFilter); session names as
// ValidateSessionName; window 1..10000; seqs are non-negative integers
// below 2^53 (exact in a JSON number).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "store/journal.h"

namespace edgespool::agent::websocket {

enum class ClientType { kAuth, kSubscribe, kAck, kUnsubscribe };
enum class FromKind { kDefault, kNew, kOldest, kSeq };

struct ClientMessage {
  ClientType type = ClientType::kAuth;
  std::string token;  // auth
  // subscribe
  std::string session;
  std::vector<std::string> filters;
  FromKind from = FromKind::kDefault;
  uint64_t from_seq = 0;
  uint32_t window = 0;  // 0: the downlink's default
  std::vector<std::string> uplink;
  FromKind uplink_from = FromKind::kDefault;
  uint64_t uplink_from_seq = 0;
  bool status = false;
  // ack
  uint64_t seq = 0;
  bool cumulative = false;  // up_to
  bool ack_uplink = false;  // source "uplink"
  // unsubscribe
  bool end = false;
};

inline constexpr size_t kMaxFilters = 64;
inline constexpr uint32_t kMaxWindow = 10000;

enum class ParseOutcome {
  kOk,
  kBadRequest,  // a session message with a bad value (a filter, a window...):
                // answered with an error frame, the session stays
  kGarbage,     // not a session message (not JSON, not an object, no or an
                // unknown type, a member of the wrong JSON type): closes 4400
};

// Parses one text frame; *error says why when the outcome is not kOk (a
// one-line reason for the error or close frame).
ParseOutcome ParseClientMessage(std::string_view text, ClientMessage* out, std::string* error);

// --- agent -> client ---------------------------------------------------------

std::string RenderSubscribed(const std::string& session, uint64_t position, bool resumed);
// With a resumable uplink: its acked position and whether it was resumed.
std::string RenderSubscribed(const std::string& session, uint64_t position, bool resumed,
                             uint64_t uplink_position, bool uplink_resumed);
std::string RenderUnsubscribed();
// code: "bad_request" | "busy"
std::string RenderError(std::string_view code, std::string_view message);
std::string RenderStatus(std::string_view status_json);
std::string RenderDropped(uint64_t count, uint64_t total);
// A downlink message for session (empty: anonymous).
void AppendDownlinkMessage(std::string* out, const std::string& session,
                           const store::StoredInbound& row);
// An uplink message as it was stored (seq: its journal seq).
void AppendUplinkMessage(std::string* out, uint64_t seq, const store::Message& m);

// Standard base64 (RFC 4648, padded), for payloads that are not UTF-8.
void AppendBase64(std::string* out, std::string_view bytes);

}  // namespace edgespool::agent::websocket
