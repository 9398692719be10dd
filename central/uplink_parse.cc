#include "central/uplink_parse.h"

#include <cJSON.h>

#include <limits>
#include <memory>

#include "sync/batch/batch_frame.h"

namespace edgespool::central {

namespace {

constexpr int64_t kLegacyCommitSlackMs = 500;

// A JSON number that is an integer within int64 (doubles past 2^53 are
// rounded by cJSON; timestamps in ms are far below).
bool Int(const cJSON* obj, const char* key, int64_t* out) {
  const cJSON* v = cJSON_GetObjectItemCaseSensitive(obj, key);
  if (!cJSON_IsNumber(v)) return false;
  double d = v->valuedouble;
  if (!(d >= -9.0e15 && d <= 9.0e15)) return false;
  *out = static_cast<int64_t>(d);
  return true;
}

}  // namespace

bool ParseUint64(std::string_view s, uint64_t* out) {
  if (s.empty() || s.size() > 20) return false;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    uint64_t d = static_cast<uint64_t>(c - '0');
    if (v > (std::numeric_limits<uint64_t>::max() - d) / 10) return false;
    v = v * 10 + d;
  }
  *out = v;
  return true;
}

bool ParseInt64(std::string_view s, int64_t* out) {
  bool neg = !s.empty() && s[0] == '-';
  if (neg) s.remove_prefix(1);
  uint64_t v;
  if (!ParseUint64(s, &v)) return false;
  if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return false;
  *out = neg ? -static_cast<int64_t>(v) : static_cast<int64_t>(v);
  return true;
}

Result<NodeStatus> ParseNodeStatus(std::string_view json) {
  std::unique_ptr<cJSON, void (*)(cJSON*)> doc(cJSON_ParseWithLength(json.data(), json.size()),
                                               cJSON_Delete);
  if (!doc || !cJSON_IsObject(doc.get())) {
    return Status::Corruption("status document is not a JSON object");
  }
  const cJSON* node = cJSON_GetObjectItemCaseSensitive(doc.get(), "node");
  if (!cJSON_IsString(node) || node->valuestring[0] == '\0') {
    return Status::Corruption("status document without a node");
  }
  NodeStatus s;
  s.node = node->valuestring;
  s.online = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(doc.get(), "online"));
  if (!s.online) return s;
  int64_t v;
  if (Int(doc.get(), "watermark_ms", &v)) {
    s.watermark_ms = v;
    const cJSON* follow = cJSON_GetObjectItemCaseSensitive(doc.get(), "watermark_follow");
    int64_t lag = 0, for_ms = 0, expiry = 0;
    // Nonsense (negative, a lag beyond the period) is read as no follow.
    if (v >= 0 && Int(follow, "lag_ms", &lag) && Int(follow, "for_ms", &for_ms) && lag >= 0 &&
        for_ms > lag) {
      s.follow_lag_ms = lag;
      s.follow_for_ms = for_ms;
      if (Int(follow, "expiry_s", &expiry) && expiry > 0) s.follow_expiry_s = expiry;
    }
    return s;
  }
  const cJSON* pending = cJSON_GetObjectItemCaseSensitive(doc.get(), "pending");
  int64_t messages = 0, oldest = 0, ts = 0;
  if (!Int(pending, "messages", &messages)) return s;
  if (messages > 0) {
    if (Int(pending, "oldest_ts_ms", &oldest) && oldest > 0) s.watermark_ms = oldest;
  } else if (Int(doc.get(), "ts_ms", &ts) && ts > kLegacyCommitSlackMs) {
    s.watermark_ms = ts - kLegacyCommitSlackMs;
  }
  return s;
}

Result<Message> MessageFromPublish(std::string_view topic, std::string_view payload,
                                   const sync::mqtt::Properties* properties) {
  Message m;
  m.topic = std::string(topic);
  m.payload = std::string(payload);
  if (!properties) return m;
  bool have_ts = false;
  for (const sync::mqtt::UserProperty& p : properties->user_properties) {
    if (p.key == "es-ts") {
      if (!ParseInt64(p.value, &m.ts_ms)) return Status::Corruption("bad es-ts user property");
      have_ts = true;
    } else if (p.key == "es-seq") {
      if (!ParseUint64(p.value, &m.seq) || m.seq == 0) {
        return Status::Corruption("bad es-seq user property");
      }
    } else if (p.key == "es-node") {
      m.node = std::string(p.value);
    } else if (p.key == "es-id") {
      m.id = std::string(p.value);
    } else if (p.key == "es-topic") {
      m.topic = std::string(p.value);
    } else if (p.key == crypto::kEncHeader) {
      auto sealed = crypto::ParseSealed(p.value);
      if (!sealed.ok()) {
        return Status::Corruption("bad es-enc user property: " + sealed.status().message());
      }
      m.sealed = std::move(*sealed);
    } else {
      m.headers.emplace_back(std::string(p.key), std::string(p.value));
    }
  }
  // Ordering needs all three; with less the message passes through unordered.
  if (!have_ts || m.node.empty() || m.seq == 0) {
    m.node.clear();
    m.seq = 0;
  }
  return m;
}

Status MessagesFromFrame(std::string_view bytes, std::vector<Message>* out) {
  auto frame = batch::DecodeFrame(bytes);
  if (!frame.ok()) return frame.status();
  out->reserve(out->size() + frame->records.size());
  for (batch::Record& r : frame->records) {
    Message m;
    m.node = frame->node;
    m.seq = r.seq;
    m.ts_ms = r.ts_ms;
    m.topic = std::move(r.topic);
    m.id = std::move(r.id);
    m.headers = std::move(r.headers);
    m.payload = std::move(r.payload);
    if (r.seal) m.sealed = crypto::Sealed{std::move(r.seal->key_id), r.seal->nonce};
    out->push_back(std::move(m));
  }
  return Status::Ok();
}

}  // namespace edgespool::central

namespace edgespool::central {

bool OpenSealed(crypto::Cipher* cipher, Message* m) {
  if (!m->sealed) return true;
  if (!cipher) {
    m->decrypt_error = "encrypted under key id \"" + m->sealed->key_id + "\"; no key file given";
    return false;
  }
  Status st = cipher->Open(*m->sealed, crypto::AssociatedData(m->node, m->topic, m->id, m->ts_ms),
                           &m->payload);
  if (!st.ok()) {
    m->decrypt_error = st.message();
    return false;
  }
  m->sealed.reset();
  return true;
}

}  // namespace edgespool::central
