#include "agent/methods/wire.h"

#include <cmath>
#include <cstdlib>

#include "agent/protocol/envelope.h"

namespace edgespool::agent::methods {

namespace pr = protocol;

sync::OutboundPublish BuildRequest(const std::string& topic, std::string payload,
                                   const pr::HeaderList& headers, const std::string& response_topic,
                                   const std::string& correlation, int64_t timeout_ms, bool mqtt5) {
  sync::OutboundPublish p;
  p.topic = topic;
  if (mqtt5) {
    p.payload = std::move(payload);
    p.response_topic = response_topic;
    p.correlation_data = correlation;
    p.user_properties = headers;
    // A request nobody can answer in time is worth nothing at the broker.
    p.message_expiry_s = static_cast<uint32_t>((timeout_ms + 999) / 1000);
  } else {
    pr::Envelope e;
    e.correlation = correlation;
    e.response_topic = response_topic;
    p.payload = pr::EncodeEnvelope(e, payload);
  }
  return p;
}

sync::OutboundPublish BuildAnswer(const AnswerRoute& route, std::string_view payload,
                                  const std::string& error, const std::string& message,
                                  bool mqtt5) {
  sync::OutboundPublish p;
  p.topic = route.response_topic;
  if (route.enveloped || !mqtt5) {
    pr::Envelope e;
    e.correlation = route.correlation;
    e.error = error;
    e.message = message;
    p.payload = pr::EncodeEnvelope(e, error.empty() ? payload : std::string_view());
    return p;
  }
  p.correlation_data = route.correlation;
  if (error.empty()) {
    p.payload.assign(payload.data(), payload.size());
  } else {
    p.user_properties.emplace_back(kErrorProperty, error);
    if (!message.empty()) p.user_properties.emplace_back(kMessageProperty, message);
    p.payload = pr::ErrorPayload(error, message);
  }
  return p;
}

namespace {

std::string_view LastLevel(std::string_view topic, std::string_view prefix) {
  if (topic.size() <= prefix.size() + 1 || topic.substr(0, prefix.size()) != prefix ||
      topic[prefix.size()] != '/') {
    return {};
  }
  return topic.substr(prefix.size() + 1);
}

const std::string* FindProperty(const sync::InboundPublish& p, std::string_view key) {
  for (const auto& [k, v] : p.user_properties) {
    if (k == key) return &v;
  }
  return nullptr;
}

}  // namespace

InboundAnswer ParseAnswer(sync::InboundPublish& p, std::string_view reply_prefix) {
  InboundAnswer a;
  pr::Envelope e;
  std::string_view body;
  std::string ignored;
  if (!p.correlation_data.empty()) {
    a.correlation = std::move(p.correlation_data);
    if (const std::string* err = FindProperty(p, kErrorProperty)) {
      a.error = *err;
      if (const std::string* m = FindProperty(p, kMessageProperty)) a.message = *m;
    }
    a.payload = std::move(p.payload);
  } else if (pr::ParseEnvelope(p.payload, &e, &body, &ignored)) {
    a.correlation = std::move(e.correlation);
    a.error = std::move(e.error);
    a.message = std::move(e.message);
    a.payload.assign(body.data(), body.size());
  } else {
    a.correlation = std::string(LastLevel(p.topic, reply_prefix));
    a.payload = std::move(p.payload);
  }
  return a;
}

Result<InboundCall> ParseCall(sync::InboundPublish& p, std::string_view method_prefix) {
  InboundCall c;
  std::string_view name = LastLevel(p.topic, method_prefix);
  Status ok = pr::ValidateMethodName(name);
  if (!ok.ok()) return Status::InvalidArgument("method name: " + ok.message());
  c.method = std::string(name);
  if (!p.response_topic.empty()) {
    // MQTT 5: properties. A timeout of our own may ride as a user property.
    c.route.response_topic = std::move(p.response_topic);
    c.route.correlation = std::move(p.correlation_data);
    if (const std::string* t = FindProperty(p, kTimeoutProperty)) {
      char* end = nullptr;
      long long v = std::strtoll(t->c_str(), &end, 10);
      if (end == t->c_str() || *end != '\0' || v < 1 || v > pr::kMaxRequestTimeoutMs) {
        return Status::InvalidArgument(std::string(kTimeoutProperty) + " must be 1..600000");
      }
      c.timeout_ms = v;
    }
    for (auto& kv : p.user_properties) {
      if (kv.first != kTimeoutProperty) c.headers.push_back(std::move(kv));
    }
    c.payload = std::move(p.payload);
    return c;
  }
  pr::Envelope e;
  std::string_view body;
  std::string error;
  if (!pr::ParseEnvelope(p.payload, &e, &body, &error)) {
    // Neither properties nor an envelope: nobody to answer.
    c.payload = std::move(p.payload);
    return c;
  }
  c.route.response_topic = std::move(e.response_topic);
  c.route.correlation = std::move(e.correlation);
  c.route.enveloped = true;
  c.timeout_ms = e.timeout_ms;
  c.payload.assign(body.data(), body.size());
  return c;
}

pr::ErrorCode ErrorCodeFromText(std::string_view text) {
  pr::ErrorCode code;
  if (pr::ParseErrorCode(text, &code)) return code;
  return pr::ErrorCode::kHandlerError;
}

}  // namespace edgespool::agent::methods
