#include "agent/fleet/render.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "agent/protocol/json_writer.h"

namespace edgespool::agent::fleet {

namespace {

std::string Number(double v, int digits) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*f", digits, std::isfinite(v) ? v : 0.0);
  return buf;
}

}  // namespace

std::string Age(int64_t now_ms, int64_t then_ms) {
  if (then_ms <= 0) return "never";
  int64_t s = std::max<int64_t>(0, (now_ms - then_ms) / 1000);
  char buf[32];
  if (s < 120) {
    std::snprintf(buf, sizeof buf, "%llds", static_cast<long long>(s));
  } else if (s < 7200) {
    std::snprintf(buf, sizeof buf, "%lldm", static_cast<long long>(s / 60));
  } else if (s < 172800) {
    std::snprintf(buf, sizeof buf, "%lldh", static_cast<long long>(s / 3600));
  } else {
    std::snprintf(buf, sizeof buf, "%lldd", static_cast<long long>(s / 86400));
  }
  return buf;
}

std::string NodeJson(const NodeView& v) {
  const NodeStatus& s = v.status;
  return protocol::JsonObjectWriter()
      .Str("node", s.node)
      .Bool("online", v.online)
      .Bool("stale", v.stale())
      .Str("state", HealthName(v.health))
      .Int("last_sync_ms", v.LastSyncMs())
      .Uint("pending", s.pending_messages)
      .Int("oldest_pending_ts_ms", v.OldestPendingMs())
      .Str("uplink", s.uplink_state)
      .Str("last_error", s.last_error)
      .Uint("pending_bytes", s.pending_bytes)
      .Raw("drain_eta_s", Number(s.drain_eta_s, 0))
      .Raw("rate_msgs_per_s", Number(s.rate_msgs_per_s, 1))
      .Raw("journal_fill", Number(s.journal_fill, 4))
      .Int("report_ms", v.report_ms)
      .Int("offline_since_ms", v.offline_since_ms)
      .Str("version", s.version)
      .Int("ts_ms", s.ts_ms)
      .Finish();
}

std::string FleetJson(const std::vector<const NodeView*>& ranked) {
  std::string out = "[";
  for (size_t i = 0; i < ranked.size(); ++i) {
    if (i) out.push_back(',');
    out += NodeJson(*ranked[i]);
  }
  return out + "]\n";
}

std::string FleetTable(const std::vector<const NodeView*>& ranked, int64_t now_ms) {
  std::string out;
  char line[768];
  std::snprintf(line, sizeof line, "%-24s %-8s %-7s %-10s %10s %-8s %-8s %10s  %s\n", "NODE",
                "ONLINE", "HEALTH", "LAST SYNC", "PENDING", "OLDEST", "ETA", "RATE/s",
                "LAST ERROR");
  out += line;
  size_t stale = 0, offline = 0;
  for (const NodeView* v : ranked) {
    const NodeStatus& s = v->status;
    stale += v->stale() ? 1 : 0;
    offline += v->online ? 0 : 1;
    std::string eta = s.pending_messages == 0 ? "-"
                      : s.drain_eta_s < 0     ? "stuck"
                                              : Age(now_ms, now_ms - int64_t(s.drain_eta_s * 1000));
    std::snprintf(line, sizeof line, "%-24s %-8s %-7s %-10s %10llu %-8s %-8s %10.1f  %s\n",
                  s.node.c_str(), v->online ? "yes" : "NO",
                  v->health == Health::kOk ? "ok" : (v->online ? "STALE" : "OFFLINE"),
                  Age(now_ms, v->LastSyncMs()).c_str(),
                  static_cast<unsigned long long>(s.pending_messages),
                  s.pending_messages ? Age(now_ms, v->OldestPendingMs()).c_str() : "-", eta.c_str(),
                  s.rate_msgs_per_s, s.last_error.c_str());
    out += line;
  }
  std::snprintf(line, sizeof line, "%zu nodes: %zu ok, %zu stale, %zu offline\n", ranked.size(),
                ranked.size() - stale, stale - offline, offline);
  out += line;
  return out;
}

}  // namespace edgespool::agent::fleet
