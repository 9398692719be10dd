#include "agent/fleet/fleet_model.h"

#include <algorithm>

namespace edgespool::agent::fleet {

const char* HealthName(Health h) {
  switch (h) {
    case Health::kOffline:
      return "offline";
    case Health::kSilent:
      return "silent";
    case Health::kBehind:
      return "behind";
    case Health::kOk:
      return "ok";
  }
  return "ok";
}

double NodeView::OldestPendingAgeS(int64_t now_ms) const {
  int64_t oldest = OldestPendingMs();
  if (oldest <= 0) return 0;
  return std::max<int64_t>(0, now_ms - oldest) / 1000.0;
}

bool WorseThan(const NodeView& a, const NodeView& b) {
  if (a.health != b.health) return a.health < b.health;
  int64_t sa = a.LastSyncMs(), sb = b.LastSyncMs();
  if (sa != sb) return sa < sb;
  return a.status.node < b.status.node;
}

FleetModel::Change FleetModel::Apply(std::string_view topic, std::string_view payload,
                                     bool retained, int64_t now_ms, std::string* node) {
  std::string t(topic);
  if (payload.empty()) {
    // A cleared retained status: the operator removed the node.
    auto it = topics_.find(t);
    if (it == topics_.end()) return Change::kNone;
    *node = it->second;
    nodes_.erase(it->second);
    topics_.erase(it);
    ++stats_.removed;
    return Change::kRemoved;
  }
  NodeStatus s;
  if (!ParseNodeStatus(payload, &s)) {
    ++stats_.invalid;
    return Change::kNone;
  }
  auto it = nodes_.find(s.node);
  if (it == nodes_.end()) {
    if (nodes_.size() >= options_.max_nodes) {
      ++stats_.over_limit;
      return Change::kNone;
    }
    it = nodes_.emplace(s.node, NodeView{}).first;
  }
  NodeView& v = it->second;
  if (v.topic != t) {
    // A node that moved topics (or a new one): the old topic no longer
    // speaks for it.
    if (!v.topic.empty()) topics_.erase(v.topic);
    v.topic = t;
    topics_[t] = s.node;
  }
  ++stats_.documents;
  ++v.documents;
  bool live = !retained && s.ts_ms > 0;
  if (live) v.skew_ms = now_ms - s.ts_ms;
  // When it was written, on our clock: a live document now; a retained one
  // (or one without ts_ms) by its own stamp, if it has one.
  v.report_ms = live ? now_ms : (s.ts_ms > 0 ? s.ts_ms + v.skew_ms : now_ms);
  v.online = s.online;
  if (s.online) {
    v.offline_since_ms = 0;
  } else if (v.offline_since_ms == 0 && (!retained || s.ts_ms > 0)) {
    // A retained will (ts_ms 0) found at subscribe time says offline, not
    // since when: that stays 0 (unknown) rather than "just now".
    v.offline_since_ms = v.report_ms;
  }
  if (s.has_figures || v.status.node.empty()) {
    v.status = std::move(s);
  } else {
    // An offline document: keep the figures of the last online one.
    v.status.online = false;
    if (!s.version.empty()) v.status.version = s.version;
  }
  v.health = Judge(v, now_ms);
  *node = it->first;
  return Change::kUpdated;
}

Health FleetModel::Judge(const NodeView& v, int64_t now_ms) const {
  if (!v.online) return Health::kOffline;
  if (now_ms - v.report_ms > options_.stale_ms) return Health::kSilent;
  int64_t last_sync = v.LastSyncMs();
  if (v.status.pending_messages > 0 && (last_sync == 0 || now_ms - last_sync > options_.stale_ms)) {
    return Health::kBehind;
  }
  return Health::kOk;
}

std::vector<std::string> FleetModel::Refresh(int64_t now_ms) {
  std::vector<std::string> changed;
  for (auto& [name, v] : nodes_) {
    Health h = Judge(v, now_ms);
    if (h != v.health) {
      v.health = h;
      changed.push_back(name);
    }
  }
  return changed;
}

const NodeView* FleetModel::Find(const std::string& node) const {
  auto it = nodes_.find(node);
  return it == nodes_.end() ? nullptr : &it->second;
}

std::vector<const NodeView*> FleetModel::Ranked() const {
  std::vector<const NodeView*> out;
  out.reserve(nodes_.size());
  for (const auto& [name, v] : nodes_) out.push_back(&v);
  std::sort(out.begin(), out.end(),
            [](const NodeView* a, const NodeView* b) { return WorseThan(*a, *b); });
  return out;
}

FleetCounts FleetModel::Counts(int64_t now_ms) const {
  FleetCounts c;
  for (const auto& [name, v] : nodes_) {
    ++c.nodes;
    switch (v.health) {
      case Health::kOk:
        ++c.ok;
        break;
      case Health::kBehind:
        ++c.behind;
        break;
      case Health::kSilent:
        ++c.silent;
        break;
      case Health::kOffline:
        ++c.offline;
        break;
    }
    c.backlog_messages += v.status.pending_messages;
    c.backlog_bytes += v.status.pending_bytes;
    c.oldest_pending_age_s = std::max(c.oldest_pending_age_s, v.OldestPendingAgeS(now_ms));
  }
  return c;
}

}  // namespace edgespool::agent::fleet
