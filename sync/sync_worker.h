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
//   - Memory is bounded: at most `window` publishes and max_inflight_bytes
//     of them (whichever is reached first) plus one fetch chunk are held.
//   - Fresh commits are served from memory (the journal's commit listener)
//     only while the lane they belong to is caught up: its last read found
//     nothing and no read is in flight, so taking them keeps upload order.
//     Taken rows are leased before any later read; a bounded number per
//     commit, and never while publishes wait for the window (those rows stay
//     in the journal and a read fetches them).
//
// Lanes: each priority class is a lane (served in (ts, seq) order); each
// live-first route adds a lane of the rows committed since the uplink came
// up (served in arrival order). Lanes share the uplink by stride scheduling:
// classes by `priority_weights`, live lanes so that the backlog behind them
// keeps `backlog_share` percent.
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
  int64_t bandwidth_limit = 0;  // bytes/s, 0 = unlimited
  uint32_t max_attempts = 0;    // 0 = unlimited
  std::string batch_topic = "edgespool/{node}/batch";
  uint32_t fetch_chunk = 2000;  // most rows leased per journal read
  // Shares of the uplink for high, normal, low priority while each has a
  // backlog (stride scheduling: low drains slowly but never starves).
  std::vector<uint32_t> priority_weights = {70, 20, 10};
  int64_t mark_flush_ms = 5;  // how long acked seqs wait to be marked in one txn
  // Percent of the uplink the backlog keeps while a live-first route has
  // fresh messages (1..100).
  uint32_t backlog_share = 20;
  // Publish bytes handed to the uplink and not yet acknowledged (at least one
  // publish always goes). Bounds memory in batch mode, where a window of 1000
  // frames could hold 1000 x batch_bytes; 4 MiB is 40 MB/s at 100 ms RTT.
  uint64_t max_inflight_bytes = 4u << 20;
  // Fresh commits go straight to the uplink while it keeps up (the in-memory
  // tail); false reads every row back from the journal (for comparison in
  // tests/bench/sync_tail_bench.cc).
  bool serve_from_memory = true;
};

struct SyncStats {
  uint64_t published_total = 0;  // PUBLISH packets handed to the uplink
  uint64_t messages_sent_total = 0;
  uint64_t batches_sent_total = 0;
  uint64_t dead_total = 0;
  uint64_t retried_total = 0;
  uint64_t payload_bytes_total = 0;  // raw payload bytes of messages acked
  uint64_t inflight_messages = 0;
  uint64_t inflight_publishes = 0;
  uint64_t inflight_bytes = 0;          // estimated wire bytes of the publishes in flight
  int64_t last_sync_ms = 0;             // wall time of the last PUBACK
  double rate_msgs_per_s = 0;           // acked messages, smoothed
  double rate_bytes_per_s = 0;          // bytes written to the uplink, smoothed
  uint64_t tail_messages_total = 0;     // served from memory, not read back from the journal
  uint64_t fetched_messages_total = 0;  // read from the journal
  std::string last_error;
};

class SyncWorker {
 public:
  // Called for every message that reached a final state here: sent, dead.
  using DeliveryListener =
      std::function<void(uint64_t seq, store::MessageState state, const std::string& reason)>;

  SyncWorker(platform::Loop& loop, store::Journal& journal, UplinkPort& uplink, SyncOptions options,
             const platform::Clock& clock);
  ~SyncWorker();
  SyncWorker(const SyncWorker&) = delete;
  SyncWorker& operator=(const SyncWorker&) = delete;

  // Registers with the journal and uplink and starts pumping.
  void Start();
  // Stops leasing new rows; in-flight publishes still settle.
  void StopFetching();
  void SetDeliveryListener(DeliveryListener listener) { on_delivery_ = std::move(listener); }
  // Seconds from handing a publish to the uplink to its PUBACK.
  void SetUploadLatencyListener(std::function<void(double)> l) {
    on_upload_latency_ = std::move(l);
  }

  const SyncStats& stats() const { return stats_; }
  // Route + upstream-topic table (for status and tests).
  const RouteTable& routes() const { return routes_; }
  // True when nothing is in flight, waiting or being marked.
  bool idle() const;
  // Rows may have become pending outside the commit path (e.g. dead letters
  // requeued): read the journal again.
  void Wake();
  // A reload: takes from `next` the routes, default_mode, priority_weights,
  // backlog_share, the batch settings (batch_messages, batch_bytes,
  // linger_ms, compression_level, batch_topic), bandwidth_limit and
  // max_attempts; the rest of `next` is ignored (fixed at construction).
  // Nothing pending is lost: open batches are closed first (their frames go
  // out under the old batch topic), publishes in flight settle as before,
  // and rows are routed by the new table from the next one enqueued. The
  // bandwidth bucket restarts full.
  void Reconfigure(const SyncOptions& next);

 private:
  struct Unit;  // one PUBLISH: a message or a batch frame, with its seqs

  struct Lane {
    int priority = -1;   // class lanes: 0..2
    size_t route = 0;    // live lanes: the live-first route
    double weight = 1;   // class lanes; live lanes derive theirs (Charge)
    bool empty = false;  // the last read found nothing; commits or releases wake it
    double vtime = 0;    // virtual time for weighted sharing
  };
  static constexpr size_t kClassLanes = 3;

  void Pump();
  void SchedulePump(int64_t delay_ms);
  void OnFetched(Result<std::vector<store::StoredMessage>> rows);
  void OnCommitted(std::vector<store::StoredMessage>& group);
  // The first commit seen connected opens the live lanes from its seq.
  void OpenLiveLanes(uint64_t first_seq);
  size_t LaneOf(const store::StoredMessage& row, size_t route) const;
  bool LaneActive(size_t lane) const;
  void Charge(size_t lane, size_t rows);
  void AfterEnqueue();
  void Enqueue(store::StoredMessage&& row, size_t route);
  void FlushBatch(size_t route);
  void FlushOpenBatches();
  void SendReady();
  void OnPublishResult(uint64_t token, const PublishResult& result);
  void OnUnitAcked(const Unit& unit);
  // kRetry: released to be read again, or dead after max_attempts.
  void RetryUnit(const Unit& unit);
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
  std::vector<Lane> lanes_;                 // kClassLanes classes, then live lanes
  std::vector<size_t> live_lane_of_route_;  // 0: the route is strict
  bool any_batch_route_ = false;
  size_t fetching_lane_ = 0;
  // First seq committed since the uplink came up (0: none yet): the live
  // lanes' rows start here.
  uint64_t live_from_seq_ = 0;
  int64_t last_empty_read_ns_ = 0;
  double wire_per_message_ = 0;  // estimated uplink bytes per message, smoothed   // the tail is
                                 // trusted for a while after a read found nothing
  void MarkLanesReady();
  int PickLane() const;
  // The lanes for routes_ and options_ (class weights, one live lane per
  // live-first route), keeping the class lanes' state.
  void BuildLanes();
  // Bumped by Reconfigure: a read started before it refers to a lane by an
  // index that may now mean another lane.
  uint64_t lanes_epoch_ = 0;
  uint64_t fetching_epoch_ = 0;

  struct OpenBatch {
    std::unique_ptr<batch::FrameEncoder> encoder;
    std::vector<uint64_t> seqs;
    std::vector<uint32_t> attempts;
    uint64_t payload_bytes = 0;
  };
  std::vector<OpenBatch> open_batches_;  // per route (batch routes only)

  std::deque<std::unique_ptr<Unit>> ready_;  // built, waiting for window/bandwidth
  std::unordered_map<uint64_t, std::unique_ptr<Unit>> inflight_;  // by uplink token

  std::vector<uint64_t> to_mark_sent_;
  bool marking_ = false;
  // Acked rows whose mark failed (disk full, journal unwritable): marked
  // again by mark_timer_ every kMarkRetryMs; their delivery was already
  // reported. Not part of idle(): they are safe on disk as pending.
  std::vector<uint64_t> mark_retry_;
  bool mark_failing_ = false;  // one error log per episode
  static constexpr uint64_t kMarkRetryMs = 1000;

  int64_t rate_window_start_ns_ = 0;
  uint64_t rate_window_count_ = 0;
  uint64_t rate_window_wire_ = 0;

  platform::TimerHandle pump_timer_;
  platform::TimerHandle linger_timer_;
  platform::TimerHandle mark_timer_;
  // Liveness check: a connected uplink with work and no PUBACK for a while
  // logs the scheduler's state (and wakes every lane if nothing is moving).
  platform::TimerHandle progress_timer_;
  uint64_t progress_seen_ = 0;
  int64_t progress_since_ns_ = 0;
  void CheckProgress();
  std::shared_ptr<bool> alive_;  // guards journal callbacks after destruction
};

}  // namespace edgespool::sync
