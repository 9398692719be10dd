#include <gtest/gtest.h>

#include "store/journal.h"

namespace edgespool::store {
namespace {

TEST(TopicMatchesTest, ExactLevels) {
  EXPECT_TRUE(TopicMatches("a/b/c", "a/b/c"));
  EXPECT_FALSE(TopicMatches("a/b/c", "a/b"));
  EXPECT_FALSE(TopicMatches("a/b", "a/b/c"));
  EXPECT_FALSE(TopicMatches("a/b/c", "a/b/d"));
  EXPECT_TRUE(TopicMatches("/a", "/a"));
  EXPECT_FALSE(TopicMatches("a", "/a"));
}

TEST(TopicMatchesTest, PlusMatchesExactlyOneLevel) {
  EXPECT_TRUE(TopicMatches("a/+/c", "a/b/c"));
  EXPECT_TRUE(TopicMatches("a/+/c", "a//c"));  // an empty level is a level
  EXPECT_FALSE(TopicMatches("a/+/c", "a/b/x/c"));
  EXPECT_TRUE(TopicMatches("+", "a"));
  EXPECT_FALSE(TopicMatches("+", "a/b"));
  EXPECT_FALSE(TopicMatches("a/+", "a"));
  EXPECT_TRUE(TopicMatches("a/+", "a/"));
  EXPECT_TRUE(TopicMatches("+/+", "/a"));
}

TEST(TopicMatchesTest, HashMatchesParentAndBelow) {
  EXPECT_TRUE(TopicMatches("#", "a/b/c"));
  EXPECT_TRUE(TopicMatches("a/#", "a"));
  EXPECT_TRUE(TopicMatches("a/#", "a/b"));
  EXPECT_TRUE(TopicMatches("a/#", "a/b/c"));
  EXPECT_FALSE(TopicMatches("a/#", "b/a"));
  EXPECT_TRUE(TopicMatches("a/+/#", "a/b/c/d"));
  EXPECT_TRUE(TopicMatches("a/+/#", "a/b"));
}

TEST(TopicMatchesTest, DollarTopicsNeedAnExplicitFirstLevel) {
  EXPECT_FALSE(TopicMatches("#", "$SYS/x"));
  EXPECT_FALSE(TopicMatches("+/x", "$SYS/x"));
  EXPECT_TRUE(TopicMatches("$SYS/#", "$SYS/x"));
}

TEST(TopicMatchesTest, InvalidFiltersMatchNothing) {
  EXPECT_FALSE(TopicMatches("", "a"));
  EXPECT_FALSE(TopicMatches("a/#/b", "a/x/b"));
  EXPECT_FALSE(TopicMatches("a+", "a+"));
  EXPECT_FALSE(TopicMatches("a/b#", "a/b#"));
}

TEST(NamesTest, PriorityAndState) {
  EXPECT_STREQ(PriorityName(Priority::kHigh), "high");
  EXPECT_STREQ(PriorityName(Priority::kNormal), "normal");
  EXPECT_STREQ(PriorityName(Priority::kLow), "low");
  EXPECT_STREQ(MessageStateName(MessageState::kPending), "pending");
  EXPECT_STREQ(MessageStateName(MessageState::kSent), "sent");
  EXPECT_STREQ(MessageStateName(MessageState::kDead), "dead");
  EXPECT_STREQ(MessageStateName(MessageState::kExpired), "expired");
  EXPECT_STREQ(MessageStateName(MessageState::kUnknown), "unknown");
}

}  // namespace
}  // namespace edgespool::store
