// Hub: the downlink's delivery side. Holds every consumer session (durable
// ones loaded from the journal at start), hands inbox rows to the sessions
// attached to a connection, and keeps the inbox trimmed and the sessions'
// positions persisted (docs/downlink.md, "Sessions, caps").
//
// Two ways a row reaches a session:
//   live  a session that has read everything (read_pos == head) gets a new
//         row straight from the commit that made it durable: no read back;
//   catch-up  a session behind the head (resumed, from=oldest, or a window
//         that was full) reads the inbox in batches of read_batch rows, one
//         read in flight per session, until it is at the head again.
// Either way a session holds at most `window` messages in flight, and the
// hub holds no message for it beyond that: a consumer that never acks costs
// its window, nothing more (the journal keeps the rest on disk).
//
// Persistence: a durable session's position is written when it detaches,
// every persist_interval_ms while it changed, and at shutdown. A crash loses
// at most that interval's acks: those messages are delivered again (at
// least once), never lost.
//
// Trimming: inbox rows every durable session (and every attached anonymous
// one) is past are deleted; while no session exists, rows are kept for
// `retention` so that a consumer subscribing with from=oldest finds them.
// A detached durable session idle past session_expiry is deleted and what it
// had not acked is counted as dropped (dropped_total) and logged.
//
// Loop-thread-only. Destroy before the Journal; the journal's late callbacks
// find the hub gone and return.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "agent/downlink/consumer_session.h"
#include "platform/clock.h"
#include "platform/loop.h"
#include "platform/status.h"
#include "store/journal.h"

namespace edgespool::agent::downlink {

// A connection that sessions attach to. The hub calls Deliver for each
// message; the connection frames and queues it behind its earlier output.
class ConsumerSink {
 public:
  virtual ~ConsumerSink() = default;
  virtual void Deliver(const std::string& session, const store::StoredInbound& message) = 0;
};

enum class From { kDefault, kNew, kOldest, kSeq };

struct SubscribeArgs {
  std::string session;  // empty: anonymous
  std::vector<std::string> filters;
  From from = From::kDefault;
  uint64_t from_seq = 0;
  uint32_t window = 0;  // 0: the hub's default
};

struct SubscribeOutcome {
  std::string session;  // the name given, or the one made up for an anonymous session
  uint64_t position = 0;
  bool resumed = false;
};

struct HubOptions {
  uint32_t default_window = 100;
  int64_t session_expiry_ms = 3600000;
  int64_t retention_ms = 3600000;
  size_t max_sessions = 1000;
  int64_t persist_interval_ms = 200;
  int64_t sweep_interval_ms = 10000;
  size_t read_batch = 256;
  const platform::Clock* clock = nullptr;  // nullptr: SystemClock
};

struct SessionSnapshot {
  std::string name;
  bool durable = false;
  bool attached = false;
  uint64_t position = 0;
  uint64_t inflight = 0;
  uint64_t backlog = 0;               // inbox seqs after the position (upper bound)
  int64_t oldest_unacked_age_ms = 0;  // of what is in flight
  uint64_t delivered_total = 0;
  uint64_t acked_total = 0;
  uint64_t dropped_total = 0;
};

struct HubStats {
  uint64_t sessions = 0;
  uint64_t attached = 0;
  uint64_t delivered_total = 0;
  uint64_t acked_total = 0;
  uint64_t dropped_total = 0;          // unacked messages of expired sessions
  uint64_t sessions_expired_total = 0;
  uint64_t head_seq = 0;
};

class Hub {
 public:
  // Loads the durable sessions; subscribes made before they are loaded
  // wait for it (their replies come late, never wrong).
  static std::unique_ptr<Hub> Start(platform::Loop& loop, store::Journal& journal,
                                    HubOptions options);
  ~Hub();
  Hub(const Hub&) = delete;
  Hub& operator=(const Hub&) = delete;

  // `done` runs (on the loop) before the first Deliver of this session.
  // Errors: kInvalidArgument (bad arguments), kResourceExhausted (busy:
  // attached to another connection, or max_sessions reached).
  void Subscribe(ConsumerSink* sink, SubscribeArgs args,
                 std::function<void(Result<SubscribeOutcome>)> done);
  // kNotFound: no such session on this connection; kInvalidArgument: seq
  // not in flight.
  Status Ack(ConsumerSink* sink, const std::string& session, uint64_t seq, bool cumulative);
  Status Unsubscribe(ConsumerSink* sink, const std::string& session, bool end);
  // The connection closed: its anonymous sessions end, durable ones detach.
  void DetachAll(ConsumerSink* sink);

  // A row the inbound writer made durable (in seq order).
  void OnCommitted(const store::StoredInbound& row);

  // Writes every changed position; done when written.
  void Flush(std::function<void()> done);

  HubStats stats() const;
  std::vector<SessionSnapshot> Sessions() const;

  class Impl;

 private:
  explicit Hub(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace edgespool::agent::downlink
