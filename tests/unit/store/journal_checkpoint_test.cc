// The journal's WAL is copied back by the Checkpointer (a thread and
// connection of its own): the WAL must stay inside its budget while the
// writer never pauses, rows must survive every restart of the WAL, and one
// journal file belongs to one process at a time.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "platform/disk.h"
#include "platform/files.h"
#include "store/checkpointer.h"
#include "store/journal_db.h"
#include "store/schema.h"
#include "tests/support/test_env.h"

namespace edgespool::store {
namespace {

Message Row(uint64_t i) {
  Message m;
  m.topic = "plant/line" + std::to_string(i % 8);
  m.ts_ms = 1700000000000 + static_cast<int64_t>(i);
  m.payload = std::string(200, static_cast<char>('a' + i % 26));
  if (i % 3 == 0) m.msg_id = "id-" + std::to_string(i);
  return m;
}

JournalOptions Options(const testing::TempDir& dir) {
  JournalOptions o;
  o.path = dir.File("journal.db");
  o.durability = Durability::kNormal;
  o.max_bytes = 16ull << 20;  // WAL budget: passes from 512 frames, restart at 768
  return o;
}

TEST(JournalCheckpointTest, WalStaysInsideItsBudgetWhileTheWriterNeverPauses) {
  testing::TempDir dir;
  JournalOptions o = Options(dir);
  WalBudget budget = WalBudgetFor(o.max_bytes);
  ASSERT_EQ(budget.pass_pages, 512);
  ASSERT_EQ(budget.restart_pages, 768);
  auto db = JournalDb::Open(o, platform::SystemClock::Get());
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  ASSERT_NE((*db)->checkpointer(), nullptr);

  // 400 groups of 64: ~6 MB of rows, several times the WAL budget.
  constexpr int kGroups = 400, kPerGroup = 64;
  uint64_t next = 0;
  int64_t largest_wal = 0;
  for (int g = 0; g < kGroups; ++g) {
    std::vector<AppendItem> items(kPerGroup);
    for (auto& item : items) item.message = Row(next++);
    (*db)->AppendGroup(&items);
    for (const auto& item : items)
      ASSERT_TRUE(item.outcome.ok()) << item.outcome.status().ToString();
    auto wal = platform::FileSizeBytes(o.path + "-wal");
    ASSERT_TRUE(wal.ok());
    largest_wal = std::max<int64_t>(largest_wal, static_cast<int64_t>(*wal));
  }
  // One group of 64 rows is ~20 pages; allow the restart point plus a few.
  int64_t frame = kPageSize + 24;
  EXPECT_LE(largest_wal, (budget.restart_pages + 64) * frame) << "WAL grew past its budget";
  EXPECT_LE(largest_wal, budget.reserve_bytes);
  Checkpointer::Stats s = (*db)->checkpointer()->stats();
  EXPECT_GT(s.passes, 0u);
  EXPECT_GT(s.restart_waits, 0u) << "the WAL never came to its restart point";
  EXPECT_EQ(s.failures, 0u);
  EXPECT_EQ((*db)->stats().pending_count, next);
  const JournalStats& js = (*db)->RefreshStats();  // what metrics export
  EXPECT_EQ(js.checkpoints_total, s.passes);
  EXPECT_EQ(js.wal_restart_waits_total, s.restart_waits);
  EXPECT_EQ(js.wal_restart_wait_us_total, s.wait_us);
  db->reset();

  // Every row is there after the WAL restarted many times, byte for byte.
  auto again = JournalDb::Open(o, platform::SystemClock::Get());
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ((*again)->stats().pending_count, next);
  FetchSpec all;
  all.max_messages = next + 1;
  all.max_bytes = 1u << 30;
  auto rows = (*again)->FetchPending(all);
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  ASSERT_EQ(rows->size(), next);
  for (const auto& r : *rows) {
    Message want = Row(r.seq - 1);
    ASSERT_EQ(r.message.payload, want.payload) << "seq " << r.seq;
    ASSERT_EQ(r.message.topic, want.topic) << "seq " << r.seq;
  }
}

// Cleanup truncates the WAL with a checkpoint of the writer's own. SQLite
// does not wait for the checkpoint lock, so a background pass in progress
// would make it a silent no-op (the pragma reports "busy" in a row): the
// checkpointer pauses for it instead.
TEST(JournalCheckpointTest, CleanupTruncatesTheWalWhilePassesRun) {
  testing::TempDir dir;
  JournalOptions o = Options(dir);
  auto db = JournalDb::Open(o, platform::SystemClock::Get());
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  uint64_t next = 0;
  for (int round = 0; round < 40; ++round) {
    // Enough to start passes (from 512 frames), then clean up at once,
    // while they run.
    for (int g = 0; g < 30; ++g) {
      std::vector<AppendItem> items(64);
      for (auto& item : items) item.message = Row(next++);
      (*db)->AppendGroup(&items);
    }
    for (int step = 0; step < 1000; ++step) {
      auto more = (*db)->CleanupStep();
      ASSERT_TRUE(more.ok()) << more.status().ToString();
      if (!*more) break;
    }
    auto wal = platform::FileSizeBytes(o.path + "-wal");
    ASSERT_TRUE(wal.ok());
    ASSERT_EQ(*wal, 0u) << "round " << round << ": the WAL was not truncated";
  }
  EXPECT_GT((*db)->checkpointer()->stats().passes, 0u);
}

// The WAL can start over without a commit to say so: the writer's own
// TRUNCATE checkpoint (cleanup) does. The next write must not wait for a
// pass to copy frames that are gone: it waited kMaxRestartWait (2 s) per
// write until the next commit (found by journal_power_loss_test).
TEST(JournalCheckpointTest, AWalTruncatedByTheWriterDoesNotStallTheNextWrite) {
  testing::TempDir dir;
  JournalOptions o = Options(dir);
  ASSERT_TRUE(JournalDb::Open(o, platform::SystemClock::Get()).ok());  // the schema
  Db writer;
  ASSERT_TRUE(writer.Open(o.path, SQLITE_OPEN_READWRITE, kJournalVfs).ok());
  ASSERT_TRUE(writer.Exec("CREATE TABLE big(x)").ok());
  auto cp = Checkpointer::Start(o, /*pass_pages=*/16, /*restart_pages=*/32);
  ASSERT_TRUE(cp.ok()) << cp.status().ToString();
  (*cp)->Attach(writer);
  // Paused, no pass copies the commit's frames (~100, past the restart
  // point) before the writer's own checkpoint copies them and empties the WAL.
  (*cp)->WhilePaused([&] {
    ASSERT_TRUE(writer
                    .Exec("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
                          "WHERE i < 100) INSERT INTO big SELECT randomblob(3000) FROM n")
                    .ok());
    ASSERT_TRUE(writer.Exec("PRAGMA wal_checkpoint(TRUNCATE)").ok());
  });
  auto start = std::chrono::steady_clock::now();
  (*cp)->BeforeWrite();
  auto waited_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::steady_clock::now() - start)
                       .count();
  EXPECT_LT(waited_ms, 500) << "the writer waited for a pass that could never catch up";
  EXPECT_EQ((*cp)->stats().failures, 0u);
  cp->reset();
}

TEST(JournalCheckpointTest, TheLockFileIsFreeAgainOnceTheJournalCloses) {
  testing::TempDir dir;
  JournalOptions o = Options(dir);
  {
    auto first = JournalDb::Open(o, platform::SystemClock::Get());
    ASSERT_TRUE(first.ok());
    auto second = JournalDb::Open(o, platform::SystemClock::Get());
    ASSERT_FALSE(second.ok());
    EXPECT_EQ(second.status().code(), Code::kUnavailable) << second.status().ToString();
    EXPECT_NE(second.status().message().find("locked by another process"), std::string::npos)
        << second.status().ToString();
  }
  auto later = JournalDb::Open(o, platform::SystemClock::Get());
  EXPECT_TRUE(later.ok()) << later.status().ToString();
}

TEST(JournalCheckpointTest, ALockHeldElsewhereIsReportedNotWaitedFor) {
  testing::TempDir dir;
  JournalOptions o = Options(dir);
  auto held = platform::FileLock::Acquire(o.path + ".lock");
  ASSERT_TRUE(held.ok());
  auto db = JournalDb::Open(o, platform::SystemClock::Get());
  ASSERT_FALSE(db.ok());
  EXPECT_EQ(db.status().code(), Code::kUnavailable);
  // Refused before SQLite touched anything: no journal file was created.
  EXPECT_FALSE(platform::FileExists(o.path));
}

}  // namespace
}  // namespace edgespool::store
