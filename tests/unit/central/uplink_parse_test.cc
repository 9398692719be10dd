#include "central/uplink_parse.h"

#include <gtest/gtest.h>

#include "central/partition.h"
#include "sync/batch/batch_frame.h"
#include "sync/routes.h"

namespace edgespool::central {
namespace {

TEST(UplinkParseTest, StatusWithWatermark) {
  auto s = ParseNodeStatus(
      R"({"node":"gw1","online":true,"pending":{"messages":3,"oldest_ts_ms":5},"watermark_ms":42,"ts_ms":99})");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->node, "gw1");
  EXPECT_TRUE(s->online);
  EXPECT_EQ(s->watermark_ms, 42);
}

TEST(UplinkParseTest, StatusOfAnOlderAgentDerivesTheWatermark) {
  auto backlog = ParseNodeStatus(
      R"({"node":"a","online":true,"pending":{"messages":3,"oldest_ts_ms":5000},"ts_ms":9000})");
  ASSERT_TRUE(backlog.ok());
  EXPECT_EQ(backlog->watermark_ms, 5000);
  auto idle = ParseNodeStatus(
      R"({"node":"a","online":true,"pending":{"messages":0,"oldest_ts_ms":0},"ts_ms":9000})");
  ASSERT_TRUE(idle.ok());
  EXPECT_EQ(idle->watermark_ms, 8500);
  auto offline = ParseNodeStatus(R"({"node":"a","online":false,"ts_ms":9000})");
  ASSERT_TRUE(offline.ok());
  EXPECT_FALSE(offline->online);
  EXPECT_EQ(offline->watermark_ms, -1);
}

TEST(UplinkParseTest, BadStatusDocuments) {
  for (const char* bad :
       {"", "[]", "{", R"({"online":true})", R"({"node":""})", R"({"node":5})", "null"}) {
    EXPECT_FALSE(ParseNodeStatus(bad).ok()) << bad;
  }
  auto s = ParseNodeStatus(R"({"node":"a","online":true,"watermark_ms":"x"})");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->watermark_ms, -1);  // no usable watermark: the node is waited for
}

TEST(UplinkParseTest, UserProperties) {
  sync::mqtt::Properties p;
  p.user_properties = {{"es-ts", "1700000000123"}, {"es-seq", "7"}, {"es-node", "gw1"},
                       {"es-id", "m-1"},           {"unit", "C"},   {"es-topic", "s/t"}};
  auto m = MessageFromPublish("fleet/3/s/t", "21.5", &p);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->node, "gw1");
  EXPECT_EQ(m->seq, 7u);
  EXPECT_EQ(m->ts_ms, 1700000000123);
  EXPECT_EQ(m->id, "m-1");
  EXPECT_EQ(m->topic, "s/t");
  ASSERT_EQ(m->headers.size(), 1u);
  EXPECT_EQ(m->headers[0].first, "unit");
  EXPECT_EQ(m->payload, "21.5");
}

TEST(UplinkParseTest, WithoutPropertiesTheMessageIsUnordered) {
  auto m = MessageFromPublish("a/b", "x", nullptr);
  ASSERT_TRUE(m.ok());
  EXPECT_TRUE(m->node.empty());
  EXPECT_EQ(m->seq, 0u);
  sync::mqtt::Properties p;
  p.user_properties = {{"es-seq", "7"}, {"es-node", "gw1"}};  // no es-ts
  m = MessageFromPublish("a/b", "x", &p);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->seq, 0u);
}

TEST(UplinkParseTest, MalformedNumbersAreErrors) {
  for (const char* ts : {"", "x", "1.5", "99999999999999999999", "+1"}) {
    sync::mqtt::Properties p;
    p.user_properties = {{"es-ts", ts}, {"es-seq", "1"}, {"es-node", "n"}};
    EXPECT_FALSE(MessageFromPublish("t", "", &p).ok()) << ts;
  }
  sync::mqtt::Properties p;
  p.user_properties = {{"es-ts", "-5"}, {"es-seq", "0"}, {"es-node", "n"}};
  EXPECT_FALSE(MessageFromPublish("t", "", &p).ok());  // seq 0 is never a journal seq
  int64_t v;
  EXPECT_TRUE(ParseInt64("-9223372036854775807", &v));
  EXPECT_FALSE(ParseInt64("9223372036854775808", &v));
}

TEST(UplinkParseTest, BatchFrameRecords) {
  batch::FrameEncoder enc("gw2", batch::Codec::kZstd, 1);
  enc.Add(5, 100, "a", "id5", {{"k", "v"}}, "p5");
  enc.Add(9, 90, "b", "", {}, "p9");
  auto frame = enc.Finish();
  ASSERT_TRUE(frame.ok());
  std::vector<Message> out;
  ASSERT_TRUE(MessagesFromFrame(*frame, &out).ok());
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].node, "gw2");
  EXPECT_EQ(out[0].seq, 5u);
  EXPECT_EQ(out[1].ts_ms, 90);
  EXPECT_EQ(out[1].topic, "b");
  std::string bad = *frame;
  bad[bad.size() / 2] ^= 0x55;
  out.clear();
  EXPECT_FALSE(MessagesFromFrame(bad.substr(0, bad.size() - 3), &out).ok());
}

TEST(UplinkParseTest, TopicMatches) {
  EXPECT_TRUE(TopicMatches("edgespool/+/status", "edgespool/gw1/status"));
  EXPECT_FALSE(TopicMatches("edgespool/+/status", "edgespool/gw1/batch"));
  EXPECT_FALSE(TopicMatches("edgespool/+/status", "edgespool/gw1/status/x"));
  EXPECT_TRUE(TopicMatches("a/#", "a"));
  EXPECT_TRUE(TopicMatches("a/#", "a/b/c"));
  EXPECT_TRUE(TopicMatches("#", "x/y"));
  EXPECT_FALSE(TopicMatches("#", "$SYS/x"));
  EXPECT_FALSE(TopicMatches("a/b", "a"));
  EXPECT_TRUE(TopicMatches("+/+", "/x"));
}

TEST(UplinkParseTest, TopicPartitionIsStableAndInRange) {
  // FNV-1a 32 of "sensors/t0": fixed forever (agents and consumers agree).
  EXPECT_EQ(sync::TopicPartition("", 7), 2166136261u % 7);
  for (uint32_t n : {1u, 2u, 8u, 1000u}) {
    EXPECT_LT(sync::TopicPartition("sensors/t0", n), n);
  }
  EXPECT_EQ(sync::ExpandTopicTemplate("fleet/{part:4}/{topic}", "gw", "sensors/t0"),
            "fleet/" + std::to_string(sync::TopicPartition("sensors/t0", 4)) + "/sensors/t0");
  EXPECT_EQ(sync::ExpandTopicTemplate("x/{part:0}/{part:abc}", "gw", "t"), "x/{part:0}/{part:abc}");
}

}  // namespace
}  // namespace edgespool::central
