#include "agent/downlink/consumer_endpoint.h"

#include "agent/protocol/message.h"
#include "agent/protocol/reply.h"

namespace edgespool::agent::downlink {

namespace pr = protocol;

namespace {

pr::ErrorCode CodeFor(const Status& s) {
  return s.code() == Code::kResourceExhausted ? pr::ErrorCode::kBusy : pr::ErrorCode::kBadRequest;
}

}  // namespace

// One connection as the hub sees it.
class ConsumerEndpoint::Sink : public ConsumerSink {
 public:
  explicit Sink(server::Connection& c) : c_(c) {}

  void Deliver(const std::string& session, const store::StoredInbound& row) override {
    pr::PushedMessage m;
    m.session = session == anonymous ? std::string() : session;
    m.seq = row.seq;
    m.topic = row.message.topic;
    m.broker_topic = row.message.broker_topic;
    m.ts_ms = row.message.received_ms;
    m.headers = row.message.headers;
    m.response_topic = row.message.response_topic;
    m.correlation = row.message.correlation;
    frame_.clear();
    pr::AppendMessageFrame(&frame_, m, row.message.payload);
    c_.Push(frame_);
  }

  // The hub's name for a session the client calls `name`.
  std::string HubName(const std::string& name) const { return name.empty() ? anonymous : name; }

  std::string anonymous;  // the hub's name of this connection's anonymous session

 private:
  server::Connection& c_;
  std::string frame_;  // reused: one allocation per connection, not per message
};

ConsumerEndpoint::ConsumerEndpoint(Hub& hub) : hub_(hub) {}
ConsumerEndpoint::~ConsumerEndpoint() = default;

ConsumerEndpoint::Sink& ConsumerEndpoint::SinkFor(server::Connection& c) {
  auto& slot = sinks_[c.id()];
  if (!slot) slot = std::make_unique<Sink>(c);
  return *slot;
}

void ConsumerEndpoint::Handle(server::Connection& c, const pr::Request& r) {
  switch (r.op) {
    case pr::Op::kSubscribe: return Subscribe(c, r);
    case pr::Op::kAck: return Ack(c, r);
    case pr::Op::kUnsubscribe: return Unsubscribe(c, r);
    default: return;
  }
}

void ConsumerEndpoint::Subscribe(server::Connection& c, const pr::Request& r) {
  Sink& sink = SinkFor(c);
  const pr::SubscribeFields& f = r.subscribe;
  if (f.session.empty() && !sink.anonymous.empty()) {
    (void)hub_.Unsubscribe(&sink, sink.anonymous, /*end=*/true);
    sink.anonymous.clear();
  }
  SubscribeArgs args;
  args.session = f.session;
  args.filters = f.filters;
  args.from = static_cast<From>(f.from);
  args.from_seq = f.from_seq;
  args.window = f.window.value_or(0);
  uint64_t serial = c.PushSlot(0);
  uint64_t conn_id = c.id();
  hub_.Subscribe(&sink, std::move(args),
                 [this, &c, conn_id, serial, req = r.req,
                  anonymous = f.session.empty()](Result<SubscribeOutcome> out) {
                   auto it = sinks_.find(conn_id);
                   if (it == sinks_.end()) return;  // closed while the hub loaded
                   if (!out.ok()) {
                     c.CompleteSlot(serial, pr::ErrorReply(req, CodeFor(out.status()),
                                                           out.status().message()));
                     return;
                   }
                   if (anonymous) it->second->anonymous = out->session;
                   pr::Reply reply;
                   reply.req = req;
                   reply.ok = true;
                   reply.session = anonymous ? std::string() : out->session;
                   reply.seq = out->position;
                   reply.resumed = out->resumed;
                   c.CompleteSlot(serial, reply);
                 });
}

void ConsumerEndpoint::Ack(server::Connection& c, const pr::Request& r) {
  Sink& sink = SinkFor(c);
  const pr::AckFields& f = r.ack;
  bool cumulative = f.up_to.has_value();
  uint64_t seq = cumulative ? *f.up_to : f.seq.value_or(0);
  Status st = hub_.Ack(&sink, sink.HubName(f.session), seq, cumulative);
  if (!st.ok()) c.ReplyNow(pr::ErrorReply(r.req, CodeFor(st), st.message()));
}

void ConsumerEndpoint::Unsubscribe(server::Connection& c, const pr::Request& r) {
  Sink& sink = SinkFor(c);
  const pr::UnsubscribeFields& f = r.unsubscribe;
  Status st = hub_.Unsubscribe(&sink, sink.HubName(f.session), f.end);
  if (!st.ok()) {
    c.ReplyNow(pr::ErrorReply(r.req, CodeFor(st), st.message()));
    return;
  }
  if (f.session.empty()) sink.anonymous.clear();
  pr::Reply reply;
  reply.req = r.req;
  reply.ok = true;
  c.ReplyNow(reply);
}

void ConsumerEndpoint::OnClosing(server::Connection& c) {
  auto it = sinks_.find(c.id());
  if (it == sinks_.end()) return;
  hub_.DetachAll(it->second.get());
  sinks_.erase(it);
}

}  // namespace edgespool::agent::downlink
