// The soak of issue 19 (label slow: `platform/dev.sh test --slow`): an hour
// of producers at 2,000 msg/s into the real agent, mosquitto (persistence
// on) restarted every 30 s, the agent SIGKILLed every 5 minutes and started
// again at once, 1% packet loss each way on the uplink (iptables statistic in
// a network namespace; skipped when the environment refuses one). Prints the
// curve a row a minute; passes when lost = 0, unexpected = 0, the agent's RSS
// and fd count stay flat and the journal stays within its cap (rules in
// tests/support/soak.cc). EDGESPOOL_SOAK_DURATION (e.g. "120s") shortens it
// for development with the schedule scaled; tests/bench/soak_bench is the
// same run from the command line.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>

#include "tests/support/soak.h"

namespace edgespool::testing {
namespace {

TEST(SoakSlowTest, OneHourOfFaultsLosesNothingAndStaysFlat) {
  int64_t duration_ms = 3600 * 1000;
  if (const char* d = std::getenv("EDGESPOOL_SOAK_DURATION")) {
    duration_ms = ParseDurationMs(d);
    ASSERT_GT(duration_ms, 0) << "EDGESPOOL_SOAK_DURATION: " << d;
  }
  SoakResult r = RunSoak(ScaledSoakOptions(duration_ms));
  std::printf("%s", r.Summary().c_str());
  if (r.skipped) GTEST_SKIP() << r.skip_reason;
  ASSERT_TRUE(r.setup_error.empty()) << r.setup_error;
  EXPECT_GT(r.acked, 0u);
  EXPECT_EQ(r.lost, 0u);
  EXPECT_EQ(r.unexpected, 0u);
  EXPECT_TRUE(r.loss_applied);
  EXPECT_GT(r.packets_dropped, 0u) << "the loss rules never matched";
  EXPECT_TRUE(r.rss_flat) << "RSS " << r.rss_first_max_kib << " -> " << r.rss_last_max_kib
                          << " KiB";
  EXPECT_TRUE(r.fds_flat) << "fds " << r.fds_first_max << " -> " << r.fds_last_max;
  EXPECT_TRUE(r.disk_within_cap);
  EXPECT_GT(r.broker_restarts, 0);
  EXPECT_GT(r.agent_kills, 0);
}

}  // namespace
}  // namespace edgespool::testing
