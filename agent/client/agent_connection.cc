#include "agent/client/agent_connection.h"

#include <algorithm>

namespace edgespool::client {

namespace pr = ::edgespool::protocol;

Status ReplyStatus(const pr::Reply& r) {
  if (r.ok) return Status::Ok();
  std::string what = std::string(r.code ? pr::ErrorCodeName(*r.code) : "error") + ": " + r.message;
  if (!r.code) return Status::Internal(what);
  switch (*r.code) {
    case pr::ErrorCode::kBadFrame:
    case pr::ErrorCode::kBadRequest:
    case pr::ErrorCode::kBadTopic:
    case pr::ErrorCode::kTooLarge:
      return Status::InvalidArgument(what);
    case pr::ErrorCode::kForbidden:
      return Status::PermissionDenied(what);
    case pr::ErrorCode::kRateLimited:
    case pr::ErrorCode::kBusy:
    case pr::ErrorCode::kJournalFull:
      return Status::ResourceExhausted(what);
    case pr::ErrorCode::kUnavailable:
      return Status::Unavailable(what);
    case pr::ErrorCode::kTimeout:
      return Status::Timeout(what);
    case pr::ErrorCode::kNoHandler:
      return Status::NotFound(what);
    case pr::ErrorCode::kHandlerError:
    case pr::ErrorCode::kInternal:
      break;
  }
  return Status::Internal(what);
}

AgentConnection::AgentConnection(platform::Loop& loop, Options options, Handlers handlers)
    : loop_(loop), options_(std::move(options)), handlers_(std::move(handlers)) {
  retry_timer_ = std::make_unique<platform::TimerHandle>(loop_);
  backoff_ms_ = options_.backoff_initial_ms;
}

AgentConnection::~AgentConnection() = default;

void AgentConnection::Connect() {
  if (stopped_) return;
  connecting_ = std::make_unique<platform::PipeConnectRequest>(
      loop_, options_.socket_path,
      [this](Result<std::unique_ptr<platform::Stream>> r) { OnConnected(std::move(r)); });
  connecting_->Start();
}

void AgentConnection::OnConnected(Result<std::unique_ptr<platform::Stream>> result) {
  if (stopped_) return;
  if (!result.ok()) {
    if (handlers_.on_connect_failed && !handlers_.on_connect_failed(result.status())) return;
    return ScheduleReconnect(0);
  }
  stream_ = std::move(result).value();
  uint64_t gen = ++generation_;
  decoder_ = std::make_unique<pr::FrameDecoder>(options_.max_body_bytes,
                                                options_.max_body_bytes * 4);
  backoff_ms_ = options_.backoff_initial_ms;
  stream_->StartReading(
      [this, gen](const char* data, size_t len) { OnRead(gen, data, len); },
      [this, gen](const Status& why) {
        if (gen == generation_) Disconnect(why.ok() ? Status::Unavailable("agent closed") : why);
      });
  if (handlers_.on_connected) handlers_.on_connected();
}

void AgentConnection::OnRead(uint64_t gen, const char* data, size_t len) {
  if (gen != generation_) return;
  // A handler that dropped the connection ends this read: the rest of it
  // belongs to a stream that is gone.
  Status st = decoder_->Feed(data, len, [this, gen](const pr::Frame& f) {
    return handlers_.on_frame(f) && gen == generation_;
  });
  if (!st.ok() && st.code() == Code::kProtocolError && gen == generation_) Disconnect(st);
  if (handlers_.after_read) handlers_.after_read();
}

void AgentConnection::Disconnect(const Status& why, int64_t min_delay_ms) {
  if (!stream_) return;
  ++generation_;
  stream_->StopReading();
  if (handlers_.on_disconnected) handlers_.on_disconnected(why);
  loop_.DeferDelete(std::move(stream_));
  ScheduleReconnect(min_delay_ms);
}

void AgentConnection::Write(std::string bytes, std::function<void()> done) {
  if (!stream_) return;
  uint64_t gen = generation_;
  Status st = stream_->Write(std::move(bytes), [this, gen, done = std::move(done)](const Status& s) {
    if (gen != generation_) return;
    if (!s.ok()) return Disconnect(s);
    if (done) done();
  });
  if (!st.ok()) Disconnect(st);
}

// Deferred: Stop() may run inside a callback of the stream or the connect
// request (a refusal read from the socket).
void AgentConnection::Stop() {
  stopped_ = true;
  ++generation_;
  if (connecting_) loop_.DeferDelete(std::move(connecting_));
  if (stream_) {
    stream_->StopReading();
    loop_.DeferDelete(std::move(stream_));
  }
  retry_timer_->Stop();
}

void AgentConnection::ScheduleReconnect(int64_t min_delay_ms) {
  if (stopped_) return;
  // Full jitter: a crowd of clients does not reconnect in lockstep.
  std::uniform_int_distribution<int64_t> dist(backoff_ms_ / 2, backoff_ms_);
  int64_t delay = std::max(min_delay_ms, dist(rng_));
  backoff_ms_ = std::min(options_.backoff_max_ms, backoff_ms_ * 2);
  retry_timer_->Start(static_cast<uint64_t>(delay), 0, [this] { Connect(); });
}

}  // namespace edgespool::client
