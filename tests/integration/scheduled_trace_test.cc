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
  for (int i = 0; i < 10; ++i)
    ASSERT_TRUE(Send(*p, "sched/a", "now-" + std::to_string(i)).status.ok());
  ASSERT_TRUE(WaitUntil([&] { return Ids(*sub_).size() >= 11; }, 10000));
  EXPECT_EQ(Ids(*sub_).count("delayed"), 0u);
  EXPECT_EQ(Ids(*sub_).count("past"), 1u);

  auto q = p->QueryById("delayed").get();
  ASSERT_TRUE(q.status.ok());
  EXPECT_EQ(q.state, "scheduled");
  EXPECT_NEAR(static_cast<double>(q.deliver_at_ms), static_cast<double>(t0 + 2000), 1000);
  // The CLI says so too.
  std::string out = dir_.File("query.out");
  std::string cmd =
      std::string(std::getenv("EDGESPOOL_BIN") ? std::getenv("EDGESPOOL_BIN") : "edgespool") +
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
  ASSERT_TRUE(WaitUntil([&] { return Ids(*sub_).count("delayed") == 1; }, 15000)) << agent_->log();
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

namespace edgespool {
namespace {

using namespace edgespool::testing;

size_t CountLines(const std::string& log, const std::string& needle, std::set<std::string>* seqs) {
  size_t n = 0, pos = 0;
  while ((pos = log.find(needle, pos)) != std::string::npos) {
    ++n;
    size_t s = log.find("\"seq\":\"", pos);
    size_t end = log.find('"', s + 7);
    if (seqs && s != std::string::npos) seqs->insert(log.substr(s + 7, end - s - 7));
    pos += needle.size();
  }
  return n;
}

TEST_F(AgentE2ETest, AuditLinesAreSampledPerMessageAndAbsentWhenOff) {
  StartBroker();
  StartSubscriber("sensors/#");
  StartAgent(
      {{"log", "format = \"json\""}, {"audit", "enabled = true"}, {"audit", "sample = 0.5"}});
  auto p = Connect();
  ASSERT_TRUE(p);
  const int n = 400;
  Publish(*p, n, 2, false, "audit-");
  auto c = WaitAndCheck(n, /*order=*/false);
  EXPECT_EQ(c.lost, 0u);
  std::set<std::string> accepted, sent;
  ASSERT_TRUE(WaitUntil(
      [&] {
        accepted.clear();
        sent.clear();
        CountLines(agent_->log(), "\"msg\":\"audit\",\"event\":\"accepted\"", &accepted);
        CountLines(agent_->log(), "\"msg\":\"audit\",\"event\":\"sent\"", &sent);
        return !accepted.empty() && sent == accepted;
      },
      10000))
      << accepted.size() << " accepted, " << sent.size() << " sent";
  // About half (binomial, n = 400: 4 sigma is +-40), whole lifecycles.
  std::printf("audit: %zu of %d messages sampled\n", accepted.size(), n);
  EXPECT_GT(accepted.size(), 130u);
  EXPECT_LT(accepted.size(), 270u);
  EXPECT_NE(agent_->log().find("\"topic\":\"sensors/t"), std::string::npos);
  EXPECT_EQ(WEXITSTATUS(agent_->Stop()), 0) << agent_->log();

  // Off (the default): not one line.
  agent_ = std::make_unique<AgentProcess>(
      dir_.path(), broker_->url(),
      std::multimap<std::string, std::string>{{"log", "format = \"json\""}});
  ASSERT_TRUE(agent_->Start()) << agent_->log();
  p = Connect();
  ASSERT_TRUE(p);
  Publish(*p, 50, 1, false, "quiet-");
  EXPECT_TRUE(WaitUntil([&] { return p->QueryById("quiet-49").get().state == "sent"; }, 10000));
  std::string log = agent_->log();
  size_t restart = log.rfind("producer socket ready");
  EXPECT_EQ(log.find("\"msg\":\"audit\"", restart == std::string::npos ? 0 : restart),
            std::string::npos);
}

TEST_F(AgentE2ETest, AuditLogsMessagesThatExpireWhileTheUplinkIsDown) {
  StartBroker();
  broker_->Stop();
  StartAgent({{"log", "format = \"json\""},
              {"audit", "enabled = true"},
              {"store", "cleanup_interval = \"200ms\""}});
  auto p = Connect();
  ASSERT_TRUE(p);
  for (int i = 0; i < 5; ++i) {
    client::PublishOptions o;
    o.ttl_ms = 300;
    ASSERT_TRUE(Send(*p, "sensors/x", "ttl-" + std::to_string(i), o).status.ok());
  }
  std::set<std::string> accepted, expired;
  EXPECT_TRUE(WaitUntil(
      [&] {
        CountLines(agent_->log(), "\"msg\":\"audit\",\"event\":\"accepted\"", &accepted);
        CountLines(agent_->log(), "\"msg\":\"audit\",\"event\":\"expired\"", &expired);
        return expired.size() == 5;
      },
      10000))
      << agent_->log();
  EXPECT_EQ(expired, accepted);
}

}  // namespace
}  // namespace edgespool
