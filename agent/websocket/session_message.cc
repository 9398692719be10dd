#include "agent/websocket/session_message.h"

#include <cjson/cJSON.h>

#include <cmath>
#include <memory>

#include "agent/protocol/json_writer.h"
#include "agent/protocol/message.h"
#include "agent/protocol/request.h"
#include "platform/json_escape.h"

namespace edgespool::agent::websocket {

namespace {

// 2^53: the largest integer a JSON number (a double) holds exactly.
constexpr double kMaxExactInteger = 9007199254740992.0;

struct CjsonDeleter {
  void operator()(cJSON* p) const { cJSON_Delete(p); }
};

// Why parsing stopped: the reason and whether the frame was garbage (closes)
// or a session message with a bad value (an error frame).
struct Problem {
  std::string* why;
  ParseOutcome outcome = ParseOutcome::kOk;
};

bool Garbage(Problem* p, std::string why) {
  *p->why = std::move(why);
  p->outcome = ParseOutcome::kGarbage;
  return false;
}

bool BadValue(Problem* p, std::string why) {
  *p->why = std::move(why);
  p->outcome = ParseOutcome::kBadRequest;
  return false;
}

bool GetUint(const cJSON* root, const char* key, uint64_t* out, bool* present, Problem* p) {
  const cJSON* v = cJSON_GetObjectItemCaseSensitive(root, key);
  *present = v != nullptr && !cJSON_IsNull(v);
  if (!*present) return true;
  if (!cJSON_IsNumber(v)) return Garbage(p, std::string(key) + " must be a number");
  if (!std::isfinite(v->valuedouble) || v->valuedouble < 0 || v->valuedouble >= kMaxExactInteger ||
      std::floor(v->valuedouble) != v->valuedouble) {
    return BadValue(p, std::string(key) + " must be a non-negative integer below 2^53");
  }
  *out = static_cast<uint64_t>(v->valuedouble);
  return true;
}

bool GetString(const cJSON* root, const char* key, std::string* out, Problem* p) {
  const cJSON* v = cJSON_GetObjectItemCaseSensitive(root, key);
  if (!v || cJSON_IsNull(v)) return true;
  if (!cJSON_IsString(v)) return Garbage(p, std::string(key) + " must be a string");
  *out = v->valuestring;
  return true;
}

bool GetBool(const cJSON* root, const char* key, bool* out, Problem* p) {
  const cJSON* v = cJSON_GetObjectItemCaseSensitive(root, key);
  if (!v || cJSON_IsNull(v)) return true;
  if (!cJSON_IsBool(v)) return Garbage(p, std::string(key) + " must be true or false");
  *out = cJSON_IsTrue(v);
  return true;
}

bool GetFilters(const cJSON* root, const char* key, std::vector<std::string>* out, Problem* p) {
  const cJSON* v = cJSON_GetObjectItemCaseSensitive(root, key);
  if (!v || cJSON_IsNull(v)) return true;
  if (!cJSON_IsArray(v)) return Garbage(p, std::string(key) + " must be an array of filters");
  const cJSON* item = nullptr;
  cJSON_ArrayForEach(item, v) {
    if (!cJSON_IsString(item)) return Garbage(p, std::string(key) + " must hold strings");
  }
  if (cJSON_GetArraySize(v) > static_cast<int>(kMaxFilters)) {
    return BadValue(p, std::string(key) + ": at most " + std::to_string(kMaxFilters) + " filters");
  }
  cJSON_ArrayForEach(item, v) {
    Status st = protocol::ValidateFilter(item->valuestring);
    if (!st.ok()) return BadValue(p, std::string(key) + ": " + st.message());
    out->emplace_back(item->valuestring);
  }
  return true;
}

bool ParseSubscribe(const cJSON* root, ClientMessage* m, Problem* p) {
  if (!GetString(root, "session", &m->session, p)) return false;
  if (!GetFilters(root, "filters", &m->filters, p)) return false;
  if (!GetFilters(root, "uplink", &m->uplink, p)) return false;
  if (!GetBool(root, "status", &m->status, p)) return false;
  const cJSON* from = cJSON_GetObjectItemCaseSensitive(root, "from");
  bool from_is_string = from && cJSON_IsString(from);
  if (from && !cJSON_IsNull(from) && !from_is_string) {
    bool present = false;
    if (!GetUint(root, "from", &m->from_seq, &present, p)) return false;
    m->from = FromKind::kSeq;
  }
  const cJSON* up_from = cJSON_GetObjectItemCaseSensitive(root, "uplink_from");
  bool up_from_is_string = up_from && cJSON_IsString(up_from);
  if (up_from && !cJSON_IsNull(up_from) && !up_from_is_string) {
    bool present = false;
    if (!GetUint(root, "uplink_from", &m->uplink_from_seq, &present, p)) return false;
    m->uplink_from = FromKind::kSeq;
  }
  uint64_t window = 0;
  bool has_window = false;
  if (!GetUint(root, "window", &window, &has_window, p)) return false;
  // Values, after every member had the right JSON type.
  Status st = protocol::ValidateSessionName(m->session);
  if (!st.ok()) return BadValue(p, "session: " + st.message());
  if (from_is_string) {
    std::string_view f = from->valuestring;
    if (f == "new") {
      m->from = FromKind::kNew;
    } else if (f == "oldest") {
      m->from = FromKind::kOldest;
    } else {
      return BadValue(p, "from must be \"new\", \"oldest\" or a seq");
    }
  }
  if (up_from_is_string) {
    std::string_view f = up_from->valuestring;
    if (f == "new") {
      m->uplink_from = FromKind::kNew;
    } else if (f == "oldest") {
      m->uplink_from = FromKind::kOldest;
    } else {
      return BadValue(p, "uplink_from must be \"new\", \"oldest\" or a seq");
    }
  }
  if (m->filters.empty() && m->uplink_from == FromKind::kDefault) {
    // An uplink-only subscription: `from` is the uplink's.
    m->uplink_from = m->from;
    m->uplink_from_seq = m->from_seq;
  }
  if (has_window && (window < 1 || window > kMaxWindow)) {
    return BadValue(p, "window must be 1.." + std::to_string(kMaxWindow));
  }
  m->window = static_cast<uint32_t>(window);
  if (m->filters.empty() && m->uplink.empty() && !m->status) {
    return BadValue(p, "subscribe needs filters, uplink or status");
  }
  if (m->filters.empty() && m->uplink.empty() && !m->session.empty()) {
    return BadValue(p, "a named session needs downlink or uplink filters");
  }
  return true;
}

bool ParseAck(const cJSON* root, ClientMessage* m, Problem* p) {
  bool has_seq = false, has_up_to = false;
  uint64_t up_to = 0;
  if (!GetUint(root, "seq", &m->seq, &has_seq, p)) return false;
  if (!GetUint(root, "up_to", &up_to, &has_up_to, p)) return false;
  if (has_seq == has_up_to) return BadValue(p, "ack needs exactly one of seq and up_to");
  if (has_up_to) {
    m->seq = up_to;
    m->cumulative = true;
  }
  std::string source;
  if (!GetString(root, "source", &source, p)) return false;
  if (source == "uplink") {
    m->ack_uplink = true;
  } else if (!source.empty() && source != "downlink") {
    return BadValue(p, "source must be \"downlink\" or \"uplink\"");
  }
  return true;
}

// Whether the payload can travel as a JSON string as it is.
bool IsText(std::string_view payload) { return protocol::IsValidUtf8(payload); }

void AppendHeadersAndPayload(protocol::JsonObjectWriter& w, const store::Headers& headers,
                             std::string_view payload) {
  if (!headers.empty()) {
    std::string h = "{";
    bool first = true;
    for (const auto& [k, v] : headers) {
      if (!first) h.push_back(',');
      first = false;
      platform::AppendJsonString(&h, k);
      h.push_back(':');
      platform::AppendJsonString(&h, v);
    }
    h.push_back('}');
    w.Raw("headers", h);
  }
  if (IsText(payload)) {
    w.Str("payload", payload);
  } else {
    std::string b64;
    AppendBase64(&b64, payload);
    w.Str("payload_b64", b64);
  }
}

}  // namespace

ParseOutcome ParseClientMessage(std::string_view text, ClientMessage* out, std::string* error) {
  *out = ClientMessage();
  Problem p{error};
  std::unique_ptr<cJSON, CjsonDeleter> root(cJSON_ParseWithLength(text.data(), text.size()));
  if (!root || !cJSON_IsObject(root.get())) {
    Garbage(&p, "not a JSON object");
    return p.outcome;
  }
  std::string type;
  bool ok = GetString(root.get(), "type", &type, &p);
  if (!ok) return p.outcome;
  if (type == "auth") {
    out->type = ClientType::kAuth;
    const cJSON* t = cJSON_GetObjectItemCaseSensitive(root.get(), "token");
    ok = cJSON_IsString(t) || Garbage(&p, "auth needs a token string");
    if (ok) out->token = t->valuestring;
  } else if (type == "subscribe") {
    out->type = ClientType::kSubscribe;
    ok = ParseSubscribe(root.get(), out, &p);
  } else if (type == "ack") {
    out->type = ClientType::kAck;
    ok = ParseAck(root.get(), out, &p);
  } else if (type == "unsubscribe") {
    out->type = ClientType::kUnsubscribe;
    ok = GetBool(root.get(), "end", &out->end, &p);
  } else {
    ok = Garbage(&p, type.empty() ? "missing type" : "unknown type");
  }
  return ok ? ParseOutcome::kOk : p.outcome;
}

std::string RenderSubscribed(const std::string& session, uint64_t position, bool resumed) {
  return protocol::JsonObjectWriter()
      .Str("type", "subscribed")
      .Str("session", session)
      .Uint("position", position)
      .Bool("resumed", resumed)
      .Finish();
}

std::string RenderSubscribed(const std::string& session, uint64_t position, bool resumed,
                             uint64_t uplink_position, bool uplink_resumed) {
  return protocol::JsonObjectWriter()
      .Str("type", "subscribed")
      .Str("session", session)
      .Uint("position", position)
      .Bool("resumed", resumed)
      .Uint("uplink_position", uplink_position)
      .Bool("uplink_resumed", uplink_resumed)
      .Finish();
}

std::string RenderUnsubscribed() {
  return protocol::JsonObjectWriter().Str("type", "unsubscribed").Finish();
}

std::string RenderError(std::string_view code, std::string_view message) {
  return protocol::JsonObjectWriter()
      .Str("type", "error")
      .Str("code", code)
      .Str("message", message)
      .Finish();
}

std::string RenderStatus(std::string_view status_json) {
  return protocol::JsonObjectWriter().Str("type", "status").Raw("status", status_json).Finish();
}

std::string RenderDropped(uint64_t count, uint64_t total) {
  return protocol::JsonObjectWriter()
      .Str("type", "dropped")
      .Str("source", "uplink")
      .Uint("count", count)
      .Uint("total", total)
      .Finish();
}

void AppendDownlinkMessage(std::string* out, const std::string& session,
                           const store::StoredInbound& row) {
  const store::InboundMessage& m = row.message;
  protocol::JsonObjectWriter w(out);
  w.Str("type", "message").Str("source", "downlink").Str("session", session);
  w.Uint("seq", row.seq).Str("topic", m.topic).Str("broker_topic", m.broker_topic);
  w.Int("ts", m.received_ms);
  if (!m.response_topic.empty()) w.Str("response_topic", m.response_topic);
  if (!m.correlation.empty()) w.Str("correlation", protocol::HexEncode(m.correlation));
  AppendHeadersAndPayload(w, m.headers, m.payload);
  w.Close();
}

void AppendUplinkMessage(std::string* out, uint64_t seq, const store::Message& m) {
  protocol::JsonObjectWriter w(out);
  w.Str("type", "message").Str("source", "uplink").Uint("seq", seq).Str("topic", m.topic);
  w.Int("ts", m.ts_ms);
  AppendHeadersAndPayload(w, m.headers, m.payload);
  w.Close();
}

void AppendBase64(std::string* out, std::string_view bytes) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  out->reserve(out->size() + (bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  auto byte = [&](size_t k) { return static_cast<uint32_t>(static_cast<uint8_t>(bytes[k])); };
  for (; i + 3 <= bytes.size(); i += 3) {
    uint32_t v = byte(i) << 16 | byte(i + 1) << 8 | byte(i + 2);
    out->push_back(kAlphabet[v >> 18 & 63]);
    out->push_back(kAlphabet[v >> 12 & 63]);
    out->push_back(kAlphabet[v >> 6 & 63]);
    out->push_back(kAlphabet[v & 63]);
  }
  size_t rest = bytes.size() - i;
  if (rest == 0) return;
  uint32_t v = byte(i) << 16 | (rest == 2 ? byte(i + 1) << 8 : 0);
  out->push_back(kAlphabet[v >> 18 & 63]);
  out->push_back(kAlphabet[v >> 12 & 63]);
  out->push_back(rest == 2 ? kAlphabet[v >> 6 & 63] : '=');
  out->push_back('=');
}

}  // namespace edgespool::agent::websocket
