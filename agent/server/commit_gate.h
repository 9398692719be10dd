// The gate between a server's sockets and store::Journal: appends pass
// through it on their way in, and it says when the sockets must stop being
// read (the backpressure of producer_server.h).
//
// Handing over: appends are held here, not given to the journal one by one.
// While the journal is committing, they wait for that commit's answer and go
// together; while it is idle, the first waits up to append_linger_ms for
// company (commit_gate.cc says why, with the figures). Durability is
// untouched: the server still replies only after COMMIT.
//
// Blocking, two reasons told apart because they end differently:
//  - A commit backlog: more than max_awaiting_commit appends in the gate or
//    the journal's own bound on queued groups reached. Reading stops until
//    half of it is gone (checked on every commit).
//  - The journal's file above its high-water mark, which does not clear by
//    waiting: reading pulses, kPulsePauseMs stopped then kPulseReadMs read,
//    so that requests still get an answer (journal_full, or stored when
//    drop-oldest makes room) rather than hang.
// on_change(blocked) runs whenever blocked() flips.
//
// Thread-safety: loop-thread-only. Lifetime: destroy before the Journal and
// the Loop; held appends are handed to the journal on destruction (stored, as
// they would have been a moment later).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "platform/clock.h"
#include "platform/loop.h"
#include "store/journal.h"

namespace edgespool::agent::server {

class CommitGate {
 public:
  static constexpr int64_t kPulsePauseMs = 200;
  static constexpr int64_t kPulseReadMs = 20;
  // A group this size is handed over at once, linger or not: big enough to
  // amortise a commit, small enough that a burst is not held back.
  static constexpr size_t kEagerGroup = 64;

  struct Options {
    size_t max_awaiting_commit = 20000;
    int64_t append_linger_ms = 1;  // 0: every append is handed over at once
  };

  CommitGate(platform::Loop& loop, store::Journal& journal, const platform::Clock& clock,
             Options options, std::function<void(bool blocked)> on_change);
  ~CommitGate();
  CommitGate(const CommitGate&) = delete;
  CommitGate& operator=(const CommitGate&) = delete;

  // An append into the gate; it awaits its commit until the caller, in
  // `done`, calls Committed().
  void Append(store::Message m, store::Journal::AppendCallback done);
  // One append's commit was answered (whatever the outcome).
  void Committed();
  // Everything held goes to the journal now (before a query, which must see
  // every append made before it: the journal runs operations in call order).
  void HandOver();
  // Once per loop turn: hands over what has waited long enough.
  void OnTurn() { MaybeHandOver(false); }

  bool blocked() const { return commit_blocked_ || highwater_paused_; }
  size_t awaiting_commit() const { return awaiting_commit_; }
  size_t peak_awaiting_commit() const { return peak_awaiting_commit_; }
  uint64_t read_pauses() const { return read_pauses_; }  // times blocked() became true

 private:
  struct HeldAppend {
    store::Message message;
    store::Journal::AppendCallback done;
  };

  void Hold(store::Message m, store::Journal::AppendCallback done);
  void MaybeHandOver(bool linger_over);
  void Recompute();
  void OnPulse();
  void Apply(bool was_blocked);

  store::Journal& journal_;
  const platform::Clock& clock_;
  Options options_;
  std::function<void(bool)> on_change_;

  std::vector<HeldAppend> held_;  // not yet handed to the journal, in order
  int64_t held_since_ns_ = 0;     // arrival of held_.front()
  size_t handed_ = 0;             // handed to the journal, not yet answered
  bool linger_useful_ = true;     // the last linger found company
  bool linger_timer_fired_ = false;
  platform::TimerHandle linger_timer_;

  size_t awaiting_commit_ = 0;  // held + handed
  size_t peak_awaiting_commit_ = 0;
  bool commit_blocked_ = false;
  size_t commit_block_level_ = 0;  // awaiting_commit_ when reading stopped
  bool pulsing_ = false;           // in the high-water pause/read cycle
  bool highwater_paused_ = false;  // ...and in its pause half
  platform::TimerHandle pulse_timer_;
  uint64_t read_pauses_ = 0;
};

}  // namespace edgespool::agent::server
