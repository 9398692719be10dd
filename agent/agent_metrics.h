// The agent's own metrics: every series /metrics exports that mirrors a
// figure kept elsewhere (the journal's, the sync worker's, the uplink's, the
// producer server's), as one table (agent_metrics.cc) rather than a
// registration call and a collector line for each. A row gives the name, the
// help text and how to read the value; the table's order is the order of the
// families in the exposition.
//
// The names, types and help texts are a contract with dashboards (see
// agent/http/metrics.h): a row is added, never renamed.
//
// The latency histograms are not in the table: they are observed as events
// happen rather than read at scrape time; their buckets are LatencyBuckets().
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "agent/http/metrics.h"
#include "store/journal.h"
#include "sync/sync_worker.h"

namespace edgespool::agent {

// What the table reads, filled in at each scrape (loop thread); the pointers
// are only used during the scrape.
struct MetricInputs {
  const store::JournalStats* journal = nullptr;
  const sync::SyncStats* sync = nullptr;
  uint64_t uplink_wire_bytes = 0;
  uint64_t uplink_reconnects = 0;
  uint64_t uplink_failovers = 0;
  bool uplink_connected = false;
  uint64_t producer_connections = 0;
  int64_t now_ms = 0;  // wall clock
  // The downlink (all 0 while it is off).
  struct Downlink {
    uint64_t received = 0, stored = 0, dead = 0, unmatched = 0;
    uint64_t delivered = 0, acked = 0, dropped = 0;
    uint64_t sessions = 0, attached = 0, inflight = 0;
    double oldest_unacked_age_s = 0;  // over every session
  } downlink;
  // Request/response (all 0 while it is off): agent/methods/methods.h.
  struct Requests {
    uint64_t total = 0, answered = 0, timeout = 0, unavailable = 0, busy = 0;
    uint64_t late_answers = 0, unknown_answers = 0, pending = 0;
    uint64_t calls = 0, calls_answered = 0, calls_no_handler = 0, calls_timeout = 0;
    uint64_t calls_refused = 0, late_call_answers = 0, calls_pending = 0;
  } requests;
  // The WebSocket listener (all 0 while it is off).
  struct WebSocket {
    uint64_t sessions = 0, refused = 0, closed_bad = 0, closed_idle = 0;
    uint64_t uplink_delivered = 0, uplink_dropped = 0;
  } websocket;
};

// Registers every row of the table in `registry`, and one collector that
// calls fill and refreshes them all before each render.
void AddAgentMetrics(MetricsRegistry& registry, std::function<void(MetricInputs*)> fill);

// Buckets of the latency histograms, 0.5 ms to 10 s.
std::vector<double> LatencyBuckets();

}  // namespace edgespool::agent
