#include "agent/client/producer.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <future>
#include <map>
#include <mutex>
#include <random>
#include <thread>
#include <unordered_map>

#include "agent/client/agent_connection.h"
#include "agent/client/direct_producer.h"
#include "agent/client/message_ids.h"
#include "agent/protocol/frame.h"
#include "agent/protocol/reply.h"
#include "platform/loop.h"
#include "platform/process_info.h"
#include "platform/stream.h"
#include "platform/stream_try_write.h"

namespace edgespool::client {

namespace pr = ::edgespool::protocol;

namespace {

// Replies can carry a status document; anything bigger is not ours.
constexpr uint64_t kMaxReplyBody = 16u << 20;

// A caller writes its own request only while fewer than this many are
// waiting for replies. Past it the connection is busy (a load generator,
// a backlog being flushed): the SDK thread gathers what callers queue into
// one write per wake-up instead of one send(2) per publish, and the agent
// reads them in large chunks.
constexpr size_t kDirectWriteMaxInflight = 64;

// One request from a caller, completed exactly once: a publish through
// on_publish (one std::function per publish, the id read from the request),
// other requests through on_reply / on_fail.
struct Call {
  pr::Request request;
  std::string body;
  std::function<void(PublishResult)> on_publish;
  std::function<void(const pr::Reply&, std::string_view)> on_reply;
  std::function<void(const Status&)> on_fail;
  std::function<void(const PublishResult&)> on_delivered;

  bool expects_reply() const {
    return !(request.op == pr::Op::kPublish && request.publish.ack == pr::AckMode::kNone);
  }
  // A request's answer may take seconds and comes out of order: it does
  // not hold a window slot.
  bool is_request() const { return request.op == pr::Op::kRequest; }
};

// Completes a call that got no reply (cancelled, connection lost).
void FailCall(Call& call, const Status& why) {
  if (call.on_publish) {
    PublishResult r;
    r.status = why;
    r.id = std::move(call.request.publish.id);
    call.on_publish(std::move(r));
  } else if (call.on_fail) {
    call.on_fail(why);
  }
}

PublishResult ToPublishResult(const pr::Reply& r, const std::string& id) {
  PublishResult out;
  out.status = ReplyStatus(r);
  out.code = r.code;
  out.seq = r.seq.value_or(0);
  out.duplicate = r.status == "duplicate";
  out.uplink_connected = r.uplink == "connected";
  out.retry_after_ms = r.retry_after_ms.value_or(0);
  out.id = id;
  out.delivery = r.status;
  out.reason = r.reason;
  return out;
}

}  // namespace

class Producer::Impl {
 public:
  explicit Impl(ProducerOptions options);
  ~Impl();
  Status Start();
  void Submit(std::unique_ptr<Call> call);
  std::string NextId();
  bool Drain(int64_t timeout_ms);
  bool connected() const { return connected_.load(); }
  uint64_t reconnects() const { return reconnects_.load(); }

 private:
  // Any thread, wire_mu_ held: moves what the window allows from queue_,
  // numbered, into inflight_ (or *no_reply for ack:"none"); *batch gets
  // them all in req order, to be framed.
  void TakeWindowLocked(std::vector<const Call*>* batch,
                        std::vector<std::unique_ptr<Call>>* no_reply);
  // A publishing thread, wire_mu_ held.
  bool FlushLocked();
  // Loop thread.
  bool OnConnectFailed(const Status& why);
  void OnConnected();
  void Disconnect(const Status& why, int64_t min_delay_ms = 0) { conn_->Disconnect(why, min_delay_ms); }
  void OnDisconnected(const Status& why);
  void Pump();
  void WriteRest(std::string bytes);
  bool OnFrame(const pr::Frame& f);
  void Complete(std::unique_ptr<Call> call, const pr::Reply* reply, std::string_view body,
                const Status& failure);
  void CompleteWritten(std::vector<std::unique_ptr<Call>> written);
  // Hands the completions counted since the last call to the callers'
  // side: one lock and one wake-up per batch of replies, not per reply.
  void Settle();
  std::unique_ptr<Call> TakeInflight(int64_t req);
  void ShutdownOnLoop();
  void FinishFirstConnect(const Status& st);

  ProducerOptions options_;
  MessageIds ids_;
  std::shared_ptr<IoThread> io_;
  platform::Loop* loop_ = nullptr;  // io_'s, once started: shut down there
  std::promise<void> shut_down_;    // ShutdownOnLoop has finished with *this

  // Backpressure, shared with callers, guarded by mu_.
  std::mutex mu_;
  std::condition_variable cv_;
  size_t outstanding_ = 0;
  bool stopping_ = false;
  std::unique_ptr<platform::AsyncHandle> wake_;

  // The wire, guarded by wire_mu_. A caller whose request has nothing ahead
  // of it writes it to the socket itself: at 20,000 msg/s over 8
  // connections, waking the SDK thread for every publish was a third of the
  // context switches of the whole path and the cause of its ack p99. The
  // loop thread writes whatever a caller could not (window full, socket
  // full, not connected) and reads every reply.
  std::mutex wire_mu_;
  std::deque<std::unique_ptr<Call>> queue_;  // waiting for the window
  // On the wire, in req order (replies come in request order, so the
  // answer is nearly always the front): resent in that order.
  std::deque<std::unique_ptr<Call>> inflight_;
  // Requests (op request) on the wire, by req: out of the window.
  std::unordered_map<int64_t, std::unique_ptr<Call>> requests_;
  // ack:"none" requests a caller wrote: the loop completes them, so that
  // callbacks always run on the SDK thread.
  std::vector<std::unique_ptr<Call>> written_;
  std::vector<const Call*> direct_batch_;  // FlushLocked's, kept for its capacity
  std::string out_;                        // frames being gathered for one write
  std::string unsent_;                     // what the kernel did not take: the loop writes it
  int fd_ = -1;                            // the connection's socket while connected, else -1
  bool loop_writing_ = false;              // unsent_ or a Stream::Write pending: no direct writes
  Status broken_;                          // a caller's write failed: the loop disconnects
  int64_t next_req_ = 1;

  std::atomic<bool> connected_{false};
  std::atomic<uint64_t> reconnects_{0};
  std::promise<Status> first_connect_;
  bool first_connect_done_ = false;
  int64_t first_connect_deadline_ms_ = 0;

  // Loop thread only.
  std::unique_ptr<AgentConnection> conn_;
  size_t unsettled_ = 0;  // completions not yet subtracted from outstanding_
  std::string loop_out_;  // the frames of one Pump() batch
  std::unordered_map<int64_t, std::function<void(const PublishResult&)>> delivery_;
};

Producer::Impl::Impl(ProducerOptions options)
    : options_(std::move(options)), ids_(options_.id_prefix) {
  if (options_.window == 0) options_.window = 1;
  if (options_.max_queued == 0) options_.max_queued = 1;
}

std::string Producer::Impl::NextId() { return ids_.Next(); }

Status Producer::Impl::Start() {
  platform::IgnoreSigpipeIfDefault();
  auto io = IoThread::GivenOrStart(options_.io);
  if (!io.ok()) return io.status();
  io_ = std::move(io).value();
  loop_ = &io_->loop();
  std::future<Status> first = first_connect_.get_future();
  // The loop may be running already (a shared IoThread): its handles are
  // made on its thread.
  loop_->Post([this] {
    wake_ = std::make_unique<platform::AsyncHandle>(*loop_, [this] { Pump(); });
    AgentConnection::Options co;
    co.socket_path = options_.socket_path;
    co.backoff_initial_ms = options_.backoff_initial_ms;
    co.backoff_max_ms = options_.backoff_max_ms;
    co.max_body_bytes = kMaxReplyBody;
    AgentConnection::Handlers h;
    h.on_connected = [this] { OnConnected(); };
    h.on_connect_failed = [this](const Status& why) { return OnConnectFailed(why); };
    h.on_frame = [this](const pr::Frame& f) { return OnFrame(f); };
    // Whatever the replies in one read made room for goes out in one
    // write, and the callers hear of them in one wake-up.
    h.after_read = [this] { Pump(); };
    h.on_disconnected = [this](const Status& why) { OnDisconnected(why); };
    conn_ = std::make_unique<AgentConnection>(*loop_, std::move(co), std::move(h));
    loop_->UpdateTime();
    first_connect_deadline_ms_ = static_cast<int64_t>(loop_->NowMs()) + options_.connect_timeout_ms;
    conn_->Connect();
  });
  return first.get();
}

Producer::Impl::~Impl() {
  if (loop_) {
    ShutDownFromOutside(*loop_, "a Producer", [this] { ShutdownOnLoop(); }, shut_down_);
  }
  // Anything submitted after the loop stopped never reached it.
  std::deque<std::unique_ptr<Call>> left;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  {
    std::lock_guard<std::mutex> lock(wire_mu_);
    left.swap(queue_);
  }
  for (auto& call : left) FailCall(*call, Status::Cancelled("producer closed"));
}

void Producer::Impl::ShutdownOnLoop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  FinishFirstConnect(Status::Cancelled("producer closed"));
  connected_ = false;
  Status why = Status::Cancelled("producer closed");
  std::deque<std::unique_ptr<Call>> unanswered;
  std::vector<std::unique_ptr<Call>> written;
  {
    std::lock_guard<std::mutex> lock(wire_mu_);
    fd_ = -1;
    // Unanswered requests in their original order: the in-flight ones first.
    unanswered.swap(inflight_);
    for (auto& [req, call] : requests_) unanswered.push_back(std::move(call));
    requests_.clear();
    for (auto& call : queue_) unanswered.push_back(std::move(call));
    queue_.clear();
    written.swap(written_);
  }
  conn_->Stop();
  CompleteWritten(std::move(written));
  for (auto& call : unanswered) Complete(std::move(call), nullptr, {}, why);
  Settle();
  for (auto& [req, cb] : delivery_) {
    PublishResult r;
    r.status = why;
    cb(r);
  }
  delivery_.clear();
  // After the deferred deletions just queued (the stream) have run: their
  // callbacks may still find *this.
  loop_->Post([this] {
    conn_.reset();
    wake_.reset();
    shut_down_.set_value();
  });
}

void Producer::Impl::Submit(std::unique_ptr<Call> call) {
  if (call->is_request() && !connected_.load()) {
    // Not stored, so not queued for a reconnect either.
    return FailCall(*call, Status::Unavailable("not connected to the agent"));
  }
  bool on_loop = loop_ && loop_->InLoopThread();
  {
    std::unique_lock<std::mutex> lock(mu_);
    if (!stopping_ && loop_ && !on_loop) {
      cv_.wait(lock, [this] { return outstanding_ < options_.max_queued || stopping_; });
    }
    if (stopping_) {
      lock.unlock();
      return FailCall(*call, Status::Cancelled("producer closed"));
    }
    ++outstanding_;
  }
  bool wake = on_loop;
  {
    std::lock_guard<std::mutex> lock(wire_mu_);
    queue_.push_back(std::move(call));
    // From a callback the loop writes it once the callback returns.
    if (!on_loop) {
      wake = inflight_.size() < kDirectWriteMaxInflight ? !FlushLocked() : queue_.size() == 1;
    }
  }
  if (wake) wake_->Send();
}

void Producer::Impl::TakeWindowLocked(std::vector<const Call*>* batch,
                                      std::vector<std::unique_ptr<Call>>* no_reply) {
  batch->clear();
  while (inflight_.size() < options_.window && !queue_.empty()) {
    std::unique_ptr<Call> call = std::move(queue_.front());
    queue_.pop_front();
    call->request.req = next_req_++;
    batch->push_back(call.get());
    if (call->is_request()) {
      int64_t req = *call->request.req;
      requests_.emplace(req, std::move(call));
    } else if (call->expects_reply()) {
      inflight_.push_back(std::move(call));
    } else {
      no_reply->push_back(std::move(call));
    }
  }
}

// Frames what the window allows and writes it if the socket is the
// caller's to write: connected, nothing of the loop's being written.
// False when the loop thread must follow up (a remainder to write, a
// written ack:"none" request to complete, a failed write). A request left
// in queue_ needs no wake-up: a reply (window full), the end of the loop's
// write or the next connection pumps it.
bool Producer::Impl::FlushLocked() {
  if (fd_ < 0 || loop_writing_ || !broken_.ok()) return true;
  size_t written_before = written_.size();
  TakeWindowLocked(&direct_batch_, &written_);
  if (direct_batch_.empty()) return true;
  bool done = written_.size() == written_before;
  out_.clear();
  for (const Call* call : direct_batch_) pr::AppendRequestFrame(&out_, call->request, call->body);
  Result<size_t> sent = platform::SendNow(fd_, out_);
  if (!sent.ok()) {
    broken_ = sent.status();
    return false;
  }
  if (*sent < out_.size()) {
    unsent_.assign(out_, *sent, std::string::npos);
    loop_writing_ = true;
    done = false;
  }
  // A big body once must not stay allocated for the connection's life.
  if (out_.capacity() > (1u << 20)) {
    std::string().swap(out_);
  } else {
    out_.clear();
  }
  return done;
}

bool Producer::Impl::Drain(int64_t timeout_ms) {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms),
                      [this] { return outstanding_ == 0; });
}

void Producer::Impl::FinishFirstConnect(const Status& st) {
  if (first_connect_done_) return;
  first_connect_done_ = true;
  first_connect_.set_value(st);
}

bool Producer::Impl::OnConnectFailed(const Status& why) {
  loop_->UpdateTime();
  if (!first_connect_done_ && static_cast<int64_t>(loop_->NowMs()) >= first_connect_deadline_ms_) {
    FinishFirstConnect(why);
    return false;
  }
  return true;
}

void Producer::Impl::OnConnected() {
  {
    std::lock_guard<std::mutex> lock(wire_mu_);
    fd_ = conn_->fd();
  }
  if (first_connect_done_) ++reconnects_;
  connected_ = true;
  FinishFirstConnect(Status::Ok());
  Pump();
}

// Requests not answered go back to the head of the queue, in the order they
// were first sent; the journal deduplicates re-sent publishes by id.
void Producer::Impl::OnDisconnected(const Status& why) {
  connected_ = false;
  std::vector<std::unique_ptr<Call>> written;
  // Requests are not sent again: the agent forgot them with the connection,
  // and the cloud may have acted on them already.
  std::vector<std::unique_ptr<Call>> lost;
  {
    std::lock_guard<std::mutex> lock(wire_mu_);
    fd_ = -1;
    while (!inflight_.empty()) {
      queue_.push_front(std::move(inflight_.back()));
      inflight_.pop_back();
    }
    for (auto& [req, call] : requests_) lost.push_back(std::move(call));
    requests_.clear();
    unsent_.clear();
    loop_writing_ = false;
    broken_ = Status::Ok();
    written.swap(written_);
  }
  CompleteWritten(std::move(written));
  for (auto& call : lost) {
    Complete(std::move(call), nullptr, {},
             Status::Unavailable("connection to the agent lost before the answer: " +
                                 why.ToString()));
  }
  for (auto& [req, cb] : delivery_) {
    PublishResult r;
    r.status = Status::Unavailable("connection lost before delivery: " + why.ToString());
    cb(r);
  }
  delivery_.clear();
  Settle();
}

// Takes what the window allows from the queue under the lock, then frames
// and writes it without the lock: publishing threads only ever wait for a
// queue push, not for the SDK thread's framing and send(2) (2048 requests
// at once when flat out). loop_writing_ keeps callers from writing between.
void Producer::Impl::Pump() {
  while (true) {
    std::vector<std::unique_ptr<Call>> written;
    std::vector<std::unique_ptr<Call>> no_reply;
    std::vector<const Call*> batch;  // in req order
    std::string rest;
    Status broken;
    int fd = -1;
    {
      std::lock_guard<std::mutex> lock(wire_mu_);
      written.swap(written_);
      rest.swap(unsent_);
      broken = broken_;
      if (broken.ok() && fd_ >= 0 && !loop_writing_) {
        TakeWindowLocked(&batch, &no_reply);
        if (!batch.empty()) {
          loop_writing_ = true;
          fd = fd_;
        }
      }
    }
    CompleteWritten(std::move(written));
    if (!broken.ok()) return Disconnect(broken);
    if (!rest.empty()) {
      WriteRest(std::move(rest));  // a caller's; batch is empty (loop_writing_ was set)
      break;
    }
    if (batch.empty()) break;
    loop_out_.clear();
    for (const Call* call : batch) pr::AppendRequestFrame(&loop_out_, call->request, call->body);
    CompleteWritten(std::move(no_reply));
    Result<size_t> sent = platform::SendNow(fd, loop_out_);
    if (!sent.ok()) return Disconnect(sent.status());
    if (*sent < loop_out_.size()) {
      WriteRest(loop_out_.substr(*sent));
      break;
    }
    {
      std::lock_guard<std::mutex> lock(wire_mu_);
      loop_writing_ = false;
    }
    // Callers that queued meanwhile left their requests to this thread.
  }
  if (loop_out_.capacity() > (4u << 20)) std::string().swap(loop_out_);
  Settle();
}

// The bytes the kernel did not take, through libuv; loop_writing_ stays set
// until they are written, so the bytes of later requests follow them.
void Producer::Impl::WriteRest(std::string bytes) {
  conn_->Write(std::move(bytes), [this] {
    {
      std::lock_guard<std::mutex> lock(wire_mu_);
      loop_writing_ = false;
    }
    Pump();
  });
}

void Producer::Impl::CompleteWritten(std::vector<std::unique_ptr<Call>> written) {
  // ack:"none": the agent will not answer; handing it over is all we know.
  for (auto& call : written) {
    pr::Reply ok;
    ok.ok = true;
    Complete(std::move(call), &ok, {}, Status::Ok());
  }
}

std::unique_ptr<Call> Producer::Impl::TakeInflight(int64_t req) {
  std::lock_guard<std::mutex> lock(wire_mu_);
  auto it = inflight_.begin();
  if (it == inflight_.end() || (*it)->request.req != req) {
    if (auto r = requests_.find(req); r != requests_.end()) {
      std::unique_ptr<Call> call = std::move(r->second);
      requests_.erase(r);
      return call;
    }
    it = std::find_if(inflight_.begin(), inflight_.end(),
                      [req](const std::unique_ptr<Call>& c) { return c->request.req == req; });
    if (it == inflight_.end()) return nullptr;
  }
  std::unique_ptr<Call> call = std::move(*it);
  inflight_.erase(it);
  return call;
}

bool Producer::Impl::OnFrame(const pr::Frame& f) {
  pr::Reply reply;
  std::string error;
  if (f.body_skipped || !pr::ParseReply(f.header, &reply, &error)) {
    Disconnect(Status::ProtocolError("bad reply from agent: " + error));
    return false;
  }
  if (!reply.req) {
    // Connection-level refusal (max_connections): come back later.
    if (!reply.ok) Disconnect(ReplyStatus(reply), reply.retry_after_ms.value_or(0));
    return reply.ok;
  }
  if (std::unique_ptr<Call> call = TakeInflight(*reply.req)) {
    if (reply.ok && call->on_delivered) delivery_.emplace(*reply.req, call->on_delivered);
    Complete(std::move(call), &reply, f.body, Status::Ok());
    return conn_->connected();
  }
  auto d = delivery_.find(*reply.req);
  if (d != delivery_.end() && !reply.status.empty()) {
    auto cb = std::move(d->second);
    delivery_.erase(d);
    PublishResult r = ToPublishResult(reply, "");
    if (!reply.ok && reply.status != "delivered") {
      r.status = Status(Code::kUnavailable, "message " + reply.status + ": " + reply.reason);
    }
    cb(r);
  }
  return true;
}

void Producer::Impl::Complete(std::unique_ptr<Call> call, const pr::Reply* reply,
                              std::string_view body, const Status& failure) {
  if (!reply) {
    FailCall(*call, failure);
  } else if (call->on_publish) {
    PublishResult r = ToPublishResult(*reply, call->request.publish.id);
    if (call->request.publish.ack == pr::AckMode::kNone) r.receipt = Receipt::kWritten;
    call->on_publish(std::move(r));
  } else if (call->on_reply) {
    call->on_reply(*reply, body);
  }
  call.reset();
  ++unsettled_;
}

void Producer::Impl::Settle() {
  if (unsettled_ == 0) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    outstanding_ -= unsettled_;
  }
  unsettled_ = 0;
  cv_.notify_all();
}

// --- Producer --------------------------------------------------------------

namespace {

// Requests other than publish need the agent (its journal, its uplink's
// request/response): in direct mode they fail at once, saying so.
void Submit(Producer::Impl* impl, DirectProducer* direct, std::unique_ptr<Call> call) {
  if (!direct) return impl->Submit(std::move(call));
  FailCall(*call,
           Status::InvalidArgument(std::string("direct mode: ") + pr::OpName(call->request.op) +
                                   " needs the agent (a socket path, not a broker URL)"));
}

}  // namespace

const char* ReceiptName(Receipt r) {
  switch (r) {
    case Receipt::kStored:
      return "stored";
    case Receipt::kSent:
      return "sent";
    case Receipt::kWritten:
      return "written";
  }
  return "?";
}

Result<std::unique_ptr<Producer>> Producer::Connect(ProducerOptions options) {
  if (IsBrokerUrl(options.socket_path)) {
    auto direct = DirectProducer::Connect(std::move(options));
    if (!direct.ok()) return direct.status();
    return std::unique_ptr<Producer>(new Producer(std::move(direct).value()));
  }
  auto impl = std::make_unique<Impl>(std::move(options));
  Status st = impl->Start();
  if (!st.ok()) return Status::Unavailable(st.message());
  return std::unique_ptr<Producer>(new Producer(std::move(impl)));
}

Producer::Producer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Producer::Producer(std::unique_ptr<DirectProducer> direct) : direct_(std::move(direct)) {}
Producer::~Producer() = default;

void Producer::Publish(std::string topic, std::string payload, PublishOptions options,
                       std::function<void(PublishResult)> done) {
  if (direct_) {
    return direct_->Publish(std::move(topic), std::move(payload), std::move(options),
                            std::move(done));
  }
  auto call = std::make_unique<Call>();
  pr::PublishFields& p = call->request.publish;
  call->request.op = pr::Op::kPublish;
  p.topic = std::move(topic);
  p.ts_ms = options.ts_ms;
  p.priority = options.priority;
  p.ttl_ms = options.ttl_ms;
  p.deliver_at_ms = options.deliver_at_ms;
  p.delay_ms = options.delay_ms;
  p.headers = std::move(options.headers);
  p.id = options.id.empty() ? impl_->NextId() : std::move(options.id);
  p.ack = options.ack;
  call->body = std::move(payload);
  if (p.ack == pr::AckMode::kDelivered) call->on_delivered = std::move(options.on_delivered);
  call->on_publish = std::move(done);
  Submit(impl_.get(), direct_.get(), std::move(call));
}

std::future<PublishResult> Producer::Publish(std::string topic, std::string payload,
                                             PublishOptions options) {
  auto promise = std::make_shared<std::promise<PublishResult>>();
  std::future<PublishResult> f = promise->get_future();
  Publish(std::move(topic), std::move(payload), std::move(options),
          [promise](PublishResult r) { promise->set_value(std::move(r)); });
  return f;
}

void Producer::Request(std::string topic, std::string payload, RequestOptions options,
                       std::function<void(RequestResult)> done) {
  auto call = std::make_unique<Call>();
  call->request.op = pr::Op::kRequest;
  pr::RequestFields& q = call->request.request;
  q.topic = std::move(topic);
  q.timeout_ms = options.timeout_ms;
  q.ttl_ms = options.ttl_ms;
  q.headers = std::move(options.headers);
  call->body = std::move(payload);
  auto shared_done = std::make_shared<std::function<void(RequestResult)>>(std::move(done));
  call->on_reply = [shared_done](const pr::Reply& r, std::string_view body) {
    RequestResult out;
    out.status = ReplyStatus(r);
    out.code = r.code;
    out.payload.assign(body.data(), body.size());
    out.topic = r.topic;
    (*shared_done)(std::move(out));
  };
  call->on_fail = [shared_done](const Status& why) {
    RequestResult out;
    out.status = why;
    (*shared_done)(std::move(out));
  };
  Submit(impl_.get(), direct_.get(), std::move(call));
}

std::future<RequestResult> Producer::Request(std::string topic, std::string payload,
                                             RequestOptions options) {
  auto promise = std::make_shared<std::promise<RequestResult>>();
  std::future<RequestResult> f = promise->get_future();
  Request(std::move(topic), std::move(payload), std::move(options),
          [promise](RequestResult r) { promise->set_value(std::move(r)); });
  return f;
}

namespace {

std::unique_ptr<Call> QueryCall(std::shared_ptr<std::promise<QueryInfo>> promise) {
  auto call = std::make_unique<Call>();
  call->request.op = pr::Op::kQuery;
  call->on_reply = [promise](const pr::Reply& r, std::string_view) {
    QueryInfo q;
    q.status = ReplyStatus(r);
    q.state = r.state;
    q.seq = r.seq.value_or(0);
    q.ts_ms = r.ts_ms.value_or(0);
    q.topic = r.topic;
    q.attempts = r.attempts.value_or(0);
    q.reason = r.reason;
    q.sent_at_ms = r.sent_at_ms.value_or(0);
    q.deliver_at_ms = r.deliver_at_ms.value_or(0);
    promise->set_value(std::move(q));
  };
  call->on_fail = [promise](const Status& why) {
    QueryInfo q;
    q.status = why;
    promise->set_value(std::move(q));
  };
  return call;
}

}  // namespace

std::future<QueryInfo> Producer::Query(uint64_t seq) {
  auto promise = std::make_shared<std::promise<QueryInfo>>();
  auto f = promise->get_future();
  auto call = QueryCall(promise);
  call->request.query_seq = seq;
  Submit(impl_.get(), direct_.get(), std::move(call));
  return f;
}

std::future<QueryInfo> Producer::QueryById(std::string id) {
  auto promise = std::make_shared<std::promise<QueryInfo>>();
  auto f = promise->get_future();
  auto call = QueryCall(promise);
  call->request.query_id = std::move(id);
  Submit(impl_.get(), direct_.get(), std::move(call));
  return f;
}

std::future<Result<std::string>> Producer::GetStatus() {
  auto promise = std::make_shared<std::promise<Result<std::string>>>();
  auto f = promise->get_future();
  auto call = std::make_unique<Call>();
  call->request.op = pr::Op::kStatus;
  call->on_reply = [promise](const pr::Reply& r, std::string_view body) {
    if (r.ok) {
      promise->set_value(std::string(body));
    } else {
      promise->set_value(ReplyStatus(r));
    }
  };
  call->on_fail = [promise](const Status& why) { promise->set_value(why); };
  Submit(impl_.get(), direct_.get(), std::move(call));
  return f;
}

std::future<ReloadResult> Producer::Reload() {
  auto promise = std::make_shared<std::promise<ReloadResult>>();
  auto f = promise->get_future();
  auto call = std::make_unique<Call>();
  call->request.op = pr::Op::kReload;
  call->on_reply = [promise](const pr::Reply& r, std::string_view body) {
    ReloadResult out;
    out.status = ReplyStatus(r);
    out.outcome = r.ok ? r.status : (r.code == pr::ErrorCode::kBadRequest ? "refused" : "");
    out.message = r.message;
    out.json = std::string(body);
    promise->set_value(std::move(out));
  };
  call->on_fail = [promise](const Status& why) {
    ReloadResult out;
    out.status = why;
    promise->set_value(std::move(out));
  };
  Submit(impl_.get(), direct_.get(), std::move(call));
  return f;
}

std::future<Status> Producer::Ping() {
  auto promise = std::make_shared<std::promise<Status>>();
  auto f = promise->get_future();
  if (direct_) {
    promise->set_value(direct_->connected() ? Status::Ok()
                                            : Status::Unavailable("not connected to the broker"));
    return f;
  }
  auto call = std::make_unique<Call>();
  call->request.op = pr::Op::kPing;
  call->on_reply = [promise](const pr::Reply& r, std::string_view) {
    promise->set_value(ReplyStatus(r));
  };
  call->on_fail = [promise](const Status& why) { promise->set_value(why); };
  Submit(impl_.get(), direct_.get(), std::move(call));
  return f;
}

bool Producer::Drain(int64_t timeout_ms) {
  return direct_ ? direct_->Drain(timeout_ms) : impl_->Drain(timeout_ms);
}
bool Producer::connected() const { return direct_ ? direct_->connected() : impl_->connected(); }
uint64_t Producer::reconnects() const {
  return direct_ ? direct_->reconnects() : impl_->reconnects();
}

}  // namespace edgespool::client
