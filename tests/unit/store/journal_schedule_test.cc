// Scheduled delivery in the journal: rows with a deliver_at in the future
// are stored at once, never fetched before they are due, join the upload
// order by their original timestamp when due, survive a reopen, and a
// version-4 journal migrates (schema.cc, "SCHEDULED DELIVERY").
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <string>
#include <vector>

#include "platform/clock.h"
#include "store/journal.h"
#include "store/schema.h"
#include "tests/unit/store/journal_test_util.h"

namespace edgespool::store {
namespace {

using testutil::Harness;
using testutil::Msg;
using testutil::Seqs;

constexpr int64_t kNow = 1700000000000;

Message At(std::string topic, int64_t ts, int64_t deliver_at) {
  Message m = Msg(std::move(topic), ts, "p");
  m.deliver_at_ms = deliver_at;
  return m;
}

JournalOptions WithClock(const platform::Clock* clock) {
  JournalOptions o;
  o.clock = clock;
  return o;
}

// Runs the loop until the due listener fired (the journal itself keeps the
// loop alive only while a callback is outstanding: a timer stands in for the
// agent's other handles, and bounds the wait).
void WaitForDue(Harness& h, const bool& due) {
  bool timed_out = false;
  platform::TimerHandle guard(h.loop());
  guard.Start(10000, 0, [&] { timed_out = true; });
  while (!due && !timed_out) h.loop().RunOnce();
  EXPECT_TRUE(due) << "no due notification within 10 s";
}

// Advances the fake clock and waits for the due listener: a query wakes the
// store thread (it sleeps on the real clock), which then promotes.
void AdvanceUntilDue(Harness& h, platform::FakeClock& clock, int64_t ms) {
  bool due = false;
  h.j().SetDueListener([&] { due = true; });
  clock.AdvanceMs(ms);
  ASSERT_TRUE(h.Query(1).ok());
  WaitForDue(h, due);
  h.j().SetDueListener(nullptr);
}

TEST(JournalScheduleTest, StoredAtOnceButNotFetchedBeforeItIsDue) {
  platform::FakeClock clock(kNow);
  Harness h(WithClock(&clock));
  ASSERT_TRUE(h.Open().ok());
  auto a = h.Append(At("up/later", 100, kNow + 5000));
  ASSERT_TRUE(a.ok());
  auto b = h.Append(Msg("up/now", 200, "p"));
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(h.j().stats().scheduled_count, 1u);
  EXPECT_EQ(h.j().stats().pending_count, 1u);
  auto rows = h.Fetch(testutil::EveryPending());
  ASSERT_TRUE(rows.ok());
  EXPECT_EQ(Seqs(*rows), (std::vector<uint64_t>{b->seq}));  // not blocked behind it
  auto q = h.Query(a->seq);
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->state, MessageState::kScheduled);
  EXPECT_STREQ(MessageStateName(q->state), "scheduled");
  EXPECT_EQ(q->deliver_at_ms, kNow + 5000);
  ASSERT_TRUE(h.MarkSent({b->seq}).ok());

  clock.AdvanceMs(4000);  // not yet
  ASSERT_TRUE(h.Query(a->seq).ok());
  rows = h.Fetch(testutil::EveryPending());
  ASSERT_TRUE(rows.ok());
  EXPECT_TRUE(rows->empty());

  AdvanceUntilDue(h, clock, 1000);
  rows = h.Fetch(testutil::EveryPending());
  ASSERT_TRUE(rows.ok());
  EXPECT_EQ(Seqs(*rows), (std::vector<uint64_t>{a->seq}));
  EXPECT_EQ(h.j().stats().scheduled_count, 0u);
  EXPECT_EQ(h.j().stats().pending_count, 1u);
  q = h.Query(a->seq);
  EXPECT_EQ(q->state, MessageState::kPending);
}

TEST(JournalScheduleTest, DeliverAtInThePastGoesAtOnce) {
  platform::FakeClock clock(kNow);
  Harness h(WithClock(&clock));
  ASSERT_TRUE(h.Open().ok());
  auto a = h.Append(At("up/a", 100, kNow - 1));
  ASSERT_TRUE(a.ok());
  auto b = h.Append(At("up/b", 100, kNow));
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(h.j().stats().scheduled_count, 0u);
  auto rows = h.Fetch(testutil::EveryPending());
  ASSERT_TRUE(rows.ok());
  EXPECT_EQ(Seqs(*rows), (std::vector<uint64_t>{a->seq, b->seq}));
}

TEST(JournalScheduleTest, DueRowsGoInTheirOriginalTimestampOrder) {
  platform::FakeClock clock(kNow);
  Harness h(WithClock(&clock));
  ASSERT_TRUE(h.Open().ok());
  // Arrival order 300, 100, 200; due at different times, all due together.
  auto out = h.AppendMany({At("up/x", 300, kNow + 1000), At("up/x", 100, kNow + 3000),
                           At("up/x", 200, kNow + 2000), Msg("up/x", 250, "p")});
  for (auto& r : out) ASSERT_TRUE(r.ok());
  auto rows = h.Fetch(testutil::EveryPending());  // the scan cursor passes ts 250
  ASSERT_TRUE(rows.ok());
  EXPECT_EQ(Seqs(*rows), (std::vector<uint64_t>{out[3]->seq}));
  AdvanceUntilDue(h, clock, 3000);
  rows = h.Fetch(testutil::EveryPending());
  ASSERT_TRUE(rows.ok());
  EXPECT_EQ(Seqs(*rows), (std::vector<uint64_t>{out[1]->seq, out[2]->seq, out[0]->seq}));
}

TEST(JournalScheduleTest, SurvivesAReopenAndIsPromotedAfterIt) {
  platform::FakeClock clock(kNow);
  Harness h(WithClock(&clock));
  ASSERT_TRUE(h.Open().ok());
  auto a = h.Append(At("up/a", 100, kNow + 60000));
  ASSERT_TRUE(a.ok());
  auto b = h.Append(At("up/b", 100, kNow + 120000));
  ASSERT_TRUE(b.ok());
  h.Close();
  ASSERT_TRUE(h.Open().ok());
  EXPECT_EQ(h.j().stats().scheduled_count, 2u);
  EXPECT_EQ(h.j().stats().pending_count, 0u);
  auto q = h.Query(b->seq);
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->state, MessageState::kScheduled);
  EXPECT_EQ(q->deliver_at_ms, kNow + 120000);
  AdvanceUntilDue(h, clock, 60000);
  auto rows = h.Fetch(testutil::EveryPending());
  ASSERT_TRUE(rows.ok());
  EXPECT_EQ(Seqs(*rows), (std::vector<uint64_t>{a->seq}));
  EXPECT_EQ(h.j().stats().scheduled_count, 1u);
}

TEST(JournalScheduleTest, AScheduledRowCanExpireBeforeItIsDue) {
  platform::FakeClock clock(kNow);
  Harness h(WithClock(&clock));
  ASSERT_TRUE(h.Open().ok());
  Message m = At("up/a", 100, kNow + 60000);
  m.expires_at_ms = kNow + 1000;
  auto a = h.Append(m);
  ASSERT_TRUE(a.ok());
  clock.AdvanceMs(2000);
  ASSERT_TRUE(h.Cleanup().ok());
  auto q = h.Query(a->seq);
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->state, MessageState::kExpired);
  EXPECT_EQ(h.j().stats().scheduled_count, 0u);
  EXPECT_EQ(h.j().stats().expired_total, 1u);
}

// On the real clock: the store thread's timed sleep promotes the row with no
// other activity (no poll, no nudge).
TEST(JournalScheduleTest, TheStoreThreadWakesWhenTheRowIsDue) {
  Harness h;
  ASSERT_TRUE(h.Open().ok());
  int64_t now = platform::SystemClock::Get().WallMs();
  bool due = false;
  h.j().SetDueListener([&] { due = true; });
  auto a = h.Append(At("up/a", 100, now + 300));
  ASSERT_TRUE(a.ok());
  WaitForDue(h, due);
  EXPECT_GE(platform::SystemClock::Get().WallMs(), now + 300);
  auto rows = h.Fetch(testutil::EveryPending());
  ASSERT_TRUE(rows.ok());
  EXPECT_EQ(Seqs(*rows), (std::vector<uint64_t>{a->seq}));
}

TEST(JournalScheduleTest, Version4JournalIsMigratedWithItsRows) {
  platform::FakeClock clock(kNow);
  Harness h(WithClock(&clock));
  testutil::WriteVersion4Journal(
      h.options().path,
      "INSERT INTO journal(ts, topic, priority, payload, stored_at) VALUES"
      "  (10, 'up/a', 1, 'one', 1), (20, 'up/b', 1, 'two', 1), (30, 'up/c', 1, 'three', 1);"
      "INSERT INTO pending SELECT seq, priority, ts, length(payload) FROM journal"
      "  WHERE seq IN (1, 3);"
      "INSERT INTO sent VALUES (2, 5);");
  ASSERT_TRUE(h.Open().ok());
  EXPECT_EQ(h.j().stats().corrupt_files_moved, 0u);
  EXPECT_EQ(h.j().stats().pending_count, 2u);
  EXPECT_EQ(h.j().stats().scheduled_count, 0u);
  auto q = h.Query(2);
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->state, MessageState::kSent);
  auto s = h.Append(At("up/d", 40, kNow + 1000));
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->seq, 4u);
  auto rows = h.Fetch(testutil::EveryPending());
  ASSERT_TRUE(rows.ok());
  EXPECT_EQ(Seqs(*rows), (std::vector<uint64_t>{1, 3}));
  AdvanceUntilDue(h, clock, 1000);
  rows = h.Fetch(testutil::EveryPending());
  ASSERT_TRUE(rows.ok());
  EXPECT_EQ(Seqs(*rows), (std::vector<uint64_t>{4}));
  h.Close();

  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(h.options().path.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, nullptr);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int64(st, 0), 5);
  sqlite3_finalize(st);
  sqlite3_prepare_v2(db, "SELECT count(*) FROM sqlite_master WHERE name = 'scheduled_due'", -1, &st,
                     nullptr);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int64(st, 0), 1);
  sqlite3_finalize(st);
  sqlite3_close(db);
}

}  // namespace
}  // namespace edgespool::store
