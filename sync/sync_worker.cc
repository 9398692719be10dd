#include "sync/sync_worker.h"

#include <algorithm>

#include "platform/log.h"
#include "sync/crypto/sealed.h"

namespace edgespool::sync {

// One PUBLISH and the journal rows it carries.
struct SyncWorker::Unit {
  OutboundPublish publish;
  std::vector<uint64_t> seqs;
  std::vector<uint32_t> attempts;  // per seq, as fetched
  uint64_t payload_bytes = 0;      // raw payload bytes carried
  bool is_batch = false;
  int64_t sent_ns = 0;      // when handed to the uplink
  uint64_t wire_bytes = 0;  // estimated size on the wire
};

namespace {

// How long the in-memory tail is trusted after a read found a lane empty;
// then one read checks for rows that became pending some other way.
constexpr int64_t kTailTrustNs = 1000000000;
constexpr uint64_t kProgressCheckMs = 5000;
constexpr int64_t kBandwidthLookaheadMs = 100;
constexpr int64_t kStallNs = 10000000000;  // PUBACKs overdue this long get logged

std::string ReasonText(const PublishResult& r) {
  char code[8];
  std::snprintf(code, sizeof code, "0x%02x", r.reason_code);
  std::string s = "broker refused (" + std::string(code) + ")";
  if (!r.reason.empty()) s += ": " + r.reason;
  return s;
}

// The seal of a journal row sealed by the agent (its es-enc header), as a
// batch record's field. A header that does not parse stays a header: the
// consumer reports it.
std::optional<batch::RecordSeal> SealOf(const store::Headers& headers) {
  for (const auto& h : headers) {
    if (h.first != crypto::kEncHeader) continue;
    auto sealed = crypto::ParseSealed(h.second);
    if (!sealed.ok()) return std::nullopt;
    batch::RecordSeal seal;
    seal.key_id = std::move(sealed->key_id);
    seal.nonce = sealed->nonce;
    return seal;
  }
  return std::nullopt;
}

}  // namespace

SyncWorker::SyncWorker(platform::Loop& loop, store::Journal& journal, UplinkPort& uplink,
                       SyncOptions options, const platform::Clock& clock)
    : journal_(journal),
      uplink_(uplink),
      options_(std::move(options)),
      clock_(clock),
      routes_(options_.routes, options_.node, options_.default_mode),
      batch_topic_(ExpandTopicTemplate(options_.batch_topic, options_.node, "")),
      bandwidth_(
          static_cast<double>(options_.bandwidth_limit),
          static_cast<double>(std::max<int64_t>(options_.bandwidth_limit, options_.batch_bytes)),
          clock.MonotonicNs()),
      open_batches_(routes_.size()),
      pump_timer_(loop),
      linger_timer_(loop),
      mark_timer_(loop),
      progress_timer_(loop),
      alive_(std::make_shared<bool>(true)) {
  BuildLanes();
}

void SyncWorker::BuildLanes() {
  for (size_t c = 0; c < kClassLanes; ++c) {
    if (lanes_.size() <= c) {
      Lane lane;  // not empty: the first read finds out
      lane.priority = static_cast<int>(c);
      lanes_.push_back(lane);
    }
    uint32_t w = c < options_.priority_weights.size() ? options_.priority_weights[c] : 1;
    lanes_[c].weight = std::max<uint32_t>(1, w);
  }
  lanes_.resize(kClassLanes);
  any_batch_route_ = false;
  live_lane_of_route_.assign(routes_.size(), 0);
  for (size_t r = 0; r < routes_.size(); ++r) {
    any_batch_route_ = any_batch_route_ || routes_.route(r).mode == UploadMode::kBatch;
    if (routes_.route(r).order != UploadOrder::kLiveFirst) continue;
    Lane lane;
    lane.route = r;
    lane.empty = true;  // opens with the first commit after connecting
    live_lane_of_route_[r] = lanes_.size();
    lanes_.push_back(lane);
  }
}

void SyncWorker::Reconfigure(const SyncOptions& next) {
  // Frames being filled were built for the old routes and batch settings:
  // they go out as they are, ahead of anything built from now on.
  FlushOpenBatches();
  options_.routes = next.routes;
  options_.default_mode = next.default_mode;
  options_.batch_messages = next.batch_messages;
  options_.batch_bytes = next.batch_bytes;
  options_.linger_ms = next.linger_ms;
  options_.compression_level = next.compression_level;
  options_.bandwidth_limit = next.bandwidth_limit;
  options_.max_attempts = next.max_attempts;
  options_.batch_topic = next.batch_topic;
  options_.priority_weights = next.priority_weights;
  options_.backlog_share = next.backlog_share;
  routes_ = RouteTable(options_.routes, options_.node, options_.default_mode);
  batch_topic_ = ExpandTopicTemplate(options_.batch_topic, options_.node, "");
  bandwidth_ = TokenBucket(
      static_cast<double>(options_.bandwidth_limit),
      static_cast<double>(std::max<int64_t>(options_.bandwidth_limit, options_.batch_bytes)),
      clock_.MonotonicNs());
  open_batches_.clear();  // all empty after the flush; encoders are made on demand
  open_batches_.resize(routes_.size());
  ++lanes_epoch_;
  BuildLanes();
  if (live_from_seq_ > 0) {
    // Connected with the live lanes open: a new live lane starts caught up
    // at the backlog's virtual time, and a read finds what it already has.
    OpenLiveLanes(live_from_seq_);
    for (size_t i = kClassLanes; i < lanes_.size(); ++i) lanes_[i].empty = false;
  }
  MarkLanesReady();
  Pump();
}

SyncWorker::~SyncWorker() {
  *alive_ = false;
  journal_.SetCommitListener(nullptr);
  journal_.SetDueListener(nullptr);
  uplink_.SetListener({});
}

void SyncWorker::Start() {
  started_ = true;
  std::weak_ptr<bool> alive = alive_;
  journal_.SetCommitListener([this, alive](std::vector<store::StoredMessage>& group) {
    if (alive.expired()) return;
    OnCommitted(group);
  });
  // Scheduled rows that fell due are pending now, behind the scan cursors:
  // every lane reads again (they come out in their original ts order).
  journal_.SetDueListener([this, alive] {
    if (alive.expired() || !started_) return;
    Wake();
  });
  UplinkPort::Listener l;
  l.on_connected = [this] {
    stats_.last_error.clear();
    live_from_seq_ = 0;  // what was committed before now is backlog
    MarkLanesReady();
    for (size_t i = kClassLanes; i < lanes_.size(); ++i) lanes_[i].empty = true;
    Pump();
  };
  l.on_disconnected = [this](const std::string& why) {
    stats_.last_error = why;
    live_from_seq_ = 0;
  };
  l.on_publish_result = [this](uint64_t token, const PublishResult& r) {
    OnPublishResult(token, r);
  };
  l.on_writable = [this] { Pump(); };
  uplink_.SetListener(std::move(l));
  progress_timer_.Start(kProgressCheckMs, kProgressCheckMs, [this] { CheckProgress(); });
  progress_timer_.Unref();  // never what keeps the loop alive
  Pump();
}

// A stall must be visible in the log, with what the scheduler was waiting
// for; and if nothing at all is in flight or being read, a lost wakeup is the
// only explanation, so every lane is woken.
void SyncWorker::CheckProgress() {
  int64_t now = clock_.MonotonicNs();
  uint64_t done = stats_.messages_sent_total + stats_.dead_total + stats_.retried_total;
  bool waiting = !ready_.empty() || !inflight_.empty() || PickLane() >= 0;
  if (done != progress_seen_ || !uplink_.connected() || !waiting || fetch_stopped_) {
    progress_seen_ = done;
    progress_since_ns_ = now;
    return;
  }
  if (now - progress_since_ns_ < kStallNs) return;
  std::string lanes;
  for (size_t i = 0; i < lanes_.size(); ++i) {
    lanes += (i ? "," : "") + std::string(lanes_[i].empty ? "empty" : "ready");
  }
  ES_LOG_WARN("sync: no progress",
              {{"for_s", std::to_string((now - progress_since_ns_) / 1000000000)},
               {"inflight", std::to_string(inflight_.size())},
               {"ready", std::to_string(ready_.size())},
               {"window_free", std::to_string(uplink_.window_free())},
               {"fetching", fetching_ ? "yes" : "no"},
               {"marking", marking_ ? "yes" : "no"},
               {"lanes", lanes}});
  progress_since_ns_ = now;
  if (inflight_.empty() && !fetching_) Wake();
}

void SyncWorker::StopFetching() {
  fetch_stopped_ = true;
  FlushOpenBatches();
}

void SyncWorker::Wake() {
  MarkLanesReady();
  Pump();
}

bool SyncWorker::idle() const {
  if (!ready_.empty() || !inflight_.empty() || !to_mark_sent_.empty() || marking_ || fetching_) {
    return false;
  }
  for (const auto& b : open_batches_) {
    if (!b.seqs.empty()) return false;
  }
  return true;
}

// New rows may be anywhere: every lane is worth a read again. A lane that
// was idle re-enters at the current virtual time, so a burst after a quiet
// spell does not get the whole uplink to "catch up".
void SyncWorker::MarkLanesReady() {
  double now = -1;
  for (size_t i = 0; i < lanes_.size(); ++i) {
    if (LaneActive(i) && !lanes_[i].empty && (now < 0 || lanes_[i].vtime < now)) {
      now = lanes_[i].vtime;
    }
  }
  for (auto& lane : lanes_) {
    if (lane.empty) {
      lane.empty = false;
      if (now >= 0) lane.vtime = std::max(lane.vtime, now);
    }
  }
}

// A live lane exists only once something was committed since the uplink
// came up; before that its rows are all backlog.
bool SyncWorker::LaneActive(size_t lane) const { return lane < kClassLanes || live_from_seq_ > 0; }

int SyncWorker::PickLane() const {
  int best = -1;
  for (size_t i = 0; i < lanes_.size(); ++i) {
    if (lanes_[i].empty || !LaneActive(i)) continue;
    if (best < 0 || lanes_[i].vtime < lanes_[static_cast<size_t>(best)].vtime) {
      best = static_cast<int>(i);
    }
  }
  return best;
}

// Stride scheduling: a lane pays for what it got in proportion to its weight.
// A live lane's weight follows the backlog classes that have rows, so that
// they keep backlog_share percent together, whichever of them are busy.
void SyncWorker::Charge(size_t lane, size_t rows) {
  double weight = lanes_[lane].weight;
  if (lane >= kClassLanes) {
    double backlog = 0;
    for (size_t c = 0; c < kClassLanes; ++c) backlog += lanes_[c].empty ? 0 : lanes_[c].weight;
    uint32_t share = std::clamp<uint32_t>(options_.backlog_share, 1, 100);
    weight = std::max(1.0, backlog * (100.0 - share) / share);
  }
  lanes_[lane].vtime += static_cast<double>(rows) / weight;
}

size_t SyncWorker::LaneOf(const store::StoredMessage& row, size_t route) const {
  size_t live = live_lane_of_route_[route];
  if (live != 0 && live_from_seq_ > 0 && row.seq >= live_from_seq_) return live;
  return static_cast<size_t>(row.message.priority) % kClassLanes;
}

void SyncWorker::SchedulePump(int64_t delay_ms) {
  if (pump_timer_.active()) return;
  pump_timer_.Start(static_cast<uint64_t>(std::max<int64_t>(delay_ms, 1)), 0, [this] { Pump(); });
}

// The scheduler: send what is built, then lease more rows if the window still
// has room. Cheap to call often; every event that may free room calls it.
void SyncWorker::Pump() {
  if (!started_) return;
  SendReady();
  if (fetching_ || fetch_stopped_ || !uplink_.connected()) return;
  int picked = PickLane();
  if (picked < 0) return;       // every lane read empty: a commit or release wakes us
  if (!ready_.empty()) return;  // waiting for window or bandwidth, not for rows
  size_t free = uplink_.window_free();
  if (free == 0) return;
  // A batch route turns many rows into one publish: lease enough to fill it.
  bool any_batch = any_batch_route_;
  size_t want = any_batch ? options_.batch_messages * std::min<size_t>(free, 4) : free;
  want = std::min<size_t>(want, options_.fetch_chunk);
  if (options_.bandwidth_limit > 0) {
    // Rows waiting for bandwidth cannot be overtaken by another lane: lease
    // only about kBandwidthLookaheadMs worth of the link at a time.
    double per_message = wire_per_message_ > 0 ? wire_per_message_ : 256.0;
    double fits = static_cast<double>(options_.bandwidth_limit) * kBandwidthLookaheadMs / 1000.0 /
                  per_message;
    want = std::min(want, static_cast<size_t>(std::max(1.0, fits)));
  }
  store::FetchSpec spec;
  spec.max_messages = want;
  spec.max_bytes = any_batch ? std::max<size_t>(options_.batch_bytes * 4, 4u << 20) : 4u << 20;
  const Lane& lane = lanes_[static_cast<size_t>(picked)];
  if (lane.priority >= 0) {
    spec.priority = static_cast<store::Priority>(lane.priority);
  } else {
    // The route's filter: a row an earlier route also matches comes along
    // too (and goes out under its own route), a little early.
    spec.min_seq = live_from_seq_;
    spec.topic_filter = routes_.route(lane.route).match;
  }
  fetching_ = true;
  fetching_lane_ = static_cast<size_t>(picked);
  fetching_epoch_ = lanes_epoch_;
  std::weak_ptr<bool> alive = alive_;
  journal_.FetchPending(spec, [this, alive](Result<std::vector<store::StoredMessage>> rows) {
    if (alive.expired()) return;
    OnFetched(std::move(rows));
  });
}

void SyncWorker::OnFetched(Result<std::vector<store::StoredMessage>> rows) {
  fetching_ = false;
  if (!rows.ok()) {
    stats_.last_error = "journal read: " + rows.status().ToString();
    ES_LOG_ERROR("sync: journal read failed", {{"error", rows.status().ToString()}});
    SchedulePump(1000);
    return;
  }
  size_t lane = fetching_lane_;
  if (fetching_epoch_ != lanes_epoch_) {
    // The lanes were rebuilt while this read ran: its lane index may name
    // another lane now. Keep the rows, credit no lane, and let every lane read.
    stats_.fetched_messages_total += rows->size();
    for (auto& row : *rows) Enqueue(std::move(row), routes_.Find(row.message.topic));
    MarkLanesReady();
    AfterEnqueue();
    return;
  }
  if (rows->empty()) {
    lanes_[lane].empty = true;
    last_empty_read_ns_ = clock_.MonotonicNs();
    if (PickLane() >= 0) return Pump();  // another lane may have rows
    FlushOpenBatches();                  // nothing more is coming right now: don't wait for linger
    SendReady();
    return;
  }
  Charge(lane, rows->size());
  stats_.fetched_messages_total += rows->size();
  for (auto& row : *rows) Enqueue(std::move(row), routes_.Find(row.message.topic));
  AfterEnqueue();
}

// The live lanes open caught up (nothing at or after this seq was read yet),
// at the backlog's virtual time: no credit for the outage.
void SyncWorker::OpenLiveLanes(uint64_t first_seq) {
  live_from_seq_ = first_seq;
  double now_vtime = -1;
  for (size_t i = 0; i < kClassLanes; ++i) {
    if (!lanes_[i].empty && (now_vtime < 0 || lanes_[i].vtime < now_vtime))
      now_vtime = lanes_[i].vtime;
  }
  for (size_t i = kClassLanes; i < lanes_.size(); ++i) {
    lanes_[i].vtime = std::max(lanes_[i].vtime, now_vtime);
  }
}

// Serves a fresh commit group from memory where its lane is caught up, so a
// keeping-up uplink never reads back what it was just handed. Rows of a lane
// with a backlog (or while publishes wait for the window) stay in the journal
// and wake their lane for a read.
void SyncWorker::OnCommitted(std::vector<store::StoredMessage>& group) {
  if (!started_ || group.empty()) return;
  bool connected = uplink_.connected();
  if (connected && live_from_seq_ == 0) OpenLiveLanes(group.front().seq);
  int64_t now = clock_.MonotonicNs();
  bool may_take = options_.serve_from_memory && connected && !fetching_ && !fetch_stopped_ &&
                  ready_.empty() && group.size() <= options_.fetch_chunk &&
                  last_empty_read_ns_ > 0 && now - last_empty_read_ns_ < kTailTrustNs;
  struct Taken {
    size_t lane;
    size_t route;
    store::StoredMessage* row;
  };
  std::vector<Taken> taken;
  bool wake = false;
  int64_t wall = clock_.WallMs();
  for (auto& row : group) {
    size_t route = routes_.Find(row.message.topic);
    size_t lane = LaneOf(row, route);
    bool expired = row.message.expires_at_ms && *row.message.expires_at_ms <= wall;
    if (may_take && lanes_[lane].empty && LaneActive(lane) && !expired) {
      taken.push_back({lane, route, &row});
    } else if (!expired) {
      wake = true;
    }
  }
  if (wake) MarkLanesReady();
  if (!taken.empty()) {
    // The order a read would give: class lanes by (priority, ts, seq), live
    // lanes by seq; lanes in index order.
    std::stable_sort(taken.begin(), taken.end(), [this](const Taken& a, const Taken& b) {
      if (a.lane != b.lane) return a.lane < b.lane;
      if (lanes_[a.lane].priority < 0) return false;
      return a.row->message.ts_ms < b.row->message.ts_ms;
    });
    std::vector<uint64_t> seqs;
    seqs.reserve(taken.size());
    for (const Taken& t : taken) seqs.push_back(t.row->seq);
    journal_.Lease(std::move(seqs));  // before any later read can see them
    // Sorted by lane: each lane pays once for its run of rows.
    for (size_t i = 0, run_start = 0; i < taken.size(); ++i) {
      Enqueue(std::move(*taken[i].row), taken[i].route);
      if (i + 1 == taken.size() || taken[i + 1].lane != taken[i].lane) {
        Charge(taken[i].lane, i + 1 - run_start);
        run_start = i + 1;
      }
    }
    stats_.tail_messages_total += taken.size();
    AfterEnqueue();
    return;
  }
  Pump();
}

// Batches not yet full wait up to linger for more rows.
void SyncWorker::AfterEnqueue() {
  bool open = false;
  for (const auto& b : open_batches_) open = open || !b.seqs.empty();
  if (open && !linger_timer_.active()) {
    linger_timer_.Start(static_cast<uint64_t>(std::max<int64_t>(options_.linger_ms, 0)), 0, [this] {
      FlushOpenBatches();
      SendReady();
      Pump();
    });
  }
  Pump();
}

void SyncWorker::Enqueue(store::StoredMessage&& row, size_t r) {
  const store::Message& m = row.message;
  const Route& route = routes_.route(r);
  if (route.mode == UploadMode::kBatch) {
    OpenBatch& b = open_batches_[r];
    if (!b.encoder) {
      b.encoder = std::make_unique<batch::FrameEncoder>(options_.node, batch::Codec::kZstd,
                                                        options_.compression_level);
    }
    // A sealed payload's descriptor (the journal's es-enc header) becomes
    // the record's seal field (batch_frame.h), not a header.
    std::optional<batch::RecordSeal> seal = SealOf(m.headers);
    if (!b.encoder->CanAdd(seal.has_value())) FlushBatch(r);
    if (seal) {
      store::Headers rest;
      for (const auto& h : m.headers) {
        if (h.first != crypto::kEncHeader) rest.push_back(h);
      }
      b.encoder->Add(row.seq, m.ts_ms, m.topic, m.msg_id, rest, m.payload, &*seal);
    } else {
      b.encoder->Add(row.seq, m.ts_ms, m.topic, m.msg_id, m.headers, m.payload);
    }
    b.seqs.push_back(row.seq);
    b.attempts.push_back(row.attempts);
    b.payload_bytes += m.payload.size();
    if (b.seqs.size() >= options_.batch_messages ||
        b.encoder->raw_bytes() >= options_.batch_bytes) {
      FlushBatch(r);
    }
    return;
  }
  auto unit = std::make_unique<Unit>();
  unit->publish.topic = routes_.UpstreamTopic(r, m.topic);
  unit->publish.payload = m.payload;
  unit->seqs.push_back(row.seq);
  unit->attempts.push_back(row.attempts);
  unit->payload_bytes = m.payload.size();
  if (uplink_.properties_supported()) {
    auto& props = unit->publish.user_properties;
    props.reserve(5 + m.headers.size());
    props.emplace_back("es-ts", std::to_string(m.ts_ms));
    props.emplace_back("es-seq", std::to_string(row.seq));
    props.emplace_back("es-node", options_.node);
    if (!m.msg_id.empty()) props.emplace_back("es-id", m.msg_id);
    // The local topic, when the route's upstream_topic changed it (e.g. a
    // {part:N} prefix): consumers order and report by the local topic.
    if (unit->publish.topic != m.topic) props.emplace_back("es-topic", m.topic);
    for (const auto& h : m.headers) props.push_back(h);
    if (m.expires_at_ms) {
      int64_t left_ms = *m.expires_at_ms - clock_.WallMs();
      unit->publish.message_expiry_s =
          static_cast<uint32_t>(std::max<int64_t>(1, (left_ms + 999) / 1000));
    }
  }
  ready_.push_back(std::move(unit));
}

void SyncWorker::FlushBatch(size_t r) {
  OpenBatch& b = open_batches_[r];
  if (b.seqs.empty()) return;
  auto frame = b.encoder->Finish();
  auto unit = std::make_unique<Unit>();
  unit->is_batch = true;
  unit->seqs = std::move(b.seqs);
  unit->attempts = std::move(b.attempts);
  unit->payload_bytes = b.payload_bytes;
  b.seqs.clear();
  b.attempts.clear();
  b.payload_bytes = 0;
  if (!frame.ok()) {
    // Only an internal zstd failure gets here; release the rows to retry.
    ES_LOG_ERROR("sync: batch encoding failed", {{"error", frame.status().ToString()}});
    std::weak_ptr<bool> alive = alive_;
    journal_.Release(unit->seqs, false, [this, alive](Status) {
      if (alive.expired()) return;
      MarkLanesReady();
      SchedulePump(1000);
    });
    return;
  }
  unit->publish.topic = batch_topic_;
  unit->publish.payload = std::move(*frame);
  ready_.push_back(std::move(unit));
}

void SyncWorker::FlushOpenBatches() {
  linger_timer_.Stop();
  for (size_t r = 0; r < open_batches_.size(); ++r) FlushBatch(r);
}

void SyncWorker::SendReady() {
  uint32_t max_packet = uplink_.max_packet_size();
  while (!ready_.empty() && uplink_.connected() && uplink_.window_free() > 0) {
    Unit& u = *ready_.front();
    // Topic + payload + fixed header and properties: a conservative estimate
    // of the packet; the client rechecks exactly and rejects what won't fit.
    size_t props = 0;
    for (const auto& p : u.publish.user_properties) props += 5 + p.first.size() + p.second.size();
    size_t estimate = u.publish.payload.size() + u.publish.topic.size() + props + 16;
    if (max_packet != 0 && estimate > max_packet) {
      std::vector<std::pair<uint64_t, std::string>> dead;
      for (uint64_t seq : u.seqs) {
        dead.emplace_back(seq, "message of " + std::to_string(estimate) +
                                   " bytes exceeds the broker's maximum packet size of " +
                                   std::to_string(max_packet));
      }
      ready_.pop_front();
      MarkDead(std::move(dead));
      continue;
    }
    if (!inflight_.empty() && stats_.inflight_bytes + estimate > options_.max_inflight_bytes) {
      return;  // a PUBACK frees room and pumps again
    }
    int64_t now = clock_.MonotonicNs();
    if (!bandwidth_.TryTake(static_cast<double>(estimate), now)) {
      SchedulePump(bandwidth_.WaitMs(static_cast<double>(estimate), now));
      return;
    }
    std::unique_ptr<Unit> unit = std::move(ready_.front());
    ready_.pop_front();
    double per_message = static_cast<double>(estimate) / static_cast<double>(unit->seqs.size());
    wire_per_message_ =
        wire_per_message_ == 0 ? per_message : 0.9 * wire_per_message_ + 0.1 * per_message;
    stats_.inflight_messages += unit->seqs.size();
    ++stats_.inflight_publishes;
    ++stats_.published_total;
    unit->sent_ns = now;
    unit->wire_bytes = estimate;
    stats_.inflight_bytes += estimate;
    // Retries go back through the journal (Release), so the bytes need not be kept.
    uint64_t token = uplink_.Publish(std::move(unit->publish));
    inflight_.emplace(token, std::move(unit));
  }
}

void SyncWorker::OnPublishResult(uint64_t token, const PublishResult& result) {
  auto it = inflight_.find(token);
  if (it == inflight_.end()) return;  // not ours (e.g. the status publish)
  std::unique_ptr<Unit> unit = std::move(it->second);
  inflight_.erase(it);
  stats_.inflight_messages -= unit->seqs.size();
  --stats_.inflight_publishes;
  stats_.inflight_bytes -= unit->wire_bytes;
  switch (result.outcome) {
    case PublishOutcome::kAcked:
      OnUnitAcked(*unit);
      break;
    case PublishOutcome::kRejected: {
      std::string why = ReasonText(result);
      std::vector<std::pair<uint64_t, std::string>> dead;
      for (uint64_t seq : unit->seqs) dead.emplace_back(seq, why);
      MarkDead(std::move(dead));
      break;
    }
    case PublishOutcome::kRetry:
      RetryUnit(*unit);
      break;
  }
  Pump();
}

void SyncWorker::OnUnitAcked(const Unit& unit) {
  stats_.messages_sent_total += unit.seqs.size();
  if (unit.is_batch) ++stats_.batches_sent_total;
  stats_.payload_bytes_total += unit.payload_bytes;
  stats_.last_sync_ms = clock_.WallMs();
  UpdateRate(unit.seqs.size());
  if (on_upload_latency_) {
    on_upload_latency_(static_cast<double>(clock_.MonotonicNs() - unit.sent_ns) / 1e9);
  }
  to_mark_sent_.insert(to_mark_sent_.end(), unit.seqs.begin(), unit.seqs.end());
  if (to_mark_sent_.size() >= 4096) {
    FlushMarks();
  } else if (!mark_timer_.active()) {
    mark_timer_.Start(static_cast<uint64_t>(options_.mark_flush_ms), 0, [this] { FlushMarks(); });
  }
}

void SyncWorker::RetryUnit(const Unit& unit) {
  stats_.retried_total += unit.seqs.size();
  std::vector<uint64_t> retry;
  std::vector<std::pair<uint64_t, std::string>> dead;
  for (size_t i = 0; i < unit.seqs.size(); ++i) {
    if (options_.max_attempts > 0 && unit.attempts[i] + 1 >= options_.max_attempts) {
      dead.emplace_back(unit.seqs[i],
                        "gave up after " + std::to_string(options_.max_attempts) + " attempts");
    } else {
      retry.push_back(unit.seqs[i]);
    }
  }
  if (!dead.empty()) MarkDead(std::move(dead));
  if (retry.empty()) return;
  // Read again only once the leases are gone, or the read finds nothing.
  std::weak_ptr<bool> alive = alive_;
  journal_.Release(std::move(retry), /*count_attempt=*/true, [this, alive](Status s) {
    if (alive.expired()) return;
    if (!s.ok()) ES_LOG_ERROR("sync: release failed", {{"error", s.ToString()}});
    MarkLanesReady();
    Pump();
  });
  MarkLanesReady();  // a read made from now on runs after the release
}

void SyncWorker::MarkDead(std::vector<std::pair<uint64_t, std::string>> dead) {
  stats_.dead_total += dead.size();
  ES_LOG_WARN("sync: dead letters", {{"count", std::to_string(dead.size())},
                                     {"first_seq", std::to_string(dead.front().first)},
                                     {"reason", dead.front().second}});
  // The listener hears of them once the journal has marked them, never in
  // this call: a message too large for the broker is dead-lettered straight
  // from OnCommitted, which runs before the commit's append callbacks, where
  // the producer server registers the ack:"delivered" waiters. Told here,
  // the waiter would come after its answer and wait forever.
  std::vector<std::pair<uint64_t, std::string>> notify;
  if (on_delivery_) notify = dead;
  std::weak_ptr<bool> alive = alive_;
  journal_.MarkDead(std::move(dead), [this, alive, notify = std::move(notify)](Status s) {
    if (!s.ok()) ES_LOG_ERROR("sync: marking dead letters failed", {{"error", s.ToString()}});
    if (alive.expired() || !on_delivery_) return;
    for (const auto& [seq, why] : notify) on_delivery_(seq, store::MessageState::kDead, why);
  });
}

// Marks acked rows sent in one transaction. A failed mark (a full or
// unwritable disk) leaves the rows pending on disk and leased (the journal
// keeps the leases, so they are not uploaded again while running): they are
// marked again every kMarkRetryMs until it works, and at worst sent again
// after a reconnect or a restart. Their delivery was reported once, here.
void SyncWorker::FlushMarks() {
  mark_timer_.Stop();
  if ((to_mark_sent_.empty() && mark_retry_.empty()) || marking_) return;
  std::vector<uint64_t> seqs;
  seqs.swap(to_mark_sent_);
  if (on_delivery_) {
    for (uint64_t seq : seqs) on_delivery_(seq, store::MessageState::kSent, "");
  }
  seqs.insert(seqs.end(), mark_retry_.begin(), mark_retry_.end());
  mark_retry_.clear();
  marking_ = true;
  std::weak_ptr<bool> alive = alive_;
  std::vector<uint64_t> attempt = seqs;
  journal_.MarkSent(std::move(attempt), [this, alive, seqs = std::move(seqs)](Status s) mutable {
    if (alive.expired()) return;
    marking_ = false;
    if (!s.ok()) {
      stats_.last_error = "journal mark sent: " + s.ToString();
      if (!mark_failing_) {
        ES_LOG_ERROR(
            "sync: marking sent failed; retrying every second (the rows stay pending "
            "and are not uploaded again meanwhile)",
            {{"error", s.ToString()}, {"rows", std::to_string(seqs.size())}});
      }
      mark_failing_ = true;
      mark_retry_.insert(mark_retry_.end(), seqs.begin(), seqs.end());
      // Not at once: whatever failed this mark (no space) is likely still there.
      mark_timer_.Start(kMarkRetryMs, 0, [this] { FlushMarks(); });
      return;
    }
    if (mark_failing_) {
      ES_LOG_INFO("sync: marking sent works again", {{"rows", std::to_string(seqs.size())}});
      mark_failing_ = false;
    }
    if (!to_mark_sent_.empty()) FlushMarks();
  });
}

void SyncWorker::UpdateRate(uint64_t acked) {
  int64_t now = clock_.MonotonicNs();
  if (rate_window_start_ns_ == 0) rate_window_start_ns_ = now;
  if (rate_window_count_ == 0 && rate_window_wire_ == 0) rate_window_wire_ = uplink_.wire_bytes();
  rate_window_count_ += acked;
  int64_t elapsed = now - rate_window_start_ns_;
  if (elapsed >= 1000000000) {
    auto smooth = [](double old, double fresh) {
      // Over ~5 s, so the ETA doesn't jump with every burst.
      return old == 0 ? fresh : 0.8 * old + 0.2 * fresh;
    };
    double secs = static_cast<double>(elapsed) / 1e9;
    uint64_t wire = uplink_.wire_bytes();
    stats_.rate_msgs_per_s =
        smooth(stats_.rate_msgs_per_s, static_cast<double>(rate_window_count_) / secs);
    stats_.rate_bytes_per_s =
        smooth(stats_.rate_bytes_per_s,
               static_cast<double>(wire - std::min(wire, rate_window_wire_)) / secs);
    rate_window_start_ns_ = now;
    rate_window_count_ = 0;
    rate_window_wire_ = wire;
  }
}

}  // namespace edgespool::sync
