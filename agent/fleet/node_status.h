// One node's status document as the fleet view reads it: the subset of the
// agent's status (agent/status_document.h) that says how the node is doing.
// The document comes from the broker, so from anyone who may publish on the
// status topic: parsing checks types and bounds and never trusts a field.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace edgespool::agent::fleet {

struct NodeStatus {
  std::string node;
  std::string version;
  bool online = false;
  // The node's clock when it wrote the document; 0 when unknown (the last
  // will is written once, at connect, with ts_ms 0).
  int64_t ts_ms = 0;
  int64_t uptime_s = 0;
  std::string uplink_state;
  std::string last_error;
  int64_t last_sync_ms = 0;  // node clock; 0: never
  uint64_t pending_messages = 0;
  uint64_t pending_bytes = 0;
  int64_t oldest_pending_ts_ms = 0;  // node clock; 0: nothing pending
  uint64_t inflight = 0;
  double rate_msgs_per_s = 0;
  double drain_eta_s = 0;  // -1: a backlog that is not moving
  double journal_fill = 0;
  uint64_t sent_total = 0;
  uint64_t dead_total = 0;
  uint64_t dropped_total = 0;
  // Whether the document carried the figures above (an offline document has
  // only node, version, online and ts_ms).
  bool has_figures = false;
};

// Node names longer than this are refused: they become metric label values
// and page text, and a name is an id, not a payload.
constexpr size_t kMaxNodeNameBytes = 256;

// Parses a status document. False if it is not JSON, not an object, or has
// no usable "node" (a non-empty string of at most kMaxNodeNameBytes).
// Missing or mistyped fields keep their defaults; negative counts read as 0.
bool ParseNodeStatus(std::string_view json, NodeStatus* out);

}  // namespace edgespool::agent::fleet
