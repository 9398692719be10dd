#include "agent/status_document.h"

#include <cmath>
#include <cstdio>

#include "agent/daemon.h"
#include "agent/protocol/json_writer.h"
#include "platform/json_escape.h"

namespace edgespool::agent {

namespace {

std::string Fixed(double v, int digits) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*f", digits, std::isfinite(v) ? v : 0.0);
  return buf;
}

std::string BrokersJson(const std::vector<std::string>& brokers) {
  std::string out = "[";
  for (size_t i = 0; i < brokers.size(); ++i) {
    if (i) out += ",";
    platform::AppendJsonString(&out, brokers[i]);
  }
  return out + "]";
}

}  // namespace

std::string RenderStatus(const StatusInputs& in) {
  using protocol::JsonObjectWriter;
  std::string uplink = std::move(JsonObjectWriter()
                           .Str("state", in.uplink.state)
                           .Str("url", in.uplink.url)
                           .Int("connected_since_ms", in.uplink.connected_since_ms)
                           .Str("last_error", in.uplink.last_error)
                           .Int("last_error_ms", in.uplink.last_error_ms)
                           .Raw("brokers", BrokersJson(in.uplink.brokers))
                           .Uint("failovers", in.uplink.failovers))
                           .Finish();
  const store::JournalStats& j = in.journal;
  // While a big journal counts its backlog after a crash (a few seconds
  // after start), messages and bytes are not known: left out, not 0.
  JsonObjectWriter pending_w;
  if (j.pending_counting) {
    pending_w.Bool("counting", true);
  } else {
    pending_w.Uint("messages", j.pending_count).Uint("bytes", j.pending_bytes);
  }
  std::string pending = std::move(pending_w.Int("oldest_ts_ms", j.oldest_pending_ts_ms)
                                      .Uint("scheduled", j.scheduled_count))
                            .Finish();
  std::string totals = std::move(JsonObjectWriter()
                           .Uint("appended", j.appended_total)
                           .Uint("sent", j.sent_total)
                           .Uint("dead", j.dead_total)
                           .Uint("dropped", j.dropped_total)
                           .Uint("expired", j.expired_total)
                           .Uint("duplicates", j.duplicate_total))
                           .Finish();
  std::string journal = std::move(JsonObjectWriter()
                            .Uint("file_bytes", j.file_bytes)
                            .Uint("max_bytes", j.max_bytes)
                            .Raw("fill", Fixed(j.fill_ratio, 4)))
                            .Finish();
  std::string producers =
      std::move(JsonObjectWriter().Uint("connections", in.producer_connections)).Finish();
  // Time to drain the backlog at the current upload rate; -1 when not moving
  // (or not counted yet).
  double eta = j.pending_counting       ? -1
               : in.rate_msgs_per_s > 0 ? static_cast<double>(j.pending_count) / in.rate_msgs_per_s
                                        : (j.pending_count == 0 ? 0 : -1);
  JsonObjectWriter doc;
  doc.Str("node", in.node)
      .Str("version", Version())
      .Bool("online", in.online)
      .Int("uptime_s", (in.now_ms - in.started_ms) / 1000)
      .Raw("uplink", uplink)
      .Int("last_sync_ms", in.last_sync_ms)
      .Raw("pending", pending)
      .Uint("inflight", in.inflight)
      .Raw("totals", totals)
      .Raw("success_rate_1h", Fixed(in.success_rate_1h, 4))
      .Raw("rate_msgs_per_s", Fixed(in.rate_msgs_per_s, 1))
      .Raw("rate_bytes_per_s", Fixed(in.rate_bytes_per_s, 0))
      .Raw("drain_eta_s", Fixed(eta, 0))
      .Raw("journal", journal)
      .Raw("producers", producers);
  if (!in.downlink_json.empty()) doc.Raw("downlink", in.downlink_json);
  doc.Str("config_digest", in.config_digest).Int("watermark_ms", UploadWatermark(j, in.now_ms));
  if (in.follow_for_ms > 0) {
    doc.Raw("watermark_follow", std::move(JsonObjectWriter()
                                              .Int("lag_ms", in.follow_lag_ms)
                                              .Int("for_ms", in.follow_for_ms)
                                              .Uint("expiry_s", kIdleStatusExpiryS))
                                    .Finish());
  }
  return std::move(doc.Int("ts_ms", in.now_ms)).Finish();
}

bool WatermarkIdle(const store::JournalStats& j, int64_t now_ms, int64_t last_accept_ms) {
  // A backlog still being counted (after a crash) is not known to be empty.
  return !j.pending_counting && j.pending_count == 0 &&
         now_ms - last_accept_ms > kWatermarkCommitSlackMs;
}

int64_t UploadWatermark(const store::JournalStats& j, int64_t now_ms) {
  int64_t bound = now_ms - kWatermarkCommitSlackMs;
  bool any = j.pending_count > 0 || (j.pending_counting && j.oldest_pending_ts_ms != 0);
  if (any && j.oldest_pending_ts_ms < bound) return j.oldest_pending_ts_ms;
  return bound;
}

std::string RenderOffline(const std::string& node, int64_t now_ms) {
  return std::move(protocol::JsonObjectWriter()
      .Str("node", node)
      .Str("version", Version())
      .Bool("online", false)
      .Int("ts_ms", now_ms))
      .Finish();
}

void SuccessWindow::Add(int64_t now_ms, uint64_t sent, uint64_t failed) {
  Expire(now_ms);
  int64_t minute = now_ms / 60000;
  if (buckets_.empty() || buckets_.back().minute != minute) buckets_.push_back({minute, 0, 0});
  buckets_.back().sent += sent;
  buckets_.back().failed += failed;
}

double SuccessWindow::Rate(int64_t now_ms) {
  Expire(now_ms);
  uint64_t sent = 0, failed = 0;
  for (const auto& b : buckets_) {
    sent += b.sent;
    failed += b.failed;
  }
  if (sent + failed == 0) return 1.0;
  return static_cast<double>(sent) / static_cast<double>(sent + failed);
}

void SuccessWindow::Expire(int64_t now_ms) {
  int64_t oldest = now_ms / 60000 - 59;
  while (!buckets_.empty() && buckets_.front().minute < oldest) buckets_.pop_front();
}

}  // namespace edgespool::agent
