// The status document: one JSON object, the same for `edgespool status
// --json`, the producer socket's `status` op and the retained status topic
// (edgespool/{node}/status). Field names are part of the contract:
//
//   {"node","version","online","uptime_s",
//    "uplink":{"state","url","connected_since_ms","last_error","last_error_ms"},
//    "last_sync_ms","pending":{"messages","bytes","oldest_ts_ms"},"inflight",
//    "totals":{"appended","sent","dead","dropped","expired","duplicates"},
//    "success_rate_1h","rate_msgs_per_s","rate_bytes_per_s","drain_eta_s",
//    "journal":{"file_bytes","max_bytes","fill"},"producers":{"connections"},
//    "downlink":{"inbox":{"messages","bytes","head_seq"},"received","stored",
//      "dead","unmatched","delivered","acked","dropped","expired",
//      "sessions":[{"name","durable","attached","position","inflight",
//                   "backlog","oldest_unacked_age_ms","delivered","acked",
//                   "dropped"}]}                      (when the downlink is on)
//    "config_digest","watermark_ms",
//    "watermark_follow":{"lag_ms","for_ms","expiry_s"}  (only while idle)
//    "ts_ms"}
//
// watermark_ms (UploadWatermark) tells central consumers that this node has
// nothing older left to send: every message it acknowledged with an original
// ts below it has been PUBACKed by the broker, or became dead, expired or
// dropped. Messages a producer stamps later with an older ts (its own clock,
// --ts) are the exception; `edgespool consume` releases those as late.
//
// watermark_follow: present while the node is idle (WatermarkIdle: nothing
// pending, nothing accepted within the commit slack) and
// status.watermark_interval is on. It says "nothing pending as of ts_ms: take
// my watermark as following my clock, lag_ms behind it, for for_ms after this
// document": watermark_ms + max(0, min(elapsed, for_ms) - lag_ms), elapsed
// measured by the consumer since the document (OrderingBuffer).
// An idle node therefore publishes once when it goes idle and then only every
// status.interval (for_ms = 1.5 x that), not every watermark_interval. lag_ms
// is the watermark_interval: a consumer following it waits no longer than it
// did for a node republishing every interval. The first message accepted
// after an idle document makes the agent publish a (not idle) document at
// once, ahead of that message on the same connection. expiry_s is the MQTT 5
// message expiry the document was published with: the broker lowers it by
// the time a retained copy waited, which tells a consumer that subscribes
// later how old the document is (docs/central.md, "Idle nodes").
#pragma once

#include <cstdint>
#include <deque>
#include <string>

#include "store/journal.h"

namespace edgespool::agent {

struct UplinkState {
  std::string state = "disconnected";  // connecting | connected | disconnected | backoff
  std::string url;                      // without credentials
  int64_t connected_since_ms = 0;
  std::string last_error;
  int64_t last_error_ms = 0;
};

struct StatusInputs {
  std::string node;
  bool online = true;
  int64_t now_ms = 0;
  int64_t started_ms = 0;
  UplinkState uplink;
  int64_t last_sync_ms = 0;
  store::JournalStats journal;
  uint64_t inflight = 0;
  double success_rate_1h = 1.0;
  double rate_msgs_per_s = 0;
  double rate_bytes_per_s = 0;  // written to the uplink
  uint64_t producer_connections = 0;
  std::string config_digest;
  std::string downlink_json;  // a JSON object (downlink.h); empty: left out
  // watermark_follow (only when follow_for_ms > 0: idle, watermark on).
  int64_t follow_lag_ms = 0;
  int64_t follow_for_ms = 0;
};

std::string RenderStatus(const StatusInputs& in);

// How long an acknowledged-to-be message may sit between the agent's clock
// reading (its ts) and its commit, where journal stats do not see it yet.
inline constexpr int64_t kWatermarkCommitSlackMs = 500;
// The oldest pending original ts, or now - kWatermarkCommitSlackMs if
// earlier or nothing is pending: nothing below it is left to upload.
int64_t UploadWatermark(const store::JournalStats& j, int64_t now_ms);
// Idle: nothing pending and nothing accepted within the commit slack (an
// accepted message not yet committed is not in the journal's counters).
bool WatermarkIdle(const store::JournalStats& j, int64_t now_ms, int64_t last_accept_ms);
// The MQTT 5 message expiry of an idle document (a week: a retained copy
// outlives any real silence; the will replaces it when the node dies).
inline constexpr uint32_t kIdleStatusExpiryS = 7 * 24 * 3600;
// The last will and the clean-shutdown document: {"node":...,"online":false}.
std::string RenderOffline(const std::string& node, int64_t now_ms);

// Success rate over a sliding hour in one-minute buckets: sent / (sent + dead).
class SuccessWindow {
 public:
  void Add(int64_t now_ms, uint64_t sent, uint64_t failed);
  double Rate(int64_t now_ms);  // 1.0 when nothing happened

 private:
  struct Bucket {
    int64_t minute;
    uint64_t sent, failed;
  };
  void Expire(int64_t now_ms);
  std::deque<Bucket> buckets_;
};

}  // namespace edgespool::agent
