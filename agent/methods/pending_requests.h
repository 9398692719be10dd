// PendingRequests: the gateway -> cloud requests the agent waits answers
// for, as a state machine with no I/O and no clock of its own (the caller
// passes the time), in the manner of sync/ (docs/request-response.md).
//
// A request is Added in one of two states:
//   sent     published; it waits for an answer until now + timeout_ms
//   waiting  the uplink is down and the request has a ttl: it waits (its
//            MQTT message held here) for the uplink until now + ttl_ms,
//            then TakeWaiting() hands it out to be sent (-> sent)
// and leaves it exactly once: Match() (its answer came), Expire() (its
// deadline passed: a sent one is a timeout, a waiting one unavailable),
// Remove() (its publish was refused), or DropConnection() (the producer's
// connection closed: nobody to answer).
//
// Correlation ids name a request on the wire (the response topic's last
// level, MQTT 5 correlation data, the 3.1.1 envelope's correlation):
//   "<16 hex digits: this agent run's random id>-<request number, hex>"
// Numbers count up from 1 and are never reused in a run, so an answer whose
// id carries this run's prefix and a number already handed out but no
// longer pending is *late* (its request timed out, was answered, or its
// connection went), told apart from an *unknown* one (another run's, or not
// ours at all) without remembering anything about finished requests.
//
// Bounds: at most max_pending requests in all and max_per_connection per
// connection (Add refuses past them: the caller answers busy); waiting
// requests hold their message, at most max_waiting_bytes of payload in all.
//
// Not thread-safe; loop-thread-only in the agent.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "platform/status.h"
#include "sync/uplink_port.h"

namespace edgespool::agent::methods {

struct PendingRequestsOptions {
  size_t max_pending = 16384;
  size_t max_per_connection = 4096;
  size_t max_waiting_bytes = 8u << 20;
};

struct PendingRequest {
  uint64_t number = 0;
  uint64_t conn_id = 0;
  std::optional<int64_t> req;  // the producer's req, echoed in the answer
  int64_t timeout_ms = 0;
  int64_t deadline_ms = 0;
  bool waiting = false;
  sync::OutboundPublish message;  // waiting only: what to publish once the uplink is up
};

class PendingRequests {
 public:
  PendingRequests(PendingRequestsOptions options, uint64_t run_id);

  // ResourceExhausted past a bound. Returns the correlation id. A waiting
  // request keeps `message` (its response topic and correlation are filled
  // in by the caller later, from the id).
  Result<std::string> Add(uint64_t conn_id, std::optional<int64_t> req, int64_t now_ms,
                          int64_t timeout_ms, std::optional<int64_t> wait_ms,
                          sync::OutboundPublish message = {});

  enum class MatchKind { kMatched, kLate, kUnknown };
  struct MatchResult {
    MatchKind kind = MatchKind::kUnknown;
    PendingRequest request;  // kMatched
  };
  // An answer with this correlation id arrived: the request (now removed)
  // if it was sent and pending.
  MatchResult Match(std::string_view correlation);

  // Requests whose deadline is <= now, removed, in deadline order.
  std::vector<PendingRequest> Expire(int64_t now_ms);
  // Every waiting request, now sent: deadline now + its timeout. Their
  // messages are moved out to the caller (to publish).
  std::vector<PendingRequest> TakeWaiting(int64_t now_ms);
  // A request leaves (its publish was refused). False if not pending.
  bool Remove(std::string_view correlation, PendingRequest* out);
  // The connection closed: its requests are forgotten; how many.
  size_t DropConnection(uint64_t conn_id);

  // The earliest deadline, if any request is pending.
  std::optional<int64_t> NextDeadline() const;
  size_t size() const { return entries_.size(); }
  size_t waiting() const { return waiting_count_; }
  size_t ForConnection(uint64_t conn_id) const;

  std::string CorrelationOf(uint64_t number) const;
  // The number in a correlation id of this run; 0 if it is not one.
  uint64_t NumberOf(std::string_view correlation) const;

 private:
  // Removes the entry, keeping the counts, and returns it.
  PendingRequest Take(std::unordered_map<uint64_t, PendingRequest>::iterator it);

  PendingRequestsOptions options_;
  std::string prefix_;  // "<16 hex>-"
  uint64_t next_number_ = 1;
  std::unordered_map<uint64_t, PendingRequest> entries_;  // by number
  std::set<std::pair<int64_t, uint64_t>> deadlines_;      // (deadline, number)
  std::unordered_map<uint64_t, size_t> per_connection_;
  size_t waiting_count_ = 0;
  size_t waiting_bytes_ = 0;
};

}  // namespace edgespool::agent::methods
