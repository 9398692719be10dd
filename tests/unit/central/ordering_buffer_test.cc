// OrderingBuffer and SeqDedupe with a fake clock: every case is events in,
// released messages out, no network.
#include "central/ordering_buffer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>

#include "central/seq_dedupe.h"

namespace edgespool::central {
namespace {

Message Msg(const std::string& node, uint64_t seq, int64_t ts, const std::string& topic = "t") {
  Message m;
  m.node = node;
  m.seq = seq;
  m.ts_ms = ts;
  m.topic = topic;
  m.payload = node + ":" + std::to_string(seq);
  return m;
}

std::vector<std::string> Payloads(const std::vector<Message>& out) {
  std::vector<std::string> v;
  for (const auto& m : out) v.push_back(m.payload + (m.late ? "!" : ""));
  return v;
}

using V = std::vector<std::string>;

TEST(SeqDedupeTest, RangesMergeAndDuplicatesAreFound) {
  SeqDedupe d;
  for (uint64_t s = 1; s <= 100; ++s) EXPECT_TRUE(d.Insert(s));
  EXPECT_EQ(d.ranges(), 1u);
  EXPECT_FALSE(d.Insert(50));
  EXPECT_TRUE(d.Insert(200));
  EXPECT_TRUE(d.Insert(150));
  EXPECT_EQ(d.ranges(), 3u);
  for (uint64_t s = 101; s < 150; ++s) EXPECT_TRUE(d.Insert(s));
  EXPECT_EQ(d.ranges(), 2u);                                       // 1..150, 200
  for (uint64_t s = 199; s >= 151; --s) EXPECT_TRUE(d.Insert(s));  // filled from above
  EXPECT_EQ(d.ranges(), 1u);
  for (uint64_t s = 1; s <= 200; ++s) EXPECT_FALSE(d.Insert(s)) << s;
}

TEST(SeqDedupeTest, EraseSplitsARange) {
  SeqDedupe d;
  for (uint64_t s = 1; s <= 10; ++s) ASSERT_TRUE(d.Insert(s));
  d.Erase(5);
  d.Erase(1);
  d.Erase(10);
  d.Erase(42);                // never seen: nothing
  EXPECT_EQ(d.ranges(), 2u);  // 2..4, 6..9
  EXPECT_TRUE(d.Insert(5));
  EXPECT_TRUE(d.Insert(1));
  EXPECT_TRUE(d.Insert(10));
  EXPECT_EQ(d.ranges(), 1u);
}

TEST(SeqDedupeTest, MemoryIsBoundedByForgettingTheLowestRange) {
  SeqDedupe d(/*max_ranges=*/4);
  for (uint64_t s = 0; s < 10; ++s) ASSERT_TRUE(d.Insert(s * 10 + 1));
  EXPECT_EQ(d.ranges(), 4u);
  EXPECT_EQ(d.forgotten(), 6u);
  EXPECT_TRUE(d.Insert(1));    // forgotten: passes again (a duplicate at worst)
  EXPECT_FALSE(d.Insert(91));  // remembered
}

TEST(SeqDedupeTest, RandomAgainstASet) {
  std::mt19937_64 rng(7);
  SeqDedupe d(1 << 20);
  std::set<uint64_t> seen;
  for (int i = 0; i < 20000; ++i) {
    uint64_t s = 1 + rng() % 3000;
    if (rng() % 10 == 0) {
      d.Erase(s);
      seen.erase(s);
      continue;
    }
    ASSERT_EQ(d.Insert(s), seen.insert(s).second) << s;
  }
}

class OrderingTest : public ::testing::Test {
 protected:
  OrderingTest() { Reset({}); }
  void Reset(OrderingOptions o) {
    if (o.max_wait_ms == 30000) o.max_wait_ms = 1000;
    b_ = std::make_unique<OrderingBuffer>(o);
  }
  void Status(const std::string& node, int64_t wm, bool online = true) {
    b_->OnStatus(node, online, wm, now_);
  }
  bool Add(Message m) { return b_->Add(std::move(m), now_, &out_); }
  V Advance(int64_t to) {
    now_ = to;
    b_->Advance(now_, &out_);
    V v = Payloads(out_);
    out_.clear();
    return v;
  }
  int64_t now_ = 1000;
  std::unique_ptr<OrderingBuffer> b_;
  std::vector<Message> out_;
};

TEST_F(OrderingTest, ReleasesInTimestampOrderOnceEveryNodeIsPast) {
  Status("a", 0);
  Status("b", 0);
  Add(Msg("a", 1, 100));
  Add(Msg("a", 2, 300));
  Add(Msg("b", 1, 200));
  EXPECT_EQ(Advance(1010), V{});  // both watermarks at 0: nothing may go
  Status("a", 400);               // a has sent everything below 400
  EXPECT_EQ(Advance(1020), V{});  // b still might have something older
  Status("b", 250);
  EXPECT_EQ(Advance(1030), (V{"a:1", "b:1"}));  // below 250
  Status("b", 1000);
  EXPECT_EQ(Advance(1040), (V{"a:2"}));
  EXPECT_EQ(b_->buffered(), 0u);
  EXPECT_EQ(b_->stats().late, 0u);
}

TEST_F(OrderingTest, EqualTimestampsAreTiedByNodeThenSeq) {
  Status("a", 0);
  Status("b", 0);
  Add(Msg("b", 5, 100));
  Add(Msg("a", 9, 100));
  Add(Msg("a", 3, 100));
  Status("a", 101);
  Status("b", 101);
  // Nodes compare by first appearance (a: first status): a's seqs, then b.
  EXPECT_EQ(Advance(1010), (V{"a:3", "a:9", "b:5"}));
}

TEST_F(OrderingTest, DuplicatesAreDroppedBufferedOrReleased) {
  Status("a", 0);
  EXPECT_TRUE(Add(Msg("a", 1, 10)));
  EXPECT_FALSE(Add(Msg("a", 1, 10)));  // still buffered
  Status("a", 100);
  EXPECT_EQ(Advance(1010), V{"a:1"});
  EXPECT_FALSE(Add(Msg("a", 1, 10)));  // released already
  EXPECT_EQ(Advance(1020), V{});
  EXPECT_EQ(b_->stats().duplicates, 2u);
}

TEST_F(OrderingTest, OfflineNodeDoesNotHoldBackAndItsLaterMessagesAreLate) {
  Status("a", 0);
  Status("b", 0);
  Add(Msg("a", 1, 100));
  Add(Msg("a", 2, 200));
  Status("b", 50, /*online=*/false);  // b's will: offline
  Status("a", 300);
  EXPECT_EQ(Advance(1010), (V{"a:1", "a:2"}));
  // b comes back with what it held: older than what went out on topic t.
  Status("b", 120);
  Add(Msg("b", 1, 150));
  EXPECT_EQ(Payloads(out_), V{"b:1!"});
  out_.clear();
  // Newer than the frontier: ordered normally again.
  Add(Msg("b", 2, 400));
  Status("a", 500);
  Status("b", 500);
  EXPECT_EQ(Advance(1020), V{"b:2"});
  EXPECT_EQ(b_->stats().late, 1u);
}

TEST_F(OrderingTest, StaleNodeStopsHoldingAfterMaxWait) {
  Status("a", 0);
  Status("b", 0);  // b then goes silent
  Add(Msg("a", 1, 100));
  Status("a", 200);
  EXPECT_EQ(Advance(1500), V{});       // b heard 500 ms ago
  EXPECT_EQ(Advance(2001), V{"a:1"});  // silent > 1000 ms: no longer waited for
  EXPECT_EQ(b_->stats().forced, 0u);   // released by the watermark, b excluded
}

TEST_F(OrderingTest, NoMessageWaitsLongerThanMaxWait) {
  Status("a", 0);
  Status("b", 0);
  Add(Msg("a", 1, 100));
  now_ = 1100;
  Add(Msg("a", 2, 150));
  // b keeps reporting but its watermark is stuck (a backlog it cannot send).
  for (int64_t t = 1100; t < 2000; t += 100) {
    Status("b", 10);
    Status("a", 500);
    EXPECT_EQ(Advance(t), V{}) << t;
  }
  Status("b", 10);
  EXPECT_EQ(Advance(2000), (V{"a:1", "a:2"}));  // a:1 is due; a:2 is older than W then
  EXPECT_EQ(b_->stats().forced, 1u);
  // b lags: its old messages are late, and it holds nothing back.
  Add(Msg("b", 1, 20));
  EXPECT_EQ(Payloads(out_), V{"b:1!"});
  out_.clear();
  Add(Msg("a", 3, 300));
  EXPECT_EQ(Advance(2010), V{"a:3"});
  // b caught up: it holds the watermark again.
  Status("b", 600);
  Add(Msg("a", 4, 550));
  Status("a", 900);
  EXPECT_EQ(Advance(2020), V{"a:4"});
  Add(Msg("a", 5, 700));
  EXPECT_EQ(Advance(2030), V{});  // 700 >= b's 600
}

TEST_F(OrderingTest, LateIsPerTopic) {
  Status("a", 0);
  Status("b", 0, false);
  Add(Msg("a", 1, 100, "x"));
  Status("a", 200);
  EXPECT_EQ(Advance(1010), V{"a:1"});
  Status("b", 0);
  Add(Msg("b", 1, 50, "y"));  // older than x's frontier, but y saw nothing yet
  Add(Msg("b", 2, 60, "x"));  // x: late
  EXPECT_EQ(Payloads(out_), V{"b:2!"});
  out_.clear();
  EXPECT_EQ(Advance(1020), V{"b:1"});  // b lags (0 <= released 100): y:50 goes in order
}

// An idle node (watermark_follow): its watermark follows the clock, lag
// behind, for `for` after its status, even past max_wait (1000 here).
TEST_F(OrderingTest, IdleNodeFollowsTheClockBehindItsLag) {
  now_ = 10000;
  Status("a", 9000);
  b_->OnStatus("b", true, 9500, now_, WatermarkFollow{200, 3000, 0});
  Add(Msg("a", 1, 9900));
  Status("a", 20000);  // a is past everything
  EXPECT_EQ(Advance(10000), V{});
  EXPECT_EQ(b_->watermark(10000), 9500);
  EXPECT_EQ(Advance(10500), V{});  // b: 9500 + 500 - 200 = 9800
  EXPECT_EQ(b_->watermark(10500), 9800);
  EXPECT_EQ(Advance(10700), V{"a:1"});  // 10000 > 9900
  // Still held by b after max_wait (b heard 2.5 s ago, but following) ...
  now_ = 12500;
  Status("a", 30000);
  Add(Msg("a", 2, 12400));
  EXPECT_EQ(Advance(12500), V{});
  EXPECT_EQ(b_->watermark(12500), 9500 + 2500 - 200);
  // ... and the follow stops at `for`: b is then silent and holds nothing.
  EXPECT_EQ(Advance(12900), V{});
  EXPECT_EQ(Advance(13100), V{"a:2"});
  EXPECT_EQ(b_->stats().forced, 0u);
  EXPECT_EQ(b_->stats().late, 0u);
}

// The race: b said idle, then accepted a message; its agent says so at once
// (a status without follow) ahead of the message, and the follow ends there.
TEST_F(OrderingTest, ABusyStatusEndsTheFollowBeforeTheMessageComes) {
  OrderingOptions o;
  o.max_wait_ms = 5000;
  Reset(o);
  now_ = 10000;
  b_->OnStatus("b", true, 9500, now_, WatermarkFollow{1000, 90000, 0});
  Status("a", 9000);
  Add(Msg("a", 1, 10500));
  Status("a", 20000);
  now_ = 10400;
  Status("b", 10300 - 500);  // b accepted a message at 10300: busy, no follow
  // Following would have been at 9500 + 1600 - 1000 = 10100 by 11600 and
  // beyond a:1 by 12100; busy, b stays at 9800 until it says more.
  EXPECT_EQ(Advance(11000), V{});
  EXPECT_EQ(b_->watermark(11000), 9800);
  Add(Msg("b", 1, 10300));  // its message comes (slowly: 700 ms later)
  Status("b", 11000);       // uploaded
  EXPECT_EQ(Advance(11100), (V{"b:1", "a:1"}));
  EXPECT_EQ(b_->stats().late, 0u);
}

// A retained (or queued) idle status is as old as the broker says: the
// follow starts that long ago, not when it arrived.
TEST_F(OrderingTest, ARetainedIdleStatusFollowsFromItsAge) {
  now_ = 50000;
  b_->OnStatus("b", true, 9500, now_, WatermarkFollow{1000, 90000, 40000});
  EXPECT_EQ(b_->watermark(now_), 9500 + 40000 - 1000);
  Add(Msg("b", 1, 48000));
  EXPECT_EQ(Advance(50001), V{"b:1"});
  // Older than its `for`: frozen where the follow ended (1000 + 30000 -
  // 1000), below what went out already: c lags and holds nothing back.
  b_->OnStatus("c", true, 1000, now_, WatermarkFollow{1000, 30000, 40000});
  EXPECT_EQ(b_->watermark(now_), 9500 + 40001 - 1000);
  Add(Msg("c", 1, 29000));
  EXPECT_EQ(Payloads(out_), V{"c:1!"});
}

// A lagging idle node (forced past by max_wait) holds again as soon as its
// followed watermark passes what was released, without a new status.
TEST_F(OrderingTest, ALaggingIdleNodeCatchesUpOnItsOwn) {
  now_ = 10000;
  Status("a", 9000);
  b_->OnStatus("b", true, 5000, now_, WatermarkFollow{1000, 90000, 0});
  Add(Msg("a", 1, 9600));
  Status("a", 20000);
  EXPECT_EQ(Advance(10999), V{});
  EXPECT_EQ(Advance(11000), V{"a:1"});  // due: b (at 5000) lags
  EXPECT_EQ(b_->stats().forced, 1u);
  Add(Msg("a", 2, 12000));
  EXPECT_EQ(Advance(11100), V{"a:2"});  // b lags: nothing held
  now_ = 23000;
  Add(Msg("a", 3, 20000 - 1));
  // b follows: 5000 + elapsed - 1000 > 12000 at 23000: it holds again.
  EXPECT_EQ(Advance(23100), V{});
  EXPECT_GT(b_->watermark(23100), 12000);
  EXPECT_LT(b_->watermark(23100), 20000);
}

TEST_F(OrderingTest, UnknownNodeWaitsForItsFirstStatusOnlyAtStart) {
  Add(Msg("a", 1, 100));  // a's status has not come yet
  EXPECT_EQ(Advance(1500), V{});
  Status("a", 150);
  EXPECT_EQ(Advance(1510), V{"a:1"});
}

TEST_F(OrderingTest, MessagesWithoutNodeOrSeqPassThrough) {
  Status("a", 0);
  Message m = Msg("", 0, 5);
  EXPECT_TRUE(Add(m));
  EXPECT_EQ(Payloads(out_), V{":0"});
  EXPECT_EQ(b_->stats().unordered, 1u);
}

TEST_F(OrderingTest, BufferBoundForcesTheOldestOut) {
  OrderingOptions o;
  o.max_buffered = 3;
  o.max_wait_ms = 100000;
  Reset(o);
  Status("a", 0);
  for (uint64_t s = 1; s <= 5; ++s) Add(Msg("a", s, static_cast<int64_t>(s) * 10));
  // Over the bound: the oldest goes early, and the node holding it back (a,
  // stuck at 0) stops doing so, so what it held goes too, in order.
  EXPECT_EQ(Advance(1001), (V{"a:1", "a:2", "a:3", "a:4", "a:5"}));
  EXPECT_EQ(b_->buffered(), 0u);
  EXPECT_EQ(b_->stats().forced, 1u);
}

TEST_F(OrderingTest, DropBufferedForgetsWhatWasNotHandedOut) {
  Status("a", 0);
  Add(Msg("a", 1, 10));
  Add(Msg("a", 2, 20));
  Status("a", 15);
  EXPECT_EQ(Advance(1010), V{"a:1"});
  b_->DropBuffered();  // the connection died: a:2 will come again
  EXPECT_FALSE(Add(Msg("a", 1, 10)));
  EXPECT_TRUE(Add(Msg("a", 2, 20)));
  Status("a", 100);
  EXPECT_EQ(Advance(1020), V{"a:2"});
}

// Many nodes, shuffled arrival within each node's upload order, duplicates:
// every message once, per-topic order, none late while watermarks are honest.
TEST_F(OrderingTest, RandomFleetIsReleasedOnceAndInOrder) {
  OrderingOptions o;
  o.max_wait_ms = 1000000;  // nothing forced: the watermark alone
  Reset(o);
  std::mt19937_64 rng(42);
  const int kNodes = 20, kPerNode = 500;
  struct Pending {
    std::vector<Message> msgs;
    size_t next = 0;
  };
  std::vector<Pending> nodes(kNodes);
  for (int n = 0; n < kNodes; ++n) {
    std::string name = "n" + std::to_string(n);
    int64_t ts = 1000 + static_cast<int64_t>(rng() % 50);
    for (int i = 0; i < kPerNode; ++i) {
      ts += 1 + static_cast<int64_t>(rng() % 20);
      nodes[n].msgs.push_back(
          Msg(name, static_cast<uint64_t>(i + 1), ts, "t" + std::to_string(rng() % 3)));
    }
    Status(name, 0);
  }
  std::vector<Message> got;
  size_t total = kNodes * kPerNode;
  for (int step = 0; got.size() < total && step < 100000; ++step) {
    int n = static_cast<int>(rng() % kNodes);
    Pending& p = nodes[n];
    std::string name = "n" + std::to_string(n);
    if (p.next < p.msgs.size()) {
      Add(p.msgs[p.next]);
      if (rng() % 7 == 0) Add(p.msgs[p.next]);  // a redelivery
      ++p.next;
    }
    // The node's honest watermark: the ts of its next unsent message.
    int64_t wm = p.next < p.msgs.size() ? p.msgs[p.next].ts_ms : INT64_MAX / 2;
    Status(name, wm);
    now_ += 1;
    b_->Advance(now_, &out_);
    for (auto& m : out_) got.push_back(std::move(m));
    out_.clear();
  }
  ASSERT_EQ(got.size(), total);
  std::map<std::string, std::pair<int64_t, std::string>> last;
  std::set<std::pair<std::string, uint64_t>> ids;
  for (const auto& m : got) {
    EXPECT_FALSE(m.late);
    EXPECT_TRUE(ids.insert({m.node, m.seq}).second);
    auto& l = last[m.topic];
    EXPECT_LE(l.first, m.ts_ms) << m.topic;
    l.first = m.ts_ms;
  }
  EXPECT_EQ(b_->stats().late, 0u);
  EXPECT_GT(b_->stats().duplicates, 0u);
}

}  // namespace
}  // namespace edgespool::central
