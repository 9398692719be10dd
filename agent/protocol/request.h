// Producer requests: the JSON header of a client->agent frame, parsed and
// validated into a typed Request (server side) or encoded from one (client).
//
// Header fields (unknown fields are ignored, for forward compatibility):
//   op        "publish" | "query" | "status" | "ping" | "reload" |
//             "subscribe" | "ack" | "unsubscribe" |
//             "request" | "respond" | "answer"                      (required)
//   req       integer 0 .. 2^53-1, echoed in the reply           (optional)
// publish (body = payload):
//   topic     UTF-8, 1..65535 bytes, no NUL, no '+' or '#' wildcards, not
//             starting with '$' (reserved by MQTT for broker topics)
//   ts        integer ms since the Unix epoch, 0 .. 253402300799999 (the end
//             of year 9999); default: the time of receipt
//   priority  "high" | "normal" | "low"                           (normal)
//   ttl_ms    integer 1 .. 10 years in ms                          (none)
//   deliver_at  integer ms since the epoch, 0 .. end of year 9999: not
//             uploaded before then (in the past: at once)          (none)
//   delay_ms  integer 0 .. 10 years in ms: deliver_at = receipt + delay
//             (at most one of deliver_at and delay_ms)             (none)
//   headers   object of string -> string, <= 64 entries, keys 1..256 bytes,
//             keys plus values <= 16 KiB, all valid UTF-8 without NUL;
//             a "traceparent" key (any case) must be a W3C Trace Context
//             traceparent (ValidTraceparent)
//   id        idempotency key, 1..256 bytes of UTF-8 without NUL
//   ack       "stored" | "delivered" | "none"                     (stored)
// query:      exactly one of  seq (integer >= 1)  or  id (string)
// status, ping: no fields.
// reload: no fields. The agent reloads its configuration file and answers
//             with the outcome (agent/server/producer_server.h); only root
//             and the agent's own uid may ask.
//
// Consumer ops (docs/downlink.md, "Consumer ops on the producer socket"):
// subscribe:
//   session   0..128 bytes of UTF-8 without NUL or '\n'; absent or "":
//             anonymous (the session ends with the connection)
//   filters   array of 1..64 MQTT topic filters over local topics    (required)
//             each 1..65535 bytes of UTF-8 without NUL or '\n' (the journal
//             stores a session's filters '\n'-separated), '+' and '#' only
//             as whole levels, '#' only as the last level, not starting
//             with '$' (local topics never do: such a filter matches nothing)
//   from      "new" | "oldest" | an inbox seq 0..2^53-1 (deliver seq >= it);
//             absent: a durable session resumes after its acked position,
//             a new one starts at "new"
//   window    integer 1..10000: unacked messages in flight  (downlink.window)
// ack:        session (as above, "" or absent: the anonymous one) and
//             exactly one of  seq  or  up_to  (integers 1..2^53-1);
//             no reply when it succeeds
// unsubscribe: session (as above), end (boolean, default false: a durable
//             session keeps its position; true deletes it)
// Errors of these ops are bad_request; an unknown session on ack and a
// session attached to another connection (busy) are the agent's to detect.
//
// Request/response ops (docs/request-response.md):
// request (body = payload): a request to the cloud, answered once, by a
//             reply that is pushed when it is ready (not in request order)
//   topic       as publish                                      (required)
//   timeout_ms  integer 1..600000: how long to wait for the answer  (5000)
//   ttl_ms      integer 1..600000: may wait this long for a down uplink;
//               absent: fail at once with unavailable while it is down
//   headers     as publish (MQTT 5 user properties of the request)
// respond:    methods (array of 1..64 method names, each a topic of
//             1..256 bytes, see ValidateMethodName) and stop (boolean,
//             default false: register them for this connection; true:
//             unregister them). reply {"req":1,"ok":true}
// answer (body = the answer's payload): the responder's answer to a call
//   call        integer 1..2^53-1, the pushed call frame's id   (required)
//   error       an error code of 1..64 bytes [a-z0-9_] (default: none,
//               a success); the caller receives it instead of an answer
//   message     UTF-8, at most 1024 bytes, with error
//             no reply when it succeeds; an error reply (timeout: the call
//             is no longer pending) otherwise
//
// A publish with ack "none" gets no reply at all, not even an error (the
// error is counted by the agent): the producer asked not to be answered.
//
// A header that is not a JSON object at all is a bad frame (the connection
// is closed after the reply); a JSON object with a wrong field is a
// bad_request (or bad_topic), and the connection continues.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "platform/status.h"

namespace edgespool::protocol {

enum class Op {
  kPublish,
  kQuery,
  kStatus,
  kPing,
  kSubscribe,
  kAck,
  kUnsubscribe,
  kRequest,
  kRespond,
  kAnswer,
  kReload,
};
// Numbered as store::Priority (0 high .. 2 low).
enum class Priority : uint8_t { kHigh = 0, kNormal = 1, kLow = 2 };
enum class AckMode { kStored, kDelivered, kNone };

enum class ErrorCode {
  kBadFrame,
  kBadRequest,
  kBadTopic,
  kTooLarge,
  kForbidden,
  kRateLimited,
  kBusy,
  kJournalFull,
  kInternal,
  // Request/response (docs/request-response.md).
  kUnavailable,   // the uplink is down (or went down for the request's ttl)
  kTimeout,       // no answer within the request's timeout
  kNoHandler,     // no responder registered for the method
  kHandlerError,  // the responder answered with an error of its own
};
inline constexpr ErrorCode kLastErrorCode = ErrorCode::kHandlerError;

const char* OpName(Op op);
const char* PriorityName(Priority p);
const char* AckModeName(AckMode a);
const char* ErrorCodeName(ErrorCode code);
bool ParseErrorCode(std::string_view name, ErrorCode* out);
bool ParsePriority(std::string_view name, Priority* out);
bool ParseAckMode(std::string_view name, AckMode* out);
// W3C Trace Context (https://www.w3.org/TR/trace-context/#traceparent-header):
// version "-" trace-id "-" parent-id "-" flags, lowercase hex of 2, 32, 16
// and 2 digits; trace-id and parent-id not all zeros; version not "ff".
// Version 00 is exactly 55 characters; a later version may append
// "-"-separated fields, which are kept but not read.
bool ValidTraceparent(std::string_view v);
// "traceparent" in any case (HTTP header names are case-insensitive).
bool IsTraceparentKey(std::string_view key);

inline constexpr size_t kMaxTopicBytes = 65535;
inline constexpr size_t kMaxHeaderEntries = 64;
inline constexpr size_t kMaxHeaderKeyBytes = 256;
inline constexpr size_t kMaxHeadersBytes = 16 * 1024;
inline constexpr size_t kMaxIdBytes = 256;
inline constexpr int64_t kMaxTsMs = 253402300799999;          // 9999-12-31T23:59:59.999Z
inline constexpr int64_t kMaxTtlMs = 10ll * 366 * 86400 * 1000;  // ~10 years
inline constexpr int64_t kMaxReq = (int64_t{1} << 53) - 1;     // exact in a JSON double
inline constexpr size_t kMaxSessionBytes = 128;
inline constexpr size_t kMaxFilters = 64;
inline constexpr size_t kMaxFilterBytes = 65535;
inline constexpr uint32_t kMaxWindow = 10000;
inline constexpr int64_t kDefaultRequestTimeoutMs = 5000;
inline constexpr int64_t kMaxRequestTimeoutMs = 600000;
inline constexpr size_t kMaxMethods = 64;
inline constexpr size_t kMaxMethodBytes = 256;
inline constexpr size_t kMaxAnswerErrorBytes = 64;
inline constexpr size_t kMaxAnswerMessageBytes = 1024;

using HeaderList = std::vector<std::pair<std::string, std::string>>;

struct PublishFields {
  std::string topic;
  std::optional<int64_t> ts_ms;
  Priority priority = Priority::kNormal;
  std::optional<int64_t> ttl_ms;
  std::optional<int64_t> deliver_at_ms;  // at most one of these two
  std::optional<int64_t> delay_ms;
  HeaderList headers;
  std::string id;
  AckMode ack = AckMode::kStored;
};

struct SubscribeFields {
  std::string session;  // "": anonymous
  std::vector<std::string> filters;
  enum From { kDefault, kNew, kOldest, kSeq } from = kDefault;
  uint64_t from_seq = 0;  // from == kSeq
  std::optional<uint32_t> window;
};

struct AckFields {
  std::string session;
  // Exactly one is set: one message, or every delivered message <= up_to.
  std::optional<uint64_t> seq, up_to;
};

struct UnsubscribeFields {
  std::string session;
  bool end = false;  // delete a durable session instead of detaching
};

struct RequestFields {
  std::string topic;
  std::optional<int64_t> timeout_ms;  // absent: kDefaultRequestTimeoutMs
  std::optional<int64_t> ttl_ms;
  HeaderList headers;
};

struct RespondFields {
  std::vector<std::string> methods;
  bool stop = false;
};

struct AnswerFields {
  uint64_t call = 0;
  std::string error;  // empty: a success
  std::string message;
};

struct Request {
  Op op = Op::kPing;
  std::optional<int64_t> req;
  PublishFields publish;          // op == kPublish
  std::optional<uint64_t> query_seq;  // op == kQuery: one of these two
  std::string query_id;
  SubscribeFields subscribe;      // op == kSubscribe
  AckFields ack;                  // op == kAck
  UnsubscribeFields unsubscribe;  // op == kUnsubscribe
  RequestFields request;          // op == kRequest
  RespondFields respond;          // op == kRespond
  AnswerFields answer;            // op == kAnswer
};

struct RequestError {
  ErrorCode code = ErrorCode::kBadRequest;
  std::string message;
  std::optional<int64_t> req;  // echoed when the header got that far
  bool no_reply = false;       // a publish with ack:"none": refused silently
};

// Parses and validates a request header. False with *error filled on any
// problem; error->code is kBadFrame when the header is not a JSON object.
// Flat headers (every publish without "headers") take a scanner that builds
// no tree (flat_json.h); the rest go through cJSON.
bool ParseRequest(std::string_view header, Request* out, RequestError* error);
// The cJSON-only path, kept callable so that tests and the fuzzer can check
// that both paths give the same answer.
bool ParseRequestSlow(std::string_view header, Request* out, RequestError* error);

// The header of a request as the client SDK sends it.
std::string EncodeRequestHeader(const Request& request);
// Appends the whole frame (prefix, that header, body) to *out.
void AppendRequestFrame(std::string* out, const Request& request, std::string_view body);

// MQTT topic-name rules for a producer's topic (see the top of this file).
// InvalidArgument with the reason.
Status ValidateTopic(std::string_view topic);
// MQTT topic-filter rules for a consumer's filter (see the top of this file).
// InvalidArgument with the reason.
Status ValidateFilter(std::string_view filter);
// A session name: 0..128 bytes of UTF-8 without NUL or '\n' (a name prints
// as one line in logs, status and the CLI).
Status ValidateSessionName(std::string_view session);
// A method name: a topic (ValidateTopic) of at most 256 bytes; it becomes
// the last levels of the broker topic the method is called on.
Status ValidateMethodName(std::string_view name);
// An answer's error code: 1..64 bytes of [a-z0-9_].
Status ValidateErrorCodeText(std::string_view code);
// True if s is well-formed UTF-8 (no overlongs, no surrogates, <= U+10FFFF).
bool IsValidUtf8(std::string_view s);

}  // namespace edgespool::protocol
