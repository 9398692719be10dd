// Pushed messages: the agent->client frames that carry a downlink message to
// a subscribed connection (docs/downlink.md, "Consumer ops").
//
//   {"op":"message","session":"hmi","seq":42,"topic":"down/cmd",
//    "broker_topic":"edgespool/gw1/down/cmd","ts":1733300000000,
//    "headers":{"k":"v"},"response_topic":"..","correlation":"<hex>"}
//   body = the payload
//
//   op              "message"                                    (required)
//   session         the subscription's session, "" or absent: anonymous
//   seq             inbox seq, 1..2^53-1                           (required)
//   topic           the local topic                               (required)
//   broker_topic    the topic it had on the broker
//   ts              ms since the epoch the agent received it
//   headers         object of string -> string (MQTT 5 user properties, in
//                   their order; a repeated key appears twice)
//   response_topic  MQTT 5 request/response, absent: none
//   correlation     MQTT 5 correlation data as lowercase hex, absent: none
//
// A pushed frame has "op":"message" and no "ok"; every reply has "ok" and
// no "op". ParseServerFrame tells them apart on a consumer's connection. The
// publish path keeps ParseReply (reply.h), whose flat fast path this file
// does not touch: a Producer never subscribes.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "agent/protocol/reply.h"
#include "agent/protocol/request.h"

namespace edgespool::protocol {

struct PushedMessage {
  std::string session;
  uint64_t seq = 0;
  std::string topic;
  std::string broker_topic;
  int64_t ts_ms = 0;
  HeaderList headers;
  std::string response_topic;
  std::string correlation;  // raw bytes (hex on the wire)
};

// Writes every field; empty strings (and no headers) are left out, except
// session, which is always written.
std::string EncodeMessageHeader(const PushedMessage& m);
// Appends the whole frame (prefix, that header, the payload) to *out.
void AppendMessageFrame(std::string* out, const PushedMessage& m, std::string_view payload);

// False (with *error) unless header is a JSON object with "op":"message", a
// seq 1..2^53-1, a string topic, and well-typed optional fields.
bool ParseMessage(std::string_view header, PushedMessage* out, std::string* error);

// One agent->client frame on a consumer's connection.
struct ServerFrame {
  enum Kind { kReply, kMessage } kind = kReply;
  Reply reply;            // kind == kReply
  PushedMessage message;  // kind == kMessage
};
// A message when the header says "op":"message", else a reply (ParseReply's
// rules). False with *error for a header that is neither.
bool ParseServerFrame(std::string_view header, ServerFrame* out, std::string* error);

std::string HexEncode(std::string_view bytes);
// False if hex has odd length or a non-hex digit (either case accepted).
bool HexDecode(std::string_view hex, std::string* out);

}  // namespace edgespool::protocol
