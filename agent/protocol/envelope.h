// The request/reply envelope: how a request, a method call and their
// answers carry a response topic and a correlation id over MQTT 3.1.1,
// whose PUBLISH has no properties for them (docs/request-response.md).
// MQTT 5 uses its Response Topic and Correlation Data properties instead
// and sends payloads as they are.
//
// Format of an enveloped MQTT payload:
//
//   envelope = header LF payload
//   header   = one JSON object, UTF-8, no LF byte in it, 2..4096 bytes
//   payload  = every byte after the first LF, verbatim (may be empty, binary)
//
// Header fields:
//   es              1 (required): marks an envelope and its version
//   correlation     string of 1..256 bytes (required): echoed in the answer
//   response_topic  string: where to publish the answer (requests, calls;
//                   absent in answers)
//   timeout_ms      integer 1..600000 (calls to a gateway, optional): how
//                   long the agent waits for its local responder
//   error           answers only: an error code of [a-z0-9_] (no_handler,
//                   timeout, unavailable, handler_error or a responder's
//                   own); absent: a successful answer
//   message         answers with an error: why, human-readable
// Unknown fields are ignored.
//
// Example, a call to gateway gw1's method "reboot" and its answer:
//   topic edgespool/gw1/method/reboot, payload
//     {"es":1,"correlation":"c-17","response_topic":"app/replies/c-17"}\n{"delay_s":5}
//   topic app/replies/c-17, payload
//     {"es":1,"correlation":"c-17"}\n{"rebooting":true}
//   or {"es":1,"correlation":"c-17","error":"no_handler","message":"..."}\n
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace edgespool::protocol {

inline constexpr size_t kMaxEnvelopeHeaderBytes = 4096;
inline constexpr size_t kMaxCorrelationBytes = 256;

struct Envelope {
  std::string correlation;
  std::string response_topic;
  std::optional<int64_t> timeout_ms;
  std::string error;  // empty: success (or not an answer)
  std::string message;
};

// The whole enveloped payload.
std::string EncodeEnvelope(const Envelope& e, std::string_view payload);

// Parses an enveloped payload: *out gets the header, *payload the view of
// the bytes after the LF (into `bytes`). False with *error for anything
// that is not an envelope as above.
bool ParseEnvelope(std::string_view bytes, Envelope* out, std::string_view* payload,
                   std::string* error);

// The JSON payload of an error answer over MQTT 5 (beside the es-error user
// property): {"error":"<code>","message":"<text>"}.
std::string ErrorPayload(std::string_view code, std::string_view message);

}  // namespace edgespool::protocol
