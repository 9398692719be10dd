// The journal's read path: scan cursors (FetchPending resumes after the rows
// it passed), MarkSent by runs of seqs, the version 1 -> 2 migration, and
// msg_id dedupe across a reopen for rows still in the file.
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "store/journal.h"
#include "store/schema.h"
#include "tests/unit/store/journal_test_util.h"

namespace edgespool::store {
namespace {

using testutil::Harness;
using testutil::Msg;
using testutil::Seqs;

FetchSpec Take(size_t n) {
  FetchSpec spec;
  spec.max_messages = n;
  return spec;
}

TEST(JournalReadsTest, CursorResumesAcrossEqualTimestamps) {
  Harness h;
  ASSERT_TRUE(h.Open().ok());
  // Equal ts everywhere: only seq orders the rows, so a cursor that
  // compared ts alone would skip or repeat rows at chunk edges.
  std::vector<Message> msgs;
  for (int i = 0; i < 50; ++i) msgs.push_back(Msg("t", 777, "p" + std::to_string(i)));
  for (int i = 0; i < 20; ++i) msgs.push_back(Msg("t", 777, "h", Priority::kHigh));
  auto out = h.AppendMany(std::move(msgs));
  for (bool by_class : {false, true}) {
    h.j().ReleaseAll();
    std::vector<uint64_t> got;
    for (int round = 0; round < 20; ++round) {
      FetchSpec spec = Take(7);
      if (by_class) spec.priority = Priority::kNormal;
      auto f = h.Fetch(spec);
      ASSERT_TRUE(f.ok());
      if (f->empty()) break;
      for (auto seq : Seqs(*f)) got.push_back(seq);
    }
    std::vector<uint64_t> want;
    if (!by_class) {
      for (int i = 50; i < 70; ++i) want.push_back(out[i]->seq);  // high first
    }
    for (int i = 0; i < 50; ++i) want.push_back(out[i]->seq);
    EXPECT_EQ(got, want) << (by_class ? "by class" : "all classes");
  }
}

TEST(JournalReadsTest, AppendBehindTheCursorIsFetchedNext) {
  for (bool by_class : {false, true}) {
    Harness h;
    ASSERT_TRUE(h.Open().ok());
    std::vector<Message> msgs;
    for (int i = 0; i < 10; ++i) msgs.push_back(Msg("t", 100 + i, "p"));
    auto out = h.AppendMany(std::move(msgs));
    FetchSpec spec = Take(5);
    if (by_class) spec.priority = Priority::kNormal;
    auto first = h.Fetch(spec);
    ASSERT_TRUE(first.ok());
    ASSERT_EQ(first->size(), 5u);
    // A producer's late message with an old timestamp sorts before the
    // cursor: the next fetch must still see it, first.
    auto late = h.Append(Msg("t", by_class ? 60 : 50, "late"));
    ASSERT_TRUE(late.ok());
    auto second = h.Fetch(spec);
    ASSERT_TRUE(second.ok());
    ASSERT_FALSE(second->empty());
    EXPECT_EQ(second->front().seq, late->seq);
    EXPECT_EQ((*second)[1].seq, out[5]->seq);
  }
}

TEST(JournalReadsTest, ReleasedAndRequeuedRowsComeBackBehindTheCursor) {
  Harness h;
  ASSERT_TRUE(h.Open().ok());
  std::vector<Message> msgs;
  for (int i = 0; i < 6; ++i) msgs.push_back(Msg("t", 100 + i, "p"));
  auto out = h.AppendMany(std::move(msgs));
  auto a = h.Fetch(Take(3));
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(h.MarkDead({{out[0]->seq, "rejected"}}).ok());
  ASSERT_TRUE(h.Release({out[1]->seq}, false).ok());
  auto b = h.Fetch(Take(2));
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(Seqs(*b), (std::vector<uint64_t>{out[1]->seq, out[3]->seq}));
  ASSERT_TRUE(h.Requeue({out[0]->seq}).ok());
  auto c = h.Fetch(Take(10));
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(Seqs(*c), (std::vector<uint64_t>{out[0]->seq, out[4]->seq, out[5]->seq}));
}

TEST(JournalReadsTest, MaxSeqSkipsDoNotMoveTheCursor) {
  Harness h;
  ASSERT_TRUE(h.Open().ok());
  // Timestamps fall while seqs rise: in upload order the newest seq is first.
  std::vector<Message> msgs;
  for (int i = 0; i < 6; ++i) msgs.push_back(Msg("t", 100 - i, "p"));
  auto out = h.AppendMany(std::move(msgs));
  FetchSpec backlog = Take(10);
  backlog.max_seq = out[3]->seq;  // only the first three seqs
  auto a = h.Fetch(backlog);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(Seqs(*a), (std::vector<uint64_t>{out[2]->seq, out[1]->seq, out[0]->seq}));
  auto b = h.Fetch(Take(10));
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(Seqs(*b), (std::vector<uint64_t>{out[5]->seq, out[4]->seq, out[3]->seq}));
}

TEST(JournalReadsTest, LiveScanBySeqWithTopicFilterKeepsUp) {
  Harness h;
  ASSERT_TRUE(h.Open().ok());
  auto old = h.Append(Msg("live/a", 1, "old"));
  ASSERT_TRUE(old.ok());
  std::vector<Message> msgs;
  for (int i = 0; i < 8; ++i) msgs.push_back(Msg(i % 2 ? "other" : "live/a", 500 - i, "p"));
  auto out = h.AppendMany(std::move(msgs));
  FetchSpec live = Take(2);
  live.min_seq = out[0]->seq;
  live.topic_filter = "live/#";
  auto a = h.Fetch(live);
  auto b = h.Fetch(live);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(Seqs(*a), (std::vector<uint64_t>{out[0]->seq, out[2]->seq}));
  EXPECT_EQ(Seqs(*b), (std::vector<uint64_t>{out[4]->seq, out[6]->seq}));
  auto more = h.Append(Msg("live/a", 1, "new"));
  ASSERT_TRUE(more.ok());
  auto c = h.Fetch(live);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(Seqs(*c), (std::vector<uint64_t>{more->seq}));
  // The other topic and the row before min_seq were never leased.
  auto rest = h.Fetch(Take(100));
  ASSERT_TRUE(rest.ok());
  EXPECT_EQ(rest->size(), 5u);
}

TEST(JournalReadsTest, ExpiredRowsPassedByTheCursorAreNeverSent) {
  platform::FakeClock clock(1'000'000);
  JournalOptions o;
  o.clock = &clock;
  Harness h(o);
  ASSERT_TRUE(h.Open().ok());
  Message soon = Msg("t", 1, "soon");
  soon.expires_at_ms = 1'000'500;
  auto s = h.Append(soon);
  auto keep = h.Append(Msg("t", 2, "keep"));
  ASSERT_TRUE(s.ok() && keep.ok());
  clock.AdvanceMs(1000);
  auto a = h.Fetch(Take(10));
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(Seqs(*a), (std::vector<uint64_t>{keep->seq}));
  ASSERT_TRUE(h.Cleanup().ok());
  auto q = h.Query(s->seq);
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->state, MessageState::kExpired);
  h.Sync();
  EXPECT_EQ(h.j().stats().pending_count, 1u);
  EXPECT_EQ(h.j().stats().expired_total, 1u);
}

TEST(JournalReadsTest, MarkSentTouchesExactlyTheSeqsGiven) {
  for (int64_t retention : {int64_t{0}, int64_t{60000}}) {
    JournalOptions o;
    o.sent_retention_ms = retention;
    Harness h(o);
    ASSERT_TRUE(h.Open().ok());
    std::vector<Message> msgs;
    for (int i = 0; i < 10; ++i) msgs.push_back(Msg("t", 100 + i, std::string(10 + i, 'x')));
    auto out = h.AppendMany(std::move(msgs));
    auto all = h.Fetch(Take(100));
    ASSERT_TRUE(all.ok());
    std::set<size_t> sent = {1, 2, 3, 6, 8, 9};
    std::vector<uint64_t> seqs;
    uint64_t sent_bytes = 0;
    for (size_t i : sent) {
      seqs.push_back(out[i]->seq);
      sent_bytes += 10 + i;
    }
    seqs.push_back(out[9]->seq);         // repeated: counted once
    seqs.push_back(out[9]->seq + 1000);  // unknown: ignored
    ASSERT_TRUE(h.MarkSent(seqs).ok());
    ASSERT_TRUE(h.MarkSent({out[2]->seq}).ok());  // already sent: no change
    h.Sync();
    EXPECT_EQ(h.j().stats().sent_total, sent.size());
    EXPECT_EQ(h.j().stats().pending_count, 10 - sent.size());
    uint64_t all_bytes = 0;
    for (size_t i = 0; i < 10; ++i) all_bytes += 10 + i;
    EXPECT_EQ(h.j().stats().pending_bytes, all_bytes - sent_bytes);
    for (size_t i = 0; i < 10; ++i) {
      auto q = h.Query(out[i]->seq);
      ASSERT_TRUE(q.ok());
      EXPECT_EQ(q->state, sent.count(i) ? MessageState::kSent : MessageState::kPending)
          << "row " << i << " retention " << retention;
    }
    h.j().ReleaseAll();
    auto left = h.Fetch(Take(100));
    ASSERT_TRUE(left.ok());
    EXPECT_EQ(Seqs(*left),
              (std::vector<uint64_t>{out[0]->seq, out[4]->seq, out[5]->seq, out[7]->seq}));
  }
}

// A journal written by schema version 1, rows in every state.
void WriteVersion1(const std::string& path) {
  testutil::WriteVersion1Journal(
      path,
      "INSERT INTO journal(ts, topic, priority, msg_id, payload, state, attempts, sent_at,"
      "  reason, stored_at) VALUES"
      "  (30, 'a', 1, 'p1', 'pending-normal', 0, 2, NULL, NULL, 1700000000000),"
      "  (20, 'a', 1, 'sent1', 'sent', 1, 0, 1700000000500, NULL, 1700000000000),"
      "  (10, 'a', 2, NULL, 'pending-low', 0, 0, NULL, NULL, 1700000000000),"
      "  (40, 'b', 0, 'dead1', 'dead', 2, 5, NULL, 'too large', 1700000000000),"
      "  (50, 'b', 0, NULL, 'pending-high', 0, 0, NULL, NULL, 1700000000000);"
      "DELETE FROM journal WHERE seq = 5;"  // seq 5 must never come back
      "INSERT INTO journal(ts, topic, priority, payload, stored_at) VALUES"
      "  (50, 'b', 0, 'pending-high', 1700000000000);");
}

TEST(JournalReadsTest, Version1JournalIsMigratedWithStatesIntact) {
  platform::FakeClock clock(1700000001000);
  JournalOptions o;
  o.clock = &clock;
  o.sent_retention_ms = 600000;
  Harness h(o);
  WriteVersion1(h.options().path);
  ASSERT_TRUE(h.Open().ok());
  h.Sync();
  EXPECT_EQ(h.j().stats().pending_count, 3u);
  EXPECT_EQ(h.j().stats().pending_bytes, std::string("pending-normal").size() +
                                             std::string("pending-low").size() +
                                             std::string("pending-high").size());
  EXPECT_EQ(h.j().stats().dead_count, 1u);
  EXPECT_EQ(h.j().stats().oldest_pending_ts_ms, 10);
  auto f = h.Fetch(Take(10));
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(Seqs(*f), (std::vector<uint64_t>{6, 1, 3}));
  EXPECT_EQ((*f)[1].attempts, 2u);
  auto sent = h.Query(2);
  ASSERT_TRUE(sent.ok());
  EXPECT_EQ(sent->state, MessageState::kSent);
  EXPECT_EQ(sent->sent_at_ms, 1700000000500);
  auto dead = h.ListDead();
  ASSERT_TRUE(dead.ok());
  ASSERT_EQ(dead->size(), 1u);
  EXPECT_EQ((*dead)[0].reason, "too large");
  // Ids of rows still in the file dedupe, whatever their state.
  for (const char* id : {"p1", "sent1", "dead1"}) {
    auto dup = h.Append(Msg("a", 1, "again", Priority::kNormal, id));
    ASSERT_TRUE(dup.ok());
    EXPECT_TRUE(dup->duplicate) << id;
  }
  auto next = h.Append(Msg("a", 1, "new"));
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(next->seq, 7u);
  // Retention of the migrated sent row still runs.
  clock.AdvanceMs(600000);
  ASSERT_TRUE(h.Cleanup().ok());
  auto gone = h.Query(2);
  ASSERT_TRUE(gone.ok());
  EXPECT_EQ(gone->sent_at_ms, 0);
}

TEST(JournalReadsTest, IdsOfRowsStillInTheFileDedupeAfterReopen) {
  platform::FakeClock clock;
  JournalOptions o;
  o.clock = &clock;
  o.sent_retention_ms = 600000;
  o.dedupe_window_ms = 600000;
  Harness h(o);
  ASSERT_TRUE(h.Open().ok());
  auto pending = h.Append(Msg("t", 1, "a", Priority::kNormal, "id-pending"));
  auto sent = h.Append(Msg("t", 2, "b", Priority::kNormal, "id-sent"));
  auto dead = h.Append(Msg("t", 3, "c", Priority::kNormal, "id-dead"));
  ASSERT_TRUE(pending.ok() && sent.ok() && dead.ok());
  ASSERT_TRUE(h.Fetch(Take(10)).ok());
  ASSERT_TRUE(h.MarkSent({sent->seq}).ok());
  ASSERT_TRUE(h.MarkDead({{dead->seq, "no"}}).ok());
  // A telemetry stream without ids after them: the reload must look past it.
  std::vector<Message> filler;
  for (int i = 0; i < 500; ++i) filler.push_back(Msg("t", 10 + i, "f"));
  (void)h.AppendMany(std::move(filler));
  clock.AdvanceMs(300000);
  h.Close();
  ASSERT_TRUE(h.Open().ok());
  struct Case {
    const char* id;
    uint64_t seq;
  } cases[] = {{"id-pending", pending->seq}, {"id-sent", sent->seq}, {"id-dead", dead->seq}};
  for (const auto& c : cases) {
    auto again = h.Append(Msg("t", 9, "retry", Priority::kNormal, c.id));
    ASSERT_TRUE(again.ok());
    EXPECT_TRUE(again->duplicate) << c.id;
    EXPECT_EQ(again->seq, c.seq) << c.id;
  }
  // Past the window (counted from when the row was stored) they are new.
  clock.AdvanceMs(300001);
  h.Close();
  ASSERT_TRUE(h.Open().ok());
  auto late = h.Append(Msg("t", 9, "retry", Priority::kNormal, "id-sent"));
  ASSERT_TRUE(late.ok());
  EXPECT_FALSE(late->duplicate);
}

}  // namespace
}  // namespace edgespool::store
