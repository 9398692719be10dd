// MethodCalls: cloud -> gateway method calls as a state machine with no
// I/O (docs/request-response.md). It keeps which connection responds to
// which method, hands each call to one of them, and remembers the call until
// its answer, its deadline, or its responder's departure, so that every
// caller hears exactly one answer: the responder's, or an error
// (no_handler, timeout, busy) the agent sends for it.
//
// Responders: a connection registers method names (op "respond"); several
// connections may serve one name, and its calls go to them in turn (round
// robin). A registration ends with its connection.
//
// Bounds: at most max_pending calls awaiting answers (OnCall answers busy
// past it), at most kMaxMethods (request.h) names per connection.
//
// Not thread-safe; loop-thread-only in the agent.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "platform/status.h"

namespace edgespool::agent::methods {

// Where and how to answer a caller.
struct AnswerRoute {
  std::string response_topic;
  std::string correlation;
  bool enveloped = false;  // the call came in a 3.1.1 envelope: answer in one
};

struct PendingCall {
  uint64_t call = 0;
  uint64_t conn_id = 0;
  std::string method;
  int64_t deadline_ms = 0;
  AnswerRoute route;
};

class MethodCalls {
 public:
  explicit MethodCalls(size_t max_pending) : max_pending_(max_pending) {}

  // Registers (or, stop, unregisters) names for a connection.
  // ResourceExhausted past the per-connection bound.
  Status Register(uint64_t conn_id, const std::vector<std::string>& names, bool stop);

  enum class DispatchKind { kDeliver, kNoHandler, kBusy };
  struct Dispatch {
    DispatchKind kind = DispatchKind::kNoHandler;
    uint64_t call = 0;     // kDeliver: the call's id
    uint64_t conn_id = 0;  // kDeliver: its responder
  };
  // A call of `method` arrived; kDeliver records it as pending.
  Dispatch OnCall(const std::string& method, AnswerRoute route, int64_t deadline_ms);

  // The answer to `call` from conn_id: the call (removed), or nullopt when it
  // is not pending for that connection (late, unknown, or another's).
  std::optional<PendingCall> Answer(uint64_t conn_id, uint64_t call);
  // Calls whose deadline is <= now, removed.
  std::vector<PendingCall> Expire(int64_t now_ms);
  // The connection closed: its registrations end; its pending calls are
  // returned (removed) to be answered with an error.
  std::vector<PendingCall> DropConnection(uint64_t conn_id);

  std::optional<int64_t> NextDeadline() const;
  size_t pending() const { return calls_.size(); }
  size_t responders(const std::string& method) const;

 private:
  PendingCall Take(std::unordered_map<uint64_t, PendingCall>::iterator it);

  struct Responders {
    std::vector<uint64_t> conns;  // in registration order
    size_t next = 0;              // round robin
  };

  size_t max_pending_;
  uint64_t next_call_ = 1;
  std::map<std::string, Responders> by_method_;
  std::unordered_map<uint64_t, std::set<std::string>> by_conn_;
  std::unordered_map<uint64_t, PendingCall> calls_;
  std::set<std::pair<int64_t, uint64_t>> deadlines_;  // (deadline, call)
};

}  // namespace edgespool::agent::methods
