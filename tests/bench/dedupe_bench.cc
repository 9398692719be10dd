// dedupe_bench: DedupeIndex against the map + deque it replaces, on the
// journal's append path.
//
// Per id: one Find (a miss, or a hit for a re-sent id), one Insert for a new
// id, one Evict (count bound: 10 ids per ms, so the 10-minute window never
// binds first); the last row evicts once per 100 ids, as the journal does
// once per commit group. Ids look like an SDK's ("phost-1234-abcdef-<counter>",
// 19-25 bytes), held as std::string as Message::msg_id is, so the baseline
// pays no conversion. The baseline is store/journal_db.{h,cc} as of this
// commit: unordered_map<string, {seq, stored_at}> plus a deque of pointers
// to the map's keys, find / try_emplace / erase-by-key through the deque.
//
// Printed: ns per id (median of --rounds, the two alternating), the ratio,
// and heap bytes per held id at the end of the run (mallinfo2 difference,
// allocator overhead included; memory_bytes() for the index beside it).
//
//   dedupe_bench [--ids N] [--window N] [--rounds R]
#include <malloc.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "store/dedupe_index.h"

namespace {

using edgespool::store::DedupeIndex;

constexpr int64_t kWindowMs = 10 * 60 * 1000;

// store/journal_db's dedupe structures, operation for operation.
class Baseline {
 public:
  explicit Baseline(size_t max_ids) : max_ids_(max_ids) {}
  uint64_t Find(const std::string& id) const {
    auto known = dedupe_.find(id);
    return known == dedupe_.end() ? 0 : known->second.seq;
  }
  void Insert(const std::string& id, uint64_t seq, int64_t now) {
    auto [entry, inserted] = dedupe_.try_emplace(id, DedupeEntry{seq, now});
    if (inserted) dedupe_order_.emplace_back(&entry->first, now);
  }
  void Evict(int64_t now_ms) {
    int64_t cutoff = now_ms - kWindowMs;
    while (!dedupe_order_.empty() &&
           (dedupe_order_.front().second < cutoff || dedupe_order_.size() > max_ids_)) {
      dedupe_.erase(*dedupe_order_.front().first);
      dedupe_order_.pop_front();
    }
  }
  size_t size() const { return dedupe_.size(); }

 private:
  struct DedupeEntry {
    uint64_t seq;
    int64_t stored_at_ms;
  };
  size_t max_ids_;
  std::unordered_map<std::string, DedupeEntry> dedupe_;
  std::deque<std::pair<const std::string*, int64_t>> dedupe_order_;
};

class Index {
 public:
  explicit Index(size_t max_ids) : index_(max_ids) {}
  uint64_t Find(const std::string& id) const { return index_.Find(id); }
  void Insert(const std::string& id, uint64_t seq, int64_t now) { index_.Insert(id, seq, now); }
  void Evict(int64_t now_ms) { index_.Evict(now_ms - kWindowMs); }
  size_t size() const { return index_.size(); }
  size_t memory_bytes() const { return index_.memory_bytes(); }

 private:
  DedupeIndex index_;
};

struct Workload {
  const char* name;
  size_t evict_every;  // 1: per id; N: once per commit group of N ids
  // For each step, the index of the id it presents: new ids in order, or
  // (re-sent) one presented within the last 1000 steps.
  std::vector<uint32_t> order;
};

Workload MakeWorkload(const char* name, size_t evict_every, size_t steps, int resend_percent,
                      uint64_t seed) {
  std::mt19937_64 rng(seed);
  Workload w{name, evict_every, {}};
  w.order.reserve(steps);
  uint32_t next = 0;
  for (size_t i = 0; i < steps; ++i) {
    if (i >= 1000 && static_cast<int>(rng() % 100) < resend_percent) {
      w.order.push_back(w.order[i - 1 - rng() % 1000]);
    } else {
      w.order.push_back(next++);
    }
  }
  return w;
}

struct Run {
  double ns_per_id;
  double heap_bytes_per_id;  // mallinfo2 difference / ids held at the end
  double own_bytes_per_id;   // memory_bytes() / held (index only)
  uint64_t hits;
};

size_t HeapInUse() { return mallinfo2().uordblks; }

template <typename Dedupe>
Run RunOnce(const std::vector<std::string>& ids, const Workload& w, size_t window) {
  size_t heap_before = HeapInUse();
  Run r{};
  {
    Dedupe d(window);
    uint64_t seq = 1;
    auto start = std::chrono::steady_clock::now();
    for (size_t i = 0; i < w.order.size(); ++i) {
      const std::string& id = ids[w.order[i]];
      int64_t now = static_cast<int64_t>(i / 10);
      if (d.Find(id) != 0) {
        ++r.hits;
      } else {
        d.Insert(id, seq++, now);
      }
      if (i % w.evict_every == 0) d.Evict(now);
    }
    auto ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start);
    r.ns_per_id = ns.count() / static_cast<double>(w.order.size());
    r.heap_bytes_per_id =
        static_cast<double>(HeapInUse() - heap_before) / static_cast<double>(d.size());
    if constexpr (std::is_same_v<Dedupe, Index>) {
      r.own_bytes_per_id = static_cast<double>(d.memory_bytes()) / static_cast<double>(d.size());
    }
  }
  return r;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  size_t n_ids = 1'000'000, window = 100'000;
  int rounds = 7;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--ids")) {
      n_ids = std::strtoull(argv[i + 1], nullptr, 10);
    } else if (!std::strcmp(argv[i], "--window")) {
      window = std::strtoull(argv[i + 1], nullptr, 10);
    } else if (!std::strcmp(argv[i], "--rounds")) {
      rounds = std::atoi(argv[i + 1]);
    } else {
      std::fprintf(stderr, "usage: %s [--ids N] [--window N] [--rounds R]\n", argv[0]);
      return 2;
    }
  }
  std::vector<std::string> ids;
  ids.reserve(n_ids);
  for (size_t i = 0; i < n_ids; ++i) ids.push_back("phost-1234-abcdef-" + std::to_string(i));

  // The journal evicts once per commit group, before the group's lookups.
  Workload workloads[] = {MakeWorkload("new ids", 1, n_ids, 0, 1),
                          MakeWorkload("10% re-sent", 1, n_ids, 10, 2),
                          MakeWorkload("groups of 100", 100, n_ids, 10, 3)};
  std::printf("dedupe_bench: %zu steps, window %zu ids, ids %zu-%zu bytes, median of %d\n\n", n_ids,
              window, ids.front().size(), ids.back().size(), rounds);
  std::printf("%-14s | %14s | %14s | %6s | %13s | %13s | %13s | %s\n", "workload", "map ns/id",
              "index ns/id", "ratio", "map B/id", "index B/id", "index own B", "hits");
  std::printf("%s\n", std::string(120, '-').c_str());
  for (const Workload& w : workloads) {
    std::vector<double> base_ns, index_ns;
    Run base{}, index{};
    for (int k = 0; k < rounds; ++k) {
      base = RunOnce<Baseline>(ids, w, window);
      index = RunOnce<Index>(ids, w, window);
      base_ns.push_back(base.ns_per_id);
      index_ns.push_back(index.ns_per_id);
      if (base.hits != index.hits) {
        std::fprintf(stderr, "hits differ: map %llu, index %llu\n",
                     static_cast<unsigned long long>(base.hits),
                     static_cast<unsigned long long>(index.hits));
        return 1;
      }
    }
    double b = Median(base_ns), x = Median(index_ns);
    std::printf("%-14s | %14.1f | %14.1f | %5.2fx | %13.1f | %13.1f | %13.1f | %llu\n", w.name, b,
                x, b / x, base.heap_bytes_per_id, index.heap_bytes_per_id, index.own_bytes_per_id,
                static_cast<unsigned long long>(index.hits));
  }
  return 0;
}
