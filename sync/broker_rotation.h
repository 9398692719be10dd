// BrokerRotation: which broker of uplink.url's list the next connection
// attempt goes to, and when the reconnect backoff applies. A plain value
// class like Backoff: no clock, no I/O, a seeded RNG.
//
// The list is tried in rounds. A round visits every broker once; a failed
// attempt (the connection never came up, or it came up and was lost before
// it had been healthy) moves on to the next broker of the round at once,
// without waiting. Only when every broker of a round has failed does the
// caller wait Backoff::NextDelayMs() before the next round, so the backoff
// counts rounds, not attempts: one broker behaves exactly as before (each
// failure is a whole round), and N brokers cost at most N connects per
// backoff delay even when each of them accepts and then drops us at once.
//
// A connection that was healthy (the caller decides: it lasted
// healthy_after_ms) and is then lost starts a new round from the broker just
// lost, which counts as that round's first failure: the others are tried at
// once. That is the failover path: a cluster node stopped under us costs
// one connect to the next node, not a backoff delay.
//
// Order within a round:
//   kOrdered  the list's order. At start and after a round that failed
//             entirely, from the first URL; after a lost connection, from
//             the URL after the one lost, wrapping around. Gateways stay on
//             the broker they reached (no failback while it works).
//   kRandom   a fresh random permutation each round (the broker just lost
//             last): a fleet that loses one node spreads over the others
//             instead of all moving to the same next one.
//
// Not thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

namespace edgespool::sync {

enum class FailoverOrder : uint8_t { kOrdered, kRandom };

class BrokerRotation {
 public:
  // count >= 1 brokers.
  BrokerRotation(size_t count, FailoverOrder order, uint64_t seed);

  // The broker the next attempt goes to (an index into the list).
  size_t current() const { return round_[pos_]; }

  // The attempt on current() failed or its connection was lost; `healthy`:
  // it had been up long enough to start a new round from it. Returns true
  // when the round is over (every broker of it failed): the caller waits the
  // backoff before trying current(), which is then the new round's first.
  bool OnFailure(bool healthy);

  // A new list (a reload). Starts a new round; `keep`: the index in the new
  // list of the broker the agent is connected to, which becomes current()
  // so that nothing moves (npos: none).
  void Reset(size_t count, size_t keep = kNone);

  static constexpr size_t kNone = static_cast<size_t>(-1);
  size_t count() const { return count_; }
  size_t failures_in_round() const { return failures_; }

 private:
  // A round starting with broker `first` (kNone: the policy's own start).
  void NewRound(size_t first);

  size_t count_;
  FailoverOrder order_;
  std::mt19937_64 rng_;
  std::vector<size_t> round_;  // a permutation of [0, count_)
  size_t pos_ = 0;             // into round_
  size_t failures_ = 0;        // in this round
};

}  // namespace edgespool::sync
