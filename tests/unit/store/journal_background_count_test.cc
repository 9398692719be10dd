// The backlog counted in the background after a crash (store/backlog_count.h):
// a journal opened without its clean-close counts says "counting" (not 0)
// until the count arrives, and then has exactly the counts of the table,
// although appends, acks, dead letters, requeues and drop-oldest evictions
// ran while the count was held back by a gate on its snapshot.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <chrono>
#include <future>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "platform/disk.h"
#include "platform/files.h"
#include "store/backlog_count.h"
#include "store/journal.h"
#include "store/journal_db.h"
#include "tests/unit/store/journal_test_util.h"

namespace edgespool::store {
namespace {

using testutil::Harness;
using testutil::Msg;

constexpr size_t kPayload = 1000;

// The table's own counts, through a connection of the test's.
struct Truth {
  uint64_t pending = 0, bytes = 0, dead = 0;
  int64_t oldest_ts = 0;
};
Truth Count(const std::string& path) {
  Truth t;
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  EXPECT_EQ(sqlite3_prepare_v2(db,
                               "SELECT (SELECT count(*) FROM pending), "
                               "(SELECT ifnull(sum(bytes), 0) FROM pending), "
                               "(SELECT count(*) FROM journal WHERE state = 2), "
                               "(SELECT ifnull(min(ts), 0) FROM pending)",
                               -1, &st, nullptr),
            SQLITE_OK);
  if (sqlite3_step(st) == SQLITE_ROW) {
    t.pending = static_cast<uint64_t>(sqlite3_column_int64(st, 0));
    t.bytes = static_cast<uint64_t>(sqlite3_column_int64(st, 1));
    t.dead = static_cast<uint64_t>(sqlite3_column_int64(st, 2));
    t.oldest_ts = sqlite3_column_int64(st, 3);
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  return t;
}

std::vector<Message> Rows(const char* topic, int64_t first_ts, int n, Priority p) {
  std::vector<Message> v;
  for (int i = 0; i < n; ++i) v.push_back(Msg(topic, first_ts + i, std::string(kPayload, 'x'), p));
  return v;
}

// Holds the background count on its snapshot until Open() of the gate.
class Gate {
 public:
  Gate() {
    BacklogCount::TestHooks hooks;
    hooks.always = true;
    hooks.before_count = [this] {
      entered_.set_value();
      opened_.wait_for(std::chrono::seconds(30));  // bounded, whatever the test does
    };
    BacklogCount::SetTestHooks(std::move(hooks));
  }
  ~Gate() { BacklogCount::SetTestHooks({}); }
  bool WaitEntered() {
    return entered_.get_future().wait_for(std::chrono::seconds(10)) == std::future_status::ready;
  }
  void Open() { open_.set_value(); }

 private:
  std::promise<void> entered_, open_;
  std::shared_future<void> opened_ = open_.get_future().share();
};

// Runs the loop until the count was folded in (bounded).
bool WaitCounted(Harness& h) {
  for (int i = 0; i < 500 && h.j().stats().pending_counting; ++i) {
    h.Sync();
    if (h.j().stats().pending_counting) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return !h.j().stats().pending_counting;
}

TEST(JournalBackgroundCountTest, ChangesWhileCountingAddUpExactly) {
  JournalOptions o;
  o.max_bytes = 1 << 20;  // ~900 rows of 1000 bytes: drop-oldest evicts below
  o.when_full = WhenFull::kDropOldest;
  Harness h(o);
  ASSERT_TRUE(h.Open().ok());
  std::vector<uint64_t> old;
  // old[0..149]: low priority, ts 1..150; old[150..449]: normal, ts 1001..
  for (auto& r : h.AppendMany(Rows("old", 1, 150, Priority::kLow))) {
    ASSERT_TRUE(r.ok());
    old.push_back(r->seq);
  }
  for (auto& r : h.AppendMany(Rows("old", 1001, 300, Priority::kNormal))) {
    ASSERT_TRUE(r.ok());
    old.push_back(r->seq);
  }
  ASSERT_TRUE(h.MarkDead({{old[300], "bad"}, {old[301], "bad"}, {old[302], "bad"}}).ok());
  ASSERT_TRUE(h.MarkSent({old[200], old[201]}).ok());
  ASSERT_EQ(h.j().stats().dropped_total, 0u);
  h.Close();
  const std::string path = h.options().path;
  // As after a crash: no clean-close counts.
  ASSERT_TRUE(platform::RemoveFile(JournalDb::CountsPath(path)).ok());

  Gate gate;
  ASSERT_TRUE(h.Open().ok());
  ASSERT_TRUE(gate.WaitEntered());
  h.Sync();
  // Not known yet: flagged, and 0 rather than the deltas.
  EXPECT_TRUE(h.j().stats().pending_counting);
  EXPECT_EQ(h.j().stats().pending_count, 0u);
  EXPECT_EQ(h.j().stats().pending_bytes, 0u);
  // The oldest pending row is still known (an index lookup, not a count).
  EXPECT_EQ(h.j().stats().oldest_pending_ts_ms, 1);
  // While the count waits on its snapshot: acks and dead letters of rows
  // it will count, a requeue, appends it will not see, and enough appends
  // past the cap that drop-oldest evicts old low-priority rows.
  ASSERT_TRUE(h.MarkSent({old[400], old[401], old[402], old[403]}).ok());
  ASSERT_TRUE(h.MarkDead({{old[404], "bad"}}).ok());
  ASSERT_TRUE(h.Requeue({old[300]}).ok());
  // Few groups: while the count holds its snapshot the WAL cannot start
  // over, and each commit past its restart size waits up to 2 s for it
  // (checkpointer.h).
  std::vector<uint64_t> fresh;
  for (int g = 0; g < 4; ++g) {
    for (auto& r : h.AppendMany(Rows("new", 5000 + g * 200, 200, Priority::kNormal))) {
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      fresh.push_back(r->seq);
    }
  }
  ASSERT_TRUE(h.MarkSent({fresh[0], fresh[1]}).ok());
  h.Sync();
  EXPECT_GT(h.j().stats().dropped_total, 0u) << "the cap never evicted: the test lost its point";
  EXPECT_TRUE(h.j().stats().pending_counting);
  EXPECT_EQ(h.j().stats().pending_count, 0u);

  gate.Open();
  ASSERT_TRUE(WaitCounted(h));
  Truth t = Count(path);
  const JournalStats& s = h.j().stats();
  EXPECT_EQ(s.pending_count, t.pending);
  EXPECT_EQ(s.pending_bytes, t.bytes);
  EXPECT_EQ(s.dead_count, t.dead);
  EXPECT_GT(t.pending, 0u);
  EXPECT_EQ(s.oldest_pending_ts_ms, t.oldest_ts);
  EXPECT_GT(s.oldest_pending_ts_ms, 1);  // the low rows went first
  // And it goes on counting incrementally from there.
  auto f = h.Fetch(testutil::EveryPending());
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->size(), t.pending);
  ASSERT_TRUE(h.MarkSent(testutil::Seqs(*f)).ok());
  EXPECT_EQ(h.j().stats().pending_count, 0u);
  EXPECT_EQ(h.j().stats().pending_bytes, 0u);
  EXPECT_FALSE(h.j().stats().pending_counting);
}

TEST(JournalBackgroundCountTest, ACloseBeforeTheCountLeavesNoCountsFile) {
  Harness h;
  ASSERT_TRUE(h.Open().ok());
  for (auto& r : h.AppendMany(Rows("old", 0, 50, Priority::kNormal))) ASSERT_TRUE(r.ok());
  h.Close();
  const std::string path = h.options().path;
  ASSERT_TRUE(platform::RemoveFile(JournalDb::CountsPath(path)).ok());
  {
    Gate gate;
    ASSERT_TRUE(h.Open().ok());
    ASSERT_TRUE(gate.WaitEntered());
    for (auto& r : h.AppendMany(Rows("new", 100, 5, Priority::kNormal))) ASSERT_TRUE(r.ok());
    gate.Open();  // the close below may or may not find the count done
    h.Close();
  }
  // Either the count was folded in (and the file is right) or there is no
  // file and the next open counts: never counts made of deltas alone.
  ASSERT_TRUE(h.Open().ok());
  ASSERT_TRUE(WaitCounted(h));
  EXPECT_EQ(h.j().stats().pending_count, 55u);
  EXPECT_EQ(h.j().stats().pending_bytes, 55u * kPayload);
}

TEST(JournalBackgroundCountTest, ACloseWhileTheCountIsHeldAbandonsIt) {
  Harness h;
  ASSERT_TRUE(h.Open().ok());
  for (auto& r : h.AppendMany(Rows("old", 0, 50, Priority::kNormal))) ASSERT_TRUE(r.ok());
  h.Close();
  const std::string path = h.options().path;
  ASSERT_TRUE(platform::RemoveFile(JournalDb::CountsPath(path)).ok());
  {
    Gate gate;
    ASSERT_TRUE(h.Open().ok());
    ASSERT_TRUE(gate.WaitEntered());
    for (auto& r : h.AppendMany(Rows("new", 100, 5, Priority::kNormal))) ASSERT_TRUE(r.ok());
    std::thread opener([&gate] {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      gate.Open();
    });
    h.Close();  // the counter is still gated: the close waits for it, and abandons it
    opener.join();
  }
  EXPECT_FALSE(platform::FileExists(JournalDb::CountsPath(path)));
  ASSERT_TRUE(h.Open().ok());  // small, no hooks: counted at open
  EXPECT_FALSE(h.j().stats().pending_counting);
  EXPECT_EQ(h.j().stats().pending_count, 55u);
}

}  // namespace
}  // namespace edgespool::store
