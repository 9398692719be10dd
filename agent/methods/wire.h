// How requests, calls and answers look on the broker (docs/request-response.md,
// "On the wire"): MQTT 5 carries the response topic and correlation in
// PUBLISH properties and the payload as it is; MQTT 3.1.1 wraps the payload
// in the envelope of agent/protocol/envelope.h. Error answers carry the
// user property es-error (MQTT 5) or the envelope's "error", and over
// MQTT 5 the payload {"error":..,"message":..} for callers that read no
// properties.
//
// Pure functions: no I/O, no state.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "agent/methods/method_calls.h"
#include "agent/protocol/request.h"
#include "platform/status.h"
#include "sync/uplink_port.h"

namespace edgespool::agent::methods {

// MQTT 5 user properties the agent reads and writes.
inline constexpr char kErrorProperty[] = "es-error";
inline constexpr char kMessageProperty[] = "es-message";
inline constexpr char kTimeoutProperty[] = "es-timeout-ms";

// A gateway request to publish: to `topic`, answered on response_topic.
sync::OutboundPublish BuildRequest(const std::string& topic, std::string payload,
                                   const protocol::HeaderList& headers,
                                   const std::string& response_topic,
                                   const std::string& correlation, int64_t timeout_ms, bool mqtt5);

// An answer (error empty: a success) to a caller.
sync::OutboundPublish BuildAnswer(const AnswerRoute& route, std::string_view payload,
                                  const std::string& error, const std::string& message, bool mqtt5);

// An answer to one of our requests, as it arrived on reply_prefix + "/" + id.
struct InboundAnswer {
  std::string correlation;
  std::string error;  // empty: success
  std::string message;
  std::string payload;
};
// The correlation comes from MQTT 5 correlation data, else the envelope,
// else the topic's last level (a 3.1.1 responder that answered with a bare
// payload on the response topic).
InboundAnswer ParseAnswer(sync::InboundPublish& p, std::string_view reply_prefix);

// A call to one of our methods, as it arrived on method_prefix + "/" + NAME.
struct InboundCall {
  std::string method;
  AnswerRoute route;  // response_topic empty: nobody can be answered
  std::optional<int64_t> timeout_ms;
  protocol::HeaderList headers;
  std::string payload;
};
// InvalidArgument (with the reason) when the call is malformed: a bad
// envelope, a bad method name. A call with no response topic at all parses
// (route.response_topic empty): the caller decides what to do with it.
Result<InboundCall> ParseCall(sync::InboundPublish& p, std::string_view method_prefix);

// The error code an answer's text names, for the requester: one of ours
// (no_handler, timeout, unavailable, busy...) as itself, any other (a
// responder's own) as handler_error.
protocol::ErrorCode ErrorCodeFromText(std::string_view text);

}  // namespace edgespool::agent::methods
