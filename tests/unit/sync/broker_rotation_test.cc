// BrokerRotation: the order of a round, at once within a round and the
// backoff only between rounds, the failover path after a healthy link, and
// a reload that keeps the current broker.
#include "sync/broker_rotation.h"

#include <gtest/gtest.h>

#include <set>
#include <vector>

namespace edgespool::sync {
namespace {

// Fails every attempt for `n` attempts; the brokers tried, with a -1 where
// the caller would have waited the backoff.
std::vector<int> FailAll(BrokerRotation& r, int n) {
  std::vector<int> seq;
  for (int i = 0; i < n; ++i) {
    seq.push_back(static_cast<int>(r.current()));
    if (r.OnFailure(false)) seq.push_back(-1);
  }
  return seq;
}

TEST(BrokerRotation, OneBrokerWaitsTheBackoffAfterEveryFailureAsBefore) {
  BrokerRotation r(1, FailoverOrder::kOrdered, 1);
  EXPECT_EQ(FailAll(r, 3), (std::vector<int>{0, -1, 0, -1, 0, -1}));
  EXPECT_TRUE(r.OnFailure(true)) << "a healthy link lost: still the backoff, there is no other";
}

TEST(BrokerRotation, OrderedTriesTheListAtOnceThenBacksOffAndStartsAgainFromTheFirst) {
  BrokerRotation r(3, FailoverOrder::kOrdered, 1);
  EXPECT_EQ(FailAll(r, 6), (std::vector<int>{0, 1, 2, -1, 0, 1, 2, -1}));
}

TEST(BrokerRotation, OrderedAfterAHealthyLinkIsLostMovesToTheNextWrappingAround) {
  BrokerRotation r(3, FailoverOrder::kOrdered, 1);
  ASSERT_FALSE(r.OnFailure(false));  // 0 refused
  ASSERT_EQ(r.current(), 1u);        // connected to 1, healthy for a while, then lost
  EXPECT_FALSE(r.OnFailure(true)) << "the next broker at once, no backoff";
  EXPECT_EQ(r.current(), 2u);
  EXPECT_FALSE(r.OnFailure(false));
  EXPECT_EQ(r.current(), 0u) << "wraps around";
  EXPECT_TRUE(r.OnFailure(false)) << "1 (lost), 2 and 0 failed: the round is over";
  EXPECT_EQ(r.current(), 0u) << "after the backoff, from the first again";
}

TEST(BrokerRotation, LinksLostBeforeTheyWereHealthyCountInTheRound) {
  // Brokers that accept and drop us at once must not make a hot loop: at
  // most one connect per broker per backoff delay.
  BrokerRotation r(2, FailoverOrder::kOrdered, 1);
  EXPECT_FALSE(r.OnFailure(false));
  EXPECT_TRUE(r.OnFailure(false));
}

TEST(BrokerRotation, RandomVisitsEveryBrokerOncePerRoundInVaryingOrder) {
  BrokerRotation r(4, FailoverOrder::kRandom, 42);
  std::set<std::vector<int>> orders;
  for (int round = 0; round < 20; ++round) {
    std::vector<int> order;
    for (int i = 0; i < 4; ++i) {
      order.push_back(static_cast<int>(r.current()));
      bool over = r.OnFailure(false);
      EXPECT_EQ(over, i == 3);
    }
    EXPECT_EQ(std::set<int>(order.begin(), order.end()).size(), 4u) << "each broker once";
    orders.insert(order);
  }
  EXPECT_GT(orders.size(), 5u) << "a fresh permutation each round";
}

TEST(BrokerRotation, RandomSpreadsTheFirstBrokerOverTheList) {
  std::vector<int> first(3);
  for (uint64_t seed = 1; seed <= 300; ++seed) {
    BrokerRotation r(3, FailoverOrder::kRandom, seed);
    ++first[r.current()];
  }
  for (int n : first) EXPECT_GT(n, 60) << "a fleet starts spread over the cluster";
}

TEST(BrokerRotation, RandomAfterAHealthyLinkIsLostTriesTheOthersFirst) {
  BrokerRotation r(3, FailoverOrder::kRandom, 7);
  size_t lost = r.current();
  EXPECT_FALSE(r.OnFailure(true));
  EXPECT_NE(r.current(), lost);
  size_t second = r.current();
  EXPECT_FALSE(r.OnFailure(false));
  EXPECT_NE(r.current(), lost);
  EXPECT_NE(r.current(), second);
  EXPECT_TRUE(r.OnFailure(false));
}

TEST(BrokerRotation, DeterministicBySeed) {
  BrokerRotation a(5, FailoverOrder::kRandom, 9), b(5, FailoverOrder::kRandom, 9);
  EXPECT_EQ(FailAll(a, 20), FailAll(b, 20));
}

TEST(BrokerRotation, ResetKeepsTheCurrentBrokerOfANewList) {
  BrokerRotation r(2, FailoverOrder::kOrdered, 1);
  r.Reset(3, 2);
  EXPECT_EQ(r.current(), 2u);
  EXPECT_FALSE(r.OnFailure(false));
  EXPECT_EQ(r.current(), 0u);
  r.Reset(2, BrokerRotation::kNone);
  EXPECT_EQ(r.current(), 0u);
  EXPECT_EQ(r.failures_in_round(), 0u);
}

}  // namespace
}  // namespace edgespool::sync
