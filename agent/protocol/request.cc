#include "agent/protocol/request.h"

#include <cjson/cJSON.h>

#include <cmath>
#include <memory>
#include <utility>

#include "agent/protocol/flat_json.h"
#include "agent/protocol/frame.h"
#include "agent/protocol/json_writer.h"
#include "platform/json_escape.h"

namespace edgespool::protocol {

namespace {

struct CjsonDeleter {
  void operator()(cJSON* j) const { cJSON_Delete(j); }
};
using JsonPtr = std::unique_ptr<cJSON, CjsonDeleter>;

// An integral JSON number within [lo, hi]. cJSON keeps numbers as doubles,
// which are exact up to 2^53: every range here stays below that.
bool GetInt(const std::optional<JsonValue>& item, int64_t lo, int64_t hi, int64_t* out) {
  if (!item || !item->is_number()) return false;
  double d = item->number;
  if (!std::isfinite(d) || d != std::floor(d)) return false;
  if (d < static_cast<double>(lo) || d > static_cast<double>(hi)) return false;
  *out = static_cast<int64_t>(d);
  return true;
}

bool Fail(RequestError* error, ErrorCode code, std::string message) {
  error->code = code;
  error->message = std::move(message);
  return false;
}

bool ValidText(std::string_view s) {
  return s.find('\0') == std::string_view::npos && IsValidUtf8(s);
}

bool GetString(const std::optional<JsonValue>& item, std::string* out) {
  if (!item || !item->is_string()) return false;
  out->assign(item->text.data(), item->text.size());
  return true;
}

bool GetString(const cJSON* item, std::string* out) {
  if (!cJSON_IsString(item) || item->valuestring == nullptr) return false;
  *out = item->valuestring;
  return true;
}

}  // namespace

bool IsTraceparentKey(std::string_view key) {
  static constexpr std::string_view kName = "traceparent";
  if (key.size() != kName.size()) return false;
  for (size_t i = 0; i < key.size(); ++i) {
    char c = key[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != kName[i]) return false;
  }
  return true;
}

namespace {

bool ParseHeaders(const JsonValue& headers, HeaderList* out, RequestError* error) {
  const cJSON* obj = headers.object;
  if (headers.type != JsonValue::Type::kObject || obj == nullptr) {
    return Fail(error, ErrorCode::kBadRequest, "headers must be an object");
  }
  size_t total = 0;
  for (const cJSON* kv = obj->child; kv != nullptr; kv = kv->next) {
    if (out->size() == kMaxHeaderEntries) {
      return Fail(error, ErrorCode::kBadRequest,
                  "more than " + std::to_string(kMaxHeaderEntries) + " headers");
    }
    std::string key = kv->string ? kv->string : "";
    std::string value;
    if (!GetString(kv, &value)) {
      return Fail(error, ErrorCode::kBadRequest, "header values must be strings");
    }
    if (key.empty() || key.size() > kMaxHeaderKeyBytes || !ValidText(key)) {
      return Fail(error, ErrorCode::kBadRequest,
                  "header keys must be 1.." + std::to_string(kMaxHeaderKeyBytes) +
                      " bytes of UTF-8");
    }
    if (!ValidText(value)) return Fail(error, ErrorCode::kBadRequest, "header value not UTF-8");
    if (IsTraceparentKey(key) && !ValidTraceparent(value)) {
      return Fail(error, ErrorCode::kBadRequest,
                  "traceparent must be a W3C traceparent: 00-<32 hex>-<16 hex>-<2 hex>");
    }
    total += key.size() + value.size();
    if (total > kMaxHeadersBytes) {
      return Fail(error, ErrorCode::kBadRequest,
                  "headers exceed " + std::to_string(kMaxHeadersBytes) + " bytes");
    }
    out->emplace_back(std::move(key), std::move(value));
  }
  return true;
}

// cJSON strings are NUL-terminated, so an escaped \u0000 would silently cut a
// topic or id short ("a\u0000b" would become "a"). Such headers are refused
// before parsing; the rare legitimate text "\\u0000" is refused with them.
bool HasEscapedNul(std::string_view header) {
  for (size_t i = header.find("\\u"); i != std::string_view::npos;
       i = header.find("\\u", i + 1)) {
    if (header.substr(i + 2, 4) == "0000") return true;
  }
  return false;
}

// Src: FlatObject (the fast path) or CjsonObject (see flat_json.h).
template <typename Src>
bool ParsePublish(const Src& root, PublishFields* p, RequestError* error) {
  // ack first: it decides whether any error below is answered.
  if (auto ack = root.Find("ack")) {
    if (!ack->is_string() || !ParseAckMode(ack->text, &p->ack)) {
      return Fail(error, ErrorCode::kBadRequest, "ack must be stored, delivered or none");
    }
    error->no_reply = p->ack == AckMode::kNone;
  }
  if (!GetString(root.Find("topic"), &p->topic)) return Fail(error, ErrorCode::kBadTopic, "topic missing");
  Status topic_ok = ValidateTopic(p->topic);
  if (!topic_ok.ok()) return Fail(error, ErrorCode::kBadTopic, topic_ok.message());

  if (auto ts = root.Find("ts")) {
    int64_t v;
    if (!GetInt(ts, 0, kMaxTsMs, &v)) {
      return Fail(error, ErrorCode::kBadRequest, "ts must be integer ms since the epoch, 0.." +
                                                     std::to_string(kMaxTsMs));
    }
    p->ts_ms = v;
  }
  if (auto pr = root.Find("priority")) {
    if (!pr->is_string() || !ParsePriority(pr->text, &p->priority)) {
      return Fail(error, ErrorCode::kBadRequest, "priority must be high, normal or low");
    }
  }
  if (auto ttl = root.Find("ttl_ms")) {
    int64_t v;
    if (!GetInt(ttl, 1, kMaxTtlMs, &v)) {
      return Fail(error, ErrorCode::kBadRequest,
                  "ttl_ms must be an integer 1.." + std::to_string(kMaxTtlMs));
    }
    p->ttl_ms = v;
  }
  if (auto at = root.Find("deliver_at")) {
    int64_t v;
    if (!GetInt(at, 0, kMaxTsMs, &v)) {
      return Fail(error, ErrorCode::kBadRequest,
                  "deliver_at must be integer ms since the epoch, 0.." + std::to_string(kMaxTsMs));
    }
    p->deliver_at_ms = v;
  }
  if (auto delay = root.Find("delay_ms")) {
    int64_t v;
    if (!GetInt(delay, 0, kMaxTtlMs, &v)) {
      return Fail(error, ErrorCode::kBadRequest,
                  "delay_ms must be an integer 0.." + std::to_string(kMaxTtlMs));
    }
    if (p->deliver_at_ms) {
      return Fail(error, ErrorCode::kBadRequest, "give deliver_at or delay_ms, not both");
    }
    p->delay_ms = v;
  }
  if (auto h = root.Find("headers")) {
    if (!ParseHeaders(*h, &p->headers, error)) return false;
  }
  if (auto id = root.Find("id")) {
    if (!GetString(id, &p->id) || p->id.empty() || p->id.size() > kMaxIdBytes ||
        !ValidText(p->id)) {
      return Fail(error, ErrorCode::kBadRequest,
                  "id must be a string of 1.." + std::to_string(kMaxIdBytes) + " bytes");
    }
  }
  return true;
}

template <typename Src>
bool ParseQuery(const Src& root, Request* r, RequestError* error) {
  auto seq = root.Find("seq");
  auto id = root.Find("id");
  if (seq.has_value() == id.has_value()) {
    return Fail(error, ErrorCode::kBadRequest, "query needs exactly one of seq or id");
  }
  if (seq) {
    int64_t v;
    if (!GetInt(seq, 1, kMaxReq, &v)) {
      return Fail(error, ErrorCode::kBadRequest, "seq must be a positive integer");
    }
    r->query_seq = static_cast<uint64_t>(v);
    return true;
  }
  if (!GetString(id, &r->query_id) || r->query_id.empty() || r->query_id.size() > kMaxIdBytes ||
      !ValidText(r->query_id)) {
    return Fail(error, ErrorCode::kBadRequest, "id must be a non-empty string");
  }
  return true;
}

// "session" of the consumer ops: absent means "" (anonymous).
template <typename Src>
bool ParseSession(const Src& root, std::string* out, RequestError* error) {
  auto item = root.Find("session");
  if (!item) return true;
  if (!GetString(item, out)) return Fail(error, ErrorCode::kBadRequest, "session must be a string");
  Status ok = ValidateSessionName(*out);
  if (!ok.ok()) return Fail(error, ErrorCode::kBadRequest, ok.message());
  return true;
}

// Only cJSON produces arrays (the flat scanner refuses them), so a
// subscribe always takes the slow path; it is one request per session.
bool ParseFilters(const std::optional<JsonValue>& item, std::vector<std::string>* out,
                  RequestError* error) {
  if (!item || item->type != JsonValue::Type::kArray || item->object == nullptr) {
    return Fail(error, ErrorCode::kBadRequest, "filters must be an array of topic filters");
  }
  for (const cJSON* f = item->object->child; f != nullptr; f = f->next) {
    if (out->size() == kMaxFilters) {
      return Fail(error, ErrorCode::kBadRequest,
                  "more than " + std::to_string(kMaxFilters) + " filters");
    }
    // Named by index, not quoted: the filter may be what is not UTF-8.
    std::string which = "filters[" + std::to_string(out->size()) + "]";
    std::string filter;
    if (!GetString(f, &filter)) return Fail(error, ErrorCode::kBadRequest, which + " is not a string");
    Status ok = ValidateFilter(filter);
    if (!ok.ok()) return Fail(error, ErrorCode::kBadRequest, which + ": " + ok.message());
    out->push_back(std::move(filter));
  }
  if (out->empty()) return Fail(error, ErrorCode::kBadRequest, "filters is empty");
  return true;
}

template <typename Src>
bool ParseSubscribe(const Src& root, SubscribeFields* s, RequestError* error) {
  if (!ParseSession(root, &s->session, error)) return false;
  if (!ParseFilters(root.Find("filters"), &s->filters, error)) return false;
  if (auto from = root.Find("from")) {
    int64_t v;
    if (from->is_string() && from->text == "new") {
      s->from = SubscribeFields::kNew;
    } else if (from->is_string() && from->text == "oldest") {
      s->from = SubscribeFields::kOldest;
    } else if (GetInt(from, 0, kMaxReq, &v)) {
      s->from = SubscribeFields::kSeq;
      s->from_seq = static_cast<uint64_t>(v);
    } else {
      return Fail(error, ErrorCode::kBadRequest,
                  "from must be \"new\", \"oldest\" or an inbox seq 0..2^53-1");
    }
  }
  if (auto window = root.Find("window")) {
    int64_t v;
    if (!GetInt(window, 1, kMaxWindow, &v)) {
      return Fail(error, ErrorCode::kBadRequest,
                  "window must be an integer 1.." + std::to_string(kMaxWindow));
    }
    s->window = static_cast<uint32_t>(v);
  }
  return true;
}

template <typename Src>
bool ParseAck(const Src& root, AckFields* a, RequestError* error) {
  if (!ParseSession(root, &a->session, error)) return false;
  auto seq = root.Find("seq");
  auto up_to = root.Find("up_to");
  if (seq.has_value() == up_to.has_value()) {
    return Fail(error, ErrorCode::kBadRequest, "ack needs exactly one of seq or up_to");
  }
  int64_t v;
  if (!GetInt(seq ? seq : up_to, 1, kMaxReq, &v)) {
    return Fail(error, ErrorCode::kBadRequest,
                std::string(seq ? "seq" : "up_to") + " must be an integer 1..2^53-1");
  }
  (seq ? a->seq : a->up_to) = static_cast<uint64_t>(v);
  return true;
}

template <typename Src>
bool ParseUnsubscribe(const Src& root, UnsubscribeFields* u, RequestError* error) {
  if (!ParseSession(root, &u->session, error)) return false;
  if (auto end = root.Find("end")) {
    if (end->type != JsonValue::Type::kTrue && end->type != JsonValue::Type::kFalse) {
      return Fail(error, ErrorCode::kBadRequest, "end must be true or false");
    }
    u->end = end->type == JsonValue::Type::kTrue;
  }
  return true;
}

template <typename Src>
bool ParseRequestOp(const Src& root, RequestFields* q, RequestError* error) {
  if (!GetString(root.Find("topic"), &q->topic)) return Fail(error, ErrorCode::kBadTopic, "topic missing");
  Status topic_ok = ValidateTopic(q->topic);
  if (!topic_ok.ok()) return Fail(error, ErrorCode::kBadTopic, topic_ok.message());
  for (auto [key, field] : {std::pair{"timeout_ms", &q->timeout_ms}, std::pair{"ttl_ms", &q->ttl_ms}}) {
    auto item = root.Find(key);
    if (!item) continue;
    int64_t v;
    if (!GetInt(item, 1, kMaxRequestTimeoutMs, &v)) {
      return Fail(error, ErrorCode::kBadRequest,
                  std::string(key) + " must be an integer 1.." + std::to_string(kMaxRequestTimeoutMs));
    }
    *field = v;
  }
  if (auto h = root.Find("headers")) {
    if (!ParseHeaders(*h, &q->headers, error)) return false;
  }
  return true;
}

// Arrays come from cJSON only, as for subscribe's filters.
template <typename Src>
bool ParseRespond(const Src& root, RespondFields* r, RequestError* error) {
  auto item = root.Find("methods");
  if (!item || item->type != JsonValue::Type::kArray || item->object == nullptr) {
    return Fail(error, ErrorCode::kBadRequest, "methods must be an array of method names");
  }
  for (const cJSON* m = item->object->child; m != nullptr; m = m->next) {
    if (r->methods.size() == kMaxMethods) {
      return Fail(error, ErrorCode::kBadRequest,
                  "more than " + std::to_string(kMaxMethods) + " methods");
    }
    std::string which = "methods[" + std::to_string(r->methods.size()) + "]";
    std::string name;
    if (!GetString(m, &name)) return Fail(error, ErrorCode::kBadRequest, which + " is not a string");
    Status ok = ValidateMethodName(name);
    if (!ok.ok()) return Fail(error, ErrorCode::kBadRequest, which + ": " + ok.message());
    r->methods.push_back(std::move(name));
  }
  if (r->methods.empty()) return Fail(error, ErrorCode::kBadRequest, "methods is empty");
  if (auto stop = root.Find("stop")) {
    if (stop->type != JsonValue::Type::kTrue && stop->type != JsonValue::Type::kFalse) {
      return Fail(error, ErrorCode::kBadRequest, "stop must be true or false");
    }
    r->stop = stop->type == JsonValue::Type::kTrue;
  }
  return true;
}

template <typename Src>
bool ParseAnswer(const Src& root, AnswerFields* a, RequestError* error) {
  int64_t v;
  if (!GetInt(root.Find("call"), 1, kMaxReq, &v)) {
    return Fail(error, ErrorCode::kBadRequest, "call must be an integer 1..2^53-1");
  }
  a->call = static_cast<uint64_t>(v);
  if (auto e = root.Find("error")) {
    if (!GetString(e, &a->error) || !ValidateErrorCodeText(a->error).ok()) {
      return Fail(error, ErrorCode::kBadRequest, "error must be 1..64 bytes of [a-z0-9_]");
    }
  }
  if (auto m = root.Find("message")) {
    if (!GetString(m, &a->message) || a->message.size() > kMaxAnswerMessageBytes ||
        !ValidText(a->message)) {
      return Fail(error, ErrorCode::kBadRequest, "message must be UTF-8 of at most 1024 bytes");
    }
  }
  return true;
}

}  // namespace

const char* OpName(Op op) {
  switch (op) {
    case Op::kPublish: return "publish";
    case Op::kQuery: return "query";
    case Op::kStatus: return "status";
    case Op::kPing: return "ping";
    case Op::kSubscribe: return "subscribe";
    case Op::kAck: return "ack";
    case Op::kUnsubscribe: return "unsubscribe";
    case Op::kRequest: return "request";
    case Op::kRespond: return "respond";
    case Op::kAnswer: return "answer";
    case Op::kReload: return "reload";
  }
  return "?";
}

const char* PriorityName(Priority p) {
  switch (p) {
    case Priority::kHigh: return "high";
    case Priority::kNormal: return "normal";
    case Priority::kLow: return "low";
  }
  return "?";
}

const char* AckModeName(AckMode a) {
  switch (a) {
    case AckMode::kStored: return "stored";
    case AckMode::kDelivered: return "delivered";
    case AckMode::kNone: return "none";
  }
  return "?";
}

const char* ErrorCodeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::kBadFrame: return "bad_frame";
    case ErrorCode::kBadRequest: return "bad_request";
    case ErrorCode::kBadTopic: return "bad_topic";
    case ErrorCode::kTooLarge: return "too_large";
    case ErrorCode::kForbidden: return "forbidden";
    case ErrorCode::kRateLimited: return "rate_limited";
    case ErrorCode::kBusy: return "busy";
    case ErrorCode::kJournalFull: return "journal_full";
    case ErrorCode::kInternal: return "internal";
    case ErrorCode::kUnavailable: return "unavailable";
    case ErrorCode::kTimeout: return "timeout";
    case ErrorCode::kNoHandler: return "no_handler";
    case ErrorCode::kHandlerError: return "handler_error";
  }
  return "internal";
}

bool ParseErrorCode(std::string_view name, ErrorCode* out) {
  for (int i = 0; i <= static_cast<int>(kLastErrorCode); ++i) {
    auto code = static_cast<ErrorCode>(i);
    if (name == ErrorCodeName(code)) {
      *out = code;
      return true;
    }
  }
  return false;
}

bool ParsePriority(std::string_view name, Priority* out) {
  if (name == "high") *out = Priority::kHigh;
  else if (name == "normal") *out = Priority::kNormal;
  else if (name == "low") *out = Priority::kLow;
  else return false;
  return true;
}

bool ParseAckMode(std::string_view name, AckMode* out) {
  if (name == "stored") *out = AckMode::kStored;
  else if (name == "delivered") *out = AckMode::kDelivered;
  else if (name == "none") *out = AckMode::kNone;
  else return false;
  return true;
}

bool IsValidUtf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const auto* end = p + s.size();
  while (p < end) {
    unsigned char c = *p;
    if (c < 0x80) {
      ++p;
      continue;
    }
    int n;
    uint32_t cp;
    if ((c & 0xE0) == 0xC0) {
      n = 1;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      n = 2;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      n = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (end - p <= n) return false;
    for (int i = 1; i <= n; ++i) {
      if ((p[i] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (p[i] & 0x3F);
    }
    static const uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    p += n + 1;
  }
  return true;
}

Status ValidateTopic(std::string_view topic) {
  if (topic.empty()) return Status::InvalidArgument("topic is empty");
  if (topic.size() > kMaxTopicBytes) {
    return Status::InvalidArgument("topic longer than 65535 bytes");
  }
  if (topic.find('\0') != std::string_view::npos) {
    return Status::InvalidArgument("topic contains NUL");
  }
  if (topic.find_first_of("+#") != std::string_view::npos) {
    return Status::InvalidArgument("topic contains a wildcard (+ or #)");
  }
  if (topic[0] == '$') return Status::InvalidArgument("topics starting with $ are reserved");
  if (!IsValidUtf8(topic)) return Status::InvalidArgument("topic is not valid UTF-8");
  return Status::Ok();
}

Status ValidateFilter(std::string_view filter) {
  if (filter.empty()) return Status::InvalidArgument("filter is empty");
  if (filter.size() > kMaxFilterBytes) {
    return Status::InvalidArgument("filter longer than 65535 bytes");
  }
  if (filter.find('\0') != std::string_view::npos) {
    return Status::InvalidArgument("filter contains NUL");
  }
  if (filter.find('\n') != std::string_view::npos) {
    return Status::InvalidArgument("filter contains a newline");
  }
  if (filter[0] == '$') {
    return Status::InvalidArgument("filters starting with $ match no local topic");
  }
  if (!IsValidUtf8(filter)) return Status::InvalidArgument("filter is not valid UTF-8");
  size_t start = 0;
  while (true) {
    size_t slash = filter.find('/', start);
    bool last = slash == std::string_view::npos;
    std::string_view level = filter.substr(start, last ? std::string_view::npos : slash - start);
    if (level.find_first_of("+#") != std::string_view::npos && level.size() != 1) {
      return Status::InvalidArgument("+ and # must be a whole level");
    }
    if (level == "#" && !last) return Status::InvalidArgument("# must be the last level");
    if (last) return Status::Ok();
    start = slash + 1;
  }
}

Status ValidateMethodName(std::string_view name) {
  if (name.size() > kMaxMethodBytes) {
    return Status::InvalidArgument("method name longer than " + std::to_string(kMaxMethodBytes) +
                                   " bytes");
  }
  return ValidateTopic(name);
}

Status ValidateErrorCodeText(std::string_view code) {
  if (code.empty() || code.size() > kMaxAnswerErrorBytes) {
    return Status::InvalidArgument("error code must be 1..64 bytes");
  }
  for (char c : code) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) {
      return Status::InvalidArgument("error code must be [a-z0-9_]");
    }
  }
  return Status::Ok();
}

Status ValidateSessionName(std::string_view session) {
  if (session.size() > kMaxSessionBytes) {
    return Status::InvalidArgument("session longer than " + std::to_string(kMaxSessionBytes) +
                                   " bytes");
  }
  if (session.find_first_of(std::string_view("\0\n", 2)) != std::string_view::npos) {
    return Status::InvalidArgument("session contains NUL or a newline");
  }
  if (!IsValidUtf8(session)) return Status::InvalidArgument("session is not valid UTF-8");
  return Status::Ok();
}

namespace {

template <typename Src>
bool ParseFields(const Src& root, Request* out, RequestError* error) {
  if (auto req = root.Find("req")) {
    int64_t v;
    if (!GetInt(req, 0, kMaxReq, &v)) {
      return Fail(error, ErrorCode::kBadRequest, "req must be an integer 0..2^53-1");
    }
    out->req = v;
    error->req = v;
  }
  auto op = root.Find("op");
  if (!op || !op->is_string()) return Fail(error, ErrorCode::kBadRequest, "op missing");
  std::string_view name = op->text;
  if (name == "publish") {
    out->op = Op::kPublish;
    return ParsePublish(root, &out->publish, error);
  }
  if (name == "query") {
    out->op = Op::kQuery;
    return ParseQuery(root, out, error);
  }
  if (name == "status") {
    out->op = Op::kStatus;
    return true;
  }
  if (name == "ping") {
    out->op = Op::kPing;
    return true;
  }
  if (name == "reload") {
    out->op = Op::kReload;
    return true;
  }
  if (name == "subscribe") {
    out->op = Op::kSubscribe;
    return ParseSubscribe(root, &out->subscribe, error);
  }
  if (name == "ack") {
    out->op = Op::kAck;
    return ParseAck(root, &out->ack, error);
  }
  if (name == "unsubscribe") {
    out->op = Op::kUnsubscribe;
    return ParseUnsubscribe(root, &out->unsubscribe, error);
  }
  if (name == "request") {
    out->op = Op::kRequest;
    return ParseRequestOp(root, &out->request, error);
  }
  if (name == "respond") {
    out->op = Op::kRespond;
    return ParseRespond(root, &out->respond, error);
  }
  if (name == "answer") {
    out->op = Op::kAnswer;
    return ParseAnswer(root, &out->answer, error);
  }
  return Fail(error, ErrorCode::kBadRequest, "unknown op");
}

}  // namespace

bool ParseRequestSlow(std::string_view header, Request* out, RequestError* error) {
  *out = Request{};
  *error = RequestError{};
  JsonPtr root;
  if (header.find('\0') == std::string_view::npos) {
    root.reset(cJSON_ParseWithLength(header.data(), header.size()));
  }
  if (!root || !cJSON_IsObject(root.get())) {
    return Fail(error, ErrorCode::kBadFrame, "header is not a JSON object");
  }
  if (HasEscapedNul(header)) {
    return Fail(error, ErrorCode::kBadRequest, "\\u0000 is not allowed in header strings");
  }
  return ParseFields(CjsonObject(root.get()), out, error);
}

bool ParseRequest(std::string_view header, Request* out, RequestError* error) {
  // A flat object has no escapes at all, so neither a NUL nor a "\u0000".
  FlatObject flat;
  if (!flat.Scan(header)) return ParseRequestSlow(header, out, error);
  *out = Request{};
  *error = RequestError{};
  return ParseFields(flat, out, error);
}

namespace {

void WriteSubscribe(const SubscribeFields& s, JsonObjectWriter& w) {
  if (!s.session.empty()) w.Str("session", s.session);
  std::string filters = "[";
  for (const std::string& f : s.filters) {
    if (filters.size() > 1) filters.push_back(',');
    platform::AppendJsonString(&filters, f);
  }
  filters.push_back(']');
  w.Raw("filters", filters);
  switch (s.from) {
    case SubscribeFields::kDefault: break;
    case SubscribeFields::kNew: w.Str("from", "new"); break;
    case SubscribeFields::kOldest: w.Str("from", "oldest"); break;
    case SubscribeFields::kSeq: w.Uint("from", s.from_seq); break;
  }
  if (s.window) w.Uint("window", *s.window);
}

void WriteRequestHeader(const Request& r, JsonObjectWriter& w) {
  w.Str("op", OpName(r.op));
  if (r.req) w.Int("req", *r.req);
  if (r.op == Op::kPublish) {
    const PublishFields& p = r.publish;
    w.Str("topic", p.topic);
    if (p.ts_ms) w.Int("ts", *p.ts_ms);
    if (p.priority != Priority::kNormal) w.Str("priority", PriorityName(p.priority));
    if (p.ttl_ms) w.Int("ttl_ms", *p.ttl_ms);
    if (p.deliver_at_ms) w.Int("deliver_at", *p.deliver_at_ms);
    if (p.delay_ms) w.Int("delay_ms", *p.delay_ms);
    if (!p.headers.empty()) {
      JsonObjectWriter h;
      for (const auto& [k, v] : p.headers) h.Str(k, v);
      w.Raw("headers", std::move(h).Finish());
    }
    if (!p.id.empty()) w.Str("id", p.id);
    if (p.ack != AckMode::kStored) w.Str("ack", AckModeName(p.ack));
  } else if (r.op == Op::kQuery) {
    if (r.query_seq) w.Uint("seq", *r.query_seq);
    if (!r.query_id.empty()) w.Str("id", r.query_id);
  } else if (r.op == Op::kSubscribe) {
    WriteSubscribe(r.subscribe, w);
  } else if (r.op == Op::kAck) {
    if (!r.ack.session.empty()) w.Str("session", r.ack.session);
    if (r.ack.seq) w.Uint("seq", *r.ack.seq);
    if (r.ack.up_to) w.Uint("up_to", *r.ack.up_to);
  } else if (r.op == Op::kUnsubscribe) {
    if (!r.unsubscribe.session.empty()) w.Str("session", r.unsubscribe.session);
    if (r.unsubscribe.end) w.Bool("end", true);
  } else if (r.op == Op::kRequest) {
    const RequestFields& q = r.request;
    w.Str("topic", q.topic);
    if (q.timeout_ms) w.Int("timeout_ms", *q.timeout_ms);
    if (q.ttl_ms) w.Int("ttl_ms", *q.ttl_ms);
    if (!q.headers.empty()) {
      JsonObjectWriter h;
      for (const auto& [k, v] : q.headers) h.Str(k, v);
      w.Raw("headers", std::move(h).Finish());
    }
  } else if (r.op == Op::kRespond) {
    std::string methods = "[";
    for (const std::string& m : r.respond.methods) {
      if (methods.size() > 1) methods.push_back(',');
      platform::AppendJsonString(&methods, m);
    }
    methods.push_back(']');
    w.Raw("methods", methods);
    if (r.respond.stop) w.Bool("stop", true);
  } else if (r.op == Op::kAnswer) {
    w.Uint("call", r.answer.call);
    if (!r.answer.error.empty()) w.Str("error", r.answer.error);
    if (!r.answer.message.empty()) w.Str("message", r.answer.message);
  }
}

}  // namespace

bool ValidTraceparent(std::string_view v) {
  auto hex = [](std::string_view s) {
    for (char c : s) {
      if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    }
    return true;
  };
  auto zeros = [](std::string_view s) {
    return s.find_first_not_of('0') == std::string_view::npos;
  };
  if (v.size() < 55 || v[2] != '-' || v[35] != '-' || v[52] != '-') return false;
  std::string_view version = v.substr(0, 2), trace = v.substr(3, 32), parent = v.substr(36, 16),
                   flags = v.substr(53, 2);
  if (!hex(version) || !hex(trace) || !hex(parent) || !hex(flags)) return false;
  if (version == "ff" || zeros(trace) || zeros(parent)) return false;
  if (version == "00") return v.size() == 55;
  return v.size() == 55 || v[55] == '-';
}

std::string EncodeRequestHeader(const Request& r) {
  JsonObjectWriter w;
  WriteRequestHeader(r, w);
  return std::move(w).Finish();
}

void AppendRequestFrame(std::string* out, const Request& r, std::string_view body) {
  size_t start = BeginFrame(out);
  JsonObjectWriter w(out);
  WriteRequestHeader(r, w);
  w.Close();
  EndFrame(out, start, body);
}

}  // namespace edgespool::protocol
