#include "agent/fleet/node_status.h"

#include <cJSON.h>

#include <algorithm>
#include <cmath>
#include <limits>

namespace edgespool::agent::fleet {

namespace {

const cJSON* Item(const cJSON* obj, const char* key) {
  return cJSON_IsObject(obj) ? cJSON_GetObjectItemCaseSensitive(obj, key) : nullptr;
}

double Num(const cJSON* obj, const char* key) {
  const cJSON* v = Item(obj, key);
  return cJSON_IsNumber(v) && std::isfinite(v->valuedouble) ? v->valuedouble : 0;
}

// A count: non-negative, and clamped below 2^63 so that the cast is defined.
uint64_t Count(const cJSON* obj, const char* key) {
  double v = Num(obj, key);
  if (!(v > 0)) return 0;
  return v >= 9.2e18 ? static_cast<uint64_t>(9.2e18) : static_cast<uint64_t>(v);
}

// A time in ms (or seconds): clamped to +-2^62 so that sums stay defined.
int64_t Time(const cJSON* obj, const char* key) {
  double v = Num(obj, key);
  constexpr double kMax = 4.6e18;
  if (v > kMax) v = kMax;
  if (v < -kMax) v = -kMax;
  return static_cast<int64_t>(v);
}

std::string Str(const cJSON* obj, const char* key, size_t max_bytes) {
  const cJSON* v = Item(obj, key);
  if (!cJSON_IsString(v)) return "";
  std::string s = v->valuestring;
  if (s.size() > max_bytes) s.resize(max_bytes);
  return s;
}

}  // namespace

bool ParseNodeStatus(std::string_view json, NodeStatus* out) {
  cJSON* doc = cJSON_ParseWithLength(json.data(), json.size());
  if (doc == nullptr) return false;
  const cJSON* node = Item(doc, "node");
  bool ok = cJSON_IsString(node) && node->valuestring[0] != '\0' &&
            std::string_view(node->valuestring).size() <= kMaxNodeNameBytes;
  if (ok) {
    NodeStatus s;
    s.node = node->valuestring;
    s.version = Str(doc, "version", 64);
    s.online = cJSON_IsTrue(Item(doc, "online"));
    s.ts_ms = Time(doc, "ts_ms");
    s.uptime_s = Time(doc, "uptime_s");
    const cJSON* uplink = Item(doc, "uplink");
    const cJSON* pending = Item(doc, "pending");
    s.has_figures = cJSON_IsObject(pending);
    s.uplink_state = Str(uplink, "state", 32);
    // Errors are shown, not parsed: a long one is cut, not refused.
    s.last_error = Str(uplink, "last_error", 512);
    s.last_sync_ms = Time(doc, "last_sync_ms");
    s.pending_messages = Count(pending, "messages");
    s.pending_bytes = Count(pending, "bytes");
    s.oldest_pending_ts_ms = Time(pending, "oldest_ts_ms");
    s.inflight = Count(doc, "inflight");
    s.rate_msgs_per_s = Num(doc, "rate_msgs_per_s");
    // -1 (not moving) up to about 300 years: a bound that keeps the
    // conversions to ms defined whatever the document says.
    s.drain_eta_s = std::min(std::max(Num(doc, "drain_eta_s"), -1.0), 1e10);
    s.journal_fill = Num(Item(doc, "journal"), "fill");
    const cJSON* totals = Item(doc, "totals");
    s.sent_total = Count(totals, "sent");
    s.dead_total = Count(totals, "dead");
    s.dropped_total = Count(totals, "dropped");
    *out = std::move(s);
  }
  cJSON_Delete(doc);
  return ok;
}

}  // namespace edgespool::agent::fleet
