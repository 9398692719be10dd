// The size cap: reject and drop-oldest, space reuse, and cleanup/checkpoint
// still working while the journal sits at its cap.
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include "store/journal.h"
#include "tests/unit/store/journal_test_util.h"

namespace edgespool::store {
namespace {

using testutil::EveryPending;
using testutil::Harness;
using testutil::Msg;
using testutil::Seqs;

constexpr uint64_t kCap = 1 << 20;  // 1 MiB
constexpr size_t kPayload = 1000;

uint64_t FileSize(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
}

JournalOptions Capped(WhenFull when_full) {
  JournalOptions o;
  o.max_bytes = kCap;
  o.when_full = when_full;
  return o;
}

// n rows of kPayload bytes of `fill`, timestamps first_ts, first_ts + 1, ...
std::vector<Message> Rows(const char* topic, int64_t first_ts, int n, char fill,
                          Priority priority = Priority::kNormal) {
  std::vector<Message> rows;
  for (int i = 0; i < n; ++i) {
    rows.push_back(Msg(topic, first_ts + i, std::string(kPayload, fill), priority));
  }
  return rows;
}

// Appends groups of `per_group` until one fails; returns messages stored.
size_t FillUntilFull(Harness& h, Status* failure, size_t per_group = 20) {
  size_t stored = 0;
  for (int round = 0; round < 1000; ++round) {
    auto out =
        h.AppendMany(Rows("t", static_cast<int64_t>(stored), static_cast<int>(per_group), 'x'));
    for (auto& r : out) {
      if (r.ok()) {
        ++stored;
      } else {
        *failure = r.status();
        return stored;
      }
    }
    EXPECT_LE(FileSize(h.options().path), kCap);
  }
  return stored;
}

TEST(JournalCapTest, RejectAtCapWithJournalFullThenReuseSpaceAfterSent) {
  Harness h(Capped(WhenFull::kReject));
  ASSERT_TRUE(h.Open().ok());
  Status full;
  size_t stored = FillUntilFull(h, &full);
  EXPECT_GT(stored, 600u);  // ~1 MiB / ~1.1 KB rows
  EXPECT_EQ(full.code(), Code::kResourceExhausted);
  EXPECT_EQ(full.message().rfind("journal_full", 0), 0u) << full.ToString();
  const JournalStats& s = h.j().stats();
  EXPECT_GT(s.rejected_full_total, 0u);
  EXPECT_EQ(s.pending_count, stored);
  EXPECT_LE(s.file_bytes, kCap);
  EXPECT_GT(s.fill_ratio, 0.9);
  EXPECT_TRUE(h.j().above_high_water());
  EXPECT_LE(FileSize(h.options().path), kCap);

  // At the cap: cleanup and a checkpoint still work (nothing to delete, but
  // the vacuum/checkpoint path runs), and the WAL can be truncated.
  EXPECT_TRUE(h.Cleanup().ok());
  EXPECT_EQ(FileSize(h.options().path + "-wal"), 0u);
  EXPECT_LE(FileSize(h.options().path), kCap);

  // Deliver half: the space is reused.
  FetchSpec half;
  half.max_messages = stored / 2;
  auto f = h.Fetch(half);
  ASSERT_TRUE(f.ok());
  ASSERT_TRUE(h.MarkSent(Seqs(*f)).ok());  // retention 0: deleted right away
  EXPECT_LT(h.j().stats().fill_ratio, 0.6);
  EXPECT_FALSE(h.j().above_high_water());
  Status again;
  size_t more = FillUntilFull(h, &again);
  EXPECT_GT(more, stored / 2 - 50);
  EXPECT_EQ(again.code(), Code::kResourceExhausted);
  EXPECT_LE(FileSize(h.options().path), kCap);

  // Cleanup with incremental vacuum gives pages back to the filesystem.
  f = h.Fetch();
  ASSERT_TRUE(f.ok());
  ASSERT_TRUE(h.MarkSent(Seqs(*f)).ok());
  for (int i = 0; i < 20 && h.j().stats().file_bytes > kCap / 4; ++i) ASSERT_TRUE(h.Cleanup().ok());
  EXPECT_LT(h.j().stats().file_bytes, kCap / 4);
  h.Close();
  EXPECT_LT(FileSize(h.options().path), kCap / 4);
}

// A refused group stored nothing, so its ids must not answer "duplicate"
// when the producer retries them: that would acknowledge a message the
// journal does not hold.
TEST(JournalCapTest, IdsOfARefusedGroupAreStoredWhenRetried) {
  Harness h(Capped(WhenFull::kReject));
  ASSERT_TRUE(h.Open().ok());
  Status full;
  FillUntilFull(h, &full);
  ASSERT_EQ(full.code(), Code::kResourceExhausted);
  // One group: a fresh id twice (group mates) and a big row that cannot fit.
  auto refused = h.AppendMany({Msg("t", 1, "a", Priority::kNormal, "retry-me"),
                               Msg("t", 2, "a", Priority::kNormal, "retry-me"),
                               Msg("t", 3, std::string(64 * kPayload, 'y'))});
  for (auto& r : refused) EXPECT_EQ(r.status().code(), Code::kResourceExhausted);

  auto f = h.Fetch(EveryPending());
  ASSERT_TRUE(f.ok());
  ASSERT_TRUE(h.MarkSent(Seqs(*f)).ok());
  auto retried = h.Append(Msg("t", 1, "a", Priority::kNormal, "retry-me"));
  ASSERT_TRUE(retried.ok()) << retried.status().ToString();
  EXPECT_FALSE(retried->duplicate);
  auto q = h.QueryById("retry-me");
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->seq, retried->seq);
  EXPECT_EQ(q->state, MessageState::kPending);
}

TEST(JournalCapTest, SentRowsKeptForRetentionAreEvictedBeforeRejecting) {
  JournalOptions o = Capped(WhenFull::kReject);
  o.sent_retention_ms = 3600 * 1000;
  Harness h(o);
  ASSERT_TRUE(h.Open().ok());
  Status full;
  size_t stored = FillUntilFull(h, &full);
  auto f = h.Fetch();
  ASSERT_TRUE(f.ok());
  ASSERT_EQ(f->size(), stored);
  ASSERT_TRUE(h.MarkSent(Seqs(*f)).ok());
  // Every row is sent but retained; new appends push them out.
  Status again;
  size_t more = FillUntilFull(h, &again);
  EXPECT_GT(more, stored - 50);
  EXPECT_EQ(h.j().stats().dropped_total, 0u);  // sent rows are not "dropped" messages
}

TEST(JournalCapTest, DropOldestDropsLowestPriorityOldestFirst) {
  Harness h(Capped(WhenFull::kDropOldest));
  ASSERT_TRUE(h.Open().ok());
  // 400 low-priority rows (~40% of the cap), then 1500 normal rows: well
  // past the cap, so every low row must go before any normal row does.
  std::vector<uint64_t> low_seqs, normal_seqs;
  for (int g = 0; g < 20; ++g) {
    for (auto& r : h.AppendMany(Rows("low", g * 20, 20, 'l', Priority::kLow))) {
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      low_seqs.push_back(r->seq);
    }
  }
  size_t normal_stored = 0;
  for (int g = 0; g < 75; ++g) {
    for (auto& r : h.AppendMany(Rows("normal", g * 20, 20, 'n'))) {
      ASSERT_TRUE(r.ok()) << r.status().ToString();  // drop-oldest never refuses
      normal_seqs.push_back(r->seq);
      ++normal_stored;
    }
    ASSERT_LE(FileSize(h.options().path), kCap);
  }
  const JournalStats& s = h.j().stats();
  EXPECT_GT(s.dropped_total, 400u);  // all low rows, then the oldest normal ones
  EXPECT_EQ(s.dropped_bytes_total, s.dropped_total * kPayload);
  EXPECT_EQ(s.rejected_full_total, 0u);
  auto f = h.Fetch(EveryPending());
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->size(), s.pending_count);
  EXPECT_EQ(f->size() + s.dropped_total, 400u + normal_stored);
  // Survivors: no low row, and the normal rows are the newest ones, in order.
  size_t first_kept = normal_seqs.size() - f->size();
  for (size_t i = 0; i < f->size(); ++i) {
    EXPECT_EQ((*f)[i].message.topic, "normal");
    EXPECT_EQ((*f)[i].seq, normal_seqs[first_kept + i]);
  }
}

TEST(JournalCapTest, DropOldestKeepsLowRowsWhileTheyAreEnough) {
  Harness h(Capped(WhenFull::kDropOldest));
  ASSERT_TRUE(h.Open().ok());
  for (int g = 0; g < 25; ++g) (void)h.AppendMany(Rows("low", g * 20, 20, 'l', Priority::kLow));
  for (int g = 0; g < 20; ++g) {
    for (auto& r : h.AppendMany(Rows("high", g * 20, 20, 'h', Priority::kHigh))) {
      ASSERT_TRUE(r.ok());
    }
  }
  auto f = h.Fetch(EveryPending());
  ASSERT_TRUE(f.ok());
  size_t high = 0, low = 0;
  int64_t prev_low_ts = -1;
  for (auto& m : *f) {
    if (m.message.topic == "high") {
      ++high;
    } else {
      // The low rows that remain are the newest ones, contiguous.
      if (prev_low_ts >= 0) {
        EXPECT_EQ(m.message.ts_ms, prev_low_ts + 1);
      }
      prev_low_ts = m.message.ts_ms;
      ++low;
    }
  }
  EXPECT_EQ(high, 400u);
  EXPECT_GT(low, 0u);
  EXPECT_EQ(prev_low_ts, 499);
  EXPECT_EQ(h.j().stats().dropped_total, 500u - low);
}

TEST(JournalCapTest, DropOldestNeverDropsRowsTheUplinkHolds) {
  Harness h(Capped(WhenFull::kDropOldest));
  ASSERT_TRUE(h.Open().ok());
  (void)h.AppendMany(Rows("low", 0, 100, 'l', Priority::kLow));
  FetchSpec lease;
  lease.max_messages = 50;  // the 50 oldest low rows are in flight
  auto leased = h.Fetch(lease);
  ASSERT_TRUE(leased.ok());
  ASSERT_EQ(leased->size(), 50u);
  for (int g = 0; g < 60; ++g) {
    for (auto& r : h.AppendMany(Rows("n", g * 20, 20, 'n'))) ASSERT_TRUE(r.ok());
  }
  EXPECT_GT(h.j().stats().dropped_total, 50u);
  // Every leased row can still be acknowledged: it was never dropped.
  for (const auto& m : *leased) {
    auto q = h.Query(m.seq);
    ASSERT_TRUE(q.ok());
    EXPECT_EQ(q->state, MessageState::kPending) << "leased seq " << m.seq;
  }
}

}  // namespace
}  // namespace edgespool::store
