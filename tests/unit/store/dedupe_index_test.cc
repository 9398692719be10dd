// DedupeIndex against a plain reference model (unordered_map + deque, the
// structure it replaces), plus its contracts one by one: exact answers under
// forced hash collisions, FIFO eviction when stored_at steps back, the count
// bound, PopNewest, and memory that falls back when ids are forgotten.
#include "store/dedupe_index.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <deque>
#include <limits>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

namespace edgespool::store {
namespace {

constexpr int64_t kNoCutoff = std::numeric_limits<int64_t>::min();
constexpr int64_t kForgetAll = std::numeric_limits<int64_t>::max();

// What the index must behave like.
class Model {
 public:
  explicit Model(size_t max_ids) : max_ids_(max_ids) {}
  uint64_t Find(const std::string& id) const {
    auto it = map_.find(id);
    return it == map_.end() ? 0 : it->second.first;
  }
  void Insert(const std::string& id, uint64_t seq, int64_t at) {
    map_.emplace(id, std::make_pair(seq, at));
    order_.push_back(id);
  }
  void Evict(int64_t cutoff) {
    while (!order_.empty() &&
           (order_.size() > max_ids_ || map_.at(order_.front()).second < cutoff)) {
      map_.erase(order_.front());
      order_.pop_front();
    }
  }
  void PopNewest(size_t n) {
    for (size_t k = 0; k < n && !order_.empty(); ++k) {
      map_.erase(order_.back());
      order_.pop_back();
    }
  }
  size_t size() const { return order_.size(); }
  const std::unordered_map<std::string, std::pair<uint64_t, int64_t>>& map() const { return map_; }

 private:
  size_t max_ids_;
  std::unordered_map<std::string, std::pair<uint64_t, int64_t>> map_;
  std::deque<std::string> order_;
};

// Id number k -> an id. Mostly SDK-like ids sharing a prefix; some tiny
// binary ids (which repeat: the model decides what is new), ids that are
// prefixes of one another, long shared prefixes, KiB ids and, rarely, 64 KiB.
std::string IdFor(uint64_t k, std::mt19937_64& rng) {
  uint64_t kind = rng() % 1000;
  if (kind < 700) return "host-1234-abcdef-" + std::to_string(k);
  if (kind < 820) {  // 1..3 bytes of any value, NULs included: collide often
    std::string s(1 + rng() % 3, '\0');
    for (char& c : s) c = static_cast<char>(rng() % 6);
    return s;
  }
  if (kind < 880) return std::string(1 + k % 40, 'a');  // prefixes of each other
  if (kind < 960) return std::string(300, 'x') + std::to_string(k) + std::string(200, 'y');
  if (kind < 999) {  // 1..4 KiB, differing only near the end
    std::string s(1024 + rng() % 3072, 'k');
    std::string n = std::to_string(k);
    s.replace(s.size() - n.size() - 1, n.size(), n);
    return s;
  }
  std::string s(64 << 10, 'L');  // 64 KiB: a block of its own
  std::string n = std::to_string(k);
  s.replace(s.size() / 2, n.size(), n);
  return s;
}

struct RunStats {
  uint64_t inserts = 0, hits = 0, misses = 0, evicted_by_time = 0, popped = 0;
};

// Random Insert/Find/Evict/PopNewest against the model; every answer and
// size compared, and every held id checked at intervals.
void RunDifferential(size_t max_ids, int ops, uint64_t seed, DedupeIndex::HashFn hash = nullptr,
                     RunStats* stats = nullptr) {
  std::mt19937_64 rng(seed);
  DedupeIndex index(max_ids, hash);
  Model model(max_ids);
  std::vector<std::string> recent;  // ids seen lately, held or not
  uint64_t next_k = 0, next_seq = 1;
  int64_t now = 1'000'000;
  int64_t window = 50 + static_cast<int64_t>(rng() % 500);
  RunStats unused;
  RunStats& st = stats ? *stats : unused;
  auto remember = [&](std::string id) {
    if (recent.size() < 4096) {
      recent.push_back(std::move(id));
    } else {
      recent[rng() % recent.size()] = std::move(id);
    }
  };
  for (int op = 0; op < ops; ++op) {
    uint64_t r = rng() % 1000;
    if (r < 380) {  // insert a new id (or find it, when it happens to be held)
      std::string id = IdFor(next_k++, rng);
      uint64_t want = model.Find(id);
      EXPECT_EQ(index.Find(id), want);
      if (want == 0) {
        index.Insert(id, next_seq, now);
        model.Insert(id, next_seq, now);
        ++next_seq;
        ++st.inserts;
      }
      remember(std::move(id));
    } else if (r < 800) {  // find a recent id (held, evicted or popped)
      if (recent.empty()) continue;
      const std::string& id = recent[rng() % recent.size()];
      uint64_t want = model.Find(id);
      ASSERT_EQ(index.Find(id), want) << "id of " << id.size() << " bytes";
      ++(want ? st.hits : st.misses);
    } else if (r < 830) {  // an id never inserted
      std::string id = "never-" + std::to_string(rng());
      ASSERT_EQ(index.Find(id), 0u);
    } else if (r < 900) {  // time passes, sometimes backwards (clock step)
      now += rng() % 20;
      if (rng() % 50 == 0) now -= static_cast<int64_t>(rng() % 300);
    } else if (r < 960) {  // evict by age (and the count bound)
      size_t before = model.size();
      index.Evict(now - window);
      model.Evict(now - window);
      st.evicted_by_time += before - model.size();
    } else if (r < 985) {  // count bound only
      index.Evict(kNoCutoff);
      model.Evict(kNoCutoff);
    } else {  // a commit group rolled back
      size_t n = rng() % 24;
      st.popped += std::min(n, model.size());
      index.PopNewest(n);
      model.PopNewest(n);
    }
    ASSERT_EQ(index.size(), model.size());
    if (op % 20000 == 0) {
      for (const auto& [id, v] : model.map()) ASSERT_EQ(index.Find(id), v.first);
    }
  }
  for (const auto& [id, v] : model.map()) ASSERT_EQ(index.Find(id), v.first);
  index.Evict(kForgetAll);
  EXPECT_EQ(index.size(), 0u);
  for (const std::string& id : recent) EXPECT_EQ(index.Find(id), 0u);
}

TEST(DedupeIndexTest, MatchesReferenceModel) {
  // Windows from one id (everything evicts at once) to more than the run
  // holds (only time and PopNewest forget).
  struct Case {
    size_t max_ids;
    int ops;
  } cases[] = {{0, 10000}, {1, 20000}, {7, 40000}, {100, 80000}, {2000, 150000}, {100000, 150000}};
  uint64_t seed = 20261123;
  for (const Case& c : cases) {
    SCOPED_TRACE("max_ids " + std::to_string(c.max_ids));
    RunStats st;
    RunDifferential(c.max_ids, c.ops, seed++, nullptr, &st);
    if (HasFatalFailure()) return;
    // The mix really exercised every path.
    EXPECT_GT(st.inserts, static_cast<uint64_t>(c.ops) / 4);
    EXPECT_GT(st.hits, 0u);
    EXPECT_GT(st.misses, 0u);
    EXPECT_GT(st.popped, 0u);
    if (c.max_ids >= 2000) {
      EXPECT_GT(st.evicted_by_time, 0u);
    }
  }
}

uint64_t ConstantHash(std::string_view) { return 0x1234'5678'9abc'def0ull; }
uint64_t ZeroHash(std::string_view) { return 0; }  // tag 0 is remapped
uint64_t LengthHash(std::string_view s) { return static_cast<uint64_t>(s.size()) << 40; }
uint64_t FirstByteHash(std::string_view s) {
  return static_cast<uint64_t>(static_cast<unsigned char>(s[0])) << 56;
}

TEST(DedupeIndexTest, ForcedCollisionsStillAnswerExactly) {
  // Every id alike (one probe run, every probe compares bytes), or alike in
  // groups; small windows since a single run makes each operation linear.
  RunDifferential(300, 30000, 1, &ConstantHash);
  RunDifferential(50, 20000, 2, &ZeroHash);
  RunDifferential(500, 30000, 3, &LengthHash);
  RunDifferential(2000, 40000, 4, &FirstByteHash);
}

TEST(DedupeIndexTest, EqualHashesAreDifferentIds) {
  DedupeIndex index(100, &ConstantHash);
  index.Insert("a", 1, 0);
  index.Insert("b", 2, 0);
  index.Insert(std::string("a\0", 2), 3, 0);
  index.Insert("ab", 4, 0);
  EXPECT_EQ(index.Find("a"), 1u);
  EXPECT_EQ(index.Find("b"), 2u);
  EXPECT_EQ(index.Find(std::string("a\0", 2)), 3u);
  EXPECT_EQ(index.Find("ab"), 4u);
  EXPECT_EQ(index.Find("c"), 0u);
  EXPECT_EQ(index.Find("abc"), 0u);
  EXPECT_EQ(index.Find(""), 0u);
  // Removing one from the middle of the probe run keeps the others.
  index.Evict(kNoCutoff);
  index.PopNewest(1);
  EXPECT_EQ(index.Find("ab"), 0u);
  EXPECT_EQ(index.Find(std::string("a\0", 2)), 3u);
}

TEST(DedupeIndexTest, EvictionFollowsArrivalOrderWhenTheClockStepsBack) {
  DedupeIndex index(100);
  index.Insert("a", 1, 100);
  index.Insert("b", 2, 300);
  index.Insert("c", 3, 50);  // the wall clock stepped back
  index.Insert("d", 4, 400);
  index.Evict(150);
  // a goes (100 < 150); b (300) is not old, so c (50) waits behind it.
  EXPECT_EQ(index.Find("a"), 0u);
  EXPECT_EQ(index.Find("b"), 2u);
  EXPECT_EQ(index.Find("c"), 3u);
  EXPECT_EQ(index.size(), 3u);
  index.Evict(350);  // b goes, and c with it, d stays
  EXPECT_EQ(index.Find("b"), 0u);
  EXPECT_EQ(index.Find("c"), 0u);
  EXPECT_EQ(index.Find("d"), 4u);
  index.Evict(400);  // stored_at < cutoff, not <=
  EXPECT_EQ(index.Find("d"), 4u);
}

TEST(DedupeIndexTest, CountBoundForgetsTheOldest) {
  DedupeIndex index(3);
  for (uint64_t i = 1; i <= 10; ++i) index.Insert("id-" + std::to_string(i), i, 0);
  EXPECT_EQ(index.size(), 10u);  // Insert never forgets: a group may overshoot
  index.Evict(kNoCutoff);
  EXPECT_EQ(index.size(), 3u);
  for (uint64_t i = 1; i <= 7; ++i) EXPECT_EQ(index.Find("id-" + std::to_string(i)), 0u);
  for (uint64_t i = 8; i <= 10; ++i) EXPECT_EQ(index.Find("id-" + std::to_string(i)), i);
  // Steady state: never more than max_ids after an Evict.
  for (uint64_t i = 11; i <= 5000; ++i) {
    index.Insert("id-" + std::to_string(i), i, 0);
    index.Evict(kNoCutoff);
    ASSERT_LE(index.size(), 3u);
  }
  EXPECT_EQ(index.Find("id-4998"), 4998u);
  EXPECT_EQ(index.Find("id-4997"), 0u);
}

TEST(DedupeIndexTest, ZeroMaxIdsKeepsNothingPastAnEvict) {
  DedupeIndex index(0);  // store.dedupe_max_ids = 0
  index.Insert("a", 1, 0);
  index.Insert("b", 2, 0);
  EXPECT_EQ(index.Find("a"), 1u);  // a commit group still sees its own ids
  index.Evict(kNoCutoff);
  EXPECT_EQ(index.size(), 0u);
  EXPECT_EQ(index.Find("a"), 0u);
}

TEST(DedupeIndexTest, PopNewestUndoesTheLastInserts) {
  DedupeIndex index(100);
  index.Insert("committed", 1, 0);
  index.Insert("g1", 2, 0);
  index.Insert(std::string(70000, 'g'), 3, 0);  // a block of its own
  index.Insert("g3", 4, 0);
  index.PopNewest(3);
  EXPECT_EQ(index.size(), 1u);
  EXPECT_EQ(index.Find("committed"), 1u);
  EXPECT_EQ(index.Find("g1"), 0u);
  EXPECT_EQ(index.Find(std::string(70000, 'g')), 0u);
  // The same ids may be stored again (the retried group), under new seqs.
  index.Insert("g1", 5, 0);
  EXPECT_EQ(index.Find("g1"), 5u);
  index.PopNewest(10);  // more than held: all of them
  EXPECT_EQ(index.size(), 0u);
  EXPECT_EQ(index.Find("committed"), 0u);
  index.PopNewest(1);  // nothing to pop
  EXPECT_EQ(index.size(), 0u);
}

TEST(DedupeIndexTest, MemoryFallsBackWhenIdsAreForgotten) {
  DedupeIndex index(100000);
  size_t empty = index.memory_bytes();
  EXPECT_LT(empty, 2048u);
  char id[64];
  for (uint64_t i = 1; i <= 100000; ++i) {
    int n = snprintf(id, sizeof id, "phost-1234-abcdef-%llu", static_cast<unsigned long long>(i));
    index.Insert(std::string_view(id, static_cast<size_t>(n)), i, 0);
  }
  size_t full = index.memory_bytes();
  // The old map + deque held ~100 B per id plus the key; this holds less
  // than 100 B per id including the ~23-byte keys.
  EXPECT_LT(full / 100000, 100u) << full << " bytes";
  EXPECT_GT(full, 100000u * 23);  // the keys at least
  EXPECT_EQ(index.Find("phost-1234-abcdef-77777"), 77777u);

  index.Evict(1);  // all stored at 0: all forgotten
  EXPECT_EQ(index.size(), 0u);
  EXPECT_LT(index.memory_bytes(), 2048u) << "blocks freed, ring and table shrunk";
  EXPECT_EQ(index.table_slots(), 16u);

  // Forgetting most (not all) shrinks too.
  for (uint64_t i = 1; i <= 50000; ++i) index.Insert("x" + std::to_string(i), i, 0);
  size_t half = index.memory_bytes();
  index.PopNewest(49990);
  EXPECT_LT(index.memory_bytes(), half / 20);
  for (uint64_t i = 1; i <= 10; ++i) EXPECT_EQ(index.Find("x" + std::to_string(i)), i);

  // 64 KiB ids: their blocks go with them.
  for (uint64_t i = 1; i <= 20; ++i) index.Insert(std::string(65536, 'A' + i), 100 + i, 5);
  EXPECT_GT(index.memory_bytes(), 20u * 65536);
  index.Evict(10);
  EXPECT_EQ(index.size(), 0u);
  EXPECT_LT(index.memory_bytes(), 2048u);
}

// With a reserve the index never resizes while it holds up to the reserve
// (and the 1/8 a commit group may overshoot by): the table is the size it
// was made with throughout, and forgetting everything keeps that size.
TEST(DedupeIndexTest, ReserveMeansNoResizeUpToIt) {
  constexpr size_t kReserve = 20000;
  DedupeIndex index(kReserve, nullptr, kReserve);
  size_t slots = index.table_slots();
  EXPECT_GE(slots / 8 * 5, kReserve + kReserve / 8);
  size_t made = index.memory_bytes();
  for (uint64_t i = 1; i <= kReserve + kReserve / 8; ++i) {
    index.Insert("r-" + std::to_string(i), i, 0);
    ASSERT_EQ(index.table_slots(), slots) << "resized at " << i;
  }
  // Ring and table as made; only key blocks were added.
  EXPECT_LE(index.memory_bytes() - made, (kReserve + kReserve / 8) * 16);
  EXPECT_EQ(index.Find("r-777"), 777u);
  index.Evict(1);
  EXPECT_EQ(index.size(), 0u);
  EXPECT_EQ(index.table_slots(), slots);
  EXPECT_LT(index.memory_bytes(), made + 2048);
  // Past the reserve it grows as an index without one does.
  DedupeIndex small(100, nullptr, 100);
  for (uint64_t i = 1; i <= 5000; ++i) small.Insert("s-" + std::to_string(i), i, 0);
  EXPECT_GE(small.table_slots(), 8192u);  // 5000 ids at load <= 5/8
  EXPECT_EQ(small.Find("s-4321"), 4321u);
}

TEST(DedupeIndexTest, SteadyStateStaysBounded) {
  // A long run at the window's bound: memory settles instead of creeping
  // (blocks recycled first-in first-out, no tombstones in the table).
  DedupeIndex index(10000);
  std::string id;
  size_t settled = 0;
  for (uint64_t i = 1; i <= 300000; ++i) {
    id = "p" + std::to_string(i * 2654435761u) + "-" + std::to_string(i);
    ASSERT_EQ(index.Find(id), 0u);
    index.Insert(id, i, static_cast<int64_t>(i));
    if (i % 64 == 0) index.PopNewest(1);  // the occasional rolled-back group
    index.Evict(kNoCutoff);
    if (i == 50000) settled = index.memory_bytes();
  }
  EXPECT_EQ(index.size(), 10000u);
  EXPECT_LE(index.memory_bytes(), settled + 32 * 1024);
}

}  // namespace
}  // namespace edgespool::store
