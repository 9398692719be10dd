#include "agent/protocol/envelope.h"

#include <cjson/cJSON.h>

#include <cmath>
#include <memory>

#include "agent/protocol/json_writer.h"
#include "agent/protocol/request.h"

namespace edgespool::protocol {

namespace {

struct CjsonDeleter {
  void operator()(cJSON* j) const { cJSON_Delete(j); }
};

bool Fail(std::string* error, std::string why) {
  *error = std::move(why);
  return false;
}

// A string member, or absent (true, *out untouched); false for a non-string.
bool OptionalString(const cJSON* root, const char* key, std::string* out) {
  const cJSON* item = cJSON_GetObjectItemCaseSensitive(root, key);
  if (item == nullptr) return true;
  if (!cJSON_IsString(item) || item->valuestring == nullptr) return false;
  *out = item->valuestring;
  return true;
}

}  // namespace

std::string EncodeEnvelope(const Envelope& e, std::string_view payload) {
  JsonObjectWriter w;
  w.Int("es", 1).Str("correlation", e.correlation);
  if (!e.response_topic.empty()) w.Str("response_topic", e.response_topic);
  if (e.timeout_ms) w.Int("timeout_ms", *e.timeout_ms);
  if (!e.error.empty()) w.Str("error", e.error);
  if (!e.message.empty()) w.Str("message", e.message);
  std::string out = std::move(w).Finish();
  // The writer escapes control characters: no LF can be in the header.
  out.push_back('\n');
  out.append(payload.data(), payload.size());
  return out;
}

bool ParseEnvelope(std::string_view bytes, Envelope* out, std::string_view* payload,
                   std::string* error) {
  *out = Envelope{};
  size_t lf = bytes.substr(0, kMaxEnvelopeHeaderBytes + 1).find('\n');
  if (lf == std::string_view::npos) return Fail(error, "no envelope header line");
  std::string_view header = bytes.substr(0, lf);
  if (header.size() < 2 || header.front() != '{')
    return Fail(error, "envelope header is not a JSON object");
  // cJSON strings end at a NUL: one (raw or escaped) would cut a topic short.
  if (header.find('\0') != std::string_view::npos ||
      header.find("\\u0000") != std::string_view::npos) {
    return Fail(error, "NUL in an envelope header");
  }
  std::unique_ptr<cJSON, CjsonDeleter> root(cJSON_ParseWithLength(header.data(), header.size()));
  if (!root || !cJSON_IsObject(root.get()))
    return Fail(error, "envelope header is not a JSON object");
  const cJSON* es = cJSON_GetObjectItemCaseSensitive(root.get(), "es");
  if (!cJSON_IsNumber(es) || es->valuedouble != 1) return Fail(error, "envelope without \"es\":1");
  if (!OptionalString(root.get(), "correlation", &out->correlation) || out->correlation.empty() ||
      out->correlation.size() > kMaxCorrelationBytes || !IsValidUtf8(out->correlation)) {
    return Fail(error, "envelope correlation must be a string of 1..256 bytes");
  }
  if (!OptionalString(root.get(), "response_topic", &out->response_topic)) {
    return Fail(error, "envelope response_topic is not a string");
  }
  if (!out->response_topic.empty() && !ValidateTopic(out->response_topic).ok()) {
    return Fail(error, "envelope response_topic is not a valid topic");
  }
  if (const cJSON* t = cJSON_GetObjectItemCaseSensitive(root.get(), "timeout_ms")) {
    double d = cJSON_IsNumber(t) ? t->valuedouble : -1;
    if (!std::isfinite(d) || d != std::floor(d) || d < 1 ||
        d > static_cast<double>(kMaxRequestTimeoutMs)) {
      return Fail(error, "envelope timeout_ms must be an integer 1..600000");
    }
    out->timeout_ms = static_cast<int64_t>(d);
  }
  if (!OptionalString(root.get(), "error", &out->error) ||
      (!out->error.empty() && !ValidateErrorCodeText(out->error).ok())) {
    return Fail(error, "envelope error must be 1..64 bytes of [a-z0-9_]");
  }
  if (!OptionalString(root.get(), "message", &out->message) || !IsValidUtf8(out->message)) {
    return Fail(error, "envelope message is not UTF-8 text");
  }
  *payload = bytes.substr(lf + 1);
  return true;
}

std::string ErrorPayload(std::string_view code, std::string_view message) {
  return JsonObjectWriter().Str("error", code).Str("message", message).Finish();
}

}  // namespace edgespool::protocol
