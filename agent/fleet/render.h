// Text forms of the fleet model: the `edgespool fleet` table, and the JSON
// row shared by `edgespool fleet --json`, the dashboard's /api/fleet and its
// event stream. A row (times in ms on the central clock, 0: never/none):
//
//   {"node","online","stale","state":"offline|silent|behind|ok",
//    "last_sync_ms","pending","oldest_pending_ts_ms","uplink","last_error",
//    "pending_bytes","drain_eta_s","rate_msgs_per_s","journal_fill",
//    "report_ms","offline_since_ms","version","ts_ms"}
//
// drain_eta_s is the node's own estimate (-1: backlog not moving); ts_ms is
// the document's own stamp, on the node's clock (0 for a last will).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "agent/fleet/fleet_model.h"

namespace edgespool::agent::fleet {

std::string NodeJson(const NodeView& v);
// [row, row, ...] worst first, with a trailing newline.
std::string FleetJson(const std::vector<const NodeView*>& ranked);
// The table: one line per node, worst first, and a summary line
// "N nodes: A ok, B stale, C offline" (stale: behind or silent).
std::string FleetTable(const std::vector<const NodeView*>& ranked, int64_t now_ms);
// "42s", "3m", "5h", "2d", or "never" for 0.
std::string Age(int64_t now_ms, int64_t then_ms);

}  // namespace edgespool::agent::fleet
