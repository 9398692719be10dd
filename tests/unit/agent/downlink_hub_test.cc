// The downlink hub against a real journal: live and catch-up delivery,
// windows, acks, resume after detach and after a restart, busy sessions.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "agent/downlink/hub.h"
#include "tests/unit/store/journal_test_util.h"

namespace edgespool::agent::downlink {
namespace {

using store::testutil::Harness;
using store::testutil::RunUntil;

struct RecordingSink : ConsumerSink {
  void Deliver(const std::string& session, const store::StoredInbound& m) override {
    seqs.push_back(m.seq);
    topics.push_back(m.message.topic);
    payloads.push_back(m.message.payload);
  }
  std::vector<uint64_t> seqs;
  std::vector<std::string> topics;
  std::vector<std::string> payloads;
};

class HubTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(h_.Open().ok());
    StartHub();
  }
  void StartHub() {
    HubOptions o;
    o.default_window = 100;
    o.read_batch = 3;  // small, so catch-up takes several reads
    hub_ = Hub::Start(h_.loop(), h_.j(), o);
  }
  // Stores one inbound row and hands it to the hub as the writer would.
  uint64_t Append(const std::string& topic, const std::string& payload) {
    store::InboundMessage m;
    m.topic = topic;
    m.broker_topic = "edgespool/gw/" + topic;
    m.received_ms = 1000;
    m.payload = payload;
    store::InboundMessage copy = m;
    bool done = false;
    uint64_t seq = 0;
    h_.j().AppendInbound(std::move(m), [&](Result<uint64_t> r) {
      EXPECT_TRUE(r.ok()) << r.status().ToString();
      seq = r.ok() ? *r : 0;
      store::StoredInbound row;
      row.seq = seq;
      row.payload_bytes = copy.payload.size();
      row.message = copy;
      hub_->OnCommitted(row);
      done = true;
    });
    RunUntil(h_.loop(), done);
    return seq;
  }
  Result<SubscribeOutcome> Subscribe(RecordingSink& sink, std::string session,
                                     std::vector<std::string> filters, From from = From::kDefault,
                                     uint32_t window = 0) {
    bool done = false;
    Result<SubscribeOutcome> out = Status::Internal("no callback");
    SubscribeArgs a;
    a.session = std::move(session);
    a.filters = std::move(filters);
    a.from = from;
    a.window = window;
    hub_->Subscribe(&sink, a, [&](Result<SubscribeOutcome> r) {
      out = std::move(r);
      done = true;
    });
    RunUntil(h_.loop(), done);
    Settle();
    return out;
  }
  // Lets outstanding inbox reads come back.
  void Settle() {
    for (int i = 0; i < 12; ++i) h_.Sync();
  }

  Harness h_;
  std::unique_ptr<Hub> hub_;
};

TEST_F(HubTest, LiveMessagesReachAnAttachedSessionInOrder) {
  RecordingSink sink;
  auto s = Subscribe(sink, "hmi", {"down/#"});
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_FALSE(s->resumed);
  uint64_t a = Append("down/a", "1");
  Append("other/x", "no");
  uint64_t b = Append("down/b", "2");
  EXPECT_EQ(sink.seqs, (std::vector<uint64_t>{a, b}));
  EXPECT_EQ(sink.topics, (std::vector<std::string>{"down/a", "down/b"}));
}

TEST_F(HubTest, WindowHoldsTheRestInTheJournalUntilAcked) {
  RecordingSink sink;
  ASSERT_TRUE(Subscribe(sink, "w", {"#"}, From::kDefault, 2).ok());
  std::vector<uint64_t> seqs;
  for (int i = 0; i < 7; ++i) seqs.push_back(Append("t", std::to_string(i)));
  ASSERT_EQ(sink.seqs.size(), 2u);
  ASSERT_TRUE(hub_->Ack(&sink, "w", seqs[0], false).ok());
  Settle();
  ASSERT_EQ(sink.seqs.size(), 3u);
  EXPECT_EQ(sink.seqs[2], seqs[2]);
  ASSERT_TRUE(hub_->Ack(&sink, "w", seqs[2], true).ok());  // acks 2 and 3 together
  Settle();
  EXPECT_EQ(sink.seqs.size(), 5u);
  ASSERT_TRUE(hub_->Ack(&sink, "w", seqs[4], true).ok());
  Settle();
  EXPECT_EQ(sink.seqs, seqs);
  EXPECT_FALSE(hub_->Ack(&sink, "w", seqs[0], false).ok());  // not in flight any more
}

TEST_F(HubTest, FromOldestCatchesUpAcrossSeveralReads) {
  std::vector<uint64_t> seqs;
  for (int i = 0; i < 8; ++i) seqs.push_back(Append(i % 2 ? "a" : "b", std::to_string(i)));
  RecordingSink sink;
  ASSERT_TRUE(Subscribe(sink, "", {"a"}, From::kOldest).ok());
  EXPECT_EQ(sink.seqs, (std::vector<uint64_t>{seqs[1], seqs[3], seqs[5], seqs[7]}));
  uint64_t live = Append("a", "live");
  EXPECT_EQ(sink.seqs.back(), live);
}

TEST_F(HubTest, DetachedSessionGetsWhatItMissedAndWhatItHadNotAcked) {
  RecordingSink first;
  ASSERT_TRUE(Subscribe(first, "s", {"#"}).ok());
  uint64_t a = Append("t", "a");
  uint64_t b = Append("t", "b");
  ASSERT_TRUE(hub_->Ack(&first, "s", a, false).ok());
  hub_->DetachAll(&first);
  uint64_t c = Append("t", "c");  // while detached
  RecordingSink second;
  auto s = Subscribe(second, "s", {"#"});
  ASSERT_TRUE(s.ok());
  EXPECT_TRUE(s->resumed);
  EXPECT_EQ(s->position, a);
  EXPECT_EQ(second.seqs, (std::vector<uint64_t>{b, c}));
}

TEST_F(HubTest, PositionSurvivesARestartOfTheHubAndJournal) {
  RecordingSink sink;
  ASSERT_TRUE(Subscribe(sink, "p", {"#"}).ok());
  uint64_t a = Append("t", "a");
  uint64_t b = Append("t", "b");
  ASSERT_TRUE(hub_->Ack(&sink, "p", a, false).ok());
  bool flushed = false;
  hub_->Flush([&] { flushed = true; });
  RunUntil(h_.loop(), flushed);
  hub_.reset();
  ASSERT_TRUE(h_.Open().ok());
  StartHub();
  RecordingSink again;
  auto s = Subscribe(again, "p", {"#"});
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_TRUE(s->resumed);
  EXPECT_EQ(again.seqs, (std::vector<uint64_t>{b}));
}

// Rows whose name holds a newline are not consumers' (the WebSocket uplink
// cursors keep journal seqs there): the hub leaves them alone.
TEST_F(HubTest, RowsOfOtherUsersOfTheTableAreNotSessions) {
  store::ConsumerSessionRecord cursor;
  cursor.name = "\nuplink:hmi";
  cursor.filters = {"#"};
  cursor.acked = 1000000;
  ASSERT_TRUE(h_.SaveSession(cursor).ok());
  hub_.reset();
  ASSERT_TRUE(h_.Open().ok());
  StartHub();
  RecordingSink sink;
  ASSERT_TRUE(Subscribe(sink, "hmi", {"#"}).ok());
  EXPECT_EQ(hub_->stats().sessions, 1u);
  uint64_t a = Append("t", "a");
  Settle();
  EXPECT_EQ(sink.seqs, (std::vector<uint64_t>{a}));
  auto rows = h_.LoadSessions();
  ASSERT_TRUE(rows.ok());
  bool kept = false;
  for (const auto& r : *rows) kept = kept || (r.name == cursor.name && r.acked == 1000000);
  EXPECT_TRUE(kept);
}

TEST_F(HubTest, ASessionAttachedElsewhereIsBusyAndAnonymousOnesEndWithTheirSink) {
  RecordingSink one, two;
  ASSERT_TRUE(Subscribe(one, "x", {"#"}).ok());
  auto busy = Subscribe(two, "x", {"#"});
  ASSERT_FALSE(busy.ok());
  EXPECT_EQ(busy.status().code(), Code::kResourceExhausted);
  auto anon = Subscribe(two, "", {"#"});
  ASSERT_TRUE(anon.ok());
  EXPECT_EQ(hub_->stats().sessions, 2u);
  hub_->DetachAll(&two);
  EXPECT_EQ(hub_->stats().sessions, 1u);  // the durable one stays
  EXPECT_EQ(hub_->stats().attached, 1u);
}

}  // namespace
}  // namespace edgespool::agent::downlink
