// The downlink's integration fixture, shared by the agent's downlink tests
// and the consumer SDK's: a real mosquitto, the agent as a process, one-shot
// central publishes with mosquitto_pub (QoS 1), and the wait for the agent's
// SUBSCRIBE to be in place on the broker.
#pragma once

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>

#include "agent/client/consumer.h"
#include "tests/support/e2e.h"
#include "tests/support/e2e_fixture.h"
#include "tests/support/test_env.h"

namespace edgespool::testing {

// AgentProcess's node is test-node: its downlink filter is this plus '#'.
inline constexpr char kDownTopic[] = "edgespool/test-node/down/";

class DownlinkFixture : public ::testing::Test {
 protected:
  void StartBroker() {
    broker_ = std::make_unique<Mosquitto>(dir_.path(), MosquittoOptions{});
    ASSERT_TRUE(broker_->Start()) << broker_->log();
  }
  void StartAgent(std::multimap<std::string, std::string> settings = {}) {
    agent_ = std::make_unique<AgentProcess>(dir_.path(), broker_->url(), std::move(settings));
    ASSERT_TRUE(agent_->Start()) << agent_->log();
  }
  // One QoS 1 message on kDownTopic + suffix; true once the broker PUBACKed it.
  bool Publish(const std::string& suffix, const std::string& payload) {
    Process p;
    if (!p.Start({"mosquitto_pub", "-h", "127.0.0.1", "-p", std::to_string(broker_->port()),
                  "-q", "1", "-t", kDownTopic + suffix, "-m", payload},
                 dir_.File("pub.log"))) {
      return false;
    }
    return p.Wait(10000) == 0;
  }
  // Publishes probes until one reaches c: the agent's SUBSCRIBE has landed.
  // Drains and acks the probes that follow it.
  void WaitUntilSubscribed(client::Consumer& c) {
    for (int i = 0; i < 100; ++i) {
      ASSERT_TRUE(Publish("probe", "probe"));
      if (auto m = c.Next(200); m.ok()) {
        ASSERT_TRUE(c.AckUpTo(m->seq).ok());
        for (auto more = c.Next(300); more.ok(); more = c.Next(300)) {
          ASSERT_TRUE(c.AckUpTo(more->seq).ok());
        }
        return;
      }
    }
    FAIL() << "the agent never subscribed: " << agent_->log();
  }

  TempDir dir_;
  std::unique_ptr<Mosquitto> broker_;
  std::unique_ptr<AgentProcess> agent_;
};

}  // namespace edgespool::testing
