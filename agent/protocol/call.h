// Method calls: the agent->client frame that hands a call from the cloud to
// the connection registered as the method's responder (op "respond",
// request.h; docs/request-response.md).
//
//   {"op":"call","call":42,"method":"reboot","timeout_ms":5000,
//    "headers":{"k":"v"}}
//   body = the call's payload
//
//   op          "call"                                            (required)
//   call        1..2^53-1, unique per agent run: what "answer" names (required)
//   method      the method name (the topic levels after method/)  (required)
//   timeout_ms  how long the agent waits for the answer before it answers
//               the caller "timeout" itself                        (required)
//   headers     MQTT 5 user properties of the call, in their order
//
// Like "message", a call frame has an "op" and no "ok": it is pushed, not a
// reply. The responder answers with op "answer" (request.h), at most once.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "agent/protocol/request.h"

namespace edgespool::protocol {

struct MethodCall {
  uint64_t call = 0;
  std::string method;
  int64_t timeout_ms = 0;
  HeaderList headers;
};

// Appends the whole frame (prefix, header, payload) to *out.
void AppendCallFrame(std::string* out, const MethodCall& c, std::string_view payload);

// True when the header is a JSON object whose "op" is "call" (whatever else
// it holds); a responder's connection tells calls from replies with it.
bool IsCallFrame(std::string_view header);
// False (with *error) unless header is a well-formed call frame.
bool ParseCall(std::string_view header, MethodCall* out, std::string* error);

}  // namespace edgespool::protocol
