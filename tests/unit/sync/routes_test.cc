#include "sync/routes.h"

#include <gtest/gtest.h>

#include "sync/token_bucket.h"

namespace edgespool::sync {
namespace {

TEST(RoutesTest, FirstMatchWinsAndCatchAllIsImplied) {
  Route alarms;
  alarms.match = "alarms/#";
  alarms.priority = store::Priority::kHigh;
  Route batched;
  batched.match = "sensors/+/raw";
  batched.mode = UploadMode::kBatch;
  RouteTable t({alarms, batched}, "gw1", UploadMode::kMessage);
  ASSERT_EQ(t.size(), 3u);
  EXPECT_EQ(t.Find("alarms/fire/hall"), 0u);
  EXPECT_EQ(t.Find("sensors/t1/raw"), 1u);
  EXPECT_EQ(t.Find("sensors/t1/raw/x"), 2u);
  EXPECT_EQ(t.Find("other"), 2u);
  EXPECT_EQ(t.route(2).mode, UploadMode::kMessage);
  RouteTable batch_default({}, "gw1", UploadMode::kBatch);
  EXPECT_EQ(batch_default.route(batch_default.Find("x")).mode, UploadMode::kBatch);
}

TEST(RoutesTest, UpstreamTopicTemplates) {
  EXPECT_EQ(ExpandTopicTemplate("{topic}", "gw", "a/b/c"), "a/b/c");
  EXPECT_EQ(ExpandTopicTemplate("site/{node}/{topic}", "gw", "a/b"), "site/gw/a/b");
  EXPECT_EQ(ExpandTopicTemplate("x/{1}/{3}", "gw", "a/b/c/d"), "x/a/c");
  EXPECT_EQ(ExpandTopicTemplate("x/{2}", "gw", "a"), "x/");  // missing level: empty
  EXPECT_EQ(ExpandTopicTemplate("{unknown}/{", "gw", "a"), "{unknown}/{");
  EXPECT_EQ(ExpandTopicTemplate("edgespool/{node}/batch", "gw-7", ""), "edgespool/gw-7/batch");
  Route r;
  r.upstream_topic = "up/{node}/{2}";
  RouteTable t({r}, "n1", UploadMode::kMessage);
  EXPECT_EQ(t.UpstreamTopic(0, "a/b/c"), "up/n1/b");
}

TEST(TokenBucketTest, RefillsAtRateAndCapsAtBurst) {
  const int64_t s = 1000000000;
  TokenBucket b(1000, 500, 0);
  EXPECT_TRUE(b.TryTake(500, 0));
  EXPECT_FALSE(b.TryTake(1, 0));
  EXPECT_EQ(b.WaitMs(100, 0), 101);
  EXPECT_TRUE(b.TryTake(100, s / 10));
  EXPECT_TRUE(b.TryTake(500, 10 * s));   // capped at burst, not 10,000
  EXPECT_FALSE(b.TryTake(10, 10 * s));
  // Larger than the burst: allowed when full, then the bucket is in debt.
  TokenBucket big(100, 100, 0);
  EXPECT_TRUE(big.TryTake(1000, 0));
  EXPECT_FALSE(big.TryTake(1, 5 * s));
  EXPECT_TRUE(big.TryTake(1, 10 * s));
  TokenBucket unlimited(0, 0, 0);
  EXPECT_TRUE(unlimited.TryTake(1e12, 0));
}

}  // namespace
}  // namespace edgespool::sync
