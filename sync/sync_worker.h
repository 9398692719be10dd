// The sync worker: keeps the uplink's in-flight window full with pending
// journal messages in upload order, and settles each one in the journal only
// once the broker has acknowledged it.
//
// Invariants:
//   - A row is marked sent only after its PUBACK (or its batch's) arrived;
//     never before, so a link that dies silently loses nothing.
//   - Rows handed to the uplink stay leased in the journal until resolved:
//     sent (acked), dead (refused, too large, out of attempts) or released
//     (kRetry), so nothing is sent twice by this process except by the
//     uplink's own resend after a reconnect.
//   - Memory is bounded by the window: at most `window` publishes (each at
//     most batch_bytes) plus one fetch chunk are held.
//
// Loop-thread-only. Lifetime: must be destroyed before the journal and the
// uplink port it was given.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "platform/clock.h"
#include "platform/loop.h"
#include "store/journal.h"
#include "sync/batch/batch_frame.h"
#include "sync/routes.h"
#include "sync/token_bucket.h"
#include "sync/uplink_port.h"

namespace edgespool::sync {

struct SyncOptions {
  std::string node = "edgespool";
  std::vector<Route> routes;  // a catch-all route is appended if missing
  UploadMode default_mode = UploadMode::kMessage;
  uint32_t batch_messages = 1000;
  uint32_t batch_bytes = 256 << 10;
  int64_t linger_ms = 50;
  int compression_level = 3;
  int64_t bandwidth_limit = 0;     // bytes/s, 0 = unlimited
  uint32_t max_attempts = 0;       // 0 = unlimited
  std::string batch_topic = "edgespool/{node}/batch";
  uint32_t fetch_chunk = 2000;     // most rows leased per journal read
  // Shares of the uplink for high, normal, low priority while each has a
  // backlog (stride scheduling: low drains slowly but never starves).
  std::vector<uint32_t> priority_weights = {70, 20, 10};
  int64_t mark_flush_ms = 5;       // how long acked seqs wait to be marked in one txn
};

struct SyncStats {
  uint64_t published_total = 0;    // PUBLISH packets handed to the uplink
  uint64_t messages_sent_total = 0;
  uint64_t batches_sent_total = 0;
  uint64_t dead_total = 0;
  uint64_t retried_total = 0;
  uint64_t payload_bytes_total = 0;  // raw payload bytes of messages acked
  uint64_t inflight_messages = 0;
  uint64_t inflight_publishes = 0;
  int64_t last_sync_ms = 0;          // wall time of the last PUBACK
  double rate_msgs_per_s = 0;        // acked messages, smoothed
  std::string last_error;
};

class SyncWorker {
 public:
  // Called for every message that reached a final state here: sent, dead.
  using DeliveryListener =
      std::function<void(uint64_t seq, store::MessageState state, const std::string& reason)>;

  SyncWorker(platform::Loop& loop, store::Journal& journal, UplinkPort& uplink,
             SyncOptions options, const platform::Clock& clock);
  ~SyncWorker();
  SyncWorker(const SyncWorker&) = delete;
  SyncWorker& operator=(const SyncWorker&) = delete;

  // Registers with the journal and uplink and starts pumping.
  void Start();
  // Stops leasing new rows; in-flight publishes still settle.
  void StopFetching();
  void SetDeliveryListener(DeliveryListener listener) { on_delivery_ = std::move(listener); }
  // Seconds from handing a publish to the uplink to its PUBACK.
  void SetUploadLatencyListener(std::function<void(double)> l) { on_upload_latency_ = std::move(l); }

  const SyncStats& stats() const { return stats_; }
  // Route + upstream-topic table (for status and tests).
  const RouteTable& routes() const { return routes_; }
  // True when nothing is in flight, waiting or being marked.
  bool idle() const;

 private:
  struct Unit;  // one PUBLISH: a message or a batch frame, with its seqs

  void Pump();
  void SchedulePump(int64_t delay_ms);
  void OnFetched(Result<std::vector<store::StoredMessage>> rows);
  void Enqueue(store::StoredMessage&& row);
  void FlushBatch(size_t route);
  void FlushOpenBatches();
  void SendReady();
  void OnPublishResult(uint64_t token, const PublishResult& result);
  void MarkDead(std::vector<std::pair<uint64_t, std::string>> dead);
  void FlushMarks();
  void UpdateRate(uint64_t acked);

  store::Journal& journal_;
  UplinkPort& uplink_;
  SyncOptions options_;
  const platform::Clock& clock_;
  RouteTable routes_;
  std::string batch_topic_;
  TokenBucket bandwidth_;
  SyncStats stats_;
  DeliveryListener on_delivery_;
  std::function<void(double)> on_upload_latency_;

  bool started_ = false;
  bool fetching_ = false;
  bool fetch_stopped_ = false;
  // Per priority: the last read of that class found nothing (wait for commits
  // or releases), and its virtual time for weighted sharing.
  bool class_empty_[3] = {false, false, false};
  double class_vtime_[3] = {0, 0, 0};
  int fetching_class_ = -1;
  void MarkClassesReady();
  int PickClass() const;

  struct OpenBatch {
    std::unique_ptr<batch::FrameEncoder> encoder;
    std::vector<uint64_t> seqs;
    std::vector<uint32_t> attempts;
    uint64_t payload_bytes = 0;
  };
  std::vector<OpenBatch> open_batches_;  // per route (batch routes only)

  std::deque<std::unique_ptr<Unit>> ready_;                   // built, waiting for window/bandwidth
  std::unordered_map<uint64_t, std::unique_ptr<Unit>> inflight_;  // by uplink token

  std::vector<uint64_t> to_mark_sent_;
  bool marking_ = false;

  int64_t rate_window_start_ns_ = 0;
  uint64_t rate_window_count_ = 0;

  platform::TimerHandle pump_timer_;
  platform::TimerHandle linger_timer_;
  platform::TimerHandle mark_timer_;
  std::shared_ptr<bool> alive_;  // guards journal callbacks after destruction
};

}  // namespace edgespool::sync
