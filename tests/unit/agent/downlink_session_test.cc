// ConsumerSession and TopicMap: the downlink's pure parts.
#include <gtest/gtest.h>

#include "agent/downlink/consumer_session.h"
#include "agent/downlink/topic_map.h"

namespace edgespool::agent::downlink {
namespace {

TEST(ConsumerSessionTest, PositionIsTheOldestInFlightMinusOne) {
  ConsumerSession s("hmi", true, {"down/#"}, 3);
  s.Rewind(10);
  EXPECT_EQ(s.position(), 10u);
  s.Delivered(11, 5, 1000);
  s.Skip(12);  // not matching
  s.Delivered(13, 5, 1001);
  EXPECT_EQ(s.read_pos(), 13u);
  EXPECT_EQ(s.position(), 10u);
  EXPECT_TRUE(s.Ack(13));  // out of order: the position waits for 11
  EXPECT_EQ(s.position(), 10u);
  EXPECT_TRUE(s.Ack(11));
  EXPECT_EQ(s.position(), 13u);
  EXPECT_FALSE(s.Ack(11));  // twice
  EXPECT_EQ(s.acked_total, 2u);
}

TEST(ConsumerSessionTest, WindowBoundsWhatIsInFlight) {
  ConsumerSession s("w", false, {"#"}, 2);
  s.Delivered(1, 1, 0);
  EXPECT_TRUE(s.HasRoom());
  s.Delivered(2, 1, 0);
  EXPECT_FALSE(s.HasRoom());
  EXPECT_EQ(s.AckUpTo(1), 1u);
  EXPECT_TRUE(s.HasRoom());
  EXPECT_EQ(s.AckUpTo(100), 1u);
  EXPECT_EQ(s.position(), 2u);
}

TEST(ConsumerSessionTest, DetachRewindsToTheAckedPosition) {
  ConsumerSession s("d", true, {"#"}, 10);
  s.Delivered(1, 1, 0);
  s.Delivered(2, 1, 0);
  s.Delivered(3, 1, 0);
  EXPECT_TRUE(s.Ack(1));
  s.Detach(5);
  EXPECT_EQ(s.position(), 1u);
  EXPECT_EQ(s.read_pos(), 1u);  // 2 and 3 are read and delivered again
  EXPECT_EQ(s.inflight(), 0u);
  EXPECT_EQ(s.last_seen_ms(), 5);
}

TEST(ConsumerSessionTest, MatchesAnyOfItsFilters) {
  ConsumerSession s("m", false, {"down/cmd/+", "config/#"}, 1);
  EXPECT_TRUE(s.Matches("down/cmd/reboot"));
  EXPECT_TRUE(s.Matches("config"));
  EXPECT_FALSE(s.Matches("down/cmd/a/b"));
  EXPECT_FALSE(s.Matches("other"));
}

TEST(TopicMapTest, SuffixAndWholeTopicTemplates) {
  TopicMap map({{"edgespool/gw1/down/#", "down/{suffix}"},
                {"fleet/+/config", "cfg/{topic}"},
                {"broadcast/#", "{topic}"}});
  EXPECT_EQ(map.Map("edgespool/gw1/down/cmd/reboot")->local_topic, "down/cmd/reboot");
  EXPECT_EQ(map.Map("edgespool/gw1/down")->local_topic, "down");
  EXPECT_EQ(map.Map("fleet/a/config")->local_topic, "cfg/fleet/a/config");
  EXPECT_EQ(map.Map("broadcast/x")->local_topic, "broadcast/x");
  EXPECT_FALSE(map.Map("edgespool/gw2/down/cmd").has_value());
  EXPECT_EQ(map.Filters().size(), 3u);
}

TEST(TopicMapTest, FirstMatchingMappingWins) {
  TopicMap map({{"a/#", "first/{suffix}", 10}, {"a/b", "second", 20}});
  auto m = map.Map("a/b");
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->local_topic, "first/b");
  EXPECT_EQ(m->mapping->max_message_bytes, 10u);
}

TEST(TopicMapTest, FilterSuffix) {
  EXPECT_EQ(FilterSuffix("a/b/#", "a/b/c/d"), "c/d");
  EXPECT_EQ(FilterSuffix("#", "x/y"), "x/y");
  EXPECT_EQ(FilterSuffix("a/+/#", "a/q/z"), "z");
  EXPECT_EQ(FilterSuffix("a/b", "a/b"), "a/b");
}

}  // namespace
}  // namespace edgespool::agent::downlink
