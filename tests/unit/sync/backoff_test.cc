// Backoff: bounds, growth, full jitter, reset and determinism by seed.
#include "sync/backoff.h"

#include <gtest/gtest.h>

#include <set>
#include <vector>

namespace edgespool::sync {
namespace {

TEST(Backoff, StaysWithinInitialAndGrowingCeiling) {
  Backoff b(1000, 30000, 42);
  uint64_t expected_ceiling[] = {2000, 4000, 8000, 16000, 30000, 30000, 30000};
  for (uint64_t ceiling : expected_ceiling) {
    EXPECT_EQ(b.CeilingMs(), ceiling);
    uint64_t d = b.NextDelayMs();
    EXPECT_GE(d, 1000u);
    EXPECT_LE(d, ceiling);
  }
}

TEST(Backoff, NeverBelowInitialSoNoHotLoop) {
  Backoff b(250, 30000, 7);
  for (int i = 0; i < 10000; ++i) ASSERT_GE(b.NextDelayMs(), 250u);
}

TEST(Backoff, FullJitterSpreadsOverTheWholeWindow) {
  // Many gateways at the cap: delays cover [initial, max], not a spike.
  Backoff b(1000, 30000, 1);
  for (int i = 0; i < 10; ++i) (void)b.NextDelayMs();
  std::vector<int> buckets(6, 0);  // 5-second buckets over 0..30 s
  uint64_t lo = UINT64_MAX, hi = 0;
  for (int i = 0; i < 6000; ++i) {
    uint64_t d = b.NextDelayMs();
    lo = std::min(lo, d);
    hi = std::max(hi, d);
    buckets[std::min<size_t>(d / 5000, 5)]++;
  }
  EXPECT_LT(lo, 1500u);
  EXPECT_GT(hi, 29000u);
  for (size_t i = 1; i < buckets.size(); ++i) {
    EXPECT_GT(buckets[i], 800) << "bucket " << i;  // ~1000 expected each
  }
}

TEST(Backoff, ResetStartsOver) {
  Backoff b(100, 10000, 3);
  for (int i = 0; i < 20; ++i) (void)b.NextDelayMs();
  EXPECT_EQ(b.CeilingMs(), 10000u);
  b.Reset();
  EXPECT_EQ(b.attempt(), 0u);
  EXPECT_EQ(b.CeilingMs(), 200u);
  EXPECT_LE(b.NextDelayMs(), 200u);
}

TEST(Backoff, SameSeedSameSequenceDifferentSeedDiffers) {
  Backoff a(1000, 30000, 99), b(1000, 30000, 99), c(1000, 30000, 100);
  std::vector<uint64_t> sa, sb, sc;
  for (int i = 0; i < 20; ++i) {
    sa.push_back(a.NextDelayMs());
    sb.push_back(b.NextDelayMs());
    sc.push_back(c.NextDelayMs());
  }
  EXPECT_EQ(sa, sb);
  EXPECT_NE(sa, sc);
}

TEST(Backoff, DegenerateConfigIsClamped) {
  Backoff zero(0, 0, 1);
  EXPECT_GE(zero.NextDelayMs(), 1u);
  Backoff inverted(5000, 1000, 1);  // max below initial: max becomes initial
  for (int i = 0; i < 5; ++i) EXPECT_EQ(inverted.NextDelayMs(), 5000u);
  Backoff huge(1, UINT64_MAX / 2, 1);
  for (int i = 0; i < 200; ++i) (void)huge.NextDelayMs();  // no overflow in the ceiling
  EXPECT_EQ(huge.CeilingMs(), UINT64_MAX / 2);
}

}  // namespace
}  // namespace edgespool::sync
