// The downlink's inbox and consumer sessions in the journal (schema
// version 4): order and fields, commit groups shared with producer appends,
// seqs never reused, the inbox cap, expiry, trims, payload-less reads,
// sessions across reopen, and the migration from version 3.
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
using testutil::Inbound;
using testutil::InboxSeqs;
using testutil::Msg;

InboxReadSpec All() {
  InboxReadSpec spec;
  spec.max_messages = 1u << 20;
  spec.max_bytes = 1u << 30;
  return spec;
}

TEST(JournalInboxTest, AppendAndReadInOrderWithEveryField) {
  Harness h;
  ASSERT_TRUE(h.Open().ok());
  InboundMessage full = Inbound("down/cmd/reboot", std::string("\0binary\xff", 8), 1234);
  full.expires_at_ms = 4102444800000;  // 2100
  full.headers = {{"k", "v"}, {"empty", ""}};
  full.response_topic = "edgespool/gw1/up/reply";
  full.correlation = std::string("\x01\x00\x02", 3);
  auto first = h.AppendInbound(full);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(*first, 1u);
  for (int i = 0; i < 4; ++i) {
    auto r = h.AppendInbound(Inbound("down/n", "p" + std::to_string(i)));
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(*r, 2u + i);
  }
  auto rows = h.ReadInbox(All());
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  EXPECT_EQ(InboxSeqs(*rows), (std::vector<uint64_t>{1, 2, 3, 4, 5}));
  const InboundMessage& m = (*rows)[0].message;
  EXPECT_EQ(m.topic, full.topic);
  EXPECT_EQ(m.broker_topic, full.broker_topic);
  EXPECT_EQ(m.received_ms, 1234);
  EXPECT_EQ(m.expires_at_ms, full.expires_at_ms);
  EXPECT_EQ(m.headers, full.headers);
  EXPECT_EQ(m.response_topic, full.response_topic);
  EXPECT_EQ(m.correlation, full.correlation);
  EXPECT_EQ(m.payload, full.payload);
  EXPECT_EQ((*rows)[0].payload_bytes, 8u);
  EXPECT_EQ((*rows)[1].message.payload, "p0");
  EXPECT_FALSE((*rows)[1].message.expires_at_ms);
  EXPECT_TRUE((*rows)[1].message.response_topic.empty());
  EXPECT_TRUE((*rows)[1].message.correlation.empty());

  // after_seq, max_messages, and max_bytes (the first row always comes).
  InboxReadSpec spec = All();
  spec.after_seq = 2;
  spec.max_messages = 2;
  EXPECT_EQ(InboxSeqs(*h.ReadInbox(spec)), (std::vector<uint64_t>{3, 4}));
  spec = All();
  spec.max_bytes = 1;
  EXPECT_EQ(InboxSeqs(*h.ReadInbox(spec)), (std::vector<uint64_t>{1}));
  spec.max_bytes = 12;  // 8 + 2 + 2 fit, the fourth does not
  EXPECT_EQ(InboxSeqs(*h.ReadInbox(spec)), (std::vector<uint64_t>{1, 2, 3}));

  h.Sync();
  EXPECT_EQ(h.j().stats().inbox_count, 5u);
  EXPECT_EQ(h.j().stats().inbox_bytes, 16u);
  EXPECT_EQ(h.j().stats().inbox_head_seq, 5u);
  EXPECT_EQ(h.j().stats().inbox_appended_total, 5u);
  // Not an upload: nothing pending, the journal's own seqs untouched.
  EXPECT_EQ(h.j().stats().pending_count, 0u);
  auto a = h.Append(Msg("up/t", 1, "x"));
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->seq, 1u);
}

TEST(JournalInboxTest, PayloadlessReadsReportSizes) {
  Harness h;
  ASSERT_TRUE(h.Open().ok());
  ASSERT_TRUE(h.AppendInbound(Inbound("down/a", std::string(3000, 'a'))).ok());
  ASSERT_TRUE(h.AppendInbound(Inbound("down/b", "")).ok());
  ASSERT_TRUE(h.AppendInbound(Inbound("down/c", std::string(70000, 'c'))).ok());
  InboxReadSpec spec = All();
  spec.with_payload = false;
  spec.max_bytes = 1;  // counts payloads read, and none are: every row comes
  auto rows = h.ReadInbox(spec);
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 3u);
  EXPECT_EQ((*rows)[0].payload_bytes, 3000u);
  EXPECT_EQ((*rows)[1].payload_bytes, 0u);
  EXPECT_EQ((*rows)[2].payload_bytes, 70000u);
  for (const auto& r : *rows) EXPECT_TRUE(r.message.payload.empty());
  EXPECT_EQ((*rows)[2].message.topic, "down/c");
  // With payloads, the same rows and sizes.
  rows = h.ReadInbox(All());
  ASSERT_TRUE(rows.ok());
  EXPECT_EQ((*rows)[2].message.payload, std::string(70000, 'c'));
  EXPECT_EQ((*rows)[2].payload_bytes, 70000u);
}

// Reads the inbox row `seq` over a connection of our own: it sees only what
// was committed.
bool CommittedInboxRow(const std::string& path, uint64_t seq) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, kJournalVfs) != SQLITE_OK) {
    sqlite3_close(db);
    return false;
  }
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(db, "SELECT count(*) FROM inbox WHERE seq = ?", -1, &st, nullptr);
  sqlite3_bind_int64(st, 1, static_cast<int64_t>(seq));
  bool found = sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 0) == 1;
  sqlite3_finalize(st);
  sqlite3_close(db);
  return found;
}

TEST(JournalInboxTest, SharesTheCommitGroupOfProducerAppendsAndAnswersAfterCommit) {
  Harness h;
  ASSERT_TRUE(h.Open().ok());
  size_t listened = 0;
  h.j().SetCommitListener([&](std::vector<StoredMessage>& rows) { listened += rows.size(); });
  h.Sync();
  uint64_t groups_before = h.j().stats().commit_groups_total;
  std::vector<std::string> order;
  bool committed_at_callback = false;
  int left = 4;
  bool done = false;
  auto count = [&] {
    if (--left == 0) done = true;
  };
  // One loop turn: the four land in the same group, answered in call order.
  h.j().Append(Msg("up/a", 1, "a"), [&](Result<AppendOutcome> r) {
    EXPECT_TRUE(r.ok());
    order.push_back("append a");
    count();
  });
  h.j().AppendInbound(Inbound("down/x", "x"), [&](Result<uint64_t> r) {
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    order.push_back("inbound " + std::to_string(*r));
    committed_at_callback = CommittedInboxRow(h.options().path, *r);
    count();
  });
  h.j().SaveConsumerSession({"hmi", {"down/#"}, 1, 5, 0}, [&](Status s) {
    EXPECT_TRUE(s.ok()) << s.ToString();
    order.push_back("session");
    count();
  });
  h.j().Append(Msg("up/b", 2, "b"), [&](Result<AppendOutcome> r) {
    EXPECT_TRUE(r.ok());
    order.push_back("append b");
    count();
  });
  testutil::RunUntil(h.loop(), done);
  EXPECT_EQ(order, (std::vector<std::string>{"append a", "inbound 1", "session", "append b"}));
  EXPECT_TRUE(committed_at_callback) << "the inbound callback ran before its row was committed";
  EXPECT_EQ(h.j().stats().commit_groups_total - groups_before, 1u);
  EXPECT_EQ(listened, 2u) << "the CommitListener (the uplink) must see producer rows only";
  auto pending = h.Fetch(testutil::EveryPending());
  ASSERT_TRUE(pending.ok());
  EXPECT_EQ(pending->size(), 2u);
}

TEST(JournalInboxTest, InboundFailsWithItsGroupAtTheDatabaseCap) {
  JournalOptions o;
  o.max_bytes = 256u << 10;
  o.when_full = WhenFull::kReject;
  Harness h(o);
  ASSERT_TRUE(h.Open().ok());
  bool full = false;
  for (int i = 0; i < 200 && !full; ++i) {
    auto r = h.Append(Msg("up/fill", i, std::string(8000, 'f')));
    full = !r.ok() && r.status().code() == Code::kResourceExhausted;
  }
  ASSERT_TRUE(full) << "the journal never filled";
  auto r = h.AppendInbound(Inbound("down/x", std::string(8000, 'x')));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kResourceExhausted) << r.status().ToString();
  h.Sync();
  EXPECT_EQ(h.j().stats().inbox_count, 0u);
  EXPECT_EQ(h.j().stats().inbox_appended_total, 0u);
  EXPECT_EQ(h.j().stats().inbox_head_seq, 0u);
  auto rows = h.ReadInbox(All());
  ASSERT_TRUE(rows.ok());
  EXPECT_TRUE(rows->empty());
}

TEST(JournalInboxTest, SeqsAreNeverReusedAfterTrimOrReopen) {
  Harness h;
  ASSERT_TRUE(h.Open().ok());
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(h.AppendInbound(Inbound("down/a", "a")).ok());
  ASSERT_TRUE(h.TrimInbox(100, INT64_MAX).ok());
  h.Sync();
  EXPECT_EQ(h.j().stats().inbox_count, 0u);
  EXPECT_EQ(h.j().stats().inbox_bytes, 0u);
  EXPECT_EQ(h.j().stats().inbox_head_seq, 3u);
  auto r = h.AppendInbound(Inbound("down/a", "a"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 4u);
  ASSERT_TRUE(h.TrimInbox(100, INT64_MAX).ok());
  h.Close();
  ASSERT_TRUE(h.Open().ok());
  EXPECT_EQ(h.j().stats().inbox_head_seq, 4u) << "the high-water mark survives the reopen";
  EXPECT_EQ(h.j().stats().inbox_count, 0u);
  r = h.AppendInbound(Inbound("down/a", "a"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 5u);
}

TEST(JournalInboxTest, TrimNeedsBothBoundsAndWorksInChunks) {
  Harness h;
  ASSERT_TRUE(h.Open().ok());
  ASSERT_TRUE(h.AppendInbound(Inbound("down/a", "a", 100)).ok());
  ASSERT_TRUE(h.AppendInbound(Inbound("down/a", "bb", 300)).ok());  // received late
  ASSERT_TRUE(h.AppendInbound(Inbound("down/a", "ccc", 200)).ok());
  ASSERT_TRUE(h.AppendInbound(Inbound("down/a", "dddd", 100)).ok());
  // Below seq 4 and received before 250: 1 and 3 (2 is too recent, 4 not delivered).
  ASSERT_TRUE(h.TrimInbox(4, 250).ok());
  EXPECT_EQ(InboxSeqs(*h.ReadInbox(All())), (std::vector<uint64_t>{2, 4}));
  h.Sync();
  EXPECT_EQ(h.j().stats().inbox_count, 2u);
  EXPECT_EQ(h.j().stats().inbox_bytes, 6u);

  // More rows than one trim transaction takes: all go, counted right.
  std::vector<Result<uint64_t>> results;
  size_t left = 3000;
  bool done = false;
  for (int i = 0; i < 3000; ++i) {
    h.j().AppendInbound(Inbound("down/b", "xy", 50), [&](Result<uint64_t> r) {
      results.push_back(r);
      if (--left == 0) done = true;
    });
  }
  testutil::RunUntil(h.loop(), done);
  ASSERT_TRUE(h.TrimInbox(UINT64_MAX, 150).ok());
  EXPECT_EQ(InboxSeqs(*h.ReadInbox(All())), (std::vector<uint64_t>{2}));
  h.Sync();
  EXPECT_EQ(h.j().stats().inbox_count, 1u);
  EXPECT_EQ(h.j().stats().inbox_bytes, 2u);
}

TEST(JournalInboxTest, CapDropsTheOldestRowsAndCountsThem) {
  JournalOptions o;
  o.inbox_max_bytes = 1000;
  Harness h(o);
  ASSERT_TRUE(h.Open().ok());
  for (int i = 0; i < 10; ++i) {
    auto r = h.AppendInbound(Inbound("down/a", std::string(200, static_cast<char>('a' + i))));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }
  EXPECT_EQ(InboxSeqs(*h.ReadInbox(All())), (std::vector<uint64_t>{6, 7, 8, 9, 10}));
  h.Sync();
  const JournalStats& st = h.j().stats();
  EXPECT_EQ(st.inbox_count, 5u);
  EXPECT_EQ(st.inbox_bytes, 1000u);
  EXPECT_EQ(st.inbox_dropped_total, 5u);
  EXPECT_EQ(st.inbox_dropped_bytes_total, 1000u);
  EXPECT_EQ(st.inbox_appended_total, 10u);

  // One group larger than the cap keeps its newest rows.
  std::vector<uint64_t> seqs;
  size_t left = 8;
  bool done = false;
  for (int i = 0; i < 8; ++i) {
    h.j().AppendInbound(Inbound("down/b", std::string(300, 'b')), [&](Result<uint64_t> r) {
      EXPECT_TRUE(r.ok());
      if (r.ok()) seqs.push_back(*r);
      if (--left == 0) done = true;
    });
  }
  testutil::RunUntil(h.loop(), done);
  EXPECT_EQ(InboxSeqs(*h.ReadInbox(All())), (std::vector<uint64_t>{16, 17, 18}));
  h.Sync();
  EXPECT_EQ(h.j().stats().inbox_bytes, 900u);
  EXPECT_EQ(h.j().stats().inbox_dropped_total, 5u + 5u + 5u);

  // A message larger than the whole cap is refused alone, dropping nothing.
  auto big = h.AppendInbound(Inbound("down/big", std::string(1001, 'x')));
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(big.status().code(), Code::kResourceExhausted);
  EXPECT_EQ(InboxSeqs(*h.ReadInbox(All())), (std::vector<uint64_t>{16, 17, 18}));

  // The counters a reopen rebuilds agree.
  h.Close();
  ASSERT_TRUE(h.Open().ok());
  EXPECT_EQ(h.j().stats().inbox_count, 3u);
  EXPECT_EQ(h.j().stats().inbox_bytes, 900u);
  EXPECT_EQ(h.j().stats().inbox_head_seq, 18u);
}

TEST(JournalInboxTest, ExpiredRowsAreSkippedThenDeletedByCleanup) {
  platform::FakeClock clock;
  JournalOptions o;
  o.clock = &clock;
  Harness h(o);
  ASSERT_TRUE(h.Open().ok());
  int64_t now = clock.WallMs();
  InboundMessage soon = Inbound("down/soon", "s", now);
  soon.expires_at_ms = now + 1000;
  InboundMessage later = Inbound("down/later", "l", now);
  later.expires_at_ms = now + 60000;
  ASSERT_TRUE(h.AppendInbound(soon).ok());
  ASSERT_TRUE(h.AppendInbound(Inbound("down/never", "n", now)).ok());
  ASSERT_TRUE(h.AppendInbound(later).ok());
  EXPECT_EQ(InboxSeqs(*h.ReadInbox(All())), (std::vector<uint64_t>{1, 2, 3}));
  clock.AdvanceMs(1000);  // expires_at reached: expired
  EXPECT_EQ(InboxSeqs(*h.ReadInbox(All())), (std::vector<uint64_t>{2, 3}));
  h.Sync();
  EXPECT_EQ(h.j().stats().inbox_count, 3u) << "a read does not delete";
  ASSERT_TRUE(h.Cleanup().ok());
  h.Sync();
  EXPECT_EQ(h.j().stats().inbox_count, 2u);
  EXPECT_EQ(h.j().stats().inbox_bytes, 2u);
  EXPECT_EQ(h.j().stats().inbox_expired_total, 1u);
  clock.AdvanceMs(60000);
  ASSERT_TRUE(h.Cleanup().ok());
  EXPECT_EQ(InboxSeqs(*h.ReadInbox(All())), (std::vector<uint64_t>{2}));
  h.Sync();
  EXPECT_EQ(h.j().stats().inbox_expired_total, 2u);
  EXPECT_EQ(h.j().stats().inbox_dropped_total, 0u);
}

TEST(JournalInboxTest, SessionsUpsertLoadDeleteAndSurviveReopen) {
  Harness h;
  ASSERT_TRUE(h.Open().ok());
  auto none = h.LoadSessions();
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
  ASSERT_TRUE(h.SaveSession({"hmi", {"down/#", "config/+/x"}, 0, 100, 0}).ok());
  ASSERT_TRUE(h.SaveSession({"logger", {"down/log"}, 7, 200, 1}).ok());
  ASSERT_TRUE(h.SaveSession({"hmi", {"down/cmd/#"}, 42, 300, 3}).ok());  // upsert
  auto loaded = h.LoadSessions();
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  ASSERT_EQ(loaded->size(), 2u);
  const ConsumerSessionRecord& hmi = (*loaded)[0];
  EXPECT_EQ(hmi.name, "hmi");
  EXPECT_EQ(hmi.filters, (std::vector<std::string>{"down/cmd/#"}));
  EXPECT_EQ(hmi.acked, 42u);
  EXPECT_EQ(hmi.last_seen_ms, 300);
  EXPECT_EQ(hmi.dropped, 3u);
  EXPECT_EQ((*loaded)[1].name, "logger");

  // A filter that cannot be stored is refused, the others unharmed.
  Status bad = h.SaveSession({"bad", {"a\nb"}, 0, 0, 0});
  EXPECT_EQ(bad.code(), Code::kInvalidArgument) << bad.ToString();

  ASSERT_TRUE(h.DeleteSession("logger").ok());
  ASSERT_TRUE(h.DeleteSession("nobody").ok());
  h.Close();
  ASSERT_TRUE(h.Open().ok());
  loaded = h.LoadSessions();
  ASSERT_TRUE(loaded.ok());
  ASSERT_EQ(loaded->size(), 1u);
  EXPECT_EQ((*loaded)[0].name, "hmi");
  EXPECT_EQ((*loaded)[0].filters, (std::vector<std::string>{"down/cmd/#"}));
  EXPECT_EQ((*loaded)[0].acked, 42u);
}

TEST(JournalInboxTest, SessionWritesKeepCallOrder) {
  Harness h;
  ASSERT_TRUE(h.Open().ok());
  // Within one loop turn: save then delete ends deleted; delete then save
  // ends saved.
  int left = 4;
  bool done = false;
  auto cb = [&](Status s) {
    EXPECT_TRUE(s.ok()) << s.ToString();
    if (--left == 0) done = true;
  };
  h.j().SaveConsumerSession({"gone", {"a"}, 1, 1, 0}, cb);
  h.j().DeleteConsumerSession("gone", cb);
  h.j().DeleteConsumerSession("kept", cb);
  h.j().SaveConsumerSession({"kept", {"b"}, 2, 2, 0}, cb);
  testutil::RunUntil(h.loop(), done);
  auto loaded = h.LoadSessions();
  ASSERT_TRUE(loaded.ok());
  ASSERT_EQ(loaded->size(), 1u);
  EXPECT_EQ((*loaded)[0].name, "kept");
}

TEST(JournalInboxTest, ClosingCancelsDownlinkWritesNotYetCommitted) {
  Harness h;
  ASSERT_TRUE(h.Open().ok());
  std::vector<Code> codes;
  h.j().AppendInbound(Inbound("down/a", "a"),
                      [&](Result<uint64_t> r) { codes.push_back(r.status().code()); });
  h.j().SaveConsumerSession({"hmi", {"down/#"}, 0, 0, 0},
                            [&](Status s) { codes.push_back(s.code()); });
  h.Close();  // before the loop ran: both still staged
  EXPECT_EQ(codes, (std::vector<Code>{Code::kCancelled, Code::kCancelled}));
}

TEST(JournalInboxTest, Version3JournalIsMigratedWithItsRows) {
  Harness h;
  testutil::WriteVersion3Journal(
      h.options().path,
      "INSERT INTO journal(ts, topic, priority, payload, stored_at) VALUES"
      "  (10, 'up/a', 1, 'one', 1), (20, 'up/b', 1, 'two', 1), (30, 'up/c', 1, 'three', 1);"
      "INSERT INTO pending SELECT seq, priority, ts, length(payload) FROM journal"
      "  WHERE seq IN (1, 3);"
      "INSERT INTO sent VALUES (2, 5);");
  ASSERT_TRUE(h.Open().ok());
  EXPECT_EQ(h.j().stats().corrupt_files_moved, 0u);
  EXPECT_EQ(h.j().stats().pending_count, 2u);
  EXPECT_EQ(h.j().stats().inbox_count, 0u);
  EXPECT_EQ(h.j().stats().inbox_head_seq, 0u);
  auto q = h.Query(2);
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->state, MessageState::kSent);
  auto rows = h.Fetch(testutil::EveryPending());
  ASSERT_TRUE(rows.ok());
  EXPECT_EQ(testutil::Seqs(*rows), (std::vector<uint64_t>{1, 3}));
  EXPECT_EQ((*rows)[1].message.payload, "three");
  // The new tables work, and the journal's seqs carry on after the old rows.
  auto in = h.AppendInbound(Inbound("down/a", "a"));
  ASSERT_TRUE(in.ok()) << in.status().ToString();
  EXPECT_EQ(*in, 1u);
  ASSERT_TRUE(h.SaveSession({"hmi", {"down/#"}, 1, 1, 0}).ok());
  auto a = h.Append(Msg("up/d", 40, "four"));
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->seq, 4u);
  h.Close();

  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(h.options().path.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, nullptr);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int64(st, 0), kSchemaVersion);
  EXPECT_EQ(kSchemaVersion, 5);
  sqlite3_finalize(st);
  sqlite3_close(db);
}

}  // namespace
}  // namespace edgespool::store
