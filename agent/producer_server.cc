#include "agent/producer_server.h"

#include <algorithm>
#include <deque>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "agent/protocol/frame.h"
#include "agent/protocol/json_writer.h"
#include "agent/protocol/reply.h"
#include "agent/protocol/request.h"
#include "platform/log.h"
#include "platform/stream.h"
#include "platform/stream_try_write.h"

namespace edgespool::agent {

namespace pr = ::edgespool::protocol;

namespace {

// One request awaiting its reply, in request order.
struct Slot {
  bool ready = false;
  bool close_after = false;
  size_t payload_bytes = 0;
  std::string frame;
};

struct Connection {
  Connection(uint64_t conn_id, std::unique_ptr<platform::Stream> s, uint64_t max_body)
      : id(conn_id), stream(std::move(s)), decoder(max_body, max_body * 4) {}
  uint64_t id;
  std::unique_ptr<platform::Stream> stream;
  pr::FrameDecoder decoder;
  uint32_t uid = UINT32_MAX;  // nobody, if SO_PEERCRED failed
  uint32_t gid = UINT32_MAX;
  std::deque<Slot> slots;
  uint64_t front_serial = 0;  // serial of slots.front()
  size_t pending_bytes = 0;   // payload bytes of requests awaiting replies
  std::string out;            // ready reply frames not yet handed to Write
  size_t writes_in_flight = 0;
  bool read_eof = false;
  bool close_requested = false;  // after the queued replies (bad frame)
  bool throttled = false;        // past its own bounds
  bool dirty = false;
  std::unordered_set<uint64_t> delivery_seqs;

  uint64_t next_serial() const { return front_serial + slots.size(); }
  size_t unwritten() const { return out.size() + stream->write_queue_bytes(); }
};

struct Waiter {
  uint64_t conn_id;
  std::optional<int64_t> req;
};

uint64_t PeerKey(uint32_t uid, uint32_t gid) { return (uint64_t{uid} << 32) | gid; }

// Reply buffer capacity a connection keeps between turns.
constexpr size_t kKeepOutBytes = 16 * 1024;

}  // namespace

class ProducerServer::Impl {
 public:
  Impl(platform::Loop& loop, store::Journal& journal, ProducerServerOptions options,
       ProducerServerHooks hooks, Acl acl)
      : loop_(loop),
        journal_(journal),
        options_(std::move(options)),
        hooks_(std::move(hooks)),
        clock_(options_.clock ? options_.clock : &platform::SystemClock::Get()),
        acl_(std::move(acl)),
        rate_limiter_(options_.rate_limits),
        flush_(loop),
        pulse_timer_(loop),
        sweep_timer_(loop),
        self_(std::make_shared<Impl*>(this)),
        linger_timer_(loop) {}

  // Held appends still go to the journal (their producers hear nothing, as
  // the connections close now): stored, as they would have been a moment
  // later.
  ~Impl() {
    *self_ = nullptr;
    HandOver();
  }

  Status Listen();
  void NotifyDelivery(uint64_t seq, store::MessageState state, const std::string& reason);
  ProducerServerStats Stats() const;
  const ProducerServerOptions& options() const { return options_; }

 private:
  using Weak = std::weak_ptr<Impl*>;
  static Impl* Lock(const Weak& w) {
    auto p = w.lock();
    return p ? *p : nullptr;
  }
  Connection* Find(uint64_t id) {
    auto it = connections_.find(id);
    return it == connections_.end() ? nullptr : it->second.get();
  }

  void OnAccept(std::unique_ptr<platform::Stream> stream);
  void Refuse(std::unique_ptr<platform::Stream> stream);
  void OnData(uint64_t id, const char* data, size_t len);
  void OnEnd(uint64_t id, const Status& why);
  bool OnFrame(Connection& c, const pr::Frame& f);
  void OnTooLarge(Connection& c, const pr::Frame& f);
  void OnPublish(Connection& c, pr::Request& r, std::string_view body);
  bool Admit(Connection& c, const pr::Request& r, size_t bytes, int64_t now_mono_ns);
  void OnAppended(uint64_t conn_id, uint64_t serial, std::optional<int64_t> req,
                  pr::AckMode ack, Result<store::AppendOutcome> res);
  void OnQuery(Connection& c, const pr::Request& r);
  // Appends on their way to the journal (see "handing appends" below).
  void Hold(store::Message m, store::Journal::AppendCallback done);
  void MaybeHandOver(bool linger_over);
  void HandOver();
  // ack:"delivered" on a duplicate: the original may have been delivered
  // (or gone dead) long ago, when no NotifyDelivery will come again.
  void CheckDuplicateDelivery(uint64_t seq, uint64_t conn_id, std::optional<int64_t> req);
  void SendDelivery(Connection& c, std::optional<int64_t> req, uint64_t seq,
                    store::MessageState state, const std::string& reason);
  void OnStatus(Connection& c, const pr::Request& r);
  void BadFrame(Connection& c, std::optional<int64_t> req, const std::string& why);

  // Reply queue.
  uint64_t PushSlot(Connection& c, size_t payload_bytes);
  // The reply to the request in slot `serial`: encoded straight into the
  // connection's output when every earlier reply has gone, else kept in the
  // slot until they have.
  void CompleteSlot(Connection& c, uint64_t serial, const pr::Reply& reply,
                    std::string_view body = {}, bool close_after = false);
  void ReplyNow(Connection& c, const pr::Reply& reply, std::string_view body = {},
                bool close_after = false);
  void ReplyError(Connection& c, std::optional<int64_t> req, pr::ErrorCode code,
                  std::string message, std::optional<int64_t> retry_after_ms = {});
  void FlushAll();
  void Flush(Connection& c);
  void MaybeClose(Connection& c);
  void Close(uint64_t id);

  // Reading and backpressure.
  void UpdateReading(Connection& c);
  void UpdateThrottle(Connection& c);
  void RecomputeGlobalBlock();
  void OnPulse();
  void ApplyBlock(bool was_blocked);
  bool blocked() const { return commit_blocked_ || highwater_paused_; }

  // Once a minute per peer.
  bool ShouldLog(std::unordered_map<uint64_t, int64_t>* logged, const Connection& c) {
    int64_t now = clock_->MonotonicMs();
    auto [it, fresh] = logged->emplace(PeerKey(c.uid, c.gid), now);
    if (!fresh && now - it->second < 60000) return false;
    it->second = now;
    return true;
  }
  std::string Uplink() const {
    return hooks_.uplink_connected && hooks_.uplink_connected() ? "connected" : "disconnected";
  }
  std::string DefaultStatus() const;

  platform::Loop& loop_;
  store::Journal& journal_;
  ProducerServerOptions options_;
  ProducerServerHooks hooks_;
  const platform::Clock* clock_;
  Acl acl_;
  RateLimiter rate_limiter_;
  std::unique_ptr<platform::Listener> listener_;
  platform::CheckHandle flush_;
  platform::TimerHandle pulse_timer_;
  platform::TimerHandle sweep_timer_;
  std::shared_ptr<Impl*> self_;  // journal and write callbacks hold a weak_ptr

  std::unordered_map<uint64_t, std::unique_ptr<Connection>> connections_;
  std::unordered_map<uint64_t, std::unique_ptr<platform::Stream>> refused_;
  uint64_t next_id_ = 1;
  std::vector<uint64_t> dirty_;

  struct HeldAppend {
    store::Message message;
    store::Journal::AppendCallback done;
  };
  // A group this size is handed over at once, linger or not: big enough to
  // amortise a commit, small enough that a burst is not held back.
  static constexpr size_t kEagerGroup = 64;
  std::vector<HeldAppend> held_;  // not yet handed to the journal, in order
  int64_t held_since_ns_ = 0;     // arrival of held_.front()
  size_t handed_ = 0;             // handed to the journal, not yet answered
  bool linger_useful_ = true;      // the last linger found company
  bool linger_timer_fired_ = false;
  platform::TimerHandle linger_timer_;

  size_t awaiting_commit_ = 0;    // held + handed
  bool commit_blocked_ = false;
  size_t commit_block_level_ = 0;  // awaiting_commit_ when reading stopped
  bool pulsing_ = false;           // in the high-water pause/read cycle
  bool highwater_paused_ = false;  // ...and in its pause half

  std::unordered_map<uint64_t, std::vector<Waiter>> waiters_;  // seq -> who waits
  size_t waiter_count_ = 0;
  size_t waiters_reserved_ = 0;  // ack:"delivered" appends not yet committed

  // peer -> when we last logged about it: a misbehaving producer must not
  // flood the log. Swept every 10 s.
  std::unordered_map<uint64_t, int64_t> denied_logged_ms_;
  std::unordered_map<uint64_t, int64_t> bad_frame_logged_ms_;
  mutable ProducerServerStats stats_;
};

// --- listening and accepting ---------------------------------------------

Status ProducerServer::Impl::Listen() {
  auto on_accept = [this](std::unique_ptr<platform::Stream> s) { OnAccept(std::move(s)); };
  auto listener = options_.inherited_fd >= 0
                      ? platform::Listener::FromFd(loop_, options_.inherited_fd, true, on_accept)
                      : platform::Listener::ListenUnix(loop_, options_.socket_path,
                                                       options_.socket_mode, 4096, on_accept);
  if (!listener.ok()) return listener.status();
  listener_ = std::move(listener).value();
  flush_.Start([this] { FlushAll(); });
  sweep_timer_.Start(10000, 10000, [this] {
    int64_t now = clock_->MonotonicMs();
    rate_limiter_.Sweep(now);
    for (auto* logged : {&denied_logged_ms_, &bad_frame_logged_ms_}) {
      for (auto it = logged->begin(); it != logged->end();) {
        it = now - it->second >= 60000 ? logged->erase(it) : std::next(it);
      }
    }
  });
  sweep_timer_.Unref();
  return Status::Ok();
}

void ProducerServer::Impl::OnAccept(std::unique_ptr<platform::Stream> stream) {
  if (connections_.size() >= options_.max_connections) return Refuse(std::move(stream));
  uint64_t id = next_id_++;
  auto conn = std::make_unique<Connection>(id, std::move(stream), options_.max_message_bytes);
  auto cred = conn->stream->PeerCred();
  if (cred.ok()) {
    conn->uid = cred->uid;
    conn->gid = cred->gid;
  }
  Connection& c = *conn;
  connections_.emplace(id, std::move(conn));
  ++stats_.connections_total;
  UpdateReading(c);
}

// Past max_connections: one busy frame, then close. Existing connections are
// not touched; the refused one is not read at all.
void ProducerServer::Impl::Refuse(std::unique_ptr<platform::Stream> stream) {
  ++stats_.connections_refused;
  pr::Reply reply = pr::ErrorReply(std::nullopt, pr::ErrorCode::kBusy,
                                   "too many connections (max_connections " +
                                       std::to_string(options_.max_connections) + ")");
  reply.retry_after_ms = options_.busy_retry_after_ms;
  uint64_t id = next_id_++;
  platform::Stream* raw = stream.get();
  refused_.emplace(id, std::move(stream));
  Status st = raw->Write(pr::EncodeFrame(pr::EncodeReplyHeader(reply), {}),
                         [w = Weak(self_), id](const Status&) {
                           Impl* self = Lock(w);
                           if (!self) return;
                           auto it = self->refused_.find(id);
                           if (it == self->refused_.end()) return;
                           self->loop_.DeferDelete(std::move(it->second));
                           self->refused_.erase(it);
                         });
  if (!st.ok()) refused_.erase(id);
}

// --- reading ---------------------------------------------------------------

void ProducerServer::Impl::UpdateReading(Connection& c) {
  bool want = !blocked() && !c.throttled && !c.read_eof && !c.close_requested;
  if (want == c.stream->reading()) return;
  if (!want) return c.stream->StopReading();
  uint64_t id = c.id;
  c.stream->StartReading([this, id](const char* d, size_t n) { OnData(id, d, n); },
                         [this, id](const Status& why) { OnEnd(id, why); });
}

// A connection stops being read while it holds too much; it resumes at half.
void ProducerServer::Impl::UpdateThrottle(Connection& c) {
  size_t unwritten = c.unwritten();
  if (!c.throttled) {
    if (c.slots.size() >= kMaxConnPending || c.pending_bytes >= kMaxConnPendingBytes ||
        unwritten >= kMaxConnWriteBytes) {
      c.throttled = true;
      ++stats_.conn_pauses;
    }
  } else if (c.slots.size() <= kMaxConnPending / 2 &&
             c.pending_bytes <= kMaxConnPendingBytes / 2 &&
             unwritten <= kMaxConnWriteBytes / 2) {
    c.throttled = false;
  }
  UpdateReading(c);
}

// Two reasons to stop reading every socket, told apart because they end
// differently. A commit backlog (our own bound, or the journal's bound on
// queued groups) clears as groups commit: reading resumes once half of it is
// gone, checked on every ack. A journal filling up does not clear by
// waiting, so it gets the pause/read pulse. Measured: pulsing on a commit
// backlog too (as this did before) stalled 64 flat-out producers for 200 ms
// at a time, a third of the run.
void ProducerServer::Impl::RecomputeGlobalBlock() {
  bool was = blocked();
  bool filling = journal_.stats().fill_ratio >= journal_.options().high_water;
  bool backlog = !filling && journal_.above_high_water();
  if (!commit_blocked_ && (awaiting_commit_ >= options_.max_awaiting_commit || backlog)) {
    commit_blocked_ = true;
    commit_block_level_ = awaiting_commit_;
  } else if (commit_blocked_ && !backlog && awaiting_commit_ <= commit_block_level_ / 2) {
    commit_blocked_ = false;
  }
  if (!pulsing_ && filling) {
    pulsing_ = true;
    highwater_paused_ = true;
    pulse_timer_.Start(kPulsePauseMs, 0, [this] { OnPulse(); });
  }
  ApplyBlock(was);
}

// Above the journal's high-water mark: pause kPulsePauseMs, read for
// kPulseReadMs, and again while the journal stays above it.
void ProducerServer::Impl::OnPulse() {
  bool was = blocked();
  if (highwater_paused_) {
    highwater_paused_ = false;
    pulse_timer_.Start(kPulseReadMs, 0, [this] { OnPulse(); });
  } else {
    pulsing_ = false;
  }
  ApplyBlock(was);
  if (!pulsing_) RecomputeGlobalBlock();
}

void ProducerServer::Impl::ApplyBlock(bool was_blocked) {
  if (blocked() == was_blocked) return;
  if (blocked()) ++stats_.read_pauses;
  for (auto& [id, conn] : connections_) UpdateReading(*conn);
}

void ProducerServer::Impl::OnData(uint64_t id, const char* data, size_t len) {
  Connection* c = Find(id);
  if (!c) return;
  Status st = c->decoder.Feed(data, len, [this, c](const pr::Frame& f) { return OnFrame(*c, f); });
  if (!st.ok() && st.code() == Code::kProtocolError) BadFrame(*c, std::nullopt, st.message());
  UpdateThrottle(*c);
}

void ProducerServer::Impl::OnEnd(uint64_t id, const Status& why) {
  Connection* c = Find(id);
  if (!c) return;
  c->read_eof = true;
  if (!why.ok()) return Close(id);
  // A half-close: answer what was asked, then close.
  MaybeClose(*c);
}

void ProducerServer::Impl::BadFrame(Connection& c, std::optional<int64_t> req,
                                    const std::string& why) {
  ++stats_.bad_frames;
  if (ShouldLog(&bad_frame_logged_ms_, c)) {
    ES_LOG_WARN("producer: bad frame, closing connection (logged once a minute per peer)",
                {{"uid", std::to_string(c.uid)}, {"why", why}});
  }
  ReplyNow(c, pr::ErrorReply(req, pr::ErrorCode::kBadFrame, why), {}, /*close_after=*/true);
  c.close_requested = true;
  UpdateReading(c);
}

// --- requests --------------------------------------------------------------

bool ProducerServer::Impl::OnFrame(Connection& c, const pr::Frame& f) {
  if (c.close_requested) return false;
  if (f.body_skipped) {
    OnTooLarge(c, f);
    return !c.close_requested;
  }
  pr::Request r;
  pr::RequestError e;
  if (!pr::ParseRequest(f.header, &r, &e)) {
    if (e.code == pr::ErrorCode::kBadFrame) {
      BadFrame(c, e.req, e.message);
      return false;
    }
    if (e.no_reply) {
      ++stats_.errors;
    } else {
      ReplyError(c, e.req, e.code, e.message);
    }
    return true;
  }
  switch (r.op) {
    case pr::Op::kPublish: OnPublish(c, r, f.body); break;
    case pr::Op::kQuery: OnQuery(c, r); break;
    case pr::Op::kStatus: OnStatus(c, r); break;
    case pr::Op::kPing: {
      pr::Reply reply;
      reply.req = r.req;
      reply.ok = true;
      ReplyNow(c, reply);
      break;
    }
  }
  return true;
}

void ProducerServer::Impl::OnTooLarge(Connection& c, const pr::Frame& f) {
  pr::Request r;
  pr::RequestError e;
  bool parsed = pr::ParseRequest(f.header, &r, &e);
  if (!parsed && e.code == pr::ErrorCode::kBadFrame) return BadFrame(c, e.req, e.message);
  if ((parsed && r.op == pr::Op::kPublish && r.publish.ack == pr::AckMode::kNone) ||
      (!parsed && e.no_reply)) {
    ++stats_.errors;
    return;
  }
  pr::Reply reply = pr::ErrorReply(parsed ? r.req : e.req, pr::ErrorCode::kTooLarge,
                                   "body of " + std::to_string(f.declared_body_bytes) +
                                       " bytes exceeds max_message_bytes");
  reply.limit = options_.max_message_bytes;
  ++stats_.errors;
  ReplyNow(c, reply);
}

// ACL, rate limit and delivery-waiter room; replies with the error itself.
bool ProducerServer::Impl::Admit(Connection& c, const pr::Request& r, size_t bytes,
                                 int64_t now_mono_ns) {
  bool silent = r.publish.ack == pr::AckMode::kNone;
  auto refuse = [&](pr::ErrorCode code, std::string msg, std::optional<int64_t> retry) {
    if (silent) {
      ++stats_.errors;
    } else {
      ReplyError(c, r.req, code, std::move(msg), retry);
    }
    return false;
  };
  if (!acl_.MayPublish(c.uid, c.gid, r.publish.topic)) {
    if (ShouldLog(&denied_logged_ms_, c)) {
      ES_LOG_WARN("producer: publish denied by acl (logged once a minute per peer)",
                  {{"uid", std::to_string(c.uid)}, {"gid", std::to_string(c.gid)},
                   {"topic", r.publish.topic}});
    }
    return refuse(pr::ErrorCode::kForbidden, "not allowed to publish on this topic", {});
  }
  auto d = rate_limiter_.Admit(c.uid, c.gid, bytes, now_mono_ns / 1000000);
  if (!d.allowed) return refuse(pr::ErrorCode::kRateLimited, "rate limit", d.retry_after_ms);
  if (r.publish.ack == pr::AckMode::kDelivered &&
      waiter_count_ + waiters_reserved_ >= options_.max_delivery_waiters) {
    return refuse(pr::ErrorCode::kBusy, "too many publishes awaiting delivery",
                  options_.busy_retry_after_ms);
  }
  return true;
}

void ProducerServer::Impl::OnPublish(Connection& c, pr::Request& r, std::string_view body) {
  int64_t received_ns = clock_->MonotonicNs();
  if (!Admit(c, r, body.size(), received_ns)) return;
  pr::PublishFields& p = r.publish;
  store::Message m;
  int64_t now_ms = clock_->WallMs();
  m.topic = std::move(p.topic);
  m.ts_ms = p.ts_ms.value_or(now_ms);
  m.priority = static_cast<store::Priority>(p.priority);
  // TTL counts from receipt, as MQTT's message expiry does: a message with
  // an old original timestamp still gets its full ttl to be delivered.
  if (p.ttl_ms) m.expires_at_ms = now_ms + *p.ttl_ms;
  m.msg_id = std::move(p.id);
  m.headers = std::move(p.headers);
  m.payload.assign(body.data(), body.size());
  if (hooks_.route) hooks_.route(m, now_ms);

  uint64_t serial = 0;
  if (p.ack != pr::AckMode::kNone) serial = PushSlot(c, body.size());
  if (p.ack == pr::AckMode::kDelivered) ++waiters_reserved_;
  ++awaiting_commit_;
  if (awaiting_commit_ > stats_.peak_awaiting_commit) stats_.peak_awaiting_commit = awaiting_commit_;
  Hold(std::move(m), [w = Weak(self_), id = c.id, serial, req = r.req, ack = p.ack,
                      received_ns](Result<store::AppendOutcome> res) {
    Impl* self = Lock(w);
    if (!self) return;
    if (res.ok() && self->hooks_.on_ack_latency) {
      self->hooks_.on_ack_latency(
          static_cast<double>(self->clock_->MonotonicNs() - received_ns) / 1e9);
    }
    self->OnAppended(id, serial, req, ack, std::move(res));
  });
  RecomputeGlobalBlock();
}

// --- handing appends to the journal ---------------------------------------
//
// Why appends are held here at all: at a moderate rate (20,000 msg/s from 8
// producers) each publish used to find the journal idle and was committed
// alone: ~10,000 tiny transactions a second, each paying SQLite's fixed
// commit cost (WAL frames, and an fdatasync with durability full), one
// store-thread wake-up and one reply write per message. Measured, that
// saturated both cores (65-80 us of CPU per message) and queueing pushed ack
// p99 to 25-270 ms. So when the journal is idle, a first publish waits up to
// append_linger_ms for company (as Kafka's linger.ms), or until
// kEagerGroup publishes are held; while the journal is committing, publishes
// are held until that commit is answered and then handed over together (the
// group commit of the design, done one step earlier). Flat out, groups form
// at once and nothing lingers. Durability is untouched: an ack still
// follows COMMIT.
//
// A producer that publishes one message at a time, waiting for each ack,
// never has company: a linger would only add its full length to every
// ack. So a linger that ends with a group of one turns lingering off, and
// it comes back on when company shows up by itself (two or more publishes
// held when a group is handed over: arrived while the journal was busy or
// in the same loop turn).

void ProducerServer::Impl::Hold(store::Message m, store::Journal::AppendCallback done) {
  if (options_.append_linger_ms <= 0) {
    ++handed_;
    return journal_.Append(std::move(m), std::move(done));
  }
  if (held_.empty()) held_since_ns_ = clock_->MonotonicNs();
  held_.push_back(HeldAppend{std::move(m), std::move(done)});
  if (held_.size() >= journal_.options().group_max_messages) HandOver();
}

void ProducerServer::Impl::MaybeHandOver(bool linger_over) {
  if (held_.empty()) return;
  bool idle = handed_ == 0;
  if (idle && !linger_useful_) return HandOver();
  if (!linger_over) {
    linger_over = clock_->MonotonicNs() - held_since_ns_ >= options_.append_linger_ms * 1000000;
  }
  if (idle && (linger_over || held_.size() >= kEagerGroup)) return HandOver();
  // Idle: wait for company, at most the linger. Busy: the commit's answer
  // brings us back here (FlushAll runs every loop turn).
  if (idle && !linger_timer_.active()) {
    linger_timer_.Start(static_cast<uint64_t>(options_.append_linger_ms), 0, [this] {
      linger_timer_fired_ = true;
      MaybeHandOver(true);
    });
  }
}

void ProducerServer::Impl::HandOver() {
  linger_timer_.Stop();
  if (held_.size() >= 2) {
    linger_useful_ = true;
  } else if (linger_timer_fired_) {
    linger_useful_ = false;  // lingered, and nobody came
  }
  linger_timer_fired_ = false;
  std::vector<HeldAppend> batch;
  batch.swap(held_);
  handed_ += batch.size();
  for (HeldAppend& a : batch) journal_.Append(std::move(a.message), std::move(a.done));
}

void ProducerServer::Impl::OnAppended(uint64_t conn_id, uint64_t serial,
                                      std::optional<int64_t> req, pr::AckMode ack,
                                      Result<store::AppendOutcome> res) {
  --awaiting_commit_;
  --handed_;
  if (ack == pr::AckMode::kDelivered) --waiters_reserved_;
  RecomputeGlobalBlock();
  if (res.ok()) {
    ++stats_.published;
    if (res->duplicate) ++stats_.duplicates;
  }
  Connection* c = Find(conn_id);
  if (!c || ack == pr::AckMode::kNone) return;
  pr::Reply reply;
  reply.req = req;
  if (res.ok()) {
    reply.ok = true;
    reply.status = res->duplicate ? "duplicate" : "stored";
    reply.seq = res->seq;
    reply.uplink = Uplink();
    if (ack == pr::AckMode::kDelivered) {
      waiters_[res->seq].push_back(Waiter{conn_id, req});
      ++waiter_count_;
      c->delivery_seqs.insert(res->seq);
      if (res->duplicate) CheckDuplicateDelivery(res->seq, conn_id, req);
    }
  } else if (res.status().code() == Code::kResourceExhausted) {
    reply = pr::ErrorReply(req, pr::ErrorCode::kJournalFull, res.status().message());
    reply.retry_after_ms = options_.full_retry_after_ms;
    ++stats_.errors;
  } else {
    reply = pr::ErrorReply(req, pr::ErrorCode::kInternal, res.status().ToString());
    ++stats_.errors;
  }
  CompleteSlot(*c, serial, reply);
}

void ProducerServer::Impl::OnQuery(Connection& c, const pr::Request& r) {
  // A query sees every publish made before it, held or not (the journal
  // runs operations in call order).
  HandOver();
  uint64_t serial = PushSlot(c, 0);
  auto done = [w = Weak(self_), id = c.id, serial, req = r.req](Result<store::QueryResult> res) {
    Impl* self = Lock(w);
    Connection* conn = self ? self->Find(id) : nullptr;
    if (!conn) return;
    pr::Reply reply;
    reply.req = req;
    if (res.ok()) {
      reply.ok = true;
      reply.seq = res->seq;
      reply.state = store::MessageStateName(res->state);
      if (res->state != store::MessageState::kUnknown) {
        reply.ts_ms = res->ts_ms;
        reply.topic = res->topic;
        reply.attempts = res->attempts;
        reply.reason = res->reason;
        if (res->sent_at_ms) reply.sent_at_ms = res->sent_at_ms;
      }
    } else if (res.status().code() == Code::kNotFound) {
      reply.ok = true;
      reply.state = store::MessageStateName(store::MessageState::kUnknown);
    } else {
      reply = pr::ErrorReply(req, pr::ErrorCode::kInternal, res.status().ToString());
    }
    self->CompleteSlot(*conn, serial, reply);
  };
  if (r.query_seq) {
    journal_.Query(*r.query_seq, std::move(done));
  } else {
    journal_.QueryById(r.query_id, std::move(done));
  }
}

std::string ProducerServer::Impl::DefaultStatus() const {
  const store::JournalStats& s = journal_.stats();
  pr::JsonObjectWriter w;
  w.Str("uplink", Uplink())
      .Uint("pending_count", s.pending_count)
      .Uint("pending_bytes", s.pending_bytes)
      .Int("oldest_pending_ts", s.oldest_pending_ts_ms)
      .Uint("sent_total", s.sent_total)
      .Uint("dead_count", s.dead_count)
      .Uint("dropped_total", s.dropped_total)
      .Uint("journal_bytes", s.file_bytes)
      .Uint("connections", connections_.size());
  return std::move(w).Finish();
}

void ProducerServer::Impl::OnStatus(Connection& c, const pr::Request& r) {
  pr::Reply reply;
  reply.req = r.req;
  reply.ok = true;
  ReplyNow(c, reply, hooks_.status_json ? hooks_.status_json() : DefaultStatus());
}

void ProducerServer::Impl::NotifyDelivery(uint64_t seq, store::MessageState state,
                                          const std::string& reason) {
  auto it = waiters_.find(seq);
  if (it == waiters_.end()) return;
  std::vector<Waiter> waiters = std::move(it->second);
  waiters_.erase(it);
  waiter_count_ -= waiters.size();
  for (const Waiter& w : waiters) {
    Connection* c = Find(w.conn_id);
    if (!c) continue;
    c->delivery_seqs.erase(seq);
    SendDelivery(*c, w.req, seq, state, reason);
  }
}

void ProducerServer::Impl::SendDelivery(Connection& c, std::optional<int64_t> req, uint64_t seq,
                                        store::MessageState state, const std::string& reason) {
  pr::Reply reply;
  reply.req = req;
  reply.ok = state == store::MessageState::kSent;
  reply.status = reply.ok ? "delivered" : store::MessageStateName(state);
  reply.seq = seq;
  reply.reason = reason;
  // A new slot: it goes out after the stored reply, which may still wait
  // behind earlier requests.
  ReplyNow(c, reply);
}

// The waiter is registered first, then the row's state read: a delivery
// notified in between finds the waiter and answers it (the query's answer
// then finds it gone), and one notified before is visible to the query,
// since the sync worker issues MarkSent/MarkDead in the same loop turn as
// the notification and the journal runs operations in call order.
void ProducerServer::Impl::CheckDuplicateDelivery(uint64_t seq, uint64_t conn_id,
                                                  std::optional<int64_t> req) {
  journal_.Query(seq, [w = Weak(self_), seq, conn_id, req](Result<store::QueryResult> res) {
    Impl* self = Lock(w);
    if (!self || !res.ok() || res->state == store::MessageState::kPending) return;
    auto it = self->waiters_.find(seq);
    if (it == self->waiters_.end()) return;
    auto& list = it->second;
    auto mine = std::find_if(list.begin(), list.end(), [&](const Waiter& x) {
      return x.conn_id == conn_id && x.req == req;
    });
    if (mine == list.end()) return;
    list.erase(mine);
    --self->waiter_count_;
    bool conn_still_waits = std::any_of(list.begin(), list.end(),
                                        [&](const Waiter& x) { return x.conn_id == conn_id; });
    if (list.empty()) self->waiters_.erase(it);
    Connection* c = self->Find(conn_id);
    if (!c) return;
    if (!conn_still_waits) c->delivery_seqs.erase(seq);
    // Unknown: the row left the journal beyond what it remembers (sent and
    // deleted by retention long ago, or dropped when full): nothing true
    // can be said but that.
    std::string reason = res->state == store::MessageState::kUnknown
                             ? "no longer in the journal"
                             : res->reason;
    self->SendDelivery(*c, req, seq, res->state, reason);
  });
}

// --- replies ---------------------------------------------------------------

uint64_t ProducerServer::Impl::PushSlot(Connection& c, size_t payload_bytes) {
  uint64_t serial = c.next_serial();
  c.slots.emplace_back();
  c.slots.back().payload_bytes = payload_bytes;
  c.pending_bytes += payload_bytes;
  return serial;
}

void ProducerServer::Impl::CompleteSlot(Connection& c, uint64_t serial, const pr::Reply& reply,
                                        std::string_view body, bool close_after) {
  assert(serial >= c.front_serial && serial < c.next_serial());
  Slot& slot = c.slots[serial - c.front_serial];
  slot.ready = true;
  if (serial == c.front_serial) {
    pr::AppendReplyFrame(&c.out, reply, body);
  } else {
    pr::AppendReplyFrame(&slot.frame, reply, body);
  }
  slot.close_after = close_after;
  c.pending_bytes -= slot.payload_bytes;
  slot.payload_bytes = 0;
  while (!c.slots.empty() && c.slots.front().ready) {
    c.out += c.slots.front().frame;
    if (c.slots.front().close_after) c.close_requested = true;
    c.slots.pop_front();
    ++c.front_serial;
  }
  if (!c.dirty) {
    c.dirty = true;
    dirty_.push_back(c.id);
  }
  UpdateThrottle(c);
}

void ProducerServer::Impl::ReplyNow(Connection& c, const pr::Reply& reply, std::string_view body,
                                    bool close_after) {
  CompleteSlot(c, PushSlot(c, 0), reply, body, close_after);
}

void ProducerServer::Impl::ReplyError(Connection& c, std::optional<int64_t> req,
                                      pr::ErrorCode code, std::string message,
                                      std::optional<int64_t> retry_after_ms) {
  ++stats_.errors;
  pr::Reply reply = pr::ErrorReply(req, code, std::move(message));
  reply.retry_after_ms = retry_after_ms;
  ReplyNow(c, reply);
}

// Once per loop turn: one write per connection however many replies are ready.
void ProducerServer::Impl::FlushAll() {
  MaybeHandOver(false);
  if (dirty_.empty()) return;
  std::vector<uint64_t> ids;
  ids.swap(dirty_);
  for (uint64_t id : ids) {
    if (Connection* c = Find(id)) {
      c->dirty = false;
      Flush(*c);
    }
  }
}

void ProducerServer::Impl::Flush(Connection& c) {
  if (!c.out.empty()) {
    // Straight to the socket when it takes everything (the usual case):
    // no write request, no extra epoll_ctl and loop turn (see
    // platform/stream_try_write.h).
    Result<size_t> sent = platform::TryWriteNow(*c.stream, c.out);
    if (!sent.ok()) return Close(c.id);
    if (*sent == c.out.size()) {
      // Keep a small buffer for the next turn, not a large one per idle
      // connection.
      if (c.out.capacity() > kKeepOutBytes) {
        std::string().swap(c.out);
      } else {
        c.out.clear();
      }
      UpdateThrottle(c);
      return MaybeClose(c);
    }
    c.out.erase(0, *sent);
    ++c.writes_in_flight;
    Status st = c.stream->Write(std::move(c.out), [w = Weak(self_), id = c.id](const Status& s) {
      Impl* self = Lock(w);
      Connection* conn = self ? self->Find(id) : nullptr;
      if (!conn) return;
      --conn->writes_in_flight;
      if (!s.ok()) return self->Close(id);
      self->UpdateThrottle(*conn);
      self->MaybeClose(*conn);
    });
    c.out.clear();
    if (!st.ok()) return Close(c.id);
  }
  MaybeClose(c);
}

void ProducerServer::Impl::MaybeClose(Connection& c) {
  if (!c.read_eof && !c.close_requested) return;
  // A bad frame's reply is queued last, so "nothing left" includes it; the
  // replies before it (publishes awaiting commit) are still answered.
  if (!c.slots.empty() || !c.out.empty() || c.writes_in_flight > 0) return;
  Close(c.id);
}

void ProducerServer::Impl::Close(uint64_t id) {
  auto it = connections_.find(id);
  if (it == connections_.end()) return;
  Connection& c = *it->second;
  for (uint64_t seq : c.delivery_seqs) {
    auto w = waiters_.find(seq);
    if (w == waiters_.end()) continue;
    auto& list = w->second;
    for (auto li = list.begin(); li != list.end();) {
      if (li->conn_id == id) {
        li = list.erase(li);
        --waiter_count_;
      } else {
        ++li;
      }
    }
    if (list.empty()) waiters_.erase(w);
  }
  c.stream->StopReading();
  std::unique_ptr<Connection> conn = std::move(it->second);
  connections_.erase(it);
  // The stream may be inside one of its own callbacks right now.
  loop_.DeferDelete(std::move(conn));
}

ProducerServerStats ProducerServer::Impl::Stats() const {
  stats_.connections = connections_.size();
  stats_.awaiting_commit = awaiting_commit_;
  stats_.delivery_waiters = waiter_count_;
  uint64_t buffered = 0;
  for (const auto& [id, c] : connections_) {
    buffered += c->decoder.buffered_bytes() + c->pending_bytes + c->out.size() +
                c->stream->write_queue_bytes();
    for (const Slot& s : c->slots) buffered += s.frame.size();
  }
  stats_.buffered_bytes = buffered;
  if (buffered > stats_.peak_buffered_bytes) stats_.peak_buffered_bytes = buffered;
  return stats_;
}

// --- ProducerServer --------------------------------------------------------

Result<std::unique_ptr<ProducerServer>> ProducerServer::Start(platform::Loop& loop,
                                                               store::Journal& journal,
                                                               ProducerServerOptions options,
                                                               ProducerServerHooks hooks) {
  auto acl = Acl::Create(options.acl);
  if (!acl.ok()) return acl.status();
  auto impl = std::make_unique<Impl>(loop, journal, std::move(options), std::move(hooks),
                                     std::move(acl).value());
  ES_RETURN_IF_ERROR(impl->Listen());
  return std::unique_ptr<ProducerServer>(new ProducerServer(std::move(impl)));
}

ProducerServer::ProducerServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ProducerServer::~ProducerServer() = default;

void ProducerServer::NotifyDelivery(uint64_t seq, store::MessageState state,
                                    const std::string& reason) {
  impl_->NotifyDelivery(seq, state, reason);
}

ProducerServerStats ProducerServer::stats() const { return impl_->Stats(); }
const ProducerServerOptions& ProducerServer::options() const { return impl_->options(); }

}  // namespace edgespool::agent
