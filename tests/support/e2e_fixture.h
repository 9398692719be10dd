// The end-to-end fixture shared by the default and the slow e2e suites: a
// real broker with persistence, a persistent mosquitto_sub checker, the agent
// as a process, producers through the client library, a queue checker.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <future>
#include <random>
#include <set>
#include <thread>

#include "agent/client/producer.h"
#include "tests/support/e2e.h"

namespace edgespool::testing {

inline bool WaitUntil(const std::function<bool()>& pred, int timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return true;
}

class AgentE2ETest : public ::testing::Test {
 protected:
  void StartBroker(MosquittoOptions o = {}) {
    o.persistence = true;  // the persistent subscriber survives broker restarts
    broker_ = std::make_unique<Mosquitto>(dir_.path(), o);
    ASSERT_TRUE(broker_->Start()) << broker_->log();
  }
  void StartSubscriber(const std::string& topic = "#") {
    sub_ = std::make_unique<Subscriber>(dir_.path(), broker_->port(), topic, "checker");
    ASSERT_TRUE(sub_->Start());
  }
  void StartAgent(std::multimap<std::string, std::string> settings = {}) {
    agent_ = std::make_unique<AgentProcess>(dir_.path(), broker_->url(), std::move(settings));
    ASSERT_TRUE(agent_->Start()) << agent_->log();
  }
  std::unique_ptr<client::Producer> Connect() {
    client::ProducerOptions o;
    o.socket_path = agent_->socket();
    o.window = 512;
    auto p = client::Producer::Connect(o);
    EXPECT_TRUE(p.ok()) << p.status().ToString();
    return p.ok() ? std::move(*p) : nullptr;
  }
  // Publishes n telemetry messages over `topics` topics with the given ts
  // order; records every ack in the checker.
  void Publish(client::Producer& p, int n, int topics, bool shuffle_ts, const std::string& prefix) {
    std::vector<int64_t> ts(n);
    for (int i = 0; i < n; ++i) ts[i] = 1732300000000 + i;
    if (shuffle_ts) std::shuffle(ts.begin(), ts.end(), std::mt19937(42));
    std::vector<std::future<client::PublishResult>> futures;
    futures.reserve(n);
    for (int i = 0; i < n; ++i) {
      client::PublishOptions o;
      o.id = prefix + std::to_string(i);
      o.ts_ms = ts[i];
      futures.push_back(p.Publish("sensors/t" + std::to_string(i % topics),
                                  TelemetryPayload(o.id, ts[i], i), o));
    }
    for (int i = 0; i < n; ++i) {
      auto r = futures[i].get();
      checker_.Published(prefix + std::to_string(i), r.status.ok());
      ASSERT_TRUE(r.status.ok()) << r.status.ToString();
    }
  }
  QueueChecker::Counts WaitAndCheck(size_t expect, bool order, int timeout_ms = 60000) {
    // Distinct ids: duplicates after a reconnect must not end the wait early.
    WaitUntil(
        [&] {
          std::set<std::string> ids;
          for (const auto& d : ToDeliveries(sub_->Read())) ids.insert(d.id);
          return ids.size() >= expect;
        },
        timeout_ms);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));  // late duplicates
    for (const auto& d : ToDeliveries(sub_->Read())) checker_.Deliver(d);
    auto c = checker_.Check(order);
    std::printf("queue checker: %s\n", c.ToString().c_str());
    return c;
  }

  TempDir dir_;
  std::unique_ptr<Mosquitto> broker_;
  std::unique_ptr<Subscriber> sub_;
  std::unique_ptr<AgentProcess> agent_;
  QueueChecker checker_;
};

}  // namespace edgespool::testing
