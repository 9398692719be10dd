// ack:"delivered" on a message whose ttl runs out in the journal before it
// could be uploaded (the broker is down): the producer's second reply is
// `expired` with the reason, through the C++ SDK's on_delivered and the C
// API's async callback, within a bounded time (the journal's cleanup pass,
// here every 100 ms, deletes the row and tells the agent).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "agent/client/edgespool_client.h"
#include "agent/client/producer.h"
#include "tests/support/e2e.h"
#include "tests/support/test_env.h"

namespace edgespool::testing {
namespace {

using Clock = std::chrono::steady_clock;

class ExpiredReplyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // A real broker's port, but the broker is never started: nothing is
    // uploaded, so the rows can only expire.
    broker_ = std::make_unique<Mosquitto>(dir_.path());
    agent_ = std::make_unique<AgentProcess>(
        dir_.path(), broker_->url(),
        std::multimap<std::string, std::string>{{"store", "cleanup_interval = \"100ms\""}});
    ASSERT_TRUE(agent_->Start()) << agent_->log();
  }

  TempDir dir_;
  std::unique_ptr<Mosquitto> broker_;
  std::unique_ptr<AgentProcess> agent_;
};

TEST_F(ExpiredReplyTest, SdkOnDeliveredGetsExpired) {
  client::ProducerOptions po;
  po.socket_path = agent_->socket();
  auto p = client::Producer::Connect(std::move(po));
  ASSERT_TRUE(p.ok()) << p.status().ToString();

  std::promise<client::PublishResult> delivered;
  client::PublishOptions o;
  o.ttl_ms = 300;
  o.ack = client::AckMode::kDelivered;
  o.on_delivered = [&](const client::PublishResult& r) { delivered.set_value(r); };
  Clock::time_point start = Clock::now();
  client::PublishResult stored = (*p)->Publish("exp/t", "x", o).get();
  ASSERT_TRUE(stored.status.ok()) << stored.status.ToString();
  ASSERT_GT(stored.seq, 0u);

  auto f = delivered.get_future();
  ASSERT_EQ(f.wait_for(std::chrono::seconds(10)), std::future_status::ready) << agent_->log();
  client::PublishResult r = f.get();
  EXPECT_EQ(r.delivery, "expired");
  EXPECT_FALSE(r.status.ok());
  EXPECT_EQ(r.seq, stored.seq);
  EXPECT_EQ(r.reason, "ttl ran out before it was uploaded");
  // Not before the ttl ran out.
  EXPECT_GE(Clock::now() - start, std::chrono::milliseconds(300));

  // A message without a ttl on the same connection still waits.
  std::atomic<bool> other_called{false};
  client::PublishOptions keep;
  keep.ack = client::AckMode::kDelivered;
  keep.on_delivered = [&](const client::PublishResult&) { other_called = true; };
  ASSERT_TRUE((*p)->Publish("exp/t", "y", keep).get().status.ok());
  // Several cleanup passes.
  std::this_thread::sleep_for(std::chrono::milliseconds(600));
  EXPECT_TRUE((*p)->Ping().get().ok());  // any second reply came before this one
  EXPECT_FALSE(other_called);
}

struct CReports {
  std::mutex mu;
  std::vector<edgespool_delivery_report> events;
  std::vector<std::string> reasons;
  static void Callback(const edgespool_delivery_report* r, void* user) {
    auto* self = static_cast<CReports*>(user);
    std::lock_guard<std::mutex> lock(self->mu);
    self->events.push_back(*r);
    self->reasons.push_back(r->reason ? r->reason : "");
  }
};

TEST_F(ExpiredReplyTest, CApiAsyncCallbackGetsExpired) {
  edgespool_producer* p = nullptr;
  ASSERT_EQ(edgespool_connect(agent_->socket().c_str(), &p), EDGESPOOL_OK);
  edgespool_publish_options o;
  edgespool_publish_options_init(&o);
  o.ttl_ms = 300;
  o.ack = EDGESPOOL_ACK_DELIVERED;
  CReports reports;
  ASSERT_EQ(edgespool_publish_async(p, "exp/c", "x", 1, &o, &CReports::Callback, &reports),
            EDGESPOOL_OK);
  // Both reports came: flush waits for the second one, which before this
  // fix never came while the connection stayed open.
  ASSERT_EQ(edgespool_flush(p, 10000), EDGESPOOL_OK) << agent_->log();
  {
    std::lock_guard<std::mutex> lock(reports.mu);
    ASSERT_EQ(reports.events.size(), 2u);
    EXPECT_EQ(reports.events[0].event, EDGESPOOL_EVENT_STORED);
    EXPECT_EQ(reports.events[1].event, EDGESPOOL_EVENT_ERROR);
    EXPECT_EQ(reports.events[1].error, EDGESPOOL_ERR_EXPIRED);
    EXPECT_EQ(reports.events[1].seq, reports.events[0].seq);
    EXPECT_EQ(reports.reasons[1], "ttl ran out before it was uploaded");
  }
  edgespool_close(p);
}

}  // namespace
}  // namespace edgespool::testing
