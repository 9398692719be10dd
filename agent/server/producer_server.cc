#include "agent/server/producer_server.h"

#include <algorithm>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "agent/protocol/frame.h"
#include "agent/protocol/json_writer.h"
#include "agent/protocol/reply.h"
#include "agent/protocol/request.h"
#include "agent/server/commit_gate.h"
#include "agent/server/connection.h"
#include "platform/log.h"
#include "platform/stream.h"

namespace edgespool::agent {

namespace pr = ::edgespool::protocol;
using server::CommitGate;
using server::Connection;
using server::Connections;

static_assert(ProducerServer::kPulsePauseMs == CommitGate::kPulsePauseMs &&
                  ProducerServer::kPulseReadMs == CommitGate::kPulseReadMs,
              "the pulse stated in producer_server.h is the gate's");

namespace {

struct Waiter {
  uint64_t conn_id;
  std::optional<int64_t> req;
};

uint64_t PeerKey(uint32_t uid, uint32_t gid) { return (uint64_t{uid} << 32) | gid; }

Connection::Bounds ConnBounds() {
  Connection::Bounds b;
  b.max_pending = ProducerServer::kMaxConnPending;
  b.max_pending_bytes = ProducerServer::kMaxConnPendingBytes;
  b.max_write_bytes = ProducerServer::kMaxConnWriteBytes;
  return b;
}

CommitGate::Options GateOptions(const ProducerServerOptions& o) {
  CommitGate::Options g;
  g.max_awaiting_commit = o.max_awaiting_commit;
  g.append_linger_ms = o.append_linger_ms;
  return g;
}

}  // namespace

class ProducerServer::Impl : public server::ConnectionOwner {
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
        sweep_timer_(loop),
        self_(std::make_shared<Impl*>(this)),
        gate_(loop, journal, *clock_, GateOptions(options_),
              [this](bool) { conns_.UpdateReadingAll(); }),
        conns_(loop, *this, ConnBounds(), options_.max_message_bytes) {}

  // Held appends still go to the journal (their producers hear nothing, as
  // the connections close now): stored, as they would have been a moment
  // later.
  ~Impl() override {
    *self_ = nullptr;
    gate_.HandOver();
  }

  Status Listen();
  void Reconfigure(Acl acl, std::vector<RateLimitRule> rate_limits) {
    acl_ = std::move(acl);
    options_.rate_limits = std::move(rate_limits);
    rate_limiter_ = RateLimiter(options_.rate_limits);
  }
  void NotifyDelivery(uint64_t seq, store::MessageState state, const std::string& reason);
  ProducerServerStats Stats() const;
  const ProducerServerOptions& options() const { return options_; }

  // server::ConnectionOwner
  bool OnFrame(Connection& c, const pr::Frame& f) override;
  void OnBadStream(Connection& c, const std::string& why) override {
    BadFrame(c, std::nullopt, why);
  }
  bool ReadingBlocked() const override { return gate_.blocked(); }
  void OnClosing(Connection& c) override;

 private:
  using Weak = std::weak_ptr<Impl*>;
  static Impl* Lock(const Weak& w) {
    auto p = w.lock();
    return p ? *p : nullptr;
  }

  void OnAccept(std::unique_ptr<platform::Stream> stream);
  void Refuse(std::unique_ptr<platform::Stream> stream);
  void SweepLogged();
  void OnTooLarge(Connection& c, const pr::Frame& f);
  void OnMethodOp(Connection& c, const pr::Request& r, std::string_view body);
  bool MaySubscribe(Connection& c, const pr::Request& r);
  void OnPublish(Connection& c, pr::Request& r, std::string_view body);
  bool Admit(Connection& c, const pr::Request& r, size_t bytes, int64_t now_mono_ns);
  void OnAppended(uint64_t conn_id, uint64_t serial, std::optional<int64_t> req,
                  pr::AckMode ack, Result<store::AppendOutcome> res);
  void AddWaiter(Connection& c, uint64_t seq, std::optional<int64_t> req, bool duplicate);
  void OnQuery(Connection& c, const pr::Request& r);
  // ack:"delivered" on a duplicate: the original may have been delivered
  // (or gone dead) long ago, when no NotifyDelivery will come again.
  void CheckDuplicateDelivery(uint64_t seq, uint64_t conn_id, std::optional<int64_t> req);
  void OnDuplicateState(uint64_t seq, uint64_t conn_id, std::optional<int64_t> req,
                        const store::QueryResult& res);
  void SendDelivery(Connection& c, std::optional<int64_t> req, uint64_t seq,
                    store::MessageState state, const std::string& reason);
  void OnStatus(Connection& c, const pr::Request& r);
  void OnReload(Connection& c, const pr::Request& r);
  void BadFrame(Connection& c, std::optional<int64_t> req, const std::string& why);
  void ReplyError(Connection& c, std::optional<int64_t> req, pr::ErrorCode code,
                  std::string message, std::optional<int64_t> retry_after_ms = {});

  // Once a minute per peer.
  bool ShouldLog(std::unordered_map<uint64_t, int64_t>* logged, const Connection& c) {
    int64_t now = clock_->MonotonicMs();
    auto [it, fresh] = logged->emplace(PeerKey(c.uid(), c.gid()), now);
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
  platform::TimerHandle sweep_timer_;
  std::shared_ptr<Impl*> self_;  // journal and write callbacks hold a weak_ptr
  CommitGate gate_;
  Connections conns_;
  std::unordered_map<uint64_t, std::unique_ptr<platform::Stream>> refused_;

  std::unordered_map<uint64_t, std::vector<Waiter>> waiters_;  // seq -> who waits
  size_t waiter_count_ = 0;
  size_t waiters_reserved_ = 0;  // ack:"delivered" appends not yet committed
  // conn id -> the seqs it waits on (ack:"delivered"), to forget at close.
  std::unordered_map<uint64_t, std::unordered_set<uint64_t>> delivery_seqs_;

  // peer -> when we last logged about it: a misbehaving producer must not
  // flood the log. Swept every 10 s.
  std::unordered_map<uint64_t, int64_t> denied_logged_ms_;
  std::unordered_map<uint64_t, int64_t> bad_frame_logged_ms_;
  mutable ProducerServerStats stats_;
};

// --- listening and accepting ---------------------------------------------

Status ProducerServer::Impl::Listen() {
  auto on_accept = [this](std::unique_ptr<platform::Stream> s) { OnAccept(std::move(s)); };
  // The same backlog either way: an inherited socket is listened on again
  // with it (edgespool.socket also says Backlog=4096).
  constexpr int kBacklog = 4096;
  auto listener =
      options_.inherited_fd >= 0
          ? platform::Listener::FromFd(loop_, options_.inherited_fd, true, on_accept, kBacklog)
          : platform::Listener::ListenUnix(loop_, options_.socket_path, options_.socket_mode,
                                           kBacklog, on_accept);
  if (!listener.ok()) return listener.status();
  listener_ = std::move(listener).value();
  conns_.Start([this] { gate_.OnTurn(); });
  sweep_timer_.Start(10000, 10000, [this] { SweepLogged(); });
  sweep_timer_.Unref();
  return Status::Ok();
}

void ProducerServer::Impl::SweepLogged() {
  int64_t now = clock_->MonotonicMs();
  rate_limiter_.Sweep(now);
  for (auto* logged : {&denied_logged_ms_, &bad_frame_logged_ms_}) {
    for (auto it = logged->begin(); it != logged->end();) {
      it = now - it->second >= 60000 ? logged->erase(it) : std::next(it);
    }
  }
}

void ProducerServer::Impl::OnAccept(std::unique_ptr<platform::Stream> stream) {
  if (conns_.size() >= options_.max_connections) return Refuse(std::move(stream));
  conns_.Add(std::move(stream));
  ++stats_.connections_total;
}

// Past max_connections: one busy frame, then close. Existing connections are
// not touched; the refused one is not read at all.
void ProducerServer::Impl::Refuse(std::unique_ptr<platform::Stream> stream) {
  ++stats_.connections_refused;
  pr::Reply reply = pr::ErrorReply(std::nullopt, pr::ErrorCode::kBusy,
                                   "too many connections (max_connections " +
                                       std::to_string(options_.max_connections) + ")");
  reply.retry_after_ms = options_.busy_retry_after_ms;
  uint64_t id = conns_.NextId();
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

void ProducerServer::Impl::BadFrame(Connection& c, std::optional<int64_t> req,
                                    const std::string& why) {
  ++stats_.bad_frames;
  if (ShouldLog(&bad_frame_logged_ms_, c)) {
    ES_LOG_WARN("producer: bad frame, closing connection (logged once a minute per peer)",
                {{"uid", std::to_string(c.uid())}, {"why", why}});
  }
  c.ReplyNow(pr::ErrorReply(req, pr::ErrorCode::kBadFrame, why), {}, /*close_after=*/true);
  c.CloseAfterReplies();
}

void ProducerServer::Impl::OnClosing(Connection& c) {
  if (hooks_.on_closing) hooks_.on_closing(c);
  auto seqs = delivery_seqs_.find(c.id());
  if (seqs == delivery_seqs_.end()) return;
  for (uint64_t seq : seqs->second) {
    auto w = waiters_.find(seq);
    if (w == waiters_.end()) continue;
    auto& list = w->second;
    for (auto li = list.begin(); li != list.end();) {
      if (li->conn_id == c.id()) {
        li = list.erase(li);
        --waiter_count_;
      } else {
        ++li;
      }
    }
    if (list.empty()) waiters_.erase(w);
  }
  delivery_seqs_.erase(seqs);
}

// --- requests --------------------------------------------------------------

bool ProducerServer::Impl::OnFrame(Connection& c, const pr::Frame& f) {
  if (c.close_requested()) return false;
  if (f.body_skipped) {
    OnTooLarge(c, f);
    return !c.close_requested();
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
    case pr::Op::kReload:
      OnReload(c, r);
      break;
    case pr::Op::kPing: {
      pr::Reply reply;
      reply.req = r.req;
      reply.ok = true;
      c.ReplyNow(reply);
      break;
    }
    case pr::Op::kSubscribe:
    case pr::Op::kAck:
    case pr::Op::kUnsubscribe:
      if (r.op == pr::Op::kSubscribe && !MaySubscribe(c, r)) break;
      if (hooks_.consumer_op) {
        hooks_.consumer_op(c, r);
      } else {
        ReplyError(c, r.req, pr::ErrorCode::kBadRequest,
                   std::string(pr::OpName(r.op)) + ": the downlink is off (downlink.enabled)");
      }
      break;
    case pr::Op::kRequest:
    case pr::Op::kRespond:
    case pr::Op::kAnswer: OnMethodOp(c, r, f.body); break;
  }
  return true;
}

// Requesting is publishing: the ACL's publish rules apply to its topic;
// registering as a responder needs its respond rules.
void ProducerServer::Impl::OnMethodOp(Connection& c, const pr::Request& r, std::string_view body) {
  if (!hooks_.method_op) {
    return ReplyError(c, r.req, pr::ErrorCode::kBadRequest,
                      std::string(pr::OpName(r.op)) + ": request/response is off (requests.enabled)");
  }
  if (r.op == pr::Op::kRequest && !acl_.MayPublish(c.uid(), c.gid(), r.request.topic)) {
    return ReplyError(c, r.req, pr::ErrorCode::kForbidden, "not allowed to publish on this topic");
  }
  if (r.op == pr::Op::kRespond && !r.respond.stop) {
    for (const std::string& method : r.respond.methods) {
      if (acl_.MayRespond(c.uid(), c.gid(), method)) continue;
      return ReplyError(c, r.req, pr::ErrorCode::kForbidden,
                        "not allowed to respond to method " + method);
    }
  }
  hooks_.method_op(c, r, body);
}

// Every filter of a subscribe must lie within the ACL's subscribe rules; a
// refusal is the reply.
bool ProducerServer::Impl::MaySubscribe(Connection& c, const pr::Request& r) {
  for (const std::string& filter : r.subscribe.filters) {
    if (acl_.MaySubscribe(c.uid(), c.gid(), filter)) continue;
    ReplyError(c, r.req, pr::ErrorCode::kForbidden, "not allowed to subscribe to " + filter);
    return false;
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
  c.ReplyNow(reply);
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
  if (!acl_.MayPublish(c.uid(), c.gid(), r.publish.topic)) {
    if (ShouldLog(&denied_logged_ms_, c)) {
      ES_LOG_WARN("producer: publish denied by acl (logged once a minute per peer)",
                  {{"uid", std::to_string(c.uid())}, {"gid", std::to_string(c.gid())},
                   {"topic", r.publish.topic}});
    }
    return refuse(pr::ErrorCode::kForbidden, "not allowed to publish on this topic", {});
  }
  auto d = rate_limiter_.Admit(c.uid(), c.gid(), bytes, now_mono_ns / 1000000);
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
  // Scheduled delivery: stored now, uploaded from then on (schema.cc,
  // "SCHEDULED DELIVERY"); a time already past is no schedule at all.
  if (p.deliver_at_ms) m.deliver_at_ms = *p.deliver_at_ms;
  if (p.delay_ms && *p.delay_ms > 0) m.deliver_at_ms = now_ms + *p.delay_ms;
  m.msg_id = std::move(p.id);
  m.headers = std::move(p.headers);
  m.payload.assign(body.data(), body.size());
  if (hooks_.route) {
    Status st = hooks_.route(m, now_ms);
    if (!st.ok()) {
      ES_LOG_ERROR("producer: publish refused by its route", {{"error", st.ToString()}});
      if (p.ack == pr::AckMode::kNone) {
        ++stats_.errors;
      } else {
        ReplyError(c, r.req, pr::ErrorCode::kInternal, st.message(), {});
      }
      return;
    }
  }
  // A copy for the tap only while someone watches this topic; it lives as
  // long as the append waits for its commit (bounded by the commit gate).
  std::shared_ptr<const store::Message> tapped;
  std::string untapped_topic;  // only the topic otherwise (on_stored_untapped)
  if (hooks_.wants_stored && hooks_.wants_stored(m.topic)) {
    tapped = std::make_shared<const store::Message>(m);
  } else if (hooks_.on_stored_untapped) {
    untapped_topic = m.topic;
  }
  std::string audit_topic;
  if (hooks_.on_accepted) audit_topic = m.topic;

  uint64_t serial = 0;
  if (p.ack != pr::AckMode::kNone) serial = c.PushSlot(body.size());
  if (p.ack == pr::AckMode::kDelivered) ++waiters_reserved_;
  gate_.Append(std::move(m), [w = Weak(self_), id = c.id(), serial, req = r.req, ack = p.ack,
                              received_ns, tapped, untapped_topic = std::move(untapped_topic),
                              audit_topic = std::move(audit_topic)](
                                 Result<store::AppendOutcome> res) {
    Impl* self = Lock(w);
    if (!self) return;
    if (self->hooks_.on_accepted && res.ok() && !res->duplicate) {
      self->hooks_.on_accepted(res->seq, audit_topic);
    }
    if (tapped && res.ok() && !res->duplicate && self->hooks_.on_stored) {
      self->hooks_.on_stored(res->seq, *tapped);
    } else if (!tapped && res.ok() && !res->duplicate && self->hooks_.on_stored_untapped) {
      self->hooks_.on_stored_untapped(res->seq, untapped_topic);
    }
    if (res.ok() && self->hooks_.on_ack_latency) {
      self->hooks_.on_ack_latency(
          static_cast<double>(self->clock_->MonotonicNs() - received_ns) / 1e9);
    }
    self->OnAppended(id, serial, req, ack, std::move(res));
  });
}

void ProducerServer::Impl::OnAppended(uint64_t conn_id, uint64_t serial,
                                      std::optional<int64_t> req, pr::AckMode ack,
                                      Result<store::AppendOutcome> res) {
  if (ack == pr::AckMode::kDelivered) --waiters_reserved_;
  gate_.Committed();
  if (res.ok()) {
    ++stats_.published;
    if (res->duplicate) ++stats_.duplicates;
  }
  Connection* c = conns_.Find(conn_id);
  if (!c || ack == pr::AckMode::kNone) return;
  pr::Reply reply;
  reply.req = req;
  if (res.ok()) {
    reply.ok = true;
    reply.status = res->duplicate ? "duplicate" : "stored";
    reply.seq = res->seq;
    reply.uplink = Uplink();
    if (ack == pr::AckMode::kDelivered) AddWaiter(*c, res->seq, req, res->duplicate);
  } else if (res.status().code() == Code::kResourceExhausted) {
    reply = pr::ErrorReply(req, pr::ErrorCode::kJournalFull, res.status().message());
    reply.retry_after_ms = options_.full_retry_after_ms;
    ++stats_.errors;
  } else {
    Code code = res.status().code();
    bool disk = code == Code::kIoError || code == Code::kPermissionDenied;
    reply = pr::ErrorReply(req, pr::ErrorCode::kInternal,
                           (disk ? "journal write failed: " : "") + res.status().ToString());
    // A disk that stopped taking writes (EIO, EPERM, read-only) may come
    // back: say when to try again, as for journal_full.
    if (disk) reply.retry_after_ms = options_.full_retry_after_ms;
    ++stats_.errors;
  }
  c->CompleteSlot(serial, reply);
}

void ProducerServer::Impl::AddWaiter(Connection& c, uint64_t seq, std::optional<int64_t> req,
                                     bool duplicate) {
  waiters_[seq].push_back(Waiter{c.id(), req});
  ++waiter_count_;
  delivery_seqs_[c.id()].insert(seq);
  if (duplicate) CheckDuplicateDelivery(seq, c.id(), req);
}

void ProducerServer::Impl::OnQuery(Connection& c, const pr::Request& r) {
  // A query sees every publish made before it, held or not (the journal
  // runs operations in call order).
  gate_.HandOver();
  uint64_t serial = c.PushSlot(0);
  auto done = [w = Weak(self_), id = c.id(), serial, req = r.req](Result<store::QueryResult> res) {
    Impl* self = Lock(w);
    Connection* conn = self ? self->conns_.Find(id) : nullptr;
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
        if (res->deliver_at_ms) reply.deliver_at_ms = res->deliver_at_ms;
      }
    } else if (res.status().code() == Code::kNotFound) {
      reply.ok = true;
      reply.state = store::MessageStateName(store::MessageState::kUnknown);
    } else {
      reply = pr::ErrorReply(req, pr::ErrorCode::kInternal, res.status().ToString());
    }
    conn->CompleteSlot(serial, reply);
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
  w.Str("uplink", Uplink());
  // Not known yet while a big journal counts its backlog after a crash.
  if (s.pending_counting) {
    w.Bool("pending_counting", true);
  } else {
    w.Uint("pending_count", s.pending_count).Uint("pending_bytes", s.pending_bytes);
  }
  w.Int("oldest_pending_ts", s.oldest_pending_ts_ms)
      .Uint("sent_total", s.sent_total)
      .Uint("dead_count", s.dead_count)
      .Uint("dropped_total", s.dropped_total)
      .Uint("journal_bytes", s.file_bytes)
      .Uint("connections", conns_.size());
  return std::move(w).Finish();
}

void ProducerServer::Impl::OnStatus(Connection& c, const pr::Request& r) {
  pr::Reply reply;
  reply.req = r.req;
  reply.ok = true;
  c.ReplyNow(reply, hooks_.status_json ? hooks_.status_json() : DefaultStatus());
}

// Root and the agent's own uid only: a reload changes what every producer
// may do, and its answer names the keys that changed.
void ProducerServer::Impl::OnReload(Connection& c, const pr::Request& r) {
  if (!hooks_.reload) {
    return ReplyError(c, r.req, pr::ErrorCode::kBadRequest, "reload is not available here");
  }
  if (c.uid() != 0 && (!options_.reload_uid || c.uid() != *options_.reload_uid)) {
    ES_LOG_WARN("producer: reload denied", {{"uid", std::to_string(c.uid())}});
    return ReplyError(c, r.req, pr::ErrorCode::kForbidden,
                      "reload: only root or the agent's user may reload");
  }
  ReloadOutcome out = hooks_.reload();
  pr::Reply reply;
  reply.req = r.req;
  reply.ok = out.ok;
  reply.message = out.message;
  if (out.ok) {
    reply.status = out.changed ? "reloaded" : "unchanged";
  } else {
    reply.code = pr::ErrorCode::kBadRequest;
    ++stats_.errors;
  }
  c.ReplyNow(reply, out.json);
}

void ProducerServer::Impl::ReplyError(Connection& c, std::optional<int64_t> req,
                                      pr::ErrorCode code, std::string message,
                                      std::optional<int64_t> retry_after_ms) {
  ++stats_.errors;
  pr::Reply reply = pr::ErrorReply(req, code, std::move(message));
  reply.retry_after_ms = retry_after_ms;
  c.ReplyNow(reply);
}

// --- delivery waiters (ack:"delivered") ------------------------------------

void ProducerServer::Impl::NotifyDelivery(uint64_t seq, store::MessageState state,
                                          const std::string& reason) {
  auto it = waiters_.find(seq);
  if (it == waiters_.end()) return;
  std::vector<Waiter> waiters = std::move(it->second);
  waiters_.erase(it);
  waiter_count_ -= waiters.size();
  for (const Waiter& w : waiters) {
    Connection* c = conns_.Find(w.conn_id);
    if (!c) continue;
    delivery_seqs_[w.conn_id].erase(seq);
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
  c.ReplyNow(reply);
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
    self->OnDuplicateState(seq, conn_id, req, *res);
  });
}

void ProducerServer::Impl::OnDuplicateState(uint64_t seq, uint64_t conn_id,
                                            std::optional<int64_t> req,
                                            const store::QueryResult& res) {
  auto it = waiters_.find(seq);
  if (it == waiters_.end()) return;
  auto& list = it->second;
  auto mine = std::find_if(list.begin(), list.end(), [&](const Waiter& x) {
    return x.conn_id == conn_id && x.req == req;
  });
  if (mine == list.end()) return;
  list.erase(mine);
  --waiter_count_;
  bool conn_still_waits = std::any_of(list.begin(), list.end(),
                                      [&](const Waiter& x) { return x.conn_id == conn_id; });
  if (list.empty()) waiters_.erase(it);
  Connection* c = conns_.Find(conn_id);
  if (!c) return;
  if (!conn_still_waits) delivery_seqs_[conn_id].erase(seq);
  // Unknown: the row left the journal beyond what it remembers (sent and
  // deleted by retention long ago, or dropped when full): nothing true
  // can be said but that.
  std::string reason =
      res.state == store::MessageState::kUnknown ? "no longer in the journal" : res.reason;
  SendDelivery(*c, req, seq, res.state, reason);
}

ProducerServerStats ProducerServer::Impl::Stats() const {
  stats_.connections = conns_.size();
  stats_.awaiting_commit = gate_.awaiting_commit();
  stats_.peak_awaiting_commit = gate_.peak_awaiting_commit();
  stats_.read_pauses = gate_.read_pauses();
  stats_.conn_pauses = conns_.pauses();
  stats_.delivery_waiters = waiter_count_;
  uint64_t buffered = conns_.buffered_bytes();
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

Status ProducerServer::Reconfigure(std::vector<AclEntry> acl,
                                   std::vector<RateLimitRule> rate_limits) {
  auto resolved = Acl::Create(std::move(acl));
  if (!resolved.ok()) return resolved.status();
  impl_->Reconfigure(std::move(resolved).value(), std::move(rate_limits));
  return Status::Ok();
}

ProducerServerStats ProducerServer::stats() const { return impl_->Stats(); }
const ProducerServerOptions& ProducerServer::options() const { return impl_->options(); }

}  // namespace edgespool::agent
