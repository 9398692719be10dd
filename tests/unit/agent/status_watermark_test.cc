// The status document's watermark_ms (what `edgespool consume` orders by).
#include <gtest/gtest.h>

#include "agent/status_document.h"
#include "central/uplink_parse.h"

namespace edgespool::agent {
namespace {

TEST(StatusWatermarkTest, OldestPendingOrNowLessTheCommitSlack) {
  store::JournalStats j;
  EXPECT_EQ(UploadWatermark(j, 10000), 10000 - kWatermarkCommitSlackMs);  // nothing pending
  j.pending_count = 3;
  j.oldest_pending_ts_ms = 7000;
  EXPECT_EQ(UploadWatermark(j, 10000), 7000);
  j.oldest_pending_ts_ms = 9800;  // newer than now - slack: the slack still applies
  EXPECT_EQ(UploadWatermark(j, 10000), 10000 - kWatermarkCommitSlackMs);
}

TEST(StatusWatermarkTest, TheDocumentCarriesItAndTheConsumerReadsIt) {
  StatusInputs in;
  in.node = "gw1";
  in.now_ms = 50000;
  in.journal.pending_count = 1;
  in.journal.oldest_pending_ts_ms = 42000;
  std::string doc = RenderStatus(in);
  EXPECT_NE(doc.find("\"watermark_ms\":42000"), std::string::npos) << doc;
  auto s = central::ParseNodeStatus(doc);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->node, "gw1");
  EXPECT_TRUE(s->online);
  EXPECT_EQ(s->watermark_ms, 42000);
  auto off = central::ParseNodeStatus(RenderOffline("gw1", 50000));
  ASSERT_TRUE(off.ok());
  EXPECT_FALSE(off->online);
}

// While a big journal counts its backlog after a crash (store/backlog_count.h)
// the counts are unknown: said so, never 0, and the watermark still holds
// back at the oldest pending row.
TEST(StatusWatermarkTest, ABacklogStillBeingCountedIsNotShownAsEmpty) {
  StatusInputs in;
  in.node = "gw1";
  in.now_ms = 50000;
  in.rate_msgs_per_s = 100;
  in.journal.pending_counting = true;
  in.journal.oldest_pending_ts_ms = 42000;
  std::string doc = RenderStatus(in);
  EXPECT_NE(doc.find("\"pending\":{\"counting\":true,\"oldest_ts_ms\":42000"), std::string::npos)
      << doc;
  EXPECT_EQ(doc.find("\"messages\""), std::string::npos) << doc;
  EXPECT_NE(doc.find("\"drain_eta_s\":-1"), std::string::npos) << doc;
  EXPECT_EQ(UploadWatermark(in.journal, 50000), 42000);
  EXPECT_FALSE(WatermarkIdle(in.journal, 50000, 0));
}

TEST(StatusWatermarkTest, IdleIsNothingPendingAndNothingAcceptedWithinTheSlack) {
  store::JournalStats j;
  EXPECT_TRUE(WatermarkIdle(j, 10000, 0));
  EXPECT_FALSE(WatermarkIdle(j, 10000, 10000 - kWatermarkCommitSlackMs));  // maybe uncommitted
  EXPECT_TRUE(WatermarkIdle(j, 10000, 10000 - kWatermarkCommitSlackMs - 1));
  j.pending_count = 1;
  j.oldest_pending_ts_ms = 9000;
  EXPECT_FALSE(WatermarkIdle(j, 10000, 0));
}

TEST(StatusWatermarkTest, AnIdleDocumentCarriesItsFollowAndTheConsumerReadsIt) {
  StatusInputs in;
  in.node = "gw1";
  in.now_ms = 50000;
  in.follow_lag_ms = 1000;
  in.follow_for_ms = 90000;
  std::string doc = RenderStatus(in);
  EXPECT_NE(doc.find("\"watermark_follow\":{\"lag_ms\":1000,\"for_ms\":90000,\"expiry_s\":604800}"),
            std::string::npos)
      << doc;
  auto s = central::ParseNodeStatus(doc);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->watermark_ms, 50000 - kWatermarkCommitSlackMs);
  EXPECT_EQ(s->follow_lag_ms, 1000);
  EXPECT_EQ(s->follow_for_ms, 90000);
  EXPECT_EQ(s->follow_expiry_s, kIdleStatusExpiryS);
  // Busy: no follow.
  in.follow_for_ms = 0;
  doc = RenderStatus(in);
  EXPECT_EQ(doc.find("watermark_follow"), std::string::npos) << doc;
  s = central::ParseNodeStatus(doc);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->follow_for_ms, 0);
  // Nonsense is no follow.
  s = central::ParseNodeStatus(
      R"({"node":"x","online":true,"watermark_ms":5,"watermark_follow":{"lag_ms":9,"for_ms":3}})");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->follow_for_ms, 0);
}

}  // namespace
}  // namespace edgespool::agent
