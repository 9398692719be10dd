// The full-size end-to-end runs the issue asks for (label `slow`:
// `platform/dev.sh test --slow`). Smaller versions run by default in
// agent_e2e_test.cc.
#include "tests/support/e2e_fixture.h"

namespace edgespool {
namespace {

using namespace edgespool::testing;

TEST_F(AgentE2ETest, Outage100kShuffledTimestampsFourTopics) {
  StartBroker();
  StartSubscriber("sensors/#");
  broker_->Stop();
  StartAgent({{"sync", "mode = \"message\""}});
  auto p = Connect();
  ASSERT_TRUE(p);
  Publish(*p, 100000, 4, /*shuffle_ts=*/true, "o100k-");
  ASSERT_TRUE(broker_->Start());
  auto start = std::chrono::steady_clock::now();
  auto c = WaitAndCheck(100000, /*order=*/true, 300000);
  std::printf("drained 100k in %.1f s\n",
              std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  EXPECT_EQ(c.lost, 0u);
  EXPECT_EQ(c.unexpected, 0u);
  EXPECT_EQ(c.reordered, 0u);
  EXPECT_EQ(c.duplicated, 0u);
}

TEST_F(AgentE2ETest, Drain200kWithThreeBrokerRestarts) {
  StartBroker();
  StartSubscriber("sensors/#");
  broker_->Stop();
  StartAgent();
  auto p = Connect();
  ASSERT_TRUE(p);
  Publish(*p, 200000, 4, false, "d200k-");
  for (int round = 0; round < 3; ++round) {
    ASSERT_TRUE(broker_->Start());
    size_t target = sub_->Count() + 30000;
    WaitUntil([&] { return sub_->Count() > target; }, 120000);
    broker_->Stop();  // SIGTERM: see BrokerRestartsDuringDrainLoseNothing
  }
  ASSERT_TRUE(broker_->Start());
  auto c = WaitAndCheck(200000, false, 300000);
  EXPECT_EQ(c.lost, 0u);
  EXPECT_EQ(c.unexpected, 0u);
  std::printf("duplicates over 3 restarts: %zu (window 1000)\n", c.duplicated);
}

TEST_F(AgentE2ETest, AgentKilledFiveTimesDuringADrain) {
  StartBroker();
  StartSubscriber("sensors/#");
  broker_->Stop();
  StartAgent({{"uplink", "inflight = 200"}});
  {
    auto p = Connect();
    ASSERT_TRUE(p);
    Publish(*p, 100000, 4, false, "k5-");
  }
  ASSERT_TRUE(broker_->Start());
  for (int round = 0; round < 5; ++round) {
    size_t target = sub_->Count() + 10000;
    WaitUntil([&] { return sub_->Count() > target; }, 60000);
    agent_->Kill();
    ASSERT_TRUE(agent_->Start()) << agent_->log();
  }
  auto c = WaitAndCheck(100000, false, 300000);
  EXPECT_EQ(c.lost, 0u);
  EXPECT_EQ(c.unexpected, 0u);
  std::printf("duplicates over 5 SIGKILLs: %zu\n", c.duplicated);
}

}  // namespace
}  // namespace edgespool
