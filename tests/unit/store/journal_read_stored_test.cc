// Journal::ReadStored: stored rows in seq order whatever their state, no
// leases taken, the head that survives deletes, budgets and `complete`
// (the WebSocket uplink cursors' catch-up reads, agent/websocket/).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "store/journal.h"
#include "tests/unit/store/journal_test_util.h"

namespace edgespool::store {
namespace {

using testutil::Harness;
using testutil::Msg;

std::vector<uint64_t> Seqs(const StoredRead& r) {
  std::vector<uint64_t> out;
  for (const StoredMessage& m : r.rows) out.push_back(m.seq);
  return out;
}

StoredReadSpec After(uint64_t seq, size_t max_messages = 100, size_t max_bytes = 1u << 20) {
  StoredReadSpec s;
  s.after_seq = seq;
  s.max_messages = max_messages;
  s.max_bytes = max_bytes;
  return s;
}

TEST(JournalReadStoredTest, EveryStateInSeqOrderWithoutLeasing) {
  JournalOptions o;
  o.sent_retention_ms = 3600000;  // sent rows stay
  Harness h(o);
  ASSERT_TRUE(h.Open().ok());
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(h.Append(Msg("t/" + std::to_string(i), 1000 + i, "p" + std::to_string(i))).ok());
  }
  auto fetched = h.Fetch();
  ASSERT_TRUE(fetched.ok());
  ASSERT_TRUE(h.MarkSent({1, 2}).ok());
  ASSERT_TRUE(h.MarkDead({{3, "bad"}}).ok());
  auto r = h.ReadStored(After(0));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(Seqs(*r), (std::vector<uint64_t>{1, 2, 3, 4, 5}));
  EXPECT_EQ(r->head_seq, 5u);
  EXPECT_TRUE(r->complete);
  EXPECT_EQ(r->rows[2].message.topic, "t/2");
  EXPECT_EQ(r->rows[2].message.payload, "p2");
  EXPECT_EQ(r->rows[4].message.ts_ms, 1004);
  // Reading leased nothing: rows 4 and 5 are still fetched (after release).
  ASSERT_TRUE(h.Release({4, 5}, false).ok());
  auto again = h.Fetch();
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->size(), 2u);
}

TEST(JournalReadStoredTest, BudgetsCompleteAndTheHeadAfterDeletes) {
  Harness h;  // retention 0: sent rows are deleted at once
  ASSERT_TRUE(h.Open().ok());
  for (int i = 0; i < 6; ++i) ASSERT_TRUE(h.Append(Msg("t", 1000 + i, std::string(100, 'x'))).ok());
  auto r = h.ReadStored(After(1, 2));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(Seqs(*r), (std::vector<uint64_t>{2, 3}));
  EXPECT_FALSE(r->complete);
  r = h.ReadStored(After(0, 100, 250));  // 100-byte payloads: two fit
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(Seqs(*r), (std::vector<uint64_t>{1, 2}));
  EXPECT_FALSE(r->complete);
  r = h.ReadStored(After(0, 100, 10));  // the first row whatever its size
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(Seqs(*r), (std::vector<uint64_t>{1}));
  // Sent and deleted: gone from reads, but the head stays.
  ASSERT_TRUE(h.Fetch().ok());
  ASSERT_TRUE(h.MarkSent({4, 5, 6}).ok());
  r = h.ReadStored(After(3));
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->rows.empty());
  EXPECT_TRUE(r->complete);
  EXPECT_EQ(r->head_seq, 6u);
  // A head-only read (after everything).
  r = h.ReadStored(After(static_cast<uint64_t>(INT64_MAX)));
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->rows.empty());
  EXPECT_EQ(r->head_seq, 6u);
}

}  // namespace
}  // namespace edgespool::store
