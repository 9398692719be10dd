#include "agent/client/consumer.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <future>
#include <mutex>
#include <optional>
#include <set>

#include "agent/client/agent_connection.h"
#include "agent/protocol/message.h"
#include "agent/protocol/request.h"
#include "platform/loop.h"
#include "platform/process_info.h"

namespace edgespool::client {

namespace pr = ::edgespool::protocol;

namespace {

// Messages carry downlink payloads (downlink.max_message_bytes, 1 MiB by
// default); anything far bigger is not from our agent.
constexpr uint64_t kMaxMessageBody = 64u << 20;
constexpr int64_t kCloseTimeoutMs = 2000;

ReceivedMessage ToReceived(pr::PushedMessage&& m, std::string_view payload) {
  ReceivedMessage r;
  r.seq = m.seq;
  r.session = std::move(m.session);
  r.topic = std::move(m.topic);
  r.broker_topic = std::move(m.broker_topic);
  r.ts_ms = m.ts_ms;
  r.headers = std::move(m.headers);
  r.response_topic = std::move(m.response_topic);
  r.correlation = std::move(m.correlation);
  r.payload.assign(payload.data(), payload.size());
  return r;
}

bool Retryable(const pr::Reply& r) {
  return r.code == pr::ErrorCode::kBusy || r.code == pr::ErrorCode::kRateLimited ||
         r.code == pr::ErrorCode::kInternal;
}

}  // namespace

class Consumer::Impl {
 public:
  Impl(ConsumerOptions options, Callback on_message);
  ~Impl();
  Status Start();
  Result<ReceivedMessage> Next(int64_t timeout_ms);
  Status Ack(std::optional<uint64_t> seq, std::optional<uint64_t> up_to);
  Status Close(bool end);
  uint64_t acked_position() const;
  uint64_t PositionLocked() const;
  bool connected() const { return connected_.load(); }
  uint64_t reconnects() const { return reconnects_.load(); }
  Status last_error() const;

 private:
  // Loop thread.
  void OnConnected();
  bool OnConnectFailed(const Status& why);
  bool OnFrame(const pr::Frame& f);
  void OnReply(const pr::Reply& reply);
  void OnSubscribeReply(const pr::Reply& reply);
  bool OnMessage(pr::PushedMessage&& m, std::string_view payload);
  void OnDisconnected(const Status& why);
  void WriteAcks();
  void Send(const pr::Request& request);
  void SendUnsubscribe(bool end);
  void ShutdownOnLoop();
  void FinishOpen(const Status& st);
  pr::Request SubscribeRequest();

  ConsumerOptions options_;
  Callback on_message_;
  std::shared_ptr<IoThread> io_;
  platform::Loop* loop_ = nullptr;
  std::promise<void> shut_down_;

  // Shared with callers, guarded by mu_.
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<ReceivedMessage> ready_;  // Next() mode: received, not handed out
  // Delivered on this connection and not acked: at most window entries,
  // since the agent keeps to the window. Ordered: the smallest bounds the
  // acked position.
  std::set<uint64_t> unacked_;
  uint64_t acked_floor_ = 0;    // the agent's position, raised by AckUpTo
  uint64_t last_received_ = 0;  // highest seq delivered here
  std::vector<pr::Request> acks_;  // for the loop to write
  bool closed_ = false;
  Status failure_;  // a resubscribe refused for good: Next() reports it
  Status last_error_;
  std::unique_ptr<platform::AsyncHandle> wake_;

  std::atomic<bool> connected_{false};
  std::atomic<uint64_t> reconnects_{0};
  std::promise<Status> opened_;
  bool open_done_ = false;
  int64_t open_deadline_ms_ = 0;

  // Loop thread only.
  std::unique_ptr<AgentConnection> conn_;
  int64_t next_req_ = 1;
  int64_t subscribe_req_ = 0;    // awaiting the reply to it, 0: none
  bool subscribed_ = false;      // the reply to it came, ok
  bool ever_subscribed_ = false;
  // An anonymous session after a drop: the first seq not known to be acked.
  std::optional<uint64_t> resume_seq_;
  int64_t unsubscribe_req_ = 0;
  std::promise<Status> unsubscribed_;
  bool unsubscribe_done_ = false;
};

Consumer::Impl::Impl(ConsumerOptions options, Callback on_message)
    : options_(std::move(options)), on_message_(std::move(on_message)) {
  if (options_.window == 0) options_.window = 1;
  if (options_.window > pr::kMaxWindow) options_.window = pr::kMaxWindow;
}

Status Consumer::Impl::Start() {
  platform::IgnoreSigpipeIfDefault();
  auto io = IoThread::GivenOrStart(options_.io);
  if (!io.ok()) return io.status();
  io_ = std::move(io).value();
  loop_ = &io_->loop();
  std::future<Status> opened = opened_.get_future();
  loop_->Post([this] {
    wake_ = std::make_unique<platform::AsyncHandle>(*loop_, [this] { WriteAcks(); });
    AgentConnection::Options co;
    co.socket_path = options_.socket_path;
    co.backoff_initial_ms = options_.backoff_initial_ms;
    co.backoff_max_ms = options_.backoff_max_ms;
    co.max_body_bytes = kMaxMessageBody;
    AgentConnection::Handlers h;
    h.on_connected = [this] { OnConnected(); };
    h.on_connect_failed = [this](const Status& why) { return OnConnectFailed(why); };
    h.on_frame = [this](const pr::Frame& f) { return OnFrame(f); };
    h.on_disconnected = [this](const Status& why) { OnDisconnected(why); };
    conn_ = std::make_unique<AgentConnection>(*loop_, std::move(co), std::move(h));
    loop_->UpdateTime();
    open_deadline_ms_ = static_cast<int64_t>(loop_->NowMs()) + options_.connect_timeout_ms;
    conn_->Connect();
  });
  // The subscribe reply can be slow to come (a busy session retried): the
  // deadline holds for it too.
  if (opened.wait_for(std::chrono::milliseconds(options_.connect_timeout_ms + 1000)) !=
      std::future_status::ready) {
    loop_->Post([this] { FinishOpen(Status::Unavailable("no answer to subscribe in time")); });
  }
  return opened.get();
}

Consumer::Impl::~Impl() {
  if (!loop_) return;
  ShutDownFromOutside(*loop_, "a Consumer", [this] { ShutdownOnLoop(); }, shut_down_);
}

void Consumer::Impl::ShutdownOnLoop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
  }
  cv_.notify_all();
  FinishOpen(Status::Cancelled("consumer closed"));
  connected_ = false;
  conn_->Stop();
  // After the stream's deferred close has run: its callbacks may find *this.
  loop_->Post([this] {
    conn_.reset();
    {
      std::lock_guard<std::mutex> lock(mu_);
      wake_.reset();
    }
    shut_down_.set_value();
  });
}

void Consumer::Impl::FinishOpen(const Status& st) {
  if (open_done_) return;
  open_done_ = true;
  opened_.set_value(st);
}

bool Consumer::Impl::OnConnectFailed(const Status& why) {
  if (open_done_) return true;
  loop_->UpdateTime();
  if (static_cast<int64_t>(loop_->NowMs()) < open_deadline_ms_) return true;
  FinishOpen(Status::Unavailable(why.message()));
  return false;
}

// A durable session resumes after its position (the agent knows it); an
// anonymous one is new on every connection, so it starts after what was
// acked here, or where the caller asked if nothing was.
pr::Request Consumer::Impl::SubscribeRequest() {
  pr::Request r;
  r.op = pr::Op::kSubscribe;
  r.req = next_req_++;
  pr::SubscribeFields& s = r.subscribe;
  s.session = options_.session;
  s.filters = options_.filters;
  s.window = options_.window;
  switch (options_.from) {
    case ConsumerOptions::From::kDefault: s.from = pr::SubscribeFields::kDefault; break;
    case ConsumerOptions::From::kNew: s.from = pr::SubscribeFields::kNew; break;
    case ConsumerOptions::From::kOldest: s.from = pr::SubscribeFields::kOldest; break;
    case ConsumerOptions::From::kSeq: s.from = pr::SubscribeFields::kSeq; break;
  }
  s.from_seq = options_.from_seq;
  if (ever_subscribed_) {
    if (!options_.session.empty()) {
      s.from = pr::SubscribeFields::kDefault;
    } else if (resume_seq_) {
      s.from = pr::SubscribeFields::kSeq;
      s.from_seq = *resume_seq_;
    }
  }
  return r;
}

void Consumer::Impl::OnConnected() {
  if (open_done_ && ever_subscribed_) ++reconnects_;
  connected_ = true;
  pr::Request r = SubscribeRequest();
  subscribe_req_ = *r.req;
  subscribed_ = false;
  Send(r);
}

void Consumer::Impl::Send(const pr::Request& request) {
  std::string frame;
  pr::AppendRequestFrame(&frame, request, {});
  conn_->Write(std::move(frame));
}

void Consumer::Impl::OnDisconnected(const Status& why) {
  connected_ = false;
  subscribe_req_ = 0;
  subscribed_ = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    uint64_t position = PositionLocked();
    if (last_received_ > 0 || acked_floor_ > 0) resume_seq_ = position + 1;
    acked_floor_ = last_received_ = position;
    // The agent resends what it delivered and was not acked; the acks not
    // yet written are for messages it will resend.
    ready_.clear();
    unacked_.clear();
    acks_.clear();
  }
  if (unsubscribe_req_ != 0 && !unsubscribe_done_) {
    unsubscribe_done_ = true;
    unsubscribed_.set_value(Status::Unavailable("connection lost before unsubscribe: " +
                                                why.message()));
  }
}

bool Consumer::Impl::OnFrame(const pr::Frame& f) {
  pr::ServerFrame sf;
  std::string error;
  if (f.body_skipped || !pr::ParseServerFrame(f.header, &sf, &error)) {
    conn_->Disconnect(Status::ProtocolError("bad frame from agent: " +
                                            (f.body_skipped ? std::string("body too large") : error)));
    return false;
  }
  if (sf.kind == pr::ServerFrame::kMessage) return OnMessage(std::move(sf.message), f.body);
  OnReply(sf.reply);
  return conn_->connected();
}

void Consumer::Impl::OnReply(const pr::Reply& reply) {
  if (!reply.req) {
    // Connection-level refusal (max_connections): come back later.
    if (!reply.ok) conn_->Disconnect(ReplyStatus(reply), reply.retry_after_ms.value_or(0));
    return;
  }
  if (*reply.req == subscribe_req_) return OnSubscribeReply(reply);
  if (*reply.req == unsubscribe_req_ && !unsubscribe_done_) {
    unsubscribe_done_ = true;
    unsubscribed_.set_value(ReplyStatus(reply));
    return;
  }
  if (!reply.ok) {  // an ack the agent refused
    std::lock_guard<std::mutex> lock(mu_);
    last_error_ = ReplyStatus(reply);
  }
}

void Consumer::Impl::OnSubscribeReply(const pr::Reply& reply) {
  subscribe_req_ = 0;
  Status st = ReplyStatus(reply);
  if (!st.ok()) {
    // Busy after a reconnect: the agent has not yet seen our last
    // connection close. Retried, within Open()'s deadline the first time.
    loop_->UpdateTime();
    bool in_time = open_done_ || static_cast<int64_t>(loop_->NowMs()) < open_deadline_ms_;
    if (Retryable(reply) && in_time) {
      return conn_->Disconnect(st, reply.retry_after_ms.value_or(0));
    }
    if (!open_done_) return FinishOpen(st);
    {
      std::lock_guard<std::mutex> lock(mu_);
      failure_ = st;
    }
    cv_.notify_all();
    conn_->Stop();
    return;
  }
  subscribed_ = true;
  ever_subscribed_ = true;
  {
    std::lock_guard<std::mutex> lock(mu_);
    acked_floor_ = std::max(acked_floor_, reply.seq.value_or(0));
  }
  FinishOpen(Status::Ok());
  WriteAcks();  // anything acked while the subscribe was on its way
}

bool Consumer::Impl::OnMessage(pr::PushedMessage&& m, std::string_view payload) {
  uint64_t seq = m.seq;
  bool over_window = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    // The agent promised the window: more would grow this without bound.
    over_window = unacked_.size() >= options_.window && unacked_.count(seq) == 0;
    if (!over_window) {
      unacked_.insert(seq);
      last_received_ = std::max(last_received_, seq);
      if (!on_message_) ready_.push_back(ToReceived(std::move(m), payload));
    }
  }
  if (over_window) {  // outside mu_: OnDisconnected takes it
    conn_->Disconnect(Status::ProtocolError("agent sent more than the window"));
    return false;
  }
  if (!on_message_) {
    cv_.notify_one();
    return true;
  }
  on_message_(ToReceived(std::move(m), payload));
  return conn_->connected();
}

void Consumer::Impl::WriteAcks() {
  if (!conn_ || !conn_->connected() || !subscribed_) return;
  std::vector<pr::Request> acks;
  {
    std::lock_guard<std::mutex> lock(mu_);
    acks.swap(acks_);
  }
  if (acks.empty()) return;
  std::string frames;
  for (pr::Request& a : acks) {
    a.req = next_req_++;
    pr::AppendRequestFrame(&frames, a, {});
  }
  conn_->Write(std::move(frames));
}

Status Consumer::Impl::Ack(std::optional<uint64_t> seq, std::optional<uint64_t> up_to) {
  pr::Request r;
  r.op = pr::Op::kAck;
  r.ack.session = options_.session;
  r.ack.seq = seq;
  r.ack.up_to = up_to;
  uint64_t value = seq ? *seq : *up_to;
  if (value == 0 || value > static_cast<uint64_t>(pr::kMaxReq)) {
    return Status::InvalidArgument("seq must be 1..2^53-1");
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_ || !wake_) return Status::Cancelled("consumer closed");
    if (seq) {
      unacked_.erase(*seq);
    } else {
      unacked_.erase(unacked_.begin(), unacked_.upper_bound(*up_to));
      acked_floor_ = std::max(acked_floor_, *up_to);
    }
    acks_.push_back(std::move(r));
    wake_->Send();  // under mu_: the loop resets wake_ under it at shutdown
  }
  return Status::Ok();
}

uint64_t Consumer::Impl::acked_position() const {
  std::lock_guard<std::mutex> lock(mu_);
  return PositionLocked();
}

uint64_t Consumer::Impl::PositionLocked() const {
  if (unacked_.empty()) return std::max(acked_floor_, last_received_);
  return std::max(acked_floor_, *unacked_.begin() - 1);
}

Status Consumer::Impl::last_error() const {
  std::lock_guard<std::mutex> lock(mu_);
  return last_error_;
}

Result<ReceivedMessage> Consumer::Impl::Next(int64_t timeout_ms) {
  if (on_message_) return Status::InvalidArgument("Next() on a Consumer with a callback");
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms),
               [this] { return !ready_.empty() || closed_ || !failure_.ok(); });
  if (!ready_.empty()) {
    ReceivedMessage m = std::move(ready_.front());
    ready_.pop_front();
    return m;
  }
  if (!failure_.ok()) return failure_;
  if (closed_) return Status::Cancelled("consumer closed");
  return Status::Timeout("no message in " + std::to_string(timeout_ms) + " ms");
}

void Consumer::Impl::SendUnsubscribe(bool end) {
  if (!conn_->connected() || !subscribed_) {
    unsubscribe_done_ = true;
    unsubscribed_.set_value(Status::Ok());  // not attached: nothing to detach
    return;
  }
  WriteAcks();  // before the unsubscribe, in order
  pr::Request r;
  r.op = pr::Op::kUnsubscribe;
  r.req = next_req_++;
  r.unsubscribe.session = options_.session;
  r.unsubscribe.end = end;
  unsubscribe_req_ = *r.req;
  Send(r);
}

Status Consumer::Impl::Close(bool end) {
  if (!loop_) return Status::Cancelled("consumer already closed");
  if (loop_->InLoopThread()) {
    return Status::InvalidArgument("Close() from a callback on the SDK thread");
  }
  std::future<Status> done = unsubscribed_.get_future();
  loop_->Post([this, end] { SendUnsubscribe(end); });
  Status st = Status::Timeout("no answer to unsubscribe in 2 s");
  if (done.wait_for(std::chrono::milliseconds(kCloseTimeoutMs)) == std::future_status::ready) {
    st = done.get();
  }
  loop_->Post([this] { ShutdownOnLoop(); });
  shut_down_.get_future().wait();
  loop_ = nullptr;  // the destructor has nothing left to do
  return st;
}

// --- Consumer ----------------------------------------------------------------

Result<std::unique_ptr<Consumer>> Consumer::Open(ConsumerOptions options, Callback on_message) {
  if (options.filters.empty()) return Status::InvalidArgument("no filters");
  auto impl = std::make_unique<Impl>(std::move(options), std::move(on_message));
  Status st = impl->Start();
  if (!st.ok()) return st;
  return std::unique_ptr<Consumer>(new Consumer(std::move(impl)));
}

Consumer::Consumer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Consumer::~Consumer() = default;

Result<ReceivedMessage> Consumer::Next(int64_t timeout_ms) { return impl_->Next(timeout_ms); }
Status Consumer::Ack(uint64_t seq) { return impl_->Ack(seq, std::nullopt); }
Status Consumer::AckUpTo(uint64_t seq) { return impl_->Ack(std::nullopt, seq); }
Status Consumer::Close(bool end) { return impl_->Close(end); }
uint64_t Consumer::acked_position() const { return impl_->acked_position(); }
bool Consumer::connected() const { return impl_->connected(); }
uint64_t Consumer::reconnects() const { return impl_->reconnects(); }
Status Consumer::last_error() const { return impl_->last_error(); }

}  // namespace edgespool::client
