#include "agent/downlink/hub.h"

#include <algorithm>
#include <limits>

#include "platform/log.h"

namespace edgespool::agent::downlink {

namespace {

// One counting read of what an expiring session had not acked: bounded, so
// that a session with a huge backlog costs one read, not the whole inbox.
constexpr size_t kDropCountReadMax = 100000;
// Trimming runs often and in small steps: one TrimInbox of a whole
// backlog holds the store thread (and every producer's commit) for as long
// as it deletes. 2048 seqs every 100 ms keeps up with 20k msg/s.
constexpr uint64_t kTrimStepSeqs = 2048;
constexpr int64_t kTrimIntervalMs = 100;

}  // namespace

class Hub::Impl {
 public:
  Impl(platform::Loop& loop, store::Journal& journal, HubOptions options)
      : journal_(journal),
        options_(options),
        clock_(options.clock ? *options.clock : platform::SystemClock::Get()),
        persist_timer_(loop),
        sweep_timer_(loop),
        trim_timer_(loop) {}

  void Load();
  void Subscribe(ConsumerSink* sink, SubscribeArgs args,
                 std::function<void(Result<SubscribeOutcome>)> done);
  Status Ack(ConsumerSink* sink, const std::string& name, uint64_t seq, bool cumulative);
  Status Unsubscribe(ConsumerSink* sink, const std::string& name, bool end);
  void DetachAll(ConsumerSink* sink);
  void OnCommitted(const store::StoredInbound& row);
  void Flush(std::function<void()> done);
  HubStats Stats() const;
  std::vector<SessionSnapshot> Sessions() const;

  std::shared_ptr<Impl*> self_ = std::make_shared<Impl*>(this);

 private:
  using Weak = std::weak_ptr<Impl*>;
  static Impl* Lock(const Weak& w) {
    auto p = w.lock();
    return p ? *p : nullptr;
  }
  struct Pending {
    ConsumerSink* sink;
    SubscribeArgs args;
    std::function<void(Result<SubscribeOutcome>)> done;
  };

  void OnLoaded(Result<std::vector<store::ConsumerSessionRecord>> res);
  Result<SubscribeOutcome> Attach(ConsumerSink* sink, SubscribeArgs& args);
  ConsumerSession* Find(ConsumerSink* sink, const std::string& name);
  uint64_t StartPosition(From from, uint64_t from_seq) const;
  void Pump(ConsumerSession& s);
  void OnRead(const std::string& name, uint64_t generation, uint64_t head_at_issue,
              Result<std::vector<store::StoredInbound>> res);
  void Offer(ConsumerSession& s, const store::StoredInbound& row);
  void Persist(ConsumerSession& s, std::function<void()> done = {});
  void PersistChanged();
  void Sweep();
  void Expire(std::unique_ptr<ConsumerSession> s);
  void Trim();
  // advance: everything below `below` is gone once it succeeds (not so
  // for a retention trim, which keeps the rows received since).
  void RunTrim(uint64_t below, int64_t received_before_ms, bool advance);
  void Erase(const std::string& name);

  store::Journal& journal_;
  HubOptions options_;
  const platform::Clock& clock_;
  platform::TimerHandle persist_timer_;
  platform::TimerHandle sweep_timer_;
  platform::TimerHandle trim_timer_;
  uint64_t trimmed_below_ = 0;  // TrimInbox has been asked for everything below this
  bool trimming_ = false;

  bool loaded_ = false;
  std::vector<Pending> waiting_;
  std::map<std::string, std::unique_ptr<ConsumerSession>> sessions_;
  // Bumped whenever a session restarts its reading (rewind, detach, end), so
  // that a read issued before is recognised as stale when it returns.
  std::map<std::string, uint64_t> generations_;
  uint64_t head_ = 0;
  uint64_t anonymous_ = 0;
  HubStats totals_;
};

// --- Start: loading the durable sessions -----------------------------------

void Hub::Impl::Load() {
  journal_.LoadConsumerSessions(
      [w = Weak(self_)](Result<std::vector<store::ConsumerSessionRecord>> res) {
        if (Impl* self = Lock(w)) self->OnLoaded(std::move(res));
      });
  persist_timer_.Start(options_.persist_interval_ms, options_.persist_interval_ms,
                       [this] { PersistChanged(); });
  persist_timer_.Unref();
  sweep_timer_.Start(options_.sweep_interval_ms, options_.sweep_interval_ms, [this] { Sweep(); });
  sweep_timer_.Unref();
  trim_timer_.Start(kTrimIntervalMs, kTrimIntervalMs, [this] { Trim(); });
  trim_timer_.Unref();
}

void Hub::Impl::OnLoaded(Result<std::vector<store::ConsumerSessionRecord>> res) {
  if (!res.ok()) {
    // Positions unknown: serving would deliver from a made-up place. The
    // sessions start fresh at the head instead, and the operator hears why.
    ES_LOG_ERROR("downlink sessions could not be loaded; they start at the head",
                 {{"error", res.status().ToString()}});
  } else {
    for (store::ConsumerSessionRecord& r : *res) {
      // A name with a newline is no consumer's (ValidateSessionName refuses
      // them): other users of the table keep their rows there, such as the
      // WebSocket uplink cursors (agent/websocket/uplink_cursor.h), whose
      // positions are journal seqs, not inbox seqs.
      if (r.name.find('\n') != std::string::npos) continue;
      auto s = std::make_unique<ConsumerSession>(r.name, true, std::move(r.filters),
                                                 options_.default_window);
      s->Rewind(r.acked);
      s->persisted_position = r.acked;
      s->set_last_seen_ms(r.last_seen_ms);
      s->dropped_total = r.dropped;
      sessions_[r.name] = std::move(s);
    }
  }
  head_ = std::max(head_, journal_.stats().inbox_head_seq);
  loaded_ = true;
  std::vector<Pending> waiting;
  waiting.swap(waiting_);
  for (Pending& p : waiting) Subscribe(p.sink, std::move(p.args), std::move(p.done));
}

// --- Attaching and detaching ------------------------------------------------

uint64_t Hub::Impl::StartPosition(From from, uint64_t from_seq) const {
  switch (from) {
    case From::kOldest: return 0;
    case From::kSeq: return from_seq > 0 ? from_seq - 1 : 0;
    case From::kDefault:
    case From::kNew: return head_;
  }
  return head_;
}

void Hub::Impl::Subscribe(ConsumerSink* sink, SubscribeArgs args,
                          std::function<void(Result<SubscribeOutcome>)> done) {
  if (!loaded_) {
    waiting_.push_back(Pending{sink, std::move(args), std::move(done)});
    return;
  }
  Result<SubscribeOutcome> out = Attach(sink, args);
  std::string name = out.ok() ? out->session : std::string();
  done(std::move(out));
  if (name.empty()) return;
  if (ConsumerSession* s = Find(sink, name)) Pump(*s);
}

Result<SubscribeOutcome> Hub::Impl::Attach(ConsumerSink* sink, SubscribeArgs& args) {
  if (args.filters.empty()) return Status::InvalidArgument("subscribe needs at least one filter");
  uint32_t window = args.window > 0 ? args.window : options_.default_window;
  bool durable = !args.session.empty();
  std::string name = durable ? args.session : "anonymous-" + std::to_string(++anonymous_);
  auto it = sessions_.find(name);
  SubscribeOutcome out;
  out.session = name;
  if (it != sessions_.end() && it->second->sink() && it->second->sink() != sink) {
    return Status::ResourceExhausted("session " + name + " is attached to another connection");
  }
  if (it == sessions_.end()) {
    if (sessions_.size() >= options_.max_sessions) {
      return Status::ResourceExhausted("max_sessions (" + std::to_string(options_.max_sessions) +
                                       ") reached");
    }
    it = sessions_.emplace(name, std::make_unique<ConsumerSession>(name, durable, args.filters,
                                                                    window)).first;
    it->second->Rewind(StartPosition(args.from, args.from_seq));
    it->second->persisted_position = UINT64_MAX;  // never written: write it
  } else {
    out.resumed = true;
    ConsumerSession& s = *it->second;
    s.set_filters(args.filters);
    s.set_window(window);
    s.Rewind(args.from == From::kDefault ? s.position() : StartPosition(args.from, args.from_seq));
  }
  ConsumerSession& s = *it->second;
  ++generations_[name];
  s.reading = false;
  s.Attach(sink, clock_.WallMs());
  out.position = s.position();
  if (s.durable()) Persist(s);
  return out;
}

ConsumerSession* Hub::Impl::Find(ConsumerSink* sink, const std::string& name) {
  auto it = sessions_.find(name);
  if (it == sessions_.end() || it->second->sink() != sink) return nullptr;
  return it->second.get();
}

Status Hub::Impl::Ack(ConsumerSink* sink, const std::string& name, uint64_t seq,
                      bool cumulative) {
  ConsumerSession* s = Find(sink, name);
  if (!s) return Status::NotFound("no session " + name + " on this connection");
  if (cumulative) {
    totals_.acked_total += s->AckUpTo(seq);
  } else if (s->Ack(seq)) {
    ++totals_.acked_total;
  } else {
    return Status::InvalidArgument("seq " + std::to_string(seq) + " is not in flight on session " +
                                   name);
  }
  Pump(*s);
  return Status::Ok();
}

Status Hub::Impl::Unsubscribe(ConsumerSink* sink, const std::string& name, bool end) {
  ConsumerSession* s = Find(sink, name);
  if (!s) return Status::NotFound("no session " + name + " on this connection");
  if (!s->durable() || end) {
    if (s->durable()) {
      journal_.DeleteConsumerSession(name, [](Status) {});
    }
    Erase(name);
    return Status::Ok();
  }
  s->Detach(clock_.WallMs());
  ++generations_[name];
  Persist(*s);
  return Status::Ok();
}

void Hub::Impl::DetachAll(ConsumerSink* sink) {
  // Subscribes still waiting for the sessions to load die with their sink.
  waiting_.erase(std::remove_if(waiting_.begin(), waiting_.end(),
                                [sink](const Pending& p) { return p.sink == sink; }),
                 waiting_.end());
  std::vector<std::string> gone;
  for (auto& [name, s] : sessions_) {
    if (s->sink() != sink) continue;
    if (!s->durable()) {
      gone.push_back(name);
      continue;
    }
    s->Detach(clock_.WallMs());
    ++generations_[name];
    Persist(*s);
  }
  for (const std::string& name : gone) Erase(name);
}

void Hub::Impl::Erase(const std::string& name) {
  sessions_.erase(name);
  generations_.erase(name);
}

// --- Delivery ----------------------------------------------------------------

void Hub::Impl::Offer(ConsumerSession& s, const store::StoredInbound& row) {
  if (!s.Matches(row.message.topic)) {
    s.Skip(row.seq);
    return;
  }
  s.Delivered(row.seq, row.payload_bytes, row.message.received_ms);
  ++totals_.delivered_total;
  s.sink()->Deliver(s.name(), row);
}

void Hub::Impl::OnCommitted(const store::StoredInbound& row) {
  uint64_t previous_head = head_;
  head_ = std::max(head_, row.seq);
  for (auto& [name, sp] : sessions_) {
    ConsumerSession& s = *sp;
    if (s.reading || s.read_pos() < previous_head) continue;  // catching up: it reads this row
    if (!s.sink()) {
      // Detached and caught up: what it does not want must not hold back
      // the trim until it expires; what it wants waits for it in the inbox.
      if (!s.Matches(row.message.topic)) s.Skip(row.seq);
      continue;
    }
    if (s.HasRoom()) Offer(s, row);
  }
}

void Hub::Impl::Pump(ConsumerSession& s) {
  if (!s.sink() || s.reading || !s.HasRoom() || s.read_pos() >= head_) return;
  s.reading = true;
  store::InboxReadSpec spec;
  spec.after_seq = s.read_pos();
  spec.max_messages = std::min<size_t>(options_.read_batch, s.window() - s.inflight());
  journal_.ReadInbox(spec, [w = Weak(self_), name = s.name(), gen = generations_[s.name()],
                            head = head_](Result<std::vector<store::StoredInbound>> res) {
    if (Impl* self = Lock(w)) self->OnRead(name, gen, head, std::move(res));
  });
}

void Hub::Impl::OnRead(const std::string& name, uint64_t generation, uint64_t head_at_issue,
                       Result<std::vector<store::StoredInbound>> res) {
  auto it = sessions_.find(name);
  if (it == sessions_.end()) return;
  ConsumerSession& s = *it->second;
  if (generations_[name] != generation) {
    s.reading = false;  // a newer attach owns the reading now
    Pump(s);
    return;
  }
  s.reading = false;
  if (!res.ok()) {
    ES_LOG_WARN("downlink read failed; retried on the next ack or message",
                {{"session", name}, {"error", res.status().ToString()}});
    return;
  }
  if (res->empty()) {
    // Nothing after read_pos up to what was committed when the read was
    // issued (rows in between were trimmed, expired or dropped).
    s.Skip(head_at_issue);
  }
  for (const store::StoredInbound& row : *res) {
    if (row.seq <= s.read_pos()) continue;
    if (!s.sink() || !s.HasRoom()) break;
    Offer(s, row);
  }
  Pump(s);
}

// --- Persistence, expiry, trimming ------------------------------------------

void Hub::Impl::Persist(ConsumerSession& s, std::function<void()> done) {
  store::ConsumerSessionRecord r;
  r.name = s.name();
  r.filters = s.filters();
  r.acked = s.position();
  r.last_seen_ms = s.sink() ? clock_.WallMs() : s.last_seen_ms();
  r.dropped = s.dropped_total;
  s.persisted_position = r.acked;
  journal_.SaveConsumerSession(std::move(r), [name = s.name(), done = std::move(done)](Status st) {
    if (!st.ok()) {
      ES_LOG_WARN("downlink session position not saved (it is delivered again from the last "
                  "saved one)",
                  {{"session", name}, {"error", st.ToString()}});
    }
    if (done) done();
  });
}

void Hub::Impl::PersistChanged() {
  for (auto& [name, s] : sessions_) {
    if (s->durable() && s->position() != s->persisted_position) Persist(*s);
  }
}

void Hub::Impl::Flush(std::function<void()> done) {
  auto left = std::make_shared<size_t>(1);
  auto finish = [left, done = std::move(done)] {
    if (--*left == 0 && done) done();
  };
  for (auto& [name, s] : sessions_) {
    if (!s->durable()) continue;
    ++*left;
    Persist(*s, finish);
  }
  finish();
}

void Hub::Impl::Sweep() {
  int64_t now = clock_.WallMs();
  std::vector<std::string> expired;
  for (auto& [name, s] : sessions_) {
    if (s->durable() && !s->sink() && now - s->last_seen_ms() > options_.session_expiry_ms) {
      expired.push_back(name);
    }
  }
  for (const std::string& name : expired) {
    auto it = sessions_.find(name);
    std::unique_ptr<ConsumerSession> s = std::move(it->second);
    Erase(name);
    Expire(std::move(s));
  }
  // Nobody holds the inbox: keep rows for late subscribers (from=oldest)
  // for the retention. Rare and bounded by it, so one call is enough.
  if (sessions_.empty() && !trimming_) {
    RunTrim(head_ + 1, now - options_.retention_ms, false);
  }
}

void Hub::Impl::Expire(std::unique_ptr<ConsumerSession> s) {
  ++totals_.sessions_expired_total;
  journal_.DeleteConsumerSession(s->name(), [](Status) {});
  store::InboxReadSpec spec;
  spec.after_seq = s->position();
  spec.max_messages = kDropCountReadMax;
  spec.max_bytes = std::numeric_limits<size_t>::max();
  spec.with_payload = false;
  std::shared_ptr<ConsumerSession> held(std::move(s));
  journal_.ReadInbox(spec, [w = Weak(self_), held](Result<std::vector<store::StoredInbound>> res) {
    Impl* self = Lock(w);
    uint64_t dropped = 0;
    if (res.ok()) {
      for (const auto& row : *res) dropped += held->Matches(row.message.topic);
    }
    if (self) self->totals_.dropped_total += dropped;
    ES_LOG_WARN("downlink session expired; its unacked messages are dropped",
                {{"session", held->name()}, {"dropped", std::to_string(dropped)}});
  });
}

void Hub::Impl::Trim() {
  if (trimming_ || sessions_.empty()) return;  // no session: Sweep trims by retention
  uint64_t below = head_ + 1;
  for (const auto& [name, s] : sessions_) below = std::min(below, s->position() + 1);
  below = std::min(below, trimmed_below_ + kTrimStepSeqs);
  if (below <= trimmed_below_) return;
  RunTrim(below, std::numeric_limits<int64_t>::max(), true);
}

void Hub::Impl::RunTrim(uint64_t below, int64_t received_before_ms, bool advance) {
  trimming_ = true;
  journal_.TrimInbox(below, received_before_ms, [w = Weak(self_), below, advance](Status st) {
    Impl* self = Lock(w);
    if (!self) return;
    self->trimming_ = false;
    if (!st.ok()) {
      ES_LOG_WARN("downlink inbox trim failed", {{"error", st.ToString()}});
    } else if (advance && self->trimmed_below_ < below) {
      self->trimmed_below_ = below;
    }
  });
}

// --- Reporting ----------------------------------------------------------------

HubStats Hub::Impl::Stats() const {
  HubStats out = totals_;
  out.sessions = sessions_.size();
  for (const auto& [name, s] : sessions_) out.attached += s->sink() != nullptr;
  for (const auto& [name, s] : sessions_) out.dropped_total += s->dropped_total;
  out.head_seq = head_;
  return out;
}

std::vector<SessionSnapshot> Hub::Impl::Sessions() const {
  std::vector<SessionSnapshot> out;
  int64_t now = clock_.WallMs();
  for (const auto& [name, s] : sessions_) {
    SessionSnapshot snap;
    snap.name = name;
    snap.durable = s->durable();
    snap.attached = s->sink() != nullptr;
    snap.position = s->position();
    snap.inflight = s->inflight();
    snap.backlog = head_ > s->position() ? head_ - s->position() : 0;
    int64_t oldest = s->oldest_inflight_ms();
    snap.oldest_unacked_age_ms = oldest > 0 ? std::max<int64_t>(0, now - oldest) : 0;
    snap.delivered_total = s->delivered_total;
    snap.acked_total = s->acked_total;
    snap.dropped_total = s->dropped_total;
    out.push_back(std::move(snap));
  }
  return out;
}

// --- The door -------------------------------------------------------------------

std::unique_ptr<Hub> Hub::Start(platform::Loop& loop, store::Journal& journal,
                                HubOptions options) {
  auto impl = std::make_unique<Impl>(loop, journal, options);
  impl->Load();
  return std::unique_ptr<Hub>(new Hub(std::move(impl)));
}

Hub::Hub(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Hub::~Hub() = default;

void Hub::Subscribe(ConsumerSink* sink, SubscribeArgs args,
                    std::function<void(Result<SubscribeOutcome>)> done) {
  impl_->Subscribe(sink, std::move(args), std::move(done));
}
Status Hub::Ack(ConsumerSink* sink, const std::string& session, uint64_t seq, bool cumulative) {
  return impl_->Ack(sink, session, seq, cumulative);
}
Status Hub::Unsubscribe(ConsumerSink* sink, const std::string& session, bool end) {
  return impl_->Unsubscribe(sink, session, end);
}
void Hub::DetachAll(ConsumerSink* sink) { impl_->DetachAll(sink); }
void Hub::OnCommitted(const store::StoredInbound& row) { impl_->OnCommitted(row); }
void Hub::Flush(std::function<void()> done) { impl_->Flush(std::move(done)); }
HubStats Hub::stats() const { return impl_->Stats(); }
std::vector<SessionSnapshot> Hub::Sessions() const { return impl_->Sessions(); }

}  // namespace edgespool::agent::downlink
