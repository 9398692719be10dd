#include "sync/broker_rotation.h"

#include <algorithm>
#include <cassert>
#include <numeric>

namespace edgespool::sync {

BrokerRotation::BrokerRotation(size_t count, FailoverOrder order, uint64_t seed)
    : count_(std::max<size_t>(count, 1)), order_(order), rng_(seed) {
  NewRound(kNone);
}

void BrokerRotation::NewRound(size_t first) {
  round_.resize(count_);
  std::iota(round_.begin(), round_.end(), size_t{0});
  if (order_ == FailoverOrder::kOrdered) {
    // Rotated to start at `first`: its successors follow, wrapping around.
    if (first != kNone) std::rotate(round_.begin(), round_.begin() + first, round_.end());
  } else {
    std::shuffle(round_.begin(), round_.end(), rng_);
    if (first != kNone) {
      // The broker just lost opens the round (as its first failure), so the
      // others, in random order, come right after it.
      auto it = std::find(round_.begin(), round_.end(), first);
      std::rotate(round_.begin(), it, it + 1);
    }
  }
  pos_ = 0;
  failures_ = 0;
}

bool BrokerRotation::OnFailure(bool healthy) {
  if (healthy) NewRound(current());
  ++failures_;
  assert(failures_ <= count_);
  if (failures_ < count_) {
    ++pos_;
    return false;
  }
  // Every broker of this round failed: after the backoff, a new round from
  // the policy's start (ordered: the first URL; random: a new permutation).
  NewRound(kNone);
  return true;
}

void BrokerRotation::Reset(size_t count, size_t keep) {
  count_ = std::max<size_t>(count, 1);
  NewRound(keep < count_ ? keep : kNone);
}

}  // namespace edgespool::sync
