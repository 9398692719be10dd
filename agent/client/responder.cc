#include "agent/client/responder.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <mutex>
#include <vector>

#include "agent/client/agent_connection.h"
#include "agent/protocol/call.h"
#include "agent/protocol/request.h"
#include "platform/loop.h"
#include "platform/process_info.h"

namespace edgespool::client {

namespace pr = ::edgespool::protocol;

namespace {

// Calls carry payloads up to the agent's downlink.max_message_bytes.
constexpr uint64_t kMaxCallBody = 64u << 20;

}  // namespace

class Responder::Impl {
 public:
  Impl(ResponderOptions options, Handler on_call)
      : options_(std::move(options)), on_call_(std::move(on_call)) {}
  ~Impl();
  Status Start();
  Status Answer(uint64_t call, std::string payload, std::string code, std::string message);
  bool connected() const { return connected_.load(); }
  uint64_t reconnects() const { return reconnects_.load(); }
  Status last_error() const {
    std::lock_guard<std::mutex> lock(mu_);
    return last_error_;
  }

 private:
  struct Pending {
    pr::Request request;
    std::string body;
  };
  // Loop thread.
  void OnConnected();
  bool OnConnectFailed(const Status& why);
  bool OnFrame(const pr::Frame& f);
  void OnDisconnected(const Status& why);
  void WriteAnswers();
  void ShutdownOnLoop();
  void FinishOpen(const Status& st);

  ResponderOptions options_;
  Handler on_call_;
  std::shared_ptr<IoThread> io_;
  platform::Loop* loop_ = nullptr;
  std::promise<void> shut_down_;

  mutable std::mutex mu_;
  std::vector<Pending> answers_;  // for the loop to write
  Status last_error_;
  bool closed_ = false;
  std::unique_ptr<platform::AsyncHandle> wake_;

  std::atomic<bool> connected_{false};
  std::atomic<uint64_t> reconnects_{0};
  std::promise<Status> opened_;
  bool open_done_ = false;
  bool ever_registered_ = false;
  int64_t open_deadline_ms_ = 0;

  // Loop thread only.
  std::unique_ptr<AgentConnection> conn_;
  int64_t next_req_ = 1;
  int64_t register_req_ = 0;
  std::string out_;
};

Status Responder::Impl::Start() {
  if (options_.methods.empty()) return Status::InvalidArgument("no methods to respond to");
  for (const std::string& m : options_.methods) {
    Status ok = pr::ValidateMethodName(m);
    if (!ok.ok()) return Status::InvalidArgument("method \"" + m + "\": " + ok.message());
  }
  platform::IgnoreSigpipeIfDefault();
  auto io = IoThread::GivenOrStart(options_.io);
  if (!io.ok()) return io.status();
  io_ = std::move(io).value();
  loop_ = &io_->loop();
  std::future<Status> opened = opened_.get_future();
  loop_->Post([this] {
    wake_ = std::make_unique<platform::AsyncHandle>(*loop_, [this] { WriteAnswers(); });
    AgentConnection::Options co;
    co.socket_path = options_.socket_path;
    co.backoff_initial_ms = options_.backoff_initial_ms;
    co.backoff_max_ms = options_.backoff_max_ms;
    co.max_body_bytes = kMaxCallBody;
    AgentConnection::Handlers h;
    h.on_connected = [this] { OnConnected(); };
    h.on_connect_failed = [this](const Status& why) { return OnConnectFailed(why); };
    h.on_frame = [this](const pr::Frame& f) { return OnFrame(f); };
    h.after_read = [this] { WriteAnswers(); };
    h.on_disconnected = [this](const Status& why) { OnDisconnected(why); };
    conn_ = std::make_unique<AgentConnection>(*loop_, std::move(co), std::move(h));
    loop_->UpdateTime();
    open_deadline_ms_ = static_cast<int64_t>(loop_->NowMs()) + options_.connect_timeout_ms;
    conn_->Connect();
  });
  if (opened.wait_for(std::chrono::milliseconds(options_.connect_timeout_ms + 1000)) !=
      std::future_status::ready) {
    loop_->Post([this] { FinishOpen(Status::Unavailable("no answer to respond in time")); });
  }
  return opened.get();
}

Responder::Impl::~Impl() {
  if (!loop_) return;
  ShutDownFromOutside(*loop_, "a Responder", [this] { ShutdownOnLoop(); }, shut_down_);
}

void Responder::Impl::ShutdownOnLoop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
  }
  FinishOpen(Status::Cancelled("responder closed"));
  connected_ = false;
  conn_->Stop();
  loop_->Post([this] {
    conn_.reset();
    {
      std::lock_guard<std::mutex> lock(mu_);
      wake_.reset();
    }
    shut_down_.set_value();
  });
}

void Responder::Impl::FinishOpen(const Status& st) {
  if (open_done_) return;
  open_done_ = true;
  opened_.set_value(st);
}

bool Responder::Impl::OnConnectFailed(const Status& why) {
  if (open_done_) return true;
  loop_->UpdateTime();
  if (static_cast<int64_t>(loop_->NowMs()) < open_deadline_ms_) return true;
  FinishOpen(Status::Unavailable(why.message()));
  return false;
}

void Responder::Impl::OnConnected() {
  if (ever_registered_) ++reconnects_;
  connected_ = true;
  pr::Request r;
  r.op = pr::Op::kRespond;
  r.req = next_req_++;
  r.respond.methods = options_.methods;
  register_req_ = *r.req;
  std::string frame;
  pr::AppendRequestFrame(&frame, r, {});
  conn_->Write(std::move(frame));
}

void Responder::Impl::OnDisconnected(const Status&) {
  connected_ = false;
  register_req_ = 0;
  // Answers queued for the old connection are dropped: the agent answered
  // those calls' callers no_handler when it saw the connection go.
  std::lock_guard<std::mutex> lock(mu_);
  answers_.clear();
}

bool Responder::Impl::OnFrame(const pr::Frame& f) {
  if (f.body_skipped) {
    conn_->Disconnect(Status::ProtocolError("call body too large"));
    return false;
  }
  std::string error;
  if (pr::IsCallFrame(f.header)) {
    pr::MethodCall c;
    if (!pr::ParseCall(f.header, &c, &error)) {
      conn_->Disconnect(Status::ProtocolError("bad call frame from agent: " + error));
      return false;
    }
    IncomingCall in;
    in.call = c.call;
    in.method = std::move(c.method);
    in.timeout_ms = c.timeout_ms;
    in.headers = std::move(c.headers);
    in.payload.assign(f.body.data(), f.body.size());
    on_call_(in);
    return conn_->connected();
  }
  pr::Reply reply;
  if (!pr::ParseReply(f.header, &reply, &error)) {
    conn_->Disconnect(Status::ProtocolError("bad reply from agent: " + error));
    return false;
  }
  if (!reply.req) {
    // Connection-level refusal (max_connections): come back later.
    if (!reply.ok) conn_->Disconnect(ReplyStatus(reply), reply.retry_after_ms.value_or(0));
    return reply.ok;
  }
  if (*reply.req == register_req_) {
    register_req_ = 0;
    Status st = ReplyStatus(reply);
    if (st.ok()) ever_registered_ = true;
    if (!open_done_) {
      FinishOpen(st);
      if (!st.ok()) conn_->Stop();
    } else if (!st.ok()) {
      std::lock_guard<std::mutex> lock(mu_);
      last_error_ = st;
    }
    return conn_->connected();
  }
  if (!reply.ok) {  // an answer the agent refused (the call timed out)
    std::lock_guard<std::mutex> lock(mu_);
    last_error_ = ReplyStatus(reply);
  }
  return true;
}

Status Responder::Impl::Answer(uint64_t call, std::string payload, std::string code,
                               std::string message) {
  if (!code.empty()) {
    Status ok = pr::ValidateErrorCodeText(code);
    if (!ok.ok()) return ok;
  }
  Pending p;
  p.request.op = pr::Op::kAnswer;
  p.request.answer.call = call;
  p.request.answer.error = std::move(code);
  p.request.answer.message = std::move(message);
  if (p.request.answer.message.size() > pr::kMaxAnswerMessageBytes) {
    p.request.answer.message.resize(pr::kMaxAnswerMessageBytes);
  }
  p.body = std::move(payload);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_ || !wake_) return Status::Cancelled("responder closed");
    answers_.push_back(std::move(p));
    // From the handler too: answers of one read go out in one write.
    wake_->Send();
  }
  return Status::Ok();
}

void Responder::Impl::WriteAnswers() {
  std::vector<Pending> answers;
  {
    std::lock_guard<std::mutex> lock(mu_);
    answers.swap(answers_);
  }
  if (answers.empty() || !conn_ || !conn_->connected()) return;
  out_.clear();
  for (Pending& p : answers) {
    p.request.req = next_req_++;
    pr::AppendRequestFrame(&out_, p.request, p.body);
  }
  conn_->Write(std::move(out_));
  out_ = std::string();
}

Result<std::unique_ptr<Responder>> Responder::Open(ResponderOptions options, Handler on_call) {
  auto impl = std::make_unique<Impl>(std::move(options), std::move(on_call));
  Status st = impl->Start();
  if (!st.ok()) return st;
  return std::unique_ptr<Responder>(new Responder(std::move(impl)));
}

Responder::Responder(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Responder::~Responder() = default;

Status Responder::Answer(uint64_t call, std::string payload) {
  return impl_->Answer(call, std::move(payload), {}, {});
}
Status Responder::AnswerError(uint64_t call, std::string code, std::string message) {
  return impl_->Answer(call, {}, std::move(code), std::move(message));
}
bool Responder::connected() const { return impl_->connected(); }
uint64_t Responder::reconnects() const { return impl_->reconnects(); }
Status Responder::last_error() const { return impl_->last_error(); }

}  // namespace edgespool::client
