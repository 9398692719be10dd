#include "agent/protocol/reply.h"

#include <cjson/cJSON.h>

#include <cmath>
#include <memory>

#include "agent/protocol/flat_json.h"
#include "agent/protocol/frame.h"
#include "agent/protocol/json_writer.h"

namespace edgespool::protocol {

namespace {

struct CjsonDeleter {
  void operator()(cJSON* j) const { cJSON_Delete(j); }
};

template <typename Src, typename T>
void GetNumber(const Src& root, const char* key, std::optional<T>* out) {
  auto item = root.Find(key);
  if (item && item->is_number() && std::isfinite(item->number)) {
    *out = static_cast<T>(item->number);
  }
}

template <typename Src>
void GetText(const Src& root, const char* key, std::string* out) {
  auto item = root.Find(key);
  if (item && item->is_string()) out->assign(item->text.data(), item->text.size());
}

template <typename Src>
bool ParseFields(const Src& rj, Reply* out, std::string* error) {
  auto ok = rj.Find("ok");
  if (!ok || (ok->type != JsonValue::Type::kTrue && ok->type != JsonValue::Type::kFalse)) {
    *error = "reply has no boolean ok";
    return false;
  }
  out->ok = ok->type == JsonValue::Type::kTrue;
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
  GetNumber(rj, "deliver_at", &out->deliver_at_ms);
  GetText(rj, "session", &out->session);
  if (auto resumed = rj.Find("resumed")) {
    if (resumed->type == JsonValue::Type::kTrue) out->resumed = true;
    if (resumed->type == JsonValue::Type::kFalse) out->resumed = false;
  }
  return true;
}

}  // namespace

namespace {

void WriteReplyHeader(const Reply& r, JsonObjectWriter& w) {
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
  if (r.deliver_at_ms) w.Int("deliver_at", *r.deliver_at_ms);
  if (!r.session.empty()) w.Str("session", r.session);
  if (r.resumed) w.Bool("resumed", *r.resumed);
}

}  // namespace

std::string EncodeReplyHeader(const Reply& r) {
  JsonObjectWriter w;
  WriteReplyHeader(r, w);
  return std::move(w).Finish();
}

void AppendReplyFrame(std::string* out, const Reply& r, std::string_view body) {
  size_t start = BeginFrame(out);
  JsonObjectWriter w(out);
  WriteReplyHeader(r, w);
  w.Close();
  EndFrame(out, start, body);
}

Reply ErrorReply(std::optional<int64_t> req, ErrorCode code, std::string message) {
  Reply r;
  r.req = req;
  r.ok = false;
  r.code = code;
  r.message = std::move(message);
  return r;
}

bool ParseReplySlow(std::string_view header, Reply* out, std::string* error) {
  *out = Reply{};
  std::unique_ptr<cJSON, CjsonDeleter> root(cJSON_ParseWithLength(header.data(), header.size()));
  if (!root || !cJSON_IsObject(root.get())) {
    *error = "reply header is not a JSON object";
    return false;
  }
  return ParseFields(CjsonObject(root.get()), out, error);
}

bool ParseReply(std::string_view header, Reply* out, std::string* error) {
  FlatObject flat;
  if (!flat.Scan(header)) return ParseReplySlow(header, out, error);
  *out = Reply{};
  return ParseFields(flat, out, error);
}

}  // namespace edgespool::protocol
