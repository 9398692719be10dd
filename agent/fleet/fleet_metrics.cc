#include "agent/fleet/fleet_metrics.h"

namespace edgespool::agent::fleet {

namespace {

struct NodeFamilies {
  SampleVec *up, *online, *stale, *state, *backlog, *backlog_bytes, *oldest_age, *eta, *rate, *fill,
      *last_sync, *last_report, *sent, *dead, *dropped, *info;
};

constexpr Health kHealths[] = {Health::kOffline, Health::kSilent, Health::kBehind, Health::kOk};

NodeFamilies RegisterNodeFamilies(MetricsRegistry* r) {
  const std::vector<std::string> node = {"node"};
  NodeFamilies f;
  f.up = r->AddGaugeVec("edgespool_fleet_node_up",
                        "1 while the node says it is online and reports within --stale.", node);
  f.online = r->AddGaugeVec("edgespool_fleet_node_online",
                            "0 once the node's last status said offline (its last will, or a "
                            "clean shutdown).",
                            node);
  f.stale = r->AddGaugeVec("edgespool_fleet_node_stale",
                           "1 when the node is offline, silent or behind (as edgespool fleet's "
                           "exit code 2).",
                           node);
  f.state = r->AddGaugeVec("edgespool_fleet_node_state",
                           "1 for the node's verdict (offline, silent, behind, ok), 0 for the "
                           "others.",
                           {"node", "state"});
  f.backlog = r->AddGaugeVec("edgespool_fleet_node_backlog_messages",
                             "Messages pending on the node, as of its last status.", node);
  f.backlog_bytes = r->AddGaugeVec("edgespool_fleet_node_backlog_bytes",
                                   "Payload bytes pending on the node.", node);
  f.oldest_age = r->AddGaugeVec("edgespool_fleet_node_oldest_pending_age_seconds",
                                "Age of the node's oldest pending message (0 when none).", node);
  f.eta = r->AddGaugeVec("edgespool_fleet_node_drain_eta_seconds",
                         "The node's estimate of the time to drain its backlog; -1 when the "
                         "backlog is not moving.",
                         node);
  f.rate = r->AddGaugeVec("edgespool_fleet_node_upload_rate_messages_per_second",
                          "The node's upload rate, as of its last status.", node);
  f.fill = r->AddGaugeVec("edgespool_fleet_node_journal_fill_ratio",
                          "The node's journal size over its cap.", node);
  f.last_sync = r->AddGaugeVec("edgespool_fleet_node_last_sync_timestamp_seconds",
                               "Central-clock time of the node's last acknowledged upload (0: "
                               "never).",
                               node);
  f.last_report = r->AddGaugeVec("edgespool_fleet_node_last_report_timestamp_seconds",
                                 "Central-clock time of the node's last status document.", node);
  f.sent =
      r->AddCounterVec("edgespool_fleet_node_messages_sent_total",
                       "Messages the node's broker acknowledged (the node's own total).", node);
  f.dead = r->AddCounterVec("edgespool_fleet_node_messages_dead_total",
                            "Messages the node turned into dead letters.", node);
  f.dropped = r->AddCounterVec("edgespool_fleet_node_messages_dropped_total",
                               "Messages the node dropped to its journal cap.", node);
  f.info = r->AddGaugeVec("edgespool_fleet_node_info", "1, labelled with the node's version.",
                          {"node", "version"});
  return f;
}

// Refills the per-node series from the model, worst first (as the page lists).
void FillNodeFamilies(const NodeFamilies& f, const FleetModel& model, int64_t now) {
  for (SampleVec* v :
       {f.up, f.online, f.stale, f.state, f.backlog, f.backlog_bytes, f.oldest_age, f.eta, f.rate,
        f.fill, f.last_sync, f.last_report, f.sent, f.dead, f.dropped, f.info}) {
    v->Clear();
  }
  // Ranked: the exposition lists the worst nodes first, as the page does.
  for (const NodeView* n : model.Ranked()) {
    const NodeStatus& s = n->status;
    const std::string& name = s.node;
    bool up = n->online && n->health != Health::kSilent;
    f.up->Set({name}, up ? 1 : 0);
    f.online->Set({name}, n->online ? 1 : 0);
    f.stale->Set({name}, n->stale() ? 1 : 0);
    for (Health h : kHealths) f.state->Set({name, HealthName(h)}, n->health == h ? 1 : 0);
    f.backlog->Set({name}, static_cast<double>(s.pending_messages));
    f.backlog_bytes->Set({name}, static_cast<double>(s.pending_bytes));
    f.oldest_age->Set({name}, n->OldestPendingAgeS(now));
    f.eta->Set({name}, s.pending_messages == 0 ? 0 : s.drain_eta_s);
    f.rate->Set({name}, s.rate_msgs_per_s);
    f.fill->Set({name}, s.journal_fill);
    f.last_sync->Set({name}, n->LastSyncMs() / 1000.0);
    f.last_report->Set({name}, n->report_ms / 1000.0);
    f.sent->Set({name}, static_cast<double>(s.sent_total));
    f.dead->Set({name}, static_cast<double>(s.dead_total));
    f.dropped->Set({name}, static_cast<double>(s.dropped_total));
    f.info->Set({name, s.version}, 1);
  }
}

}  // namespace

void RegisterFleetMetrics(MetricsRegistry* r, const FleetWatcher* watcher,
                          const platform::Clock* clock) {
  NodeFamilies f = RegisterNodeFamilies(r);
  Gauge* by_state[4];
  for (Health h : kHealths) {
    by_state[static_cast<int>(h)] =
        r->AddGauge("edgespool_fleet_nodes", "Nodes per verdict.", {{"state", HealthName(h)}});
  }
  Gauge* backlog =
      r->AddGauge("edgespool_fleet_backlog_messages", "Messages pending across the fleet.");
  Gauge* backlog_bytes =
      r->AddGauge("edgespool_fleet_backlog_bytes", "Payload bytes pending across the fleet.");
  Gauge* oldest = r->AddGauge("edgespool_fleet_oldest_pending_age_seconds",
                              "The oldest pending message in the fleet, in seconds.");
  Gauge* connected = r->AddGauge("edgespool_fleet_broker_connected",
                                 "1 while the fleet view is connected to the broker.");
  Counter* documents = r->AddCounter("edgespool_fleet_status_documents_total",
                                     "Status documents applied to the fleet view.");
  Counter* invalid = r->AddCounter("edgespool_fleet_status_invalid_total",
                                   "Messages on the status topic that were not status documents.");
  Counter* over = r->AddCounter("edgespool_fleet_nodes_over_limit_total",
                                "Documents of new nodes ignored: --max-nodes reached.");

  r->AddCollector([=] {
    const FleetModel& model = watcher->model();
    int64_t now = clock->WallMs();
    FillNodeFamilies(f, model, now);
    FleetCounts c = model.Counts(now);
    by_state[static_cast<int>(Health::kOk)]->Set(static_cast<double>(c.ok));
    by_state[static_cast<int>(Health::kBehind)]->Set(static_cast<double>(c.behind));
    by_state[static_cast<int>(Health::kSilent)]->Set(static_cast<double>(c.silent));
    by_state[static_cast<int>(Health::kOffline)]->Set(static_cast<double>(c.offline));
    backlog->Set(static_cast<double>(c.backlog_messages));
    backlog_bytes->Set(static_cast<double>(c.backlog_bytes));
    oldest->Set(c.oldest_pending_age_s);
    connected->Set(watcher->connected() ? 1 : 0);
    documents->SetFromSource(model.stats().documents);
    invalid->SetFromSource(model.stats().invalid);
    over->SetFromSource(model.stats().over_limit);
  });
}

}  // namespace edgespool::agent::fleet
