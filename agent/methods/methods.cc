#include "agent/methods/methods.h"

#include <algorithm>
#include <cassert>
#include <random>

#include "agent/methods/wire.h"
#include "agent/protocol/call.h"
#include "agent/protocol/reply.h"
#include "platform/log.h"

namespace edgespool::agent::methods {

namespace pr = protocol;

namespace {

// A fresh id per agent run, so that answers meant for an earlier run are
// told apart from late ones (pending_requests.h).
uint64_t RunId() {
  std::random_device rd;
  return (static_cast<uint64_t>(rd()) << 32) ^ rd();
}

}  // namespace

Methods::Methods(platform::Loop& loop, sync::MqttUplink& uplink, MethodsOptions options)
    : loop_(loop),
      uplink_(uplink),
      options_(std::move(options)),
      clock_(options_.clock ? options_.clock : &platform::SystemClock::Get()),
      requests_(options_.requests, RunId()),
      calls_(options_.max_pending_calls),
      timer_(loop) {}

Methods::~Methods() { *alive_ = false; }

std::vector<std::string> Methods::filters() const {
  return {options_.reply_prefix + "/#", options_.method_prefix + "/#"};
}

bool Methods::Claims(std::string_view topic) const {
  for (const std::string* prefix : {&options_.reply_prefix, &options_.method_prefix}) {
    if (topic.size() > prefix->size() && topic.substr(0, prefix->size()) == *prefix &&
        topic[prefix->size()] == '/') {
      return true;
    }
  }
  return false;
}

void Methods::OnInbound(sync::InboundPublish p) {
  assert(loop_.InLoopThread());
  // Neither answers nor calls are stored: acknowledged at once (PUBACKs
  // still leave in arrival order, behind the downlink's earlier ones).
  uplink_.AckInbound(p.ack_token);
  std::string_view topic = p.topic;
  if (topic.substr(0, options_.reply_prefix.size()) == options_.reply_prefix &&
      topic.size() > options_.reply_prefix.size() && topic[options_.reply_prefix.size()] == '/') {
    OnAnswerMessage(std::move(p));
  } else {
    OnCallMessage(std::move(p));
  }
  Rearm();
}

void Methods::Handle(server::Connection& c, const pr::Request& r, std::string_view body) {
  assert(loop_.InLoopThread());
  conns_[c.id()] = &c;
  switch (r.op) {
    case pr::Op::kRequest:
      OnRequest(c, r, body);
      break;
    case pr::Op::kRespond:
      OnRespond(c, r);
      break;
    case pr::Op::kAnswer:
      OnAnswerOp(c, r, body);
      break;
    default:
      return;
  }
  Rearm();
}

void Methods::OnClosing(server::Connection& c) {
  assert(loop_.InLoopThread());
  if (conns_.erase(c.id()) == 0) return;
  requests_.DropConnection(c.id());
  for (const PendingCall& call : calls_.DropConnection(c.id())) {
    ++stats_.calls_no_handler_total;
    AnswerCaller(call.route, {}, "no_handler",
                 "the responder of method " + call.method + " disconnected");
  }
  Rearm();
}

void Methods::OnUplinkState() {
  assert(loop_.InLoopThread());
  if (!uplink_.connected() || requests_.waiting() == 0) return;
  for (PendingRequest& r : requests_.TakeWaiting(NowMs())) {
    Send(requests_.CorrelationOf(r.number), std::move(r.message), r.timeout_ms);
  }
  Rearm();
}

// --- gateway -> cloud requests ---------------------------------------------

void Methods::OnRequest(server::Connection& c, const pr::Request& r, std::string_view body) {
  ++stats_.requests_total;
  const pr::RequestFields& f = r.request;
  int64_t timeout = f.timeout_ms.value_or(pr::kDefaultRequestTimeoutMs);
  bool up = uplink_.connected();
  if (!up && !f.ttl_ms) {
    ++stats_.requests_unavailable_total;
    return ReplyError(c.id(), r.req, pr::ErrorCode::kUnavailable,
                      "the uplink is down: requests are not stored (give ttl_ms to wait)");
  }
  sync::OutboundPublish message;
  message.topic = f.topic;
  message.payload.assign(body.data(), body.size());
  message.user_properties = f.headers;
  std::optional<int64_t> wait;
  if (!up) wait = f.ttl_ms;
  auto id = requests_.Add(c.id(), r.req, NowMs(), timeout, wait,
                          up ? sync::OutboundPublish{} : std::move(message));
  if (!id.ok()) {
    ++stats_.requests_busy_total;
    return ReplyError(c.id(), r.req, pr::ErrorCode::kBusy, id.status().message());
  }
  if (up) Send(*id, std::move(message), timeout);
}

void Methods::Send(const std::string& correlation, sync::OutboundPublish m, int64_t timeout_ms) {
  sync::OutboundPublish p = BuildRequest(m.topic, std::move(m.payload), m.user_properties,
                                         options_.reply_prefix + "/" + correlation, correlation,
                                         timeout_ms, uplink_.properties_supported());
  std::weak_ptr<bool> alive = alive_;
  uplink_.PublishOwn(std::move(p), [this, alive, correlation](const sync::PublishResult& res) {
    if (alive.expired() || res.outcome == sync::PublishOutcome::kAcked) return;
    PendingRequest gone;
    if (!requests_.Remove(correlation, &gone)) return;
    ++stats_.requests_unavailable_total;
    ReplyError(gone.conn_id, gone.req, pr::ErrorCode::kUnavailable,
               "the broker refused the request: " + res.reason);
    Rearm();
  });
}

void Methods::OnAnswerMessage(sync::InboundPublish p) {
  std::string topic = p.topic;
  InboundAnswer a = ParseAnswer(p, options_.reply_prefix);
  PendingRequests::MatchResult m = requests_.Match(a.correlation);
  if (m.kind != PendingRequests::MatchKind::kMatched) {
    // Dropped: its request timed out (or its producer left) before it came.
    ++(m.kind == PendingRequests::MatchKind::kLate ? stats_.late_answers_total
                                                   : stats_.unknown_answers_total);
    ES_LOG_DEBUG(
        "answer dropped",
        {{"topic", topic},
         {"why", m.kind == PendingRequests::MatchKind::kLate ? "late" : "unknown correlation"}});
    return;
  }
  ++stats_.requests_answered_total;
  if (!a.error.empty()) {
    pr::ErrorCode code = ErrorCodeFromText(a.error);
    std::string message = a.message;
    // A responder's own code survives in the message.
    if (code == pr::ErrorCode::kHandlerError && a.error != "handler_error") {
      message = a.error + (message.empty() ? "" : ": " + message);
    }
    return ReplyError(m.request.conn_id, m.request.req, code, std::move(message));
  }
  pr::Reply reply;
  reply.req = m.request.req;
  reply.ok = true;
  reply.status = "answered";
  reply.topic = std::move(topic);
  Reply(m.request.conn_id, m.request.req, reply, a.payload);
}

void Methods::Reply(uint64_t conn_id, std::optional<int64_t>, const pr::Reply& reply,
                    std::string_view body) {
  auto it = conns_.find(conn_id);
  if (it == conns_.end()) return;
  // Pushed, not a slot: an answer may take seconds, and the replies to the
  // connection's later publishes must not wait behind it.
  frame_.clear();
  pr::AppendReplyFrame(&frame_, reply, body);
  it->second->Push(frame_);
  if (frame_.capacity() > (1u << 20)) std::string().swap(frame_);
}

void Methods::ReplyError(uint64_t conn_id, std::optional<int64_t> req, pr::ErrorCode code,
                         std::string message) {
  Reply(conn_id, req, pr::ErrorReply(req, code, std::move(message)), {});
}

// --- cloud -> gateway calls ------------------------------------------------

void Methods::OnCallMessage(sync::InboundPublish p) {
  ++stats_.calls_total;
  std::string topic = p.topic;
  auto call = ParseCall(p, options_.method_prefix);
  if (!call.ok() || call->route.response_topic.empty()) {
    ++stats_.calls_refused_total;
    ES_LOG_WARN("method call dropped: cannot be answered",
                {{"topic", topic},
                 {"why", call.ok() ? "no response topic (MQTT 5 property or 3.1.1 envelope)"
                                   : call.status().message()}});
    return;
  }
  if (call->payload.size() > options_.max_call_bytes) {
    ++stats_.calls_refused_total;
    return AnswerCaller(call->route, {}, "too_large",
                        "call of " + std::to_string(call->payload.size()) +
                            " bytes exceeds the agent's limit of " +
                            std::to_string(options_.max_call_bytes));
  }
  int64_t timeout = call->timeout_ms.value_or(options_.default_call_timeout_ms);
  MethodCalls::Dispatch d = calls_.OnCall(call->method, call->route, NowMs() + timeout);
  switch (d.kind) {
    case MethodCalls::DispatchKind::kNoHandler:
      ++stats_.calls_no_handler_total;
      return AnswerCaller(call->route, {}, "no_handler", "no responder for method " + call->method);
    case MethodCalls::DispatchKind::kBusy:
      ++stats_.calls_refused_total;
      return AnswerCaller(call->route, {}, "busy",
                          "too many calls pending in the agent (" +
                              std::to_string(options_.max_pending_calls) + ")");
    case MethodCalls::DispatchKind::kDeliver:
      break;
  }
  pr::MethodCall frame;
  frame.call = d.call;
  frame.method = std::move(call->method);
  frame.timeout_ms = timeout;
  frame.headers = std::move(call->headers);
  frame_.clear();
  pr::AppendCallFrame(&frame_, frame, call->payload);
  conns_.at(d.conn_id)->Push(frame_);
}

void Methods::OnRespond(server::Connection& c, const pr::Request& r) {
  Status st = calls_.Register(c.id(), r.respond.methods, r.respond.stop);
  if (!st.ok()) return ReplyError(c.id(), r.req, pr::ErrorCode::kBusy, st.message());
  pr::Reply reply;
  reply.req = r.req;
  reply.ok = true;
  c.ReplyNow(reply);
}

void Methods::OnAnswerOp(server::Connection& c, const pr::Request& r, std::string_view body) {
  const pr::AnswerFields& f = r.answer;
  std::optional<PendingCall> call = calls_.Answer(c.id(), f.call);
  if (!call) {
    ++stats_.late_call_answers_total;
    c.ReplyNow(pr::ErrorReply(r.req, pr::ErrorCode::kTimeout,
                              "call " + std::to_string(f.call) +
                                  " is not pending here (timed out, or already answered)"));
    return;
  }
  ++stats_.calls_answered_total;
  AnswerCaller(call->route, body, f.error, f.message);
}

void Methods::AnswerCaller(const AnswerRoute& route, std::string_view payload,
                           const std::string& error, const std::string& message) {
  // Dropped while the uplink is down: the session queues publishes, but a
  // caller's own timeout has most likely passed by the time it is back.
  uplink_.PublishOwn(BuildAnswer(route, payload, error, message, uplink_.properties_supported()),
                     {});
}

// --- deadlines -------------------------------------------------------------

void Methods::OnTimer() {
  armed_for_ms_ = -1;
  int64_t now = NowMs();
  for (const PendingRequest& r : requests_.Expire(now)) {
    if (r.waiting) {
      ++stats_.requests_unavailable_total;
      ReplyError(r.conn_id, r.req, pr::ErrorCode::kUnavailable,
                 "the uplink stayed down for the request's ttl");
    } else {
      ++stats_.requests_timeout_total;
      ReplyError(r.conn_id, r.req, pr::ErrorCode::kTimeout,
                 "no answer within " + std::to_string(r.timeout_ms) + " ms");
    }
  }
  for (const PendingCall& c : calls_.Expire(now)) {
    ++stats_.calls_timeout_total;
    AnswerCaller(c.route, {}, "timeout",
                 "the responder of method " + c.method + " did not answer in time");
  }
  Rearm();
}

void Methods::Rearm() {
  std::optional<int64_t> a = requests_.NextDeadline(), b = calls_.NextDeadline();
  if (!a && !b) {
    if (armed_for_ms_ >= 0) timer_.Stop();
    armed_for_ms_ = -1;
    return;
  }
  int64_t next = std::min(a.value_or(INT64_MAX), b.value_or(INT64_MAX));
  if (next == armed_for_ms_) return;
  armed_for_ms_ = next;
  int64_t delay = std::max<int64_t>(0, next - NowMs());
  timer_.Start(static_cast<uint64_t>(delay), 0, [this] { OnTimer(); });
}

MethodsStats Methods::stats() const {
  MethodsStats s = stats_;
  s.requests_pending = requests_.size();
  s.requests_waiting = requests_.waiting();
  s.calls_pending = calls_.pending();
  return s;
}

}  // namespace edgespool::agent::methods
