// Producer replies: the JSON header of an agent->client frame.
//
//   {"req":1,"ok":true,"status":"stored","seq":42,"uplink":"connected"}
//   {"req":1,"ok":true,"status":"duplicate","seq":40,"uplink":"disconnected"}
//   {"req":1,"ok":true,"status":"delivered","seq":42}         second reply,
//   {"req":1,"ok":false,"status":"dead","seq":42,"reason":"..."}  ack:"delivered"
//   {"req":1,"ok":false,"status":"expired","seq":42,"reason":"ttl ran out ..."}
//   {"req":2,"ok":true,"seq":42,"state":"pending","ts":..,"topic":"..",
//    "attempts":0[,"reason":"..","sent_at":..,"deliver_at":..]} query
//    (deliver_at: state "scheduled", when it becomes due)
//   {"req":3,"ok":true}   ping; status: the same, body = the status document
//   {"req":4,"ok":true,"session":"hmi","seq":41,"resumed":true}   subscribe:
//                         seq = the session's acked position (0: none)
//   {"req":5,"ok":true}   unsubscribe (a successful ack has no reply)
//   {"req":6,"ok":true,"status":"reloaded"|"unchanged","message":".."}   reload;
//   refused: {"req":6,"ok":false,"code":"bad_request","message":".."}; the
//   body of both is the outcome as JSON (agent/server/producer_server.h)
//   {"req":1,"ok":false,"code":"too_large","message":"..","limit":2097152}
//   {"req":1,"ok":false,"code":"busy","message":"..","retry_after_ms":100}
//
// `req` is absent when the request had none, and on the `busy` frame sent to
// a connection refused for max_connections (the connection is then closed).
// A connection that subscribed also receives pushed "message" frames, which
// are not replies (no "ok"): see message.h.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "agent/protocol/request.h"

namespace edgespool::protocol {

struct Reply {
  std::optional<int64_t> req;
  bool ok = false;
  // Errors.
  std::optional<ErrorCode> code;
  std::string message;
  std::optional<int64_t> retry_after_ms;
  std::optional<uint64_t> limit;
  // Publish: stored | duplicate | delivered | dead | expired.
  std::string status;
  std::optional<uint64_t> seq;
  std::string uplink;  // connected | disconnected
  // Query.
  std::string state;
  std::optional<int64_t> ts_ms;
  std::string topic;
  std::optional<uint64_t> attempts;
  std::string reason;
  std::optional<int64_t> sent_at_ms;
  std::optional<int64_t> deliver_at_ms;  // query of a scheduled message
  // Subscribe ("seq" above is the session's acked position).
  std::string session;
  std::optional<bool> resumed;
};

// Writes the fields that are set (empty strings and nullopt are left out).
std::string EncodeReplyHeader(const Reply& reply);
// Appends the whole frame (prefix, that header, body) to *out.
void AppendReplyFrame(std::string* out, const Reply& reply, std::string_view body = {});
Reply ErrorReply(std::optional<int64_t> req, ErrorCode code, std::string message);

// Client side. False (with *error) when the header is not a JSON object with
// a boolean "ok".
// Flat replies (all of the publish path's) skip cJSON, see flat_json.h.
bool ParseReply(std::string_view header, Reply* out, std::string* error);
// The cJSON-only path, for tests and the fuzzer to compare against.
bool ParseReplySlow(std::string_view header, Reply* out, std::string* error);

}  // namespace edgespool::protocol
