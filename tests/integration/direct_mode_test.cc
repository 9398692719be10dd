// Direct mode (agent/client/direct_producer.h, docs/direct-mode.md) against a
// REAL mosquitto started here: the Producer given an mqtt:// or mqtts:// URL
// publishes to the broker itself. A libmosquitto subscriber (an independent
// MQTT implementation) checks what arrives against what the agent's message
// mode sends for the same publish; the central consumer's parser reads both.
// A broker that is down, or goes down mid-publish, is an Unavailable result
// within bounded time, never a hang. The CLI and the C API take the URL too.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdlib>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "agent/client/edgespool_client.h"
#include "agent/client/producer.h"
#include "central/uplink_parse.h"
#include "tests/support/central_client.h"
#include "tests/support/e2e.h"
#include "tests/support/test_env.h"
#include "tests/support/tls_certs.h"

namespace edgespool {
namespace {

using client::Producer;
using client::ProducerOptions;
using client::PublishOptions;
using client::PublishResult;
using client::Receipt;
using testing::AgentProcess;
using testing::CentralClient;
using testing::CentralMessage;
using testing::Mosquitto;
using testing::MosquittoOptions;
using testing::TempDir;

using Clock = std::chrono::steady_clock;

int64_t MsSince(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t).count();
}

// What the subscriber got, in arrival order.
class Inbox {
 public:
  void Add(const CentralMessage& m) {
    std::lock_guard<std::mutex> lock(mu_);
    msgs_.push_back(m);
    cv_.notify_all();
  }
  bool WaitFor(size_t n, int timeout_ms = 10000) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms),
                        [&] { return msgs_.size() >= n; });
  }
  std::vector<CentralMessage> Take() {
    std::lock_guard<std::mutex> lock(mu_);
    return msgs_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<CentralMessage> msgs_;
};

std::string Prop(const CentralMessage& m, const std::string& key) {
  for (const auto& [k, v] : m.user_properties) {
    if (k == key) return v;
  }
  return "<absent>";
}

// The central consumer's reading of a message-mode PUBLISH.
central::Message Central(const CentralMessage& m) {
  sync::mqtt::Properties props;
  for (const auto& [k, v] : m.user_properties) props.user_properties.push_back({k, v});
  auto parsed = central::MessageFromPublish(m.topic, m.payload, &props);
  EXPECT_TRUE(parsed.ok()) << parsed.status().ToString();
  return parsed.ok() ? *parsed : central::Message{};
}

class DirectModeTest : public ::testing::Test {
 protected:
  void StartBroker(MosquittoOptions o = {}) {
    broker_ = std::make_unique<Mosquitto>(broker_dir_.path(), o);
    ASSERT_TRUE(broker_->Start()) << broker_->log();
  }
  // A subscriber on dm/# (plain listener on `port`).
  void Subscribe(uint16_t port) {
    sub_ = std::make_unique<CentralClient>(
        port, 5, "dm-sub", [this](CentralClient&, const CentralMessage& m) { inbox_.Add(m); });
    ASSERT_TRUE(sub_->Start({"dm/#"}));
  }
  ProducerOptions Direct(const std::string& url) {
    ProducerOptions o;
    o.socket_path = url;
    o.connect_timeout_ms = 1000;
    o.backoff_initial_ms = 50;
    o.backoff_max_ms = 200;
    return o;
  }

  TempDir broker_dir_;
  std::unique_ptr<Mosquitto> broker_;
  std::unique_ptr<CentralClient> sub_;
  Inbox inbox_;
};

// N messages: all `sent`, all delivered in order with the agent's property
// names and values, and the central parser reads them as it reads the
// agent's (same ts, id, headers, topic; no node/seq: no journal here).
TEST_F(DirectModeTest, PublishesWhatMessageModeSends) {
  StartBroker();
  Subscribe(broker_->port());

  TempDir agent_dir;
  AgentProcess agent(agent_dir.path(), broker_->url());
  ASSERT_TRUE(agent.Start()) << agent.log();
  ProducerOptions via_agent;
  via_agent.socket_path = agent.socket();
  auto a = Producer::Connect(via_agent);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  PublishOptions ao;
  ao.ts_ms = 1700000000000;
  ao.id = "agent-1";
  ao.ttl_ms = 60000;
  ao.headers = {{"unit", "C"}};
  PublishResult ar = (*a)->Publish("dm/agent", "from-agent", ao).get();
  ASSERT_TRUE(ar.status.ok()) << ar.status.ToString();
  EXPECT_EQ(ar.receipt, Receipt::kStored);
  EXPECT_GT(ar.seq, 0u);
  ASSERT_TRUE(inbox_.WaitFor(1)) << agent.log();

  auto d = Producer::Connect(Direct(broker_->url()));
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_TRUE((*d)->connected());
  constexpr int kN = 300;
  std::vector<std::future<PublishResult>> results;
  for (int i = 0; i < kN; ++i) {
    PublishOptions o;
    o.ts_ms = 1700000000000 + i;
    o.ttl_ms = 60000;
    o.headers = {{"unit", "C"}};
    if (i == 0) o.id = "direct-0";
    results.push_back((*d)->Publish("dm/direct", "m" + std::to_string(i), o));
  }
  std::vector<std::string> ids;
  for (auto& f : results) {
    ASSERT_EQ(f.wait_for(std::chrono::seconds(10)), std::future_status::ready);
    PublishResult r = f.get();
    ASSERT_TRUE(r.status.ok()) << r.status.ToString();
    EXPECT_EQ(r.receipt, Receipt::kSent);
    EXPECT_STREQ(client::ReceiptName(r.receipt), "sent");
    EXPECT_EQ(r.seq, 0u);
    EXPECT_TRUE(r.uplink_connected);
    ids.push_back(r.id);
  }
  EXPECT_EQ(ids[0], "direct-0");
  EXPECT_EQ(std::set<std::string>(ids.begin(), ids.end()).size(), static_cast<size_t>(kN));
  EXPECT_TRUE((*d)->Drain(1000));

  ASSERT_TRUE(inbox_.WaitFor(1 + kN));
  std::vector<CentralMessage> got = inbox_.Take();
  ASSERT_EQ(got.size(), 1u + kN);  // nothing duplicated
  const CentralMessage& from_agent = got[0];
  std::set<std::string> agent_keys;
  for (const auto& [k, v] : from_agent.user_properties) agent_keys.insert(k);
  for (int i = 0; i < kN; ++i) {
    const CentralMessage& m = got[1 + i];
    SCOPED_TRACE("message " + std::to_string(i));
    EXPECT_EQ(m.topic, "dm/direct");
    EXPECT_EQ(m.payload, "m" + std::to_string(i));  // in publish order
    EXPECT_EQ(Prop(m, "es-ts"), std::to_string(1700000000000 + i));
    EXPECT_EQ(Prop(m, "es-id"), ids[i]);
    EXPECT_EQ(Prop(m, "unit"), "C");
    EXPECT_EQ(Prop(m, "es-seq"), "<absent>");
    for (const auto& [k, v] : m.user_properties) EXPECT_TRUE(agent_keys.count(k)) << k;
    EXPECT_GT(m.message_expiry_s, 0u);
    EXPECT_LE(m.message_expiry_s, 60u);
  }
  EXPECT_GT(from_agent.message_expiry_s, 0u);
  // The central consumer's view: the same fields, from either path.
  central::Message ca = Central(from_agent), cd = Central(got[1]);
  EXPECT_EQ(ca.ts_ms, 1700000000000);
  EXPECT_EQ(cd.ts_ms, 1700000000000);
  EXPECT_EQ(ca.id, "agent-1");
  EXPECT_EQ(cd.id, "direct-0");
  EXPECT_EQ(ca.headers, cd.headers);
  EXPECT_EQ(cd.topic, "dm/direct");
  EXPECT_EQ(ca.node, "test-node");
  EXPECT_EQ(cd.node, "");  // no journal: no (node, seq) to dedupe or order by
  EXPECT_EQ(cd.seq, 0u);
  a->reset();
  EXPECT_EQ(agent.Stop(), 0);
}

// ack modes, refusals and the operations that need the agent.
TEST_F(DirectModeTest, AckModesAndRefusals) {
  StartBroker();
  Subscribe(broker_->port());
  auto d = Producer::Connect(Direct(broker_->url()));
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  Producer& p = **d;

  PublishOptions none;
  none.ack = protocol::AckMode::kNone;
  PublishResult rn = p.Publish("dm/none", "x", none).get();
  EXPECT_TRUE(rn.status.ok());
  EXPECT_EQ(rn.receipt, Receipt::kWritten);

  std::promise<PublishResult> delivered;
  PublishOptions dl;
  dl.ack = protocol::AckMode::kDelivered;
  dl.on_delivered = [&](const PublishResult& r) { delivered.set_value(r); };
  PublishResult rd = p.Publish("dm/delivered", "y", dl).get();
  EXPECT_TRUE(rd.status.ok());
  EXPECT_EQ(rd.receipt, Receipt::kSent);
  auto df = delivered.get_future();
  ASSERT_EQ(df.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  PublishResult dr = df.get();
  EXPECT_TRUE(dr.status.ok());
  EXPECT_EQ(dr.delivery, "delivered");

  PublishOptions later;
  later.delay_ms = 2000;
  PublishResult rs = p.Publish("dm/later", "z", later).get();
  EXPECT_EQ(rs.status.code(), Code::kInvalidArgument);
  ASSERT_TRUE(rs.code.has_value());
  EXPECT_EQ(*rs.code, protocol::ErrorCode::kBadRequest);

  PublishResult rt = p.Publish("dm/+/bad", "w").get();
  EXPECT_EQ(rt.status.code(), Code::kInvalidArgument);
  EXPECT_EQ(rt.code, protocol::ErrorCode::kBadTopic);

  PublishOptions tp;
  tp.headers = {{"traceparent", "not-one"}};
  EXPECT_EQ(p.Publish("dm/t", "v", tp).get().status.code(), Code::kInvalidArgument);

  EXPECT_EQ(p.Query(1).get().status.code(), Code::kInvalidArgument);
  EXPECT_EQ(p.GetStatus().get().status().code(), Code::kInvalidArgument);
  EXPECT_EQ(p.Request("dm/req", "q").get().status.code(), Code::kInvalidArgument);
  EXPECT_TRUE(p.Ping().get().ok());

  ASSERT_TRUE(inbox_.WaitFor(2));
  std::vector<CentralMessage> got = inbox_.Take();
  ASSERT_EQ(got.size(), 2u);  // none and delivered; nothing refused went out
  EXPECT_EQ(got[0].topic, "dm/none");
  EXPECT_EQ(got[1].topic, "dm/delivered");
}

TEST_F(DirectModeTest, BrokerDownAtConnectIsUnavailableNotAHang) {
  std::string url = "mqtt://127.0.0.1:" + std::to_string(testing::FreePort());
  ProducerOptions o = Direct(url);
  o.connect_timeout_ms = 300;
  auto start = Clock::now();
  auto p = Producer::Connect(o);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), Code::kUnavailable);
  EXPECT_NE(p.status().message().find("ECONNREFUSED"), std::string::npos) << p.status().ToString();
  EXPECT_LT(MsSince(start), 2000);

  ProducerOptions bad = Direct("mqtt://no port here:x");
  auto q = Producer::Connect(bad);
  ASSERT_FALSE(q.ok());
  EXPECT_EQ(q.status().code(), Code::kInvalidArgument) << q.status().ToString();
}

// The link goes mid-publish: what was in flight fails with Unavailable
// after connect_timeout_ms, a publish while down fails at once, and the
// producer is back (reconnected by itself) once the broker is.
TEST_F(DirectModeTest, BrokerLostMidPublish) {
  StartBroker();
  ProducerOptions o = Direct(broker_->url());
  o.connect_timeout_ms = 500;
  auto d = Producer::Connect(o);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  Producer& p = **d;
  ASSERT_TRUE(p.Publish("dm/a", "before").get().status.ok());

  broker_->Pause();  // no PUBACK for what follows
  auto in_flight = p.Publish("dm/a", "in-flight");
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  broker_->Kill();  // the socket closes; the message's fate is unknown
  auto start = Clock::now();
  ASSERT_EQ(in_flight.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  PublishResult r = in_flight.get();
  EXPECT_EQ(r.status.code(), Code::kUnavailable) << r.status.ToString();
  EXPECT_EQ(r.code, protocol::ErrorCode::kUnavailable);
  EXPECT_LT(MsSince(start), 3000);
  EXPECT_FALSE(p.connected());

  start = Clock::now();
  PublishResult down = p.Publish("dm/a", "while-down").get();
  EXPECT_EQ(down.status.code(), Code::kUnavailable);
  EXPECT_LT(MsSince(start), 100);  // at once: nothing waits for the link
  EXPECT_FALSE(p.Ping().get().ok());

  ASSERT_TRUE(broker_->Start()) << broker_->log();
  auto deadline = Clock::now() + std::chrono::seconds(5);
  while (!p.connected() && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_TRUE(p.connected());
  EXPECT_EQ(p.reconnects(), 1u);
  PublishResult after = p.Publish("dm/a", "after").get();
  EXPECT_TRUE(after.status.ok()) << after.status.ToString();
  EXPECT_EQ(after.receipt, Receipt::kSent);
}

TEST_F(DirectModeTest, Tls) {
  TempDir pki;
  testing::TlsCerts certs;
  std::string err;
  ASSERT_TRUE(testing::TlsCerts::Generate(pki.path(), &certs, &err)) << err;
  MosquittoOptions mo;
  mo.cafile = certs.ca_cert;
  mo.certfile = certs.server_cert;
  mo.keyfile = certs.server_key;
  StartBroker(mo);
  ASSERT_EQ(broker_->url().rfind("mqtts://", 0), 0u);

  ProducerOptions o = Direct(broker_->url());
  o.direct.ca_file = certs.ca_cert;
  auto d = Producer::Connect(o);
  ASSERT_TRUE(d.ok()) << d.status().ToString() << "\n" << broker_->log();
  std::vector<std::future<PublishResult>> fs;
  for (int i = 0; i < 50; ++i) fs.push_back((*d)->Publish("dm/tls", std::to_string(i)));
  for (auto& f : fs) {
    ASSERT_EQ(f.wait_for(std::chrono::seconds(10)), std::future_status::ready);
    PublishResult r = f.get();
    EXPECT_TRUE(r.status.ok()) << r.status.ToString();
    EXPECT_EQ(r.receipt, Receipt::kSent);
  }

  // An unknown CA: refused at the handshake, said so, no hang.
  ProducerOptions wrong = Direct(broker_->url());
  wrong.direct.ca_file = certs.other_ca_cert;
  wrong.connect_timeout_ms = 500;
  auto w = Producer::Connect(wrong);
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.status().code(), Code::kUnavailable);
  EXPECT_NE(w.status().message().find("tls"), std::string::npos) << w.status().ToString();
  // A CA file that cannot be read is the caller's mistake.
  ProducerOptions missing = Direct(broker_->url());
  missing.direct.ca_file = pki.File("absent.pem");
  auto m = Producer::Connect(missing);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), Code::kInvalidArgument) << m.status().ToString();
}

// `edgespool publish --url` through the binary.
TEST_F(DirectModeTest, Cli) {
  const char* bin = std::getenv("EDGESPOOL_BIN");
  if (!bin) GTEST_SKIP() << "EDGESPOOL_BIN not set (run through ctest)";
  StartBroker();
  Subscribe(broker_->port());
  TempDir dir;
  std::string out = dir.File("out.txt");
  auto run = [&](const std::string& args) {
    int rc = std::system((std::string(bin) + " publish " + args + " > " + out + " 2>&1").c_str());
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  };
  EXPECT_EQ(run("--url " + broker_->url() + " dm/cli hello --header unit=C --id cli-1"), 0)
      << testing::ReadFile(out);
  EXPECT_EQ(testing::ReadFile(out), "sent id=cli-1\n");  // and no log lines
  // --socket takes the URL too (so does $EDGESPOOL_PRODUCER_SOCKET).
  EXPECT_EQ(run("dm/cli2 --socket " + broker_->url() + " -m two"), 0) << testing::ReadFile(out);
  EXPECT_EQ(std::system(("printf 'a\\nb\\n' | EDGESPOOL_PRODUCER_SOCKET=" + broker_->url() + " " +
                         bin + " publish dm/cli3 > " + out + " 2>&1")
                            .c_str()),
            0);
  EXPECT_EQ(testing::ReadFile(out), "sent 2\n");
  ASSERT_TRUE(inbox_.WaitFor(4));
  std::vector<CentralMessage> got = inbox_.Take();
  EXPECT_EQ(got[0].payload, "hello");
  EXPECT_EQ(Prop(got[0], "es-id"), "cli-1");
  EXPECT_EQ(Prop(got[0], "unit"), "C");
  EXPECT_EQ(got[1].payload, "two");

  std::string down = "mqtt://127.0.0.1:" + std::to_string(testing::FreePort());
  auto start = Clock::now();
  EXPECT_EQ(run("--url " + down + " dm/cli x"), 69);
  EXPECT_LT(MsSince(start), 5000);
  EXPECT_NE(testing::ReadFile(out).find("broker not reachable"), std::string::npos)
      << testing::ReadFile(out);
  EXPECT_EQ(run("--url /run/x.sock dm/cli x"), 64);                 // --url wants a URL
  EXPECT_EQ(run("--cafile /x --socket /run/x.sock dm/cli x"), 64);  // direct-only option
}

// The C API: the same URL as socket_path; a publish returns 0 (no seq)
// and its report says sent.
TEST_F(DirectModeTest, CApi) {
  StartBroker();
  edgespool_connect_options co;
  edgespool_connect_options_init(&co);
  co.connect_timeout_ms = 1000;
  edgespool_producer* p = nullptr;
  ASSERT_EQ(edgespool_connect_opts(broker_->url().c_str(), &co, &p), EDGESPOOL_OK);
  EXPECT_EQ(edgespool_publish(p, "dm/c", "x", 1), 0);
  struct Seen {
    std::promise<std::pair<int, int>> done;  // event, sent
  } seen;
  ASSERT_EQ(edgespool_publish_async(
                p, "dm/c", "y", 1, nullptr,
                [](const edgespool_delivery_report* r, void* user) {
                  static_cast<Seen*>(user)->done.set_value({r->event, r->sent});
                },
                &seen),
            0);
  auto f = seen.done.get_future();
  ASSERT_EQ(f.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  auto [event, sent] = f.get();
  EXPECT_EQ(event, EDGESPOOL_EVENT_STORED);
  EXPECT_EQ(sent, 1);
  edgespool_close(p);

  std::string down = "mqtt://127.0.0.1:" + std::to_string(testing::FreePort());
  co.connect_timeout_ms = 200;
  EXPECT_EQ(edgespool_connect_opts(down.c_str(), &co, &p), EDGESPOOL_ERR_UNAVAILABLE);
}

}  // namespace
}  // namespace edgespool
