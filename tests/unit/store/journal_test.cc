// Journal behaviour on real SQLite files: order, leases, dedupe, expiry,
// retention, dead letters, query, commit listener, stats, reopen.
#include "store/journal.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <random>

#include "store/schema.h"
#include "tests/unit/store/journal_test_util.h"

namespace edgespool::store {
namespace {

using testutil::Harness;
using testutil::Msg;
using testutil::Seqs;

TEST(JournalTest, AppendAssignsIncreasingSeqsAndFetchReturnsThePayload) {
  Harness h;
  ASSERT_TRUE(h.Open().ok());
  auto a = h.Append(Msg("sensors/t1", 1000, "hello"));
  auto b = h.Append(Msg("sensors/t1", 1001, std::string("\0bin\xff", 5)));
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  ASSERT_TRUE(b.ok());
  EXPECT_LT(a->seq, b->seq);
  EXPECT_FALSE(a->duplicate);
  auto f = h.Fetch();
  ASSERT_TRUE(f.ok());
  ASSERT_EQ(f->size(), 2u);
  EXPECT_EQ((*f)[0].message.payload, "hello");
  EXPECT_EQ((*f)[1].message.payload, std::string("\0bin\xff", 5));
  EXPECT_EQ((*f)[0].message.topic, "sensors/t1");
  EXPECT_EQ((*f)[0].message.ts_ms, 1000);
}

TEST(JournalTest, UploadOrderIsPriorityThenTsThenArrival) {
  Harness h;
  ASSERT_TRUE(h.Open().ok());
  std::mt19937 rng(42);
  struct Expect {
    int priority;
    int64_t ts;
    uint64_t seq;
  };
  std::vector<Expect> expected;
  // 300 messages, shuffled ts with many ties, mixed priorities, appended in
  // several groups.
  for (int round = 0; round < 3; ++round) {
    std::vector<Message> batch;
    for (int i = 0; i < 100; ++i) {
      int p = static_cast<int>(rng() % 3);
      int64_t ts = 1000 + static_cast<int64_t>(rng() % 20);
      batch.push_back(Msg("t", ts, std::to_string(round * 100 + i), static_cast<Priority>(p)));
    }
    std::vector<Expect> meta;
    for (auto& m : batch) meta.push_back({static_cast<int>(m.priority), m.ts_ms, 0});
    auto out = h.AppendMany(std::move(batch));
    for (size_t i = 0; i < out.size(); ++i) {
      ASSERT_TRUE(out[i].ok());
      meta[i].seq = out[i]->seq;
      expected.push_back(meta[i]);
    }
  }
  std::sort(expected.begin(), expected.end(), [](const Expect& a, const Expect& b) {
    return std::tie(a.priority, a.ts, a.seq) < std::tie(b.priority, b.ts, b.seq);
  });
  std::vector<uint64_t> got;
  while (true) {
    FetchSpec spec;
    spec.max_messages = 37;  // several fetches, leases in between
    auto f = h.Fetch(spec);
    ASSERT_TRUE(f.ok());
    if (f->empty()) break;
    for (auto& m : *f) got.push_back(m.seq);
  }
  ASSERT_EQ(got.size(), expected.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i], expected[i].seq) << "at " << i;
}

TEST(JournalTest, LeasesSkipInFlightRowsUntilReleased) {
  Harness h;
  ASSERT_TRUE(h.Open().ok());
  std::vector<Message> msgs;
  for (int i = 0; i < 10; ++i) msgs.push_back(Msg("t", 100 + i, "p"));
  auto seqs = h.AppendMany(std::move(msgs));
  FetchSpec four;
  four.max_messages = 4;
  auto first = h.Fetch(four);
  auto second = h.Fetch(four);
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_EQ(Seqs(*first),
            (std::vector<uint64_t>{seqs[0]->seq, seqs[1]->seq, seqs[2]->seq, seqs[3]->seq}));
  EXPECT_EQ(second->front().seq, seqs[4]->seq);
  h.Sync();
  EXPECT_EQ(h.j().stats().inflight_count, 8u);
  // Release two of the first lease with an attempt counted: they come back first.
  ASSERT_TRUE(h.Release({seqs[0]->seq, seqs[1]->seq}, true).ok());
  auto third = h.Fetch(four);
  ASSERT_TRUE(third.ok());
  EXPECT_EQ(Seqs(*third),
            (std::vector<uint64_t>{seqs[0]->seq, seqs[1]->seq, seqs[8]->seq, seqs[9]->seq}));
  EXPECT_EQ((*third)[0].attempts, 1u);
  EXPECT_EQ((*third)[2].attempts, 0u);
  h.j().ReleaseAll();
  auto all = h.Fetch();
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 10u);
}

TEST(JournalTest, FetchHonoursTopicFilterAndByteBudget) {
  Harness h;
  ASSERT_TRUE(h.Open().ok());
  (void)h.AppendMany({Msg("a/x", 1, std::string(100, 'a')), Msg("b/x", 2, std::string(100, 'b')),
                      Msg("a/y", 3, std::string(100, 'c')), Msg("a/z", 4, std::string(100, 'd'))});
  FetchSpec spec;
  spec.topic_filter = "a/+";
  spec.max_bytes = 250;  // two payloads fit, the third would not
  auto f = h.Fetch(spec);
  ASSERT_TRUE(f.ok());
  ASSERT_EQ(f->size(), 2u);
  EXPECT_EQ((*f)[0].message.topic, "a/x");
  EXPECT_EQ((*f)[1].message.topic, "a/y");
  // A single message larger than the budget still comes out alone.
  spec.max_bytes = 10;
  f = h.Fetch(spec);
  ASSERT_TRUE(f.ok());
  ASSERT_EQ(f->size(), 1u);
  EXPECT_EQ((*f)[0].message.topic, "a/z");
}

TEST(JournalTest, HeadersExpiryAndIdRoundTrip) {
  Harness h;
  ASSERT_TRUE(h.Open().ok());
  Message m = Msg("t", 5, "x", Priority::kHigh, "id-1");
  m.headers = {{"k", "v"}, {"empty", ""}, {"bin", std::string("\0\1", 2)}};
  m.expires_at_ms = int64_t{1} << 50;
  ASSERT_TRUE(h.Append(m).ok());
  auto f = h.Fetch();
  ASSERT_TRUE(f.ok());
  ASSERT_EQ(f->size(), 1u);
  const Message& got = (*f)[0].message;
  EXPECT_EQ(got.headers, m.headers);
  EXPECT_EQ(got.expires_at_ms, m.expires_at_ms);
  EXPECT_EQ(got.msg_id, "id-1");
  EXPECT_EQ(got.priority, Priority::kHigh);
}

TEST(JournalTest, DuplicateIdReturnsOriginalSeqAndStoresNothing) {
  platform::FakeClock clock;
  JournalOptions o;
  o.clock = &clock;
  o.dedupe_window_ms = 60000;
  Harness h(o);
  ASSERT_TRUE(h.Open().ok());
  auto first = h.Append(Msg("t", 1, "a", Priority::kNormal, "dup"));
  auto again = h.Append(Msg("t", 2, "b", Priority::kNormal, "dup"));
  ASSERT_TRUE(first.ok() && again.ok());
  EXPECT_FALSE(first->duplicate);
  EXPECT_TRUE(again->duplicate);
  EXPECT_EQ(again->seq, first->seq);
  // Inside one group too.
  auto group = h.AppendMany(
      {Msg("t", 3, "c", Priority::kNormal, "g"), Msg("t", 4, "d", Priority::kNormal, "g")});
  ASSERT_TRUE(group[0].ok() && group[1].ok());
  EXPECT_TRUE(group[1]->duplicate);
  EXPECT_EQ(group[1]->seq, group[0]->seq);
  h.Sync();
  EXPECT_EQ(h.j().stats().pending_count, 2u);
  EXPECT_EQ(h.j().stats().duplicate_total, 2u);
  // Still a duplicate after a restart (rebuilt from the rows)...
  h.Close();
  ASSERT_TRUE(h.Open().ok());
  auto after = h.Append(Msg("t", 5, "e", Priority::kNormal, "dup"));
  ASSERT_TRUE(after.ok());
  EXPECT_TRUE(after->duplicate);
  EXPECT_EQ(after->seq, first->seq);
  // ...but not once the window has passed.
  clock.AdvanceMs(60001);
  auto fresh = h.Append(Msg("t", 6, "f", Priority::kNormal, "dup"));
  ASSERT_TRUE(fresh.ok());
  EXPECT_FALSE(fresh->duplicate);
  EXPECT_GT(fresh->seq, first->seq);
}

TEST(JournalTest, DedupeRemembersAtMostMaxIds) {
  JournalOptions o;
  o.dedupe_max_ids = 3;
  Harness h(o);
  ASSERT_TRUE(h.Open().ok());
  for (int i = 0; i < 5; ++i)
    ASSERT_TRUE(h.Append(Msg("t", i, "x", Priority::kNormal, "id" + std::to_string(i))).ok());
  auto old = h.Append(Msg("t", 9, "x", Priority::kNormal, "id0"));
  auto recent = h.Append(Msg("t", 9, "x", Priority::kNormal, "id4"));
  ASSERT_TRUE(old.ok() && recent.ok());
  EXPECT_FALSE(old->duplicate);  // forgotten: bounded memory wins
  EXPECT_TRUE(recent->duplicate);
}

TEST(JournalTest, ExpiredRowsAreSkippedThenDeletedAndReportedExpired) {
  platform::FakeClock clock(1'000'000);
  JournalOptions o;
  o.clock = &clock;
  Harness h(o);
  ASSERT_TRUE(h.Open().ok());
  Message short_lived = Msg("t", 1, "x", Priority::kNormal, "gone");
  short_lived.expires_at_ms = 1'000'500;
  auto a = h.Append(short_lived);
  auto b = h.Append(Msg("t", 2, "y"));
  ASSERT_TRUE(a.ok() && b.ok());
  clock.AdvanceMs(1000);
  auto f = h.Fetch();
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(Seqs(*f), std::vector<uint64_t>{b->seq});
  ASSERT_TRUE(h.Cleanup().ok());
  EXPECT_EQ(h.j().stats().expired_total, 1u);
  EXPECT_EQ(h.j().stats().pending_count, 1u);
  auto q = h.Query(a->seq);
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->state, MessageState::kExpired);
  auto qi = h.QueryById("gone");
  ASSERT_TRUE(qi.ok());
  EXPECT_EQ(qi->state, MessageState::kExpired);
  EXPECT_EQ(qi->seq, a->seq);
  auto unknown = h.Query(999999);
  ASSERT_TRUE(unknown.ok());
  EXPECT_EQ(unknown->state, MessageState::kUnknown);
}

TEST(JournalTest, SentRowsAreKeptForRetentionThenDeleted) {
  platform::FakeClock clock(5'000'000);
  JournalOptions o;
  o.clock = &clock;
  o.sent_retention_ms = 10'000;
  Harness h(o);
  ASSERT_TRUE(h.Open().ok());
  auto a = h.Append(Msg("t", 1, "payload", Priority::kNormal, "s1"));
  ASSERT_TRUE(a.ok());
  auto f = h.Fetch();
  ASSERT_TRUE(f.ok());
  ASSERT_TRUE(h.MarkSent({a->seq}).ok());
  EXPECT_EQ(h.j().stats().sent_total, 1u);
  EXPECT_EQ(h.j().stats().pending_count, 0u);
  EXPECT_EQ(h.j().stats().pending_bytes, 0u);
  EXPECT_EQ(h.j().stats().inflight_count, 0u);
  auto q = h.Query(a->seq);
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->state, MessageState::kSent);
  EXPECT_EQ(q->sent_at_ms, 5'000'000);
  clock.AdvanceMs(5000);
  ASSERT_TRUE(h.Cleanup().ok());
  q = h.QueryById("s1");
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->state, MessageState::kSent);
  EXPECT_EQ(q->sent_at_ms, 5'000'000);  // still the row itself
  clock.AdvanceMs(5001);
  ASSERT_TRUE(h.Cleanup().ok());
  q = h.Query(a->seq);
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->state, MessageState::kSent);  // remembered after deletion
  EXPECT_EQ(q->sent_at_ms, 0);               // ...but the row is gone
  EXPECT_EQ(h.j().stats().expired_total, 0u);
}

TEST(JournalTest, DeadLettersAreListedAndRequeued) {
  Harness h;
  ASSERT_TRUE(h.Open().ok());
  auto out = h.AppendMany({Msg("t", 1, "a"), Msg("t", 2, "bb"), Msg("t", 3, "ccc")});
  ASSERT_TRUE(h.Fetch().ok());
  ASSERT_TRUE(
      h.MarkDead({{out[0]->seq, "rejected by broker: 0x87"}, {out[2]->seq, "too big"}}).ok());
  EXPECT_EQ(h.j().stats().dead_count, 2u);
  EXPECT_EQ(h.j().stats().dead_total, 2u);
  EXPECT_EQ(h.j().stats().pending_count, 1u);
  EXPECT_EQ(h.j().stats().pending_bytes, 2u);
  auto dead = h.ListDead();
  ASSERT_TRUE(dead.ok());
  ASSERT_EQ(dead->size(), 2u);
  EXPECT_EQ((*dead)[0].stored.seq, out[0]->seq);
  EXPECT_EQ((*dead)[0].reason, "rejected by broker: 0x87");
  EXPECT_EQ((*dead)[1].stored.message.payload, "ccc");
  auto q = h.Query(out[2]->seq);
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->state, MessageState::kDead);
  EXPECT_EQ(q->reason, "too big");
  // Dead letters never block the queue.
  h.j().ReleaseAll();
  auto f = h.Fetch();
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(Seqs(*f), std::vector<uint64_t>{out[1]->seq});
  ASSERT_TRUE(h.Requeue({out[0]->seq}).ok());
  EXPECT_EQ(h.j().stats().dead_count, 1u);
  EXPECT_EQ(h.j().stats().pending_count, 2u);
  f = h.Fetch();
  ASSERT_TRUE(f.ok());
  ASSERT_EQ(Seqs(*f), std::vector<uint64_t>{out[0]->seq});
  EXPECT_EQ((*f)[0].attempts, 0u);
}

TEST(JournalTest, CommitListenerGetsEachCommittedGroupInSeqOrder) {
  Harness h;
  ASSERT_TRUE(h.Open().ok());
  std::vector<uint64_t> seen;
  std::vector<std::string> payloads;
  h.j().SetCommitListener([&](std::vector<StoredMessage>& group) {
    EXPECT_TRUE(h.loop().InLoopThread());
    for (const auto& m : group) {
      seen.push_back(m.seq);
      payloads.push_back(m.message.payload);
    }
  });
  std::vector<Message> msgs;
  for (int i = 0; i < 50; ++i) msgs.push_back(Msg("t", i, "p" + std::to_string(i)));
  msgs.push_back(Msg("t", 99, "dup", Priority::kNormal, "x"));
  msgs.push_back(Msg("t", 99, "dup", Priority::kNormal, "x"));
  auto out = h.AppendMany(std::move(msgs));
  ASSERT_EQ(seen.size(), 51u);  // the duplicate is not a new message
  for (size_t i = 0; i < 51; ++i) {
    EXPECT_EQ(seen[i], out[i]->seq);
    if (i > 0) {
      EXPECT_LT(seen[i - 1], seen[i]);
    }
  }
  EXPECT_EQ(payloads[7], "p7");
}

TEST(JournalTest, StatsTrackCountsBytesOldestAndGroups) {
  Harness h;
  ASSERT_TRUE(h.Open().ok());
  EXPECT_EQ(h.j().stats().pending_count, 0u);
  EXPECT_EQ(h.j().stats().oldest_pending_ts_ms, 0);
  EXPECT_GT(h.j().stats().file_bytes, 0u);
  EXPECT_EQ(h.j().stats().max_bytes, h.options().max_bytes);
  std::vector<Message> msgs;
  for (int i = 0; i < 500; ++i) msgs.push_back(Msg("t", 5000 - i, std::string(10, 'x')));
  auto out = h.AppendMany(std::move(msgs));
  const JournalStats& s = h.j().stats();
  EXPECT_EQ(s.pending_count, 500u);
  EXPECT_EQ(s.pending_bytes, 5000u);
  EXPECT_EQ(s.appended_total, 500u);
  EXPECT_EQ(s.oldest_pending_ts_ms, 4501);
  EXPECT_GE(s.commit_groups_total, 1u);
  EXPECT_LT(s.commit_groups_total, 500u);  // grouped, not one txn each
  EXPECT_GT(s.fill_ratio, 0.0);
  EXPECT_FALSE(h.j().above_high_water());
  // Remove the oldest: the oldest-pending figure moves on.
  FetchSpec one;
  one.max_messages = 1;
  auto f = h.Fetch(one);
  ASSERT_TRUE(f.ok());
  ASSERT_TRUE(h.MarkSent({f->front().seq}).ok());
  EXPECT_EQ(h.j().stats().oldest_pending_ts_ms, 4502);
  EXPECT_EQ(h.j().stats().pending_count, 499u);
  // Counters survive a restart (recounted once at open).
  h.Close();
  ASSERT_TRUE(h.Open().ok());
  EXPECT_EQ(h.j().stats().pending_count, 499u);
  EXPECT_EQ(h.j().stats().pending_bytes, 4990u);
  EXPECT_EQ(h.j().stats().oldest_pending_ts_ms, 4502);
}

TEST(JournalTest, SeqIsNeverReusedAfterDeletionAndRestart) {
  Harness h;
  ASSERT_TRUE(h.Open().ok());
  auto a = h.Append(Msg("t", 1, "x"));
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(h.Fetch().ok());
  ASSERT_TRUE(h.MarkSent({a->seq}).ok());  // retention 0: deleted now
  h.Close();
  ASSERT_TRUE(h.Open().ok());
  auto b = h.Append(Msg("t", 2, "y"));
  ASSERT_TRUE(b.ok());
  EXPECT_GT(b->seq, a->seq);
}

TEST(JournalTest, FileIsWalWithIncrementalVacuumAndSchemaVersion) {
  Harness h;
  ASSERT_TRUE(h.Open().ok());
  ASSERT_TRUE(h.Append(Msg("t", 1, "x")).ok());
  h.Close();
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(h.options().path.c_str(), &db), SQLITE_OK);
  auto one = [&](const char* sql) {
    sqlite3_stmt* st = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db, sql, -1, &st, nullptr), SQLITE_OK);
    EXPECT_EQ(sqlite3_step(st), SQLITE_ROW);
    std::string v = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    return v;
  };
  EXPECT_EQ(one("PRAGMA journal_mode"), "wal");
  EXPECT_EQ(one("PRAGMA auto_vacuum"), "2");  // incremental
  EXPECT_EQ(one("PRAGMA user_version"), std::to_string(kSchemaVersion));
  EXPECT_EQ(one("PRAGMA integrity_check"), "ok");
  sqlite3_close(db);
}

TEST(JournalTest, NewerSchemaIsRefusedNotMovedAside) {
  Harness h;
  ASSERT_TRUE(h.Open().ok());
  h.Close();
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(h.options().path.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "PRAGMA user_version = 99", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  Status s = h.Open();
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("schema version 99"), std::string::npos) << s.ToString();
  EXPECT_TRUE(testing::ReadFile(h.options().path).size() > 0);
}

TEST(JournalTest, ClosingRunsEveryCallbackExactlyOnce) {
  Harness h;
  ASSERT_TRUE(h.Open().ok());
  int ok = 0, cancelled = 0, other = 0;
  for (int i = 0; i < 5000; ++i) {
    h.j().Append(Msg("t", i, "x"), [&](Result<AppendOutcome> r) {
      if (r.ok()) {
        ++ok;
      } else if (r.status().code() == Code::kCancelled) {
        ++cancelled;
      } else {
        ++other;
      }
    });
  }
  int fetch_calls = 0, cleanup_calls = 0;
  h.j().FetchPending({}, [&](Result<std::vector<StoredMessage>>) { ++fetch_calls; });
  h.j().Cleanup([&](Status) { ++cleanup_calls; });
  h.Close();
  EXPECT_EQ(ok + cancelled, 5000);
  EXPECT_EQ(other, 0);
  EXPECT_EQ(fetch_calls, 1);
  EXPECT_EQ(cleanup_calls, 1);
  // What was acked is there.
  ASSERT_TRUE(h.Open().ok());
  EXPECT_EQ(h.j().stats().pending_count, static_cast<uint64_t>(ok));
}

TEST(JournalTest, NormalDurabilityWorksToo) {
  JournalOptions o;
  o.durability = Durability::kNormal;
  Harness h(o);
  ASSERT_TRUE(h.Open().ok());
  auto out = h.AppendMany({Msg("t", 1, "a"), Msg("t", 2, "b")});
  ASSERT_TRUE(out[1].ok());
  h.Close();
  ASSERT_TRUE(h.Open().ok());
  auto f = h.Fetch();
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->size(), 2u);
}

}  // namespace
}  // namespace edgespool::store

namespace edgespool::store {
namespace {

using testutil::Harness;
using testutil::Msg;

TEST(JournalTimingTest, PeriodicCleanupRunsWithoutBeingAsked) {
  JournalOptions o;
  o.cleanup_interval_ms = 30;
  Harness h(o);
  ASSERT_TRUE(h.Open().ok());
  Message m = Msg("t", 1, "short-lived");
  m.expires_at_ms = 1;  // long past
  auto a = h.Append(m);
  ASSERT_TRUE(a.ok());
  // Keep the journal busy with appends meanwhile: cleanup must not starve.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (h.j().stats().expired_total == 0 && std::chrono::steady_clock::now() < deadline) {
    ASSERT_TRUE(h.Append(Msg("t", 2, "busy")).ok());
  }
  EXPECT_EQ(h.j().stats().expired_total, 1u);
  auto q = h.Query(a->seq);
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->state, MessageState::kExpired);
}

TEST(JournalTimingTest, GroupDelayGathersLargerGroups) {
  JournalOptions o;
  o.group_max_delay_us = 20000;
  o.group_max_messages = 64;
  o.durability = Durability::kNormal;
  Harness h(o);
  ASSERT_TRUE(h.Open().ok());
  // Appends trickle in from a timer, a few per loop turn: the delay lets a
  // group wait for company instead of committing each alone.
  platform::TimerHandle timer(h.loop());
  int submitted = 0, acked = 0;
  bool done = false;
  timer.Start(1, 1, [&] {
    for (int i = 0; i < 4 && submitted < 200; ++i, ++submitted) {
      h.j().Append(Msg("t", submitted, "x"), [&](Result<AppendOutcome> r) {
        EXPECT_TRUE(r.ok());
        if (++acked == 200) {
          done = true;
          timer.Stop();
        }
      });
    }
  });
  testutil::RunUntil(h.loop(), done);
  EXPECT_EQ(acked, 200);
  EXPECT_LT(h.j().stats().commit_groups_total, 50u);  // groups of 4+ on average
}

}  // namespace
}  // namespace edgespool::store
