// SeqDedupe: which seqs of one node were seen, as a set of disjoint ranges.
//
// A node's seqs are unique and mostly arrive in runs (live traffic is
// consecutive; a drained backlog interleaves a few priorities), so ranges
// stay few: one for live traffic, a handful after an outage. Memory is
// bounded by max_ranges (each ~48 bytes in the map); past it the lowest range
// is forgotten (counted in forgotten()): a redelivery of a seq that old would
// then pass as new, a duplicate at worst (delivery is at least once), never a
// loss. A node whose journal starts over (seq 1 again) looks like duplicates
// until its seqs pass the old ones: see docs/central.md.
//
// Not thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>

namespace edgespool::central {

class SeqDedupe {
 public:
  explicit SeqDedupe(size_t max_ranges = 1024) : max_ranges_(max_ranges ? max_ranges : 1) {}
  // Records seq; false if it was seen already.
  bool Insert(uint64_t seq);
  // Forgets seq (a message received but not handed out, whose PUBLISH the
  // broker will send again).
  void Erase(uint64_t seq);
  size_t ranges() const { return ranges_.size(); }
  uint64_t forgotten() const { return forgotten_; }

 private:
  // first -> last (inclusive), disjoint and not adjacent.
  std::map<uint64_t, uint64_t> ranges_;
  size_t max_ranges_;
  uint64_t forgotten_ = 0;
};

}  // namespace edgespool::central
