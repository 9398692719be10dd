// The fleet in Prometheus form (`edgespool fleet --metrics ADDR`): per-node
// gauges labelled {node="..."} and fleet totals, filled from the model at
// scrape time. The names are a contract with the alert rules in
// platform/prometheus/edgespool-alerts.yml (a test scrapes this exporter and
// checks every name the rules use), and are listed in docs/fleet.md:
//
//   edgespool_fleet_node_up{node}                      1 online and reporting, else 0
//   edgespool_fleet_node_online{node}                  1 unless its last document said offline
//   edgespool_fleet_node_stale{node}                   1 offline, silent or behind
//   edgespool_fleet_node_state{node,state}             1 for its verdict, 0 for the others
//   edgespool_fleet_node_backlog_messages{node}
//   edgespool_fleet_node_backlog_bytes{node}
//   edgespool_fleet_node_oldest_pending_age_seconds{node}
//   edgespool_fleet_node_drain_eta_seconds{node}       -1: backlog not moving
//   edgespool_fleet_node_upload_rate_messages_per_second{node}
//   edgespool_fleet_node_journal_fill_ratio{node}
//   edgespool_fleet_node_last_sync_timestamp_seconds{node}    0: never
//   edgespool_fleet_node_last_report_timestamp_seconds{node}
//   edgespool_fleet_node_messages_sent_total{node}     the node's own totals
//   edgespool_fleet_node_messages_dead_total{node}
//   edgespool_fleet_node_messages_dropped_total{node}
//   edgespool_fleet_node_info{node,version}            1
//   edgespool_fleet_nodes{state}                       nodes per verdict
//   edgespool_fleet_backlog_messages, _backlog_bytes, _oldest_pending_age_seconds
//   edgespool_fleet_broker_connected                   the fleet view's own link
//   edgespool_fleet_status_documents_total, _status_invalid_total,
//   edgespool_fleet_nodes_over_limit_total
//
// Timestamps are on the central clock (see fleet_model.h on skew).
//
// Loop-thread-only; the registry's collector reads the model, so the model
// and the watcher must outlive the registry's last Render().
#pragma once

#include "agent/fleet/fleet_watcher.h"
#include "agent/http/metrics.h"

namespace edgespool::agent::fleet {

// Registers the fleet's families and a collector on `registry`.
void RegisterFleetMetrics(MetricsRegistry* registry, const FleetWatcher* watcher,
                          const platform::Clock* clock);

}  // namespace edgespool::agent::fleet
