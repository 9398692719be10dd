// The loop-lag probe on a real loop: a callback that holds the loop thread
// shows up as one late firing of about its length, and an idle loop is
// (nearly) never late.
#include "agent/loop_lag.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <thread>
#include <vector>

namespace edgespool::agent {
namespace {

TEST(LoopLagProbeTest, ABlockedLoopIsReportedOnceAtAboutItsLength) {
  auto loop = platform::Loop::Create();
  ASSERT_TRUE(loop.ok());
  std::vector<double> lags;
  LoopLagProbe probe(**loop, platform::SystemClock::Get(), 20,
                     [&](double s) { lags.push_back(s); });
  platform::TimerHandle block(**loop), stop(**loop);
  // 100 ms in, a callback holds the loop thread for 200 ms.
  block.Start(100, 0, [] { std::this_thread::sleep_for(std::chrono::milliseconds(200)); });
  stop.Start(500, 0, [&] {
    probe.Stop();
    (*loop)->Stop();
  });
  (*loop)->Run();
  ASSERT_GE(lags.size(), 8u);
  size_t over_150ms = 0;
  for (double s : lags) {
    EXPECT_GE(s, 0.0);
    if (s >= 0.15) ++over_150ms;
  }
  EXPECT_EQ(over_150ms, 1u) << "one stall, counted once";
  double worst = *std::max_element(lags.begin(), lags.end());
  EXPECT_GE(worst, 0.15);
  EXPECT_LT(worst, 1.0);
}

}  // namespace
}  // namespace edgespool::agent
