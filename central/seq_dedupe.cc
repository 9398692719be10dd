#include "central/seq_dedupe.h"

#include <iterator>

namespace edgespool::central {

bool SeqDedupe::Insert(uint64_t seq) {
  // Fast path: the next seq of the newest range (live traffic).
  if (!ranges_.empty()) {
    auto last = std::prev(ranges_.end());
    if (seq == last->second + 1) {
      last->second = seq;
      return true;
    }
    if (seq >= last->first && seq <= last->second) return false;
  }
  auto next = ranges_.upper_bound(seq);  // first range starting after seq
  if (next != ranges_.begin()) {
    auto prev = std::prev(next);
    if (seq <= prev->second) return false;
    if (seq == prev->second + 1) {
      prev->second = seq;
      if (next != ranges_.end() && next->first == seq + 1) {
        prev->second = next->second;
        ranges_.erase(next);
      }
      return true;
    }
  }
  if (next != ranges_.end() && next->first == seq + 1) {
    uint64_t last = next->second;
    ranges_.erase(next);
    ranges_.emplace(seq, last);
    return true;
  }
  ranges_.emplace(seq, seq);
  if (ranges_.size() > max_ranges_) {
    auto lowest = ranges_.begin();
    forgotten_ += lowest->second - lowest->first + 1;
    ranges_.erase(lowest);
  }
  return true;
}

void SeqDedupe::Erase(uint64_t seq) {
  auto next = ranges_.upper_bound(seq);
  if (next == ranges_.begin()) return;
  auto r = std::prev(next);
  if (seq > r->second) return;
  uint64_t first = r->first, last = r->second;
  ranges_.erase(r);
  if (first < seq) ranges_.emplace(first, seq - 1);
  if (seq < last) ranges_.emplace(seq + 1, last);
}

}  // namespace edgespool::central
