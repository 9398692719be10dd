// Methods: request/response both ways, the agent's side
// (docs/request-response.md). It serves the socket ops `request`,
// `respond` and `answer` (agent/protocol/request.h), and the broker topics
// of answers (<reply prefix>/<id>) and calls (<method prefix>/<NAME>),
// which the agent routes here before the downlink sees them.
//
//   producer --request--> Methods --PUBLISH(response topic, correlation)--> broker
//   producer <--answer reply (pushed)-- Methods <--answer on reply/<id>----- broker
//   broker --PUBLISH method/NAME--> Methods --"call" frame--> responder
//   broker <--answer to its response topic-- Methods <--"answer" op-- responder
//
// Requests bypass the journal: they are only worth their timeout, so
// while the uplink is down a request fails at once with `unavailable`,
// unless it gives ttl_ms: then it waits in memory (bounded) up to that long
// for the uplink. Answers and calls are PUBACKed on receipt (they are not
// stored either: a crash loses them, and their callers time out).
//
// The bookkeeping lives in two state machines that take the time as an
// argument (PendingRequests, MethodCalls); this class is their I/O glue:
// one timer armed for the earliest deadline, the uplink, the connections.
//
// Loop-thread-only. Destroy before the uplink and the producer server's
// connections; uplink results that arrive later are ignored.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "agent/methods/method_calls.h"
#include "agent/methods/pending_requests.h"
#include "agent/protocol/request.h"
#include "agent/server/connection.h"
#include "platform/clock.h"
#include "platform/loop.h"
#include "sync/mqtt_uplink.h"

namespace edgespool::agent::methods {

struct MethodsOptions {
  std::string reply_prefix;   // answers arrive on reply_prefix/<id>
  std::string method_prefix;  // calls arrive on method_prefix/<NAME>
  int64_t default_call_timeout_ms = 5000;
  PendingRequestsOptions requests;
  size_t max_pending_calls = 16384;
  uint64_t max_call_bytes = 1u << 20;      // a larger call is answered too_large
  const platform::Clock* clock = nullptr;  // nullptr: SystemClock
};

struct MethodsStats {
  // Gateway -> cloud requests.
  uint64_t requests_total = 0;
  uint64_t requests_answered_total = 0;  // an answer came in time (success or error)
  uint64_t requests_timeout_total = 0;
  uint64_t requests_unavailable_total = 0;  // uplink down (or down for the ttl), refused
  uint64_t requests_busy_total = 0;         // past a pending bound
  uint64_t late_answers_total = 0;          // answers to requests no longer pending: dropped
  uint64_t unknown_answers_total = 0;       // answers with ids not of this run: dropped
  uint64_t requests_pending = 0;
  uint64_t requests_waiting = 0;  // of those, waiting for the uplink (ttl)
  // Cloud -> gateway calls.
  uint64_t calls_total = 0;
  uint64_t calls_answered_total = 0;  // by a responder
  uint64_t calls_no_handler_total = 0;
  uint64_t calls_timeout_total = 0;
  uint64_t calls_refused_total = 0;  // malformed, too large, busy, or no response topic
  uint64_t late_call_answers_total = 0;
  uint64_t calls_pending = 0;
};

class Methods {
 public:
  Methods(platform::Loop& loop, sync::MqttUplink& uplink, MethodsOptions options);
  ~Methods();
  Methods(const Methods&) = delete;
  Methods& operator=(const Methods&) = delete;

  // The broker filters the uplink subscribes to for this.
  std::vector<std::string> filters() const;
  // Whether an inbound message on `topic` is ours (an answer or a call).
  bool Claims(std::string_view topic) const;
  void OnInbound(sync::InboundPublish p);

  static bool IsMethodOp(protocol::Op op) {
    return op == protocol::Op::kRequest || op == protocol::Op::kRespond ||
           op == protocol::Op::kAnswer;
  }
  // A request, respond or answer op on c (body: the payload).
  void Handle(server::Connection& c, const protocol::Request& r, std::string_view body);
  // c is closing: its requests are forgotten, its methods unregistered, the
  // calls it had not answered answered no_handler.
  void OnClosing(server::Connection& c);
  // The uplink's state changed: once connected, waiting requests go out.
  void OnUplinkState();

  MethodsStats stats() const;

 private:
  void OnRequest(server::Connection& c, const protocol::Request& r, std::string_view body);
  void OnRespond(server::Connection& c, const protocol::Request& r);
  void OnAnswerOp(server::Connection& c, const protocol::Request& r, std::string_view body);
  void OnAnswerMessage(sync::InboundPublish p);
  void OnCallMessage(sync::InboundPublish p);
  void Send(const std::string& correlation, sync::OutboundPublish message, int64_t timeout_ms);
  void AnswerCaller(const AnswerRoute& route, std::string_view payload, const std::string& error,
                    const std::string& message);
  // Completes a producer's request: an answer (reply == nullptr: ok with
  // payload) or an error.
  void Reply(uint64_t conn_id, std::optional<int64_t> req, const protocol::Reply& reply,
             std::string_view body);
  void ReplyError(uint64_t conn_id, std::optional<int64_t> req, protocol::ErrorCode code,
                  std::string message);
  void OnTimer();
  void Rearm();
  int64_t NowMs() const { return clock_->MonotonicMs(); }

  [[maybe_unused]] platform::Loop& loop_;  // for the thread asserts
  sync::MqttUplink& uplink_;
  MethodsOptions options_;
  const platform::Clock* clock_;
  PendingRequests requests_;
  MethodCalls calls_;
  platform::TimerHandle timer_;
  int64_t armed_for_ms_ = -1;
  std::unordered_map<uint64_t, server::Connection*> conns_;  // that used an op, by id
  MethodsStats stats_;
  std::string frame_;  // reused for pushed frames
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace edgespool::agent::methods
