// The fleet as the central side sees it: one NodeView per node, built from
// the retained status documents on `edgespool/+/status`, with a health
// verdict and an order (worst first) shared by `edgespool fleet`'s table,
// its --json, the dashboard and the Prometheus exporter.
//
// Health, worst first:
//   offline  the node's last document said "online": false (its last will,
//            published by the broker when the connection died, or a clean
//            shutdown)
//   silent   it says online, but no document came within `stale_ms` (agents
//            republish every status.interval, default 1m): the agent or its
//            link is gone without the broker noticing yet
//   behind   messages pending and no successful sync within `stale_ms`
//   ok       otherwise (an idle node with nothing pending is ok)
// Within a verdict, the oldest last sync first, then the node name.
//
// Clocks. A node's timestamps are on its own clock, which may be off. The
// model keeps, per node, the offset between the central clock at arrival
// and the document's ts_ms (skew_ms, learned from live documents) and shows
// the node's times on the central clock. A retained document delivered at
// subscribe time may be hours old, so its arrival says nothing of the offset:
// its ts_ms is taken as is (offset 0) until a live document arrives.
//
// An offline document carries no figures; the node keeps the backlog and
// last sync of its last online document, so the page still says what it
// left behind. A retained empty payload (the operator cleared the topic)
// removes the node.
//
// Memory: at most `max_nodes` nodes (documents of new nodes beyond it are
// counted and ignored), each a few hundred bytes plus its strings.
//
// Thread-safety: none; the owner (the fleet view's loop thread) serialises.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "agent/fleet/node_status.h"

namespace edgespool::agent::fleet {

enum class Health : uint8_t { kOffline = 0, kSilent = 1, kBehind = 2, kOk = 3 };
const char* HealthName(Health h);  // "offline", "silent", "behind", "ok"

struct NodeView {
  NodeStatus status;  // figures of the last document that had them
  std::string topic;
  bool online = false;
  int64_t report_ms = 0;         // central clock: when the last document was written
  int64_t skew_ms = 0;           // central clock minus node clock
  int64_t offline_since_ms = 0;  // central clock; 0 while online, or unknown
  Health health = Health::kOk;
  uint64_t documents = 0;

  // The node's times on the central clock (0 stays 0: never / nothing).
  int64_t LastSyncMs() const { return status.last_sync_ms > 0 ? status.last_sync_ms + skew_ms : 0; }
  int64_t OldestPendingMs() const {
    return status.pending_messages > 0 && status.oldest_pending_ts_ms > 0
               ? status.oldest_pending_ts_ms + skew_ms
               : 0;
  }
  // Seconds the oldest pending message has waited at now_ms (0 if none).
  double OldestPendingAgeS(int64_t now_ms) const;
  bool stale() const { return health != Health::kOk; }
};

struct FleetOptions {
  int64_t stale_ms = 15 * 60000;
  size_t max_nodes = 10000;
};

struct FleetCounts {
  size_t nodes = 0, ok = 0, behind = 0, silent = 0, offline = 0;
  uint64_t backlog_messages = 0, backlog_bytes = 0;
  double oldest_pending_age_s = 0;  // the fleet's worst
};

struct FleetStats {
  uint64_t documents = 0;   // applied
  uint64_t invalid = 0;     // not a status document
  uint64_t over_limit = 0;  // a new node beyond max_nodes
  uint64_t removed = 0;
};

class FleetModel {
 public:
  explicit FleetModel(FleetOptions options = {}) : options_(options) {}

  enum class Change { kNone, kUpdated, kRemoved };
  // One message from the status topic. now_ms: the central wall clock;
  // retained: delivered from the broker's store at subscribe time. *node is
  // set to the node concerned for kUpdated and kRemoved.
  Change Apply(std::string_view topic, std::string_view payload, bool retained, int64_t now_ms,
               std::string* node);
  // Re-judges every node at now_ms (silence and lag grow with time alone);
  // returns the nodes whose health changed.
  std::vector<std::string> Refresh(int64_t now_ms);

  const NodeView* Find(const std::string& node) const;
  // Every node, worst first (see the top of this file).
  std::vector<const NodeView*> Ranked() const;
  FleetCounts Counts(int64_t now_ms) const;
  size_t size() const { return nodes_.size(); }
  const FleetStats& stats() const { return stats_; }
  const FleetOptions& options() const { return options_; }

 private:
  Health Judge(const NodeView& v, int64_t now_ms) const;

  FleetOptions options_;
  std::map<std::string, NodeView> nodes_;      // by node name
  std::map<std::string, std::string> topics_;  // topic -> node name
  FleetStats stats_;
};

// The order Ranked() uses: true if a is worse than b.
bool WorseThan(const NodeView& a, const NodeView& b);

}  // namespace edgespool::agent::fleet
