// Scheduled delivery and trace context end to end: producers -> agent (a
// real process) -> a real mosquitto. A delayed message arrives after its
// delay, also across an agent restart while it waits; one whose deliver_at
// is past goes at once; scheduled messages never hold back the rest; query
// says "scheduled". A W3C traceparent arrives upstream as an MQTT 5 user
// property and inside batch frames (and `decode` shows it); a malformed one
// is refused with bad_request.
#include <gtest/gtest.h>

#include <chrono>
#include <set>
#include <string>
#include <thread>

#include "agent/cli/decode.h"
#include "sync/batch/batch_frame.h"
#include "tests/support/e2e_fixture.h"
#include "tests/support/test_env.h"

namespace edgespool {
namespace {

using namespace edgespool::testing;

constexpr char kTrace[] = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::set<std::string> Ids(const Subscriber& sub) {
  std::set<std::string> ids;
  for (const auto& d : ToDeliveries(sub.Read())) ids.insert(d.id);
  return ids;
}

client::PublishResult Send(client::Producer& p, const std::string& topic, const std::string& id,
                           client::PublishOptions o = {}) {
  o.id = id;
  o.ts_ms = 1732300000000;
  return p.Publish(topic, TelemetryPayload(id, *o.ts_ms, 0), o).get();
}

TEST_F(AgentE2ETest, DelayedMessageArrivesAfterItsDelayAcrossARestartWithoutBlockingOthers) {
  StartBroker();
  StartSubscriber("sched/#");
  StartAgent();
  auto p = Connect();
  ASSERT_TRUE(p);
  int64_t t0 = NowMs();
  client::PublishOptions delayed;
  delayed.delay_ms = 2000;
  auto r = Send(*p, "sched/a", "delayed", delayed);
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();  // acked as stored, at once
  EXPECT_LT(NowMs() - t0, 1500);
  client::PublishOptions past;
  past.deliver_at_ms = t0 - 60000;
  ASSERT_TRUE(Send(*p, "sched/a", "past", past).status.ok());
  // Behind the scheduled one on the same topic, with the same ts.
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(Send(*p, "sched/a", "now-" + std::to_string(i)).status.ok());
  ASSERT_TRUE(WaitUntil([&] { return Ids(*sub_).size() >= 11; }, 10000));
  EXPECT_EQ(Ids(*sub_).count("delayed"), 0u);
  EXPECT_EQ(Ids(*sub_).count("past"), 1u);

  auto q = p->QueryById("delayed").get();
  ASSERT_TRUE(q.status.ok());
  EXPECT_EQ(q.state, "scheduled");
  EXPECT_NEAR(static_cast<double>(q.deliver_at_ms), static_cast<double>(t0 + 2000), 1000);
  // The CLI says so too.
  std::string out = dir_.File("query.out");
  std::string cmd = std::string(std::getenv("EDGESPOOL_BIN") ? std::getenv("EDGESPOOL_BIN")
                                                             : "edgespool") +
                    " query --socket " + agent_->socket() + " --id delayed > " + out + " 2>&1";
  EXPECT_EQ(std::system(cmd.c_str()), 0) << ReadFile(out);
  EXPECT_NE(ReadFile(out).find("scheduled"), std::string::npos) << ReadFile(out);
  EXPECT_NE(ReadFile(out).find("deliver_at"), std::string::npos) << ReadFile(out);

  // Restart the agent while the message waits: it is still scheduled.
  p.reset();
  ASSERT_EQ(WEXITSTATUS(agent_->Stop()), 0) << agent_->log();
  ASSERT_TRUE(agent_->Start()) << agent_->log();
  p = Connect();
  ASSERT_TRUE(p);
  if (NowMs() < t0 + 1900) {
    EXPECT_EQ(p->QueryById("delayed").get().state, "scheduled");
  }
  ASSERT_TRUE(WaitUntil([&] { return Ids(*sub_).count("delayed") == 1; }, 15000))
      << agent_->log();
  int64_t arrived = NowMs();
  EXPECT_GE(arrived - t0, 2000);
  EXPECT_LT(arrived - t0, 8000);
  EXPECT_TRUE(WaitUntil([&] { return p->QueryById("delayed").get().state == "sent"; }, 10000));
}

TEST_F(AgentE2ETest, TraceparentArrivesAsAUserPropertyAndABadOneIsRefused) {
  StartBroker();
  StartAgent();
  // mosquitto_sub as an MQTT 5 client: topic, user properties, payload.
  Process sub;
  ASSERT_TRUE(sub.Start({"mosquitto_sub", "-h", "127.0.0.1", "-p", std::to_string(broker_->port()),
                         "-V", "mqttv5", "-q", "1", "-t", "trace/#", "-F", "%t|%P|%p"},
                        dir_.File("sub.out")));
  auto p = Connect();
  ASSERT_TRUE(p);
  // Retried until the subscriber is there (it has no session to wait in);
  // a fresh id each time, or the journal would take a retry as a duplicate.
  int attempt = 0;
  ASSERT_TRUE(WaitUntil(
      [&] {
        client::PublishOptions o;
        o.headers = {{"traceparent", kTrace}};
        EXPECT_TRUE(Send(*p, "trace/a", "traced-" + std::to_string(attempt++), o).status.ok());
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        return ReadFile(dir_.File("sub.out")).find("traceparent:" + std::string(kTrace)) !=
               std::string::npos;
      },
      15000))
      << ReadFile(dir_.File("sub.out"));

  for (const char* bad : {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",  // no flags
                          "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
                          "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
                          "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "hello"}) {
    client::PublishOptions o;
    o.headers = {{"Traceparent", bad}};
    auto r = Send(*p, "trace/a", "bad", o);
    EXPECT_FALSE(r.status.ok()) << bad;
    ASSERT_TRUE(r.code.has_value()) << bad;
    EXPECT_EQ(*r.code, client::ErrorCode::kBadRequest) << bad;
  }
}

TEST_F(AgentE2ETest, TraceparentTravelsInBatchFramesAndDecodeShowsIt) {
  StartBroker();
  StartSubscriber("edgespool/+/batch");
  StartAgent({{"sync", "mode = \"batch\""}, {"sync", "batch_messages = 10"}});
  auto p = Connect();
  ASSERT_TRUE(p);
  client::PublishOptions o;
  o.headers = {{"traceparent", kTrace}};
  ASSERT_TRUE(Send(*p, "trace/b", "framed", o).status.ok());
  ASSERT_TRUE(WaitUntil([&] { return Ids(*sub_).count("framed") == 1; }, 15000));
  bool seen = false;
  for (const auto& m : sub_->Read()) {
    auto frame = batch::DecodeFrame(m.payload);
    ASSERT_TRUE(frame.ok()) << frame.status().ToString();
    for (const auto& rec : frame->records) {
      if (rec.id != "framed") continue;
      seen = true;
      ASSERT_EQ(rec.headers.size(), 1u);
      EXPECT_EQ(rec.headers[0].first, "traceparent");
      EXPECT_EQ(rec.headers[0].second, kTrace);
      std::string json = agent::RecordJson(frame->node, rec);
      EXPECT_NE(json.find("\"traceparent\":\"" + std::string(kTrace) + "\""), std::string::npos)
          << json;
    }
  }
  EXPECT_TRUE(seen);
}

}  // namespace
}  // namespace edgespool
