// The soak of issue 19 cut to 75 s for every CI run (the hour is
// soak_slow_test.cc): 2,000 msg/s into the real agent, mosquitto restarted
// every 18 s, the agent SIGKILLed every 10 s, 1% packet loss on the uplink
// when a network namespace is allowed (without one, the same run on
// loopback, said in the output). Asserts what 75 s can show: lost = 0,
// unexpected = 0, the journal within its cap, the fd count flat (a leaked
// fd is a whole one). RSS is printed, not asserted: in 75 s it is the
// SQLite cache warming, which the hour tells apart from a leak.
#include "tests/support/soak.h"

#include <gtest/gtest.h>

#include <cstdio>

namespace edgespool::testing {
namespace {

TEST(SoakTest, SeventyFiveSecondsOfFaultsLoseNothing) {
  SoakOptions o = ScaledSoakOptions(75 * 1000);
  o.require_loss = false;
  SoakResult r = RunSoak(o);
  std::printf("%s", r.Summary().c_str());
  ASSERT_FALSE(r.skipped) << r.skip_reason;
  ASSERT_TRUE(r.setup_error.empty()) << r.setup_error;
  EXPECT_GT(r.acked, 100000u);  // 2,000 msg/s for 75 s, less the agent's downtime
  EXPECT_EQ(r.lost, 0u);
  EXPECT_EQ(r.unexpected, 0u);
  EXPECT_TRUE(r.fds_flat) << "fds " << r.fds_first_max << " -> " << r.fds_last_max;
  EXPECT_TRUE(r.disk_within_cap);
  EXPECT_GE(r.broker_restarts, 3);
  EXPECT_GE(r.agent_kills, 6);
  if (r.loss_applied) {
    EXPECT_GT(r.packets_dropped, 0u) << "the loss rules never matched";
  }
}

}  // namespace
}  // namespace edgespool::testing
