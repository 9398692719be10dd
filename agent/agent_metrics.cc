#include "agent/agent_metrics.h"

#include <algorithm>
#include <limits>
#include <memory>
#include <utility>

namespace edgespool::agent {

namespace {

using In = const MetricInputs&;

enum class Kind {
  kCounter,          // mirrors a monotonic total (Counter::SetFromSource)
  kMicrosAsSeconds,  // a counter of seconds, from a monotonic total in microseconds
  kGauge,
};

struct Row {
  Kind kind;
  const char* name;
  const char* help;
  uint64_t (*total)(In);  // kCounter, kMicrosAsSeconds
  double (*value)(In);    // kGauge
};

constexpr Row Total(const char* name, const char* help, uint64_t (*total)(In)) {
  return {Kind::kCounter, name, help, total, nullptr};
}
constexpr Row Seconds(const char* name, const char* help, uint64_t (*total_us)(In)) {
  return {Kind::kMicrosAsSeconds, name, help, total_us, nullptr};
}
constexpr Row Level(const char* name, const char* help, double (*value)(In)) {
  return {Kind::kGauge, name, help, nullptr, value};
}

double D(uint64_t v) { return static_cast<double>(v); }
// NaN (Prometheus: no value) while a big journal counts its backlog after a
// crash: 0 would say the backlog is empty.
double Pending(In in, uint64_t v) {
  return in.journal->pending_counting ? std::numeric_limits<double>::quiet_NaN() : D(v);
}

double OldestAgeSeconds(In in) {
  int64_t ts = in.journal->oldest_pending_ts_ms;
  return ts ? std::max<double>(0, (in.now_ms - ts) / 1000.0) : 0;
}

// In exposition order.
const Row kRows[] = {
    Total("edgespool_messages_appended_total", "Messages made durable in the journal.",
          [](In in) { return in.journal->appended_total; }),
    Total("edgespool_messages_sent_total", "Messages acknowledged by the broker.",
          [](In in) { return in.journal->sent_total; }),
    Total("edgespool_messages_dead_total", "Messages turned dead letters.",
          [](In in) { return in.journal->dead_total; }),
    Total("edgespool_messages_dropped_total",
          "Pending messages dropped to make room (when_full = drop-oldest).",
          [](In in) { return in.journal->dropped_total; }),
    Total("edgespool_messages_expired_total", "Messages deleted because they expired.",
          [](In in) { return in.journal->expired_total; }),
    Total("edgespool_messages_duplicate_total",
          "Publishes answered as duplicates of an earlier id.",
          [](In in) { return in.journal->duplicate_total; }),
    Total("edgespool_messages_rejected_full_total",
          "Publishes refused because the journal was full.",
          [](In in) { return in.journal->rejected_full_total; }),
    Total("edgespool_journal_corrupt_files_total", "Corrupt journal files moved aside at open.",
          [](In in) { return in.journal->corrupt_files_moved; }),
    Total("edgespool_journal_integrity_checks_total",
          "Journal integrity checks run to the end (the full one at open, or the background walk).",
          [](In in) { return in.journal->integrity_checks_total; }),
    Total("edgespool_journal_integrity_failures_total",
          "Integrity checks that found the journal corrupt (the next start checks it fully).",
          [](In in) { return in.journal->integrity_failures_total; }),
    Total("edgespool_journal_checkpoints_total", "WAL checkpoint passes run in the background.",
          [](In in) { return in.journal->checkpoints_total; }),
    Total("edgespool_journal_checkpoint_failures_total",
          "WAL checkpoint passes that failed (the WAL grows until one succeeds).",
          [](In in) { return in.journal->checkpoint_failures_total; }),
    Seconds("edgespool_journal_wal_restart_wait_seconds_total",
            "Time appends waited for a checkpoint so the WAL could start over.",
            [](In in) { return in.journal->wal_restart_wait_us_total; }),
    Total("edgespool_uplink_publishes_total", "PUBLISH packets sent for messages and batches.",
          [](In in) { return in.sync->published_total; }),
    Total("edgespool_uplink_wire_bytes_total", "Bytes written to the broker connection.",
          [](In in) { return in.uplink_wire_bytes; }),
    Total("edgespool_uplink_reconnects_total", "Connection attempts after the first.",
          [](In in) { return in.uplink_reconnects; }),
    Total("edgespool_uplink_failovers_total",
          "Connections made to another broker of uplink.url than the previous connection's.",
          [](In in) { return in.uplink_failovers; }),
    Level("edgespool_pending_messages", "Messages waiting to be sent.",
          [](In in) { return Pending(in, in.journal->pending_count); }),
    Level("edgespool_pending_bytes", "Payload bytes waiting.",
          [](In in) { return Pending(in, in.journal->pending_bytes); }),
    Level("edgespool_scheduled_messages",
          "Messages stored for scheduled delivery and not yet due (not in pending).",
          [](In in) { return D(in.journal->scheduled_count); }),
    Level("edgespool_oldest_pending_age_seconds",
          "Age of the oldest pending message by original timestamp.", OldestAgeSeconds),
    Level("edgespool_inflight_messages", "Messages sent and awaiting PUBACK.",
          [](In in) { return D(in.sync->inflight_messages); }),
    Level("edgespool_journal_file_bytes", "Size of the journal file.",
          [](In in) { return D(in.journal->file_bytes); }),
    Level("edgespool_journal_max_bytes", "The journal's cap.",
          [](In in) { return D(in.journal->max_bytes); }),
    Level("edgespool_uplink_connected", "1 while connected.",
          [](In in) { return in.uplink_connected ? 1.0 : 0.0; }),
    Level("edgespool_producer_connections", "Open producer connections.",
          [](In in) { return D(in.producer_connections); }),
    Level("edgespool_last_sync_timestamp_seconds", "Wall time of the last PUBACK.",
          [](In in) { return static_cast<double>(in.sync->last_sync_ms) / 1000.0; }),
    Total("edgespool_downlink_received_total", "Messages received from the broker for the downlink.",
          [](In in) { return in.downlink.received; }),
    Total("edgespool_downlink_stored_total", "Downlink messages made durable in the inbox (then PUBACKed).",
          [](In in) { return in.downlink.stored; }),
    Total("edgespool_downlink_dead_total",
          "Downlink messages acknowledged but not stored: over max_message_bytes.",
          [](In in) { return in.downlink.dead; }),
    Total("edgespool_downlink_unmatched_total",
          "Downlink messages on a topic no subscription maps (acknowledged, not stored).",
          [](In in) { return in.downlink.unmatched; }),
    Total("edgespool_downlink_delivered_total", "Downlink messages handed to consumer sessions.",
          [](In in) { return in.downlink.delivered; }),
    Total("edgespool_downlink_acked_total", "Downlink messages acknowledged by consumers.",
          [](In in) { return in.downlink.acked; }),
    Total("edgespool_downlink_dropped_total",
          "Downlink messages dropped unacked: inbox cap (downlink.max_bytes), expired sessions.",
          [](In in) { return in.downlink.dropped + in.journal->inbox_dropped_total; }),
    Total("edgespool_downlink_expired_total", "Inbox messages deleted past their expiry.",
          [](In in) { return in.journal->inbox_expired_total; }),
    Level("edgespool_downlink_inbox_messages", "Messages in the inbox.",
          [](In in) { return D(in.journal->inbox_count); }),
    Level("edgespool_downlink_inbox_bytes", "Payload bytes in the inbox.",
          [](In in) { return D(in.journal->inbox_bytes); }),
    Level("edgespool_downlink_sessions", "Consumer sessions (durable and anonymous).",
          [](In in) { return D(in.downlink.sessions); }),
    Level("edgespool_downlink_sessions_attached", "Consumer sessions attached to a connection.",
          [](In in) { return D(in.downlink.attached); }),
    Level("edgespool_downlink_inflight_messages", "Delivered to consumers and not yet acked.",
          [](In in) { return D(in.downlink.inflight); }),
    Level("edgespool_downlink_oldest_unacked_age_seconds",
          "Age of the oldest message delivered and not acked, over every session.",
          [](In in) { return in.downlink.oldest_unacked_age_s; }),
    Total("edgespool_requests_total", "Requests from producers to the cloud (op request).",
          [](In in) { return in.requests.total; }),
    Total("edgespool_requests_answered_total", "Requests whose answer came in time.",
          [](In in) { return in.requests.answered; }),
    Total("edgespool_requests_timeout_total", "Requests answered timeout: no answer in time.",
          [](In in) { return in.requests.timeout; }),
    Total("edgespool_requests_unavailable_total",
          "Requests answered unavailable: the uplink was down (for the ttl), or the broker refused.",
          [](In in) { return in.requests.unavailable; }),
    Total("edgespool_requests_busy_total", "Requests refused past requests.max_pending*.",
          [](In in) { return in.requests.busy; }),
    Total("edgespool_requests_late_answers_total",
          "Answers that came after their request timed out (or its producer left): dropped.",
          [](In in) { return in.requests.late_answers; }),
    Total("edgespool_requests_unknown_answers_total",
          "Answers on the reply topic with a correlation id not of this agent run: dropped.",
          [](In in) { return in.requests.unknown_answers; }),
    Level("edgespool_requests_pending", "Requests awaiting their answer (or the uplink).",
          [](In in) { return D(in.requests.pending); }),
    Total("edgespool_method_calls_total", "Method calls from the cloud.",
          [](In in) { return in.requests.calls; }),
    Total("edgespool_method_calls_answered_total", "Method calls answered by a local responder.",
          [](In in) { return in.requests.calls_answered; }),
    Total("edgespool_method_calls_no_handler_total",
          "Method calls answered no_handler: no responder (or it disconnected).",
          [](In in) { return in.requests.calls_no_handler; }),
    Total("edgespool_method_calls_timeout_total",
          "Method calls answered timeout: the responder did not answer in time.",
          [](In in) { return in.requests.calls_timeout; }),
    Total("edgespool_method_calls_refused_total",
          "Method calls malformed, too large, past max_pending, or with no response topic.",
          [](In in) { return in.requests.calls_refused; }),
    Total("edgespool_method_late_answers_total",
          "Responders' answers to calls no longer pending (timed out): dropped.",
          [](In in) { return in.requests.late_call_answers; }),
    Level("edgespool_method_calls_pending", "Method calls awaiting their responder's answer.",
          [](In in) { return D(in.requests.calls_pending); }),
    Level("edgespool_websocket_sessions", "WebSocket sessions open (docs/websocket.md).",
          [](In in) { return D(in.websocket.sessions); }),
    Total("edgespool_websocket_refused_total",
          "WebSocket connections refused: token (4401), origin (4403), max_sessions (4429).",
          [](In in) { return in.websocket.refused; }),
    Total("edgespool_websocket_closed_bad_total",
          "WebSocket sessions closed for a bad message: binary, too big, not a session message.",
          [](In in) { return in.websocket.closed_bad; }),
    Total("edgespool_websocket_closed_idle_total", "WebSocket sessions closed idle (4408).",
          [](In in) { return in.websocket.closed_idle; }),
    Total("edgespool_websocket_uplink_delivered_total",
          "Uplink messages queued to WebSocket sessions as they were stored.",
          [](In in) { return in.websocket.uplink_delivered; }),
    Total("edgespool_websocket_uplink_dropped_total",
          "Uplink messages dropped for WebSocket sessions that read too slowly.",
          [](In in) { return in.websocket.uplink_dropped; }),
};

// One registered row: its series and, for kMicrosAsSeconds, how much of
// the source's total has been exported (a counter only moves forward).
struct Series {
  const Row* row;
  Counter* counter = nullptr;
  Gauge* gauge = nullptr;
  uint64_t exported_us = 0;
};

void Refresh(Series& s, In in) {
  switch (s.row->kind) {
    case Kind::kCounter:
      s.counter->SetFromSource(s.row->total(in));
      break;
    case Kind::kMicrosAsSeconds: {
      uint64_t us = s.row->total(in);
      if (us > s.exported_us) {
        s.counter->Add(static_cast<double>(us - s.exported_us) / 1e6);
        s.exported_us = us;
      }
      break;
    }
    case Kind::kGauge:
      s.gauge->Set(s.row->value(in));
      break;
  }
}

}  // namespace

void AddAgentMetrics(MetricsRegistry& registry, std::function<void(MetricInputs*)> fill) {
  auto series = std::make_shared<std::vector<Series>>();
  for (const Row& row : kRows) {
    Series s{&row};
    if (row.kind == Kind::kGauge) {
      s.gauge = registry.AddGauge(row.name, row.help);
    } else {
      s.counter = registry.AddCounter(row.name, row.help);
    }
    series->push_back(s);
  }
  registry.AddCollector([series, fill = std::move(fill)] {
    MetricInputs in;
    fill(&in);
    for (Series& s : *series) Refresh(s, in);
  });
}

std::vector<double> LatencyBuckets() {
  return {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}

}  // namespace edgespool::agent
