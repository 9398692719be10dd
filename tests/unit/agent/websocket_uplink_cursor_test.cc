// UplinkCursor (agent/websocket/uplink_cursor.h): a named WebSocket
// session's uplink position: catch-up reads within the window, the switch to
// live only when the read reached the head and the tap offered nothing past
// it, gaps counted as missed, acks and the persisted position; and the
// session messages that drive it (ack source, uplink_from).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "agent/websocket/session_message.h"
#include "agent/websocket/uplink_cursor.h"

namespace edgespool::agent::websocket {
namespace {

store::StoredMessage Row(uint64_t seq, std::string topic = "up/a") {
  store::StoredMessage m;
  m.seq = seq;
  m.message.topic = std::move(topic);
  m.message.payload = "p" + std::to_string(seq);
  return m;
}

store::StoredRead Read(std::vector<store::StoredMessage> rows, uint64_t head, bool complete) {
  store::StoredRead r;
  r.rows = std::move(rows);
  r.head_seq = head;
  r.complete = complete;
  return r;
}

struct Got {
  std::vector<uint64_t> seqs;
  std::vector<uint64_t> missed_before;
  UplinkCursor::Emit emit() {
    return [this](uint64_t missed, const store::StoredMessage& row) {
      seqs.push_back(row.seq);
      missed_before.push_back(missed);
    };
  }
};

TEST(UplinkCursorTest, CatchUpWithinTheWindowThenLive) {
  UplinkCursor c("hmi", {"up/#"}, 2, 10);
  EXPECT_EQ(c.mode(), UplinkCursor::Mode::kCatchUp);
  ASSERT_TRUE(c.WantsRead());
  EXPECT_EQ(c.read_after(), 10u);
  c.set_reading(true);
  EXPECT_FALSE(c.WantsRead());
  Got g;
  uint64_t tail =
      c.ApplyRead(Read({Row(11), Row(12, "other"), Row(13), Row(14)}, 14, true), 14, g.emit());
  // Two in flight (the window); 14 waits in the journal, not here.
  EXPECT_EQ(g.seqs, (std::vector<uint64_t>{11, 13}));
  EXPECT_EQ(tail, 0u);
  EXPECT_EQ(c.mode(), UplinkCursor::Mode::kCatchUp);
  EXPECT_FALSE(c.WantsRead());  // window full
  EXPECT_EQ(c.position(), 10u);
  EXPECT_FALSE(c.OfferLive(15));  // not live
  ASSERT_TRUE(c.Ack(11, false).ok());
  EXPECT_TRUE(c.dirty);
  EXPECT_EQ(c.position(), 12u);  // 12 is not this cursor's
  ASSERT_TRUE(c.WantsRead());
  EXPECT_EQ(c.read_after(), 13u);
  Got g2;
  c.ApplyRead(Read({Row(14)}, 14, true), 14, g2.emit());
  EXPECT_EQ(g2.seqs, (std::vector<uint64_t>{14}));
  EXPECT_EQ(c.mode(), UplinkCursor::Mode::kLive);
  EXPECT_FALSE(c.OfferLive(14));  // a hook late for a row the read had: skipped
  EXPECT_FALSE(c.OfferLive(15));  // window full (13, 14): back to catch-up
  EXPECT_EQ(c.mode(), UplinkCursor::Mode::kCatchUp);
  ASSERT_TRUE(c.Ack(14, true).ok());
  EXPECT_EQ(c.position(), 14u);
  EXPECT_EQ(c.read_after(), 14u);  // 15 is read back from the journal
}

TEST(UplinkCursorTest, StaysCatchingUpWhileTheTapIsAheadOfTheRead) {
  UplinkCursor c("hmi", {"up/#"}, 10, 0);
  Got g;
  c.set_reading(true);
  // The hook already offered seq 6, which this read (head 5) did not see.
  c.ApplyRead(Read({Row(5)}, 5, true), 6, g.emit());
  EXPECT_EQ(c.mode(), UplinkCursor::Mode::kCatchUp);
  ASSERT_TRUE(c.WantsRead());
  c.set_reading(true);
  c.ApplyRead(Read({Row(6)}, 6, true), 6, g.emit());
  EXPECT_EQ(c.mode(), UplinkCursor::Mode::kLive);
  EXPECT_EQ(g.seqs, (std::vector<uint64_t>{5, 6}));
  EXPECT_TRUE(c.OfferLive(7));
  c.Pass(8);                // another topic
  c.OfferUntapped(9, "x");  // another topic, untapped: still live
  EXPECT_EQ(c.mode(), UplinkCursor::Mode::kLive);
  c.OfferUntapped(10, "up/b");  // ours but untapped: read it back
  EXPECT_EQ(c.mode(), UplinkCursor::Mode::kCatchUp);
  EXPECT_EQ(c.read_after(), 9u);
}

TEST(UplinkCursorTest, GapsAreCountedMissed) {
  UplinkCursor c("hmi", {"up/#"}, 10, 3);
  Got g;
  c.set_reading(true);
  // 4..6 gone (retention), 8 gone, 10..12 gone after the last row.
  uint64_t tail = c.ApplyRead(Read({Row(7), Row(9)}, 12, true), 12, g.emit());
  EXPECT_EQ(g.seqs, (std::vector<uint64_t>{7, 9}));
  EXPECT_EQ(g.missed_before, (std::vector<uint64_t>{3, 1}));
  EXPECT_EQ(tail, 3u);
  EXPECT_EQ(c.missed_total, 7u);
  ASSERT_TRUE(c.Ack(9, true).ok());
  EXPECT_EQ(c.position(), 12u);
}

TEST(UplinkCursorTest, OldestSkipsTheFirstGapOnly) {
  UplinkCursor c("hmi", {"up/#"}, 10, 0);
  c.SkipFirstGap();
  Got g;
  c.set_reading(true);
  c.ApplyRead(Read({Row(40), Row(42)}, 42, true), 0, g.emit());
  EXPECT_EQ(g.missed_before, (std::vector<uint64_t>{0, 1}));
  EXPECT_EQ(c.missed_total, 1u);
}

TEST(UplinkCursorTest, AcksOfSeqsNotInFlightAreRefused) {
  UplinkCursor c("hmi", {"up/#"}, 10, 0);
  EXPECT_FALSE(c.Ack(1, false).ok());
  EXPECT_FALSE(c.Ack(1, true).ok());
  Got g;
  c.set_reading(true);
  c.ApplyRead(Read({Row(1), Row(2)}, 2, true), 0, g.emit());
  EXPECT_FALSE(c.Ack(3, false).ok());
  EXPECT_TRUE(c.Ack(2, false).ok());
  EXPECT_EQ(c.position(), 0u);  // 1 still in flight
  EXPECT_TRUE(c.Ack(1, false).ok());
  EXPECT_EQ(c.position(), 2u);
}

TEST(UplinkCursorTest, CursorRowsCannotCollideWithConsumerNames) {
  EXPECT_NE(UplinkCursorRow("hmi").find('\n'), std::string::npos);
}

TEST(UplinkSessionMessageTest, AckSourceAndUplinkFrom) {
  ClientMessage m;
  std::string err;
  ASSERT_EQ(ParseClientMessage(R"({"type":"ack","source":"uplink","up_to":7})", &m, &err),
            ParseOutcome::kOk);
  EXPECT_TRUE(m.ack_uplink);
  EXPECT_TRUE(m.cumulative);
  EXPECT_EQ(m.seq, 7u);
  ASSERT_EQ(ParseClientMessage(R"({"type":"ack","seq":7})", &m, &err), ParseOutcome::kOk);
  EXPECT_FALSE(m.ack_uplink);
  EXPECT_EQ(ParseClientMessage(R"({"type":"ack","source":"x","seq":7})", &m, &err),
            ParseOutcome::kBadRequest);
  EXPECT_EQ(ParseClientMessage(R"({"type":"ack","source":1,"seq":7})", &m, &err),
            ParseOutcome::kGarbage);
  // A named uplink-only session; `from` is then the uplink's.
  ASSERT_EQ(ParseClientMessage(R"({"type":"subscribe","session":"s","uplink":["a/#"],"from":5})",
                               &m, &err),
            ParseOutcome::kOk)
      << err;
  EXPECT_EQ(m.uplink_from, FromKind::kSeq);
  EXPECT_EQ(m.uplink_from_seq, 5u);
  ASSERT_EQ(
      ParseClientMessage(
          R"({"type":"subscribe","session":"s","filters":["d"],"uplink":["a"],"from":"oldest","uplink_from":"new"})",
          &m, &err),
      ParseOutcome::kOk)
      << err;
  EXPECT_EQ(m.from, FromKind::kOldest);
  EXPECT_EQ(m.uplink_from, FromKind::kNew);
  EXPECT_EQ(
      ParseClientMessage(
          R"({"type":"subscribe","session":"s","uplink":["a"],"uplink_from":"later"})", &m, &err),
      ParseOutcome::kBadRequest);
  EXPECT_EQ(ParseClientMessage(R"({"type":"subscribe","session":"s","status":true})", &m, &err),
            ParseOutcome::kBadRequest);
}

}  // namespace
}  // namespace edgespool::agent::websocket
