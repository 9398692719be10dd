#include "agent/protocol/reply.h"

#include <cjson/cJSON.h>

#include <cmath>
#include <memory>

#include "agent/protocol/json_writer.h"

namespace edgespool::protocol {

namespace {

struct CjsonDeleter {
  void operator()(cJSON* j) const { cJSON_Delete(j); }
};

template <typename T>
void GetNumber(const cJSON* root, const char* key, std::optional<T>* out) {
  const cJSON* item = cJSON_GetObjectItemCaseSensitive(root, key);
  if (cJSON_IsNumber(item) && std::isfinite(item->valuedouble)) {
    *out = static_cast<T>(item->valuedouble);
  }
}

void GetText(const cJSON* root, const char* key, std::string* out) {
  const cJSON* item = cJSON_GetObjectItemCaseSensitive(root, key);
  if (cJSON_IsString(item) && item->valuestring) *out = item->valuestring;
}

}  // namespace

std::string EncodeReplyHeader(const Reply& r) {
  JsonObjectWriter w;
  if (r.req) w.Int("req", *r.req);
  w.Bool("ok", r.ok);
  if (r.code) w.Str("code", ErrorCodeName(*r.code));
  if (!r.message.empty()) w.Str("message", r.message);
  if (r.retry_after_ms) w.Int("retry_after_ms", *r.retry_after_ms);
  if (r.limit) w.Uint("limit", *r.limit);
  if (!r.status.empty()) w.Str("status", r.status);
  if (r.seq) w.Uint("seq", *r.seq);
  if (!r.uplink.empty()) w.Str("uplink", r.uplink);
  if (!r.state.empty()) w.Str("state", r.state);
  if (r.ts_ms) w.Int("ts", *r.ts_ms);
  if (!r.topic.empty()) w.Str("topic", r.topic);
  if (r.attempts) w.Uint("attempts", *r.attempts);
  if (!r.reason.empty()) w.Str("reason", r.reason);
  if (r.sent_at_ms) w.Int("sent_at", *r.sent_at_ms);
  return std::move(w).Finish();
}

Reply ErrorReply(std::optional<int64_t> req, ErrorCode code, std::string message) {
  Reply r;
  r.req = req;
  r.ok = false;
  r.code = code;
  r.message = std::move(message);
  return r;
}

bool ParseReply(std::string_view header, Reply* out, std::string* error) {
  *out = Reply{};
  std::unique_ptr<cJSON, CjsonDeleter> root(cJSON_ParseWithLength(header.data(), header.size()));
  if (!root || !cJSON_IsObject(root.get())) {
    *error = "reply header is not a JSON object";
    return false;
  }
  const cJSON* ok = cJSON_GetObjectItemCaseSensitive(root.get(), "ok");
  if (!cJSON_IsBool(ok)) {
    *error = "reply has no boolean ok";
    return false;
  }
  out->ok = cJSON_IsTrue(ok);
  const cJSON* rj = root.get();
  GetNumber(rj, "req", &out->req);
  std::string code;
  GetText(rj, "code", &code);
  if (!code.empty()) {
    ErrorCode c = ErrorCode::kInternal;  // an unknown code from a newer agent
    ParseErrorCode(code, &c);
    out->code = c;
  }
  GetText(rj, "message", &out->message);
  GetNumber(rj, "retry_after_ms", &out->retry_after_ms);
  GetNumber(rj, "limit", &out->limit);
  GetText(rj, "status", &out->status);
  GetNumber(rj, "seq", &out->seq);
  GetText(rj, "uplink", &out->uplink);
  GetText(rj, "state", &out->state);
  GetNumber(rj, "ts", &out->ts_ms);
  GetText(rj, "topic", &out->topic);
  GetNumber(rj, "attempts", &out->attempts);
  GetText(rj, "reason", &out->reason);
  GetNumber(rj, "sent_at", &out->sent_at_ms);
  return true;
}

}  // namespace edgespool::protocol
