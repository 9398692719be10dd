// The C API's asynchronous half (agent/client/edgespool_client.h) against a
// real agent and mosquitto: delivery callbacks (stored, then delivered),
// headers and ttl arriving upstream as MQTT 5 user properties and message
// expiry, refusals reported through the callback, flush timing out while the
// broker is down and succeeding once it is back, and the connect timeout
// against a socket that never accepts.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "agent/client/edgespool_client.h"
#include "tests/support/e2e.h"
#include "tests/support/e2e_fixture.h"
#include "tests/support/test_env.h"

namespace edgespool::testing {
namespace {

using Clock = std::chrono::steady_clock;

int64_t MsSince(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t).count();
}

// What the callbacks saw, per idempotency id (the stored report has it) and
// in order.
struct Reports {
  std::mutex mu;
  struct Event {
    edgespool_event event;
    int error;
    uint64_t seq;
    std::string id;
    std::string reason;
  };
  std::vector<Event> events;

  static void Callback(const edgespool_delivery_report* r, void* user) {
    auto* self = static_cast<Reports*>(user);
    std::lock_guard<std::mutex> lock(self->mu);
    self->events.push_back({r->event, r->error, r->seq, r->id ? r->id : "", r->reason});
  }
  size_t Count(edgespool_event e) {
    std::lock_guard<std::mutex> lock(mu);
    size_t n = 0;
    for (const auto& ev : events) n += ev.event == e ? 1 : 0;
    return n;
  }
  std::vector<Event> Copy() {
    std::lock_guard<std::mutex> lock(mu);
    return events;
  }
};

constexpr uint32_t kBrokerMaxPacket = 16384;

class CApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    MosquittoOptions mo;
    mo.persistence = true;                  // the checker's session survives the broker's restart
    mo.max_packet_size = kBrokerMaxPacket;  // for the dead letter
    broker_ = std::make_unique<Mosquitto>(dir_.path(), mo);
    ASSERT_TRUE(broker_->Start()) << broker_->log();
    // mosquitto_sub as an MQTT 5 client: topic, user properties, expiry, payload.
    ASSERT_TRUE(sub_.Start(
        {"mosquitto_sub", "-h", "127.0.0.1", "-p", std::to_string(broker_->port()), "-V", "mqttv5",
         "-q", "1", "-c", "-i", "capi-checker", "-t", "capi/#", "-F", "%t|%P|%E|%p"},
        dir_.File("sub.out")));
    // Subscribed once a probe comes back.
    ASSERT_TRUE(WaitUntil(
        [&] {
          Process pub;
          pub.Start({"mosquitto_pub", "-h", "127.0.0.1", "-p", std::to_string(broker_->port()),
                     "-q", "1", "-t", "capi/probe", "-m", "probe"},
                    dir_.File("pub.out"));
          pub.Wait(5000);
          return ReadFile(dir_.File("sub.out")).find("capi/probe") != std::string::npos;
        },
        10000));
    agent_ = std::make_unique<AgentProcess>(dir_.path(), broker_->url());
    ASSERT_TRUE(agent_->Start()) << agent_->log();
  }

  std::vector<std::string> SubscriberLines() {
    std::vector<std::string> lines;
    std::string all = ReadFile(dir_.File("sub.out")), line;
    for (char c : all) {
      if (c == '\n') {
        if (line.rfind("capi/probe", 0) != 0) lines.push_back(line);
        line.clear();
      } else {
        line += c;
      }
    }
    return lines;
  }

  TempDir dir_;
  std::unique_ptr<Mosquitto> broker_;
  Process sub_;
  std::unique_ptr<AgentProcess> agent_;
};

TEST_F(CApiTest, AsyncPublishReportsStoredThenDeliveredWithHeadersAndTtlUpstream) {
  edgespool_connect_options co;
  edgespool_connect_options_init(&co);
  co.connect_timeout_ms = 5000;
  edgespool_producer* p = nullptr;
  ASSERT_EQ(edgespool_connect_opts(agent_->socket().c_str(), &co, &p), EDGESPOOL_OK);

  edgespool_header headers[] = {{"unit", "C"}, {"site", "north"}};
  edgespool_publish_options o;
  edgespool_publish_options_init(&o);
  o.headers = headers;
  o.header_count = 2;
  o.ttl_ms = 600000;
  o.priority = EDGESPOOL_PRIORITY_HIGH;
  o.ack = EDGESPOOL_ACK_DELIVERED;
  Reports reports;
  constexpr int kN = 20;
  for (int i = 0; i < kN; ++i) {
    std::string payload = "m" + std::to_string(i);
    ASSERT_EQ(edgespool_publish_async(p, "capi/t", payload.data(), payload.size(), &o,
                                      &Reports::Callback, &reports),
              EDGESPOOL_OK);
  }
  ASSERT_EQ(edgespool_flush(p, 30000), EDGESPOOL_OK);
  EXPECT_EQ(reports.Count(EDGESPOOL_EVENT_STORED), size_t{kN});
  EXPECT_EQ(reports.Count(EDGESPOOL_EVENT_DELIVERED), size_t{kN});
  EXPECT_EQ(reports.Count(EDGESPOOL_EVENT_ERROR), 0u);
  // Each message's STORED (with its seq and id) comes before its DELIVERED.
  std::map<uint64_t, std::vector<edgespool_event>> by_seq;
  for (const auto& e : reports.Copy()) {
    if (e.event == EDGESPOOL_EVENT_STORED) {
      EXPECT_GT(e.seq, 0u);
      EXPECT_FALSE(e.id.empty());
      EXPECT_EQ(e.error, 0);
    }
    by_seq[e.seq].push_back(e.event);
  }
  EXPECT_EQ(by_seq.size(), size_t{kN});
  for (const auto& [seq, events] : by_seq) {
    ASSERT_EQ(events.size(), 2u) << seq;
    EXPECT_EQ(events[0], EDGESPOOL_EVENT_STORED) << seq;
    EXPECT_EQ(events[1], EDGESPOOL_EVENT_DELIVERED) << seq;
  }

  // Upstream: every message with both headers as user properties and the
  // ttl as its expiry interval (600 s, less what it spent on the way).
  ASSERT_TRUE(WaitUntil([&] { return SubscriberLines().size() >= size_t{kN}; }, 20000))
      << ReadFile(dir_.File("sub.out"));
  for (const std::string& line : SubscriberLines()) {
    EXPECT_NE(line.find("unit:C"), std::string::npos) << line;
    EXPECT_NE(line.find("site:north"), std::string::npos) << line;
    EXPECT_NE(line.find("es-id:"), std::string::npos) << line;
    size_t last = line.rfind('|'), before = line.rfind('|', last - 1);
    int expiry = std::atoi(line.substr(before + 1, last - before - 1).c_str());
    EXPECT_GT(expiry, 590) << line;
    EXPECT_LE(expiry, 600) << line;
  }

  // A blocking publish with the same options returns the seq.
  EXPECT_GT(edgespool_publish_opts(p, "capi/t", "sync", 4, &o), 0);
  edgespool_close(p);
}

TEST_F(CApiTest, RefusalsAndBadOptions) {
  edgespool_producer* p = nullptr;
  ASSERT_EQ(edgespool_connect_opts(agent_->socket().c_str(), nullptr, &p), EDGESPOOL_OK);
  Reports reports;
  // Refused by the agent: the callback says why; nothing else follows.
  edgespool_publish_options o;
  edgespool_publish_options_init(&o);
  o.ack = EDGESPOOL_ACK_DELIVERED;
  ASSERT_EQ(edgespool_publish_async(p, "capi/#", "x", 1, &o, &Reports::Callback, &reports),
            EDGESPOOL_OK);
  ASSERT_EQ(edgespool_flush(p, 10000), EDGESPOOL_OK);
  auto events = reports.Copy();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].event, EDGESPOOL_EVENT_ERROR);
  EXPECT_EQ(events[0].error, EDGESPOOL_ERR_BAD_TOPIC);
  EXPECT_FALSE(events[0].reason.empty());

  // Options out of range are refused before anything is sent.
  o.priority = 7;
  EXPECT_EQ(edgespool_publish_async(p, "capi/t", "x", 1, &o, nullptr, nullptr),
            EDGESPOOL_ERR_INVALID_ARGUMENT);
  edgespool_publish_options_init(&o);
  o.ttl_ms = -5;
  EXPECT_EQ(edgespool_publish_opts(p, "capi/t", "x", 1, &o), EDGESPOOL_ERR_INVALID_ARGUMENT);
  edgespool_publish_options_init(&o);
  o.header_count = 1;  // and no headers
  EXPECT_EQ(edgespool_publish_opts(p, "capi/t", "x", 1, &o), EDGESPOOL_ERR_INVALID_ARGUMENT);
  // A program built against a header with a smaller struct: only the fields
  // it knows are read.
  edgespool_publish_options_init(&o);
  o.struct_size = offsetof(edgespool_publish_options, ttl_ms);
  o.ttl_ms = -5;  // past its size: ignored
  EXPECT_GT(edgespool_publish_opts(p, "capi/t", "x", 1, &o), 0);
  // No callback is fine; flush still counts the publish.
  ASSERT_EQ(edgespool_publish_async(p, "capi/t", "quiet", 5, nullptr, nullptr, nullptr),
            EDGESPOOL_OK);
  EXPECT_EQ(edgespool_flush(p, 10000), EDGESPOOL_OK);
  EXPECT_STREQ(edgespool_strerror(EDGESPOOL_ERR_TIMEOUT), "timed out");
  EXPECT_EQ(edgespool_flush(nullptr, 0), EDGESPOOL_ERR_INVALID_ARGUMENT);
  edgespool_close(p);
}

// Also where priority shows upstream: what waited out the outage goes out
// by sync.priority_weights (70/20/10), so the high messages published after
// the low ones arrive mostly before them.
TEST_F(CApiTest, FlushTimesOutWhileTheBrokerIsDownAndSucceedsOnceItIsBack) {
  edgespool_producer* p = nullptr;
  ASSERT_EQ(edgespool_connect_opts(agent_->socket().c_str(), nullptr, &p), EDGESPOOL_OK);
  broker_->Stop();
  Reports reports;
  edgespool_publish_options o;
  edgespool_publish_options_init(&o);
  o.ack = EDGESPOOL_ACK_DELIVERED;
  constexpr int kEach = 20;
  for (int prio : {EDGESPOOL_PRIORITY_LOW, EDGESPOOL_PRIORITY_HIGH}) {
    o.priority = prio;
    for (int i = 0; i < kEach; ++i) {
      std::string payload = (prio == EDGESPOOL_PRIORITY_HIGH ? "hi-" : "lo-") + std::to_string(i);
      ASSERT_EQ(edgespool_publish_async(p, "capi/down", payload.data(), payload.size(), &o,
                                        &Reports::Callback, &reports),
                EDGESPOOL_OK);
    }
  }
  auto start = Clock::now();
  EXPECT_EQ(edgespool_flush(p, 500), EDGESPOOL_ERR_TIMEOUT);
  int64_t took = MsSince(start);
  EXPECT_GE(took, 450);
  EXPECT_LT(took, 3000);
  // Stored (durable) but not delivered.
  ASSERT_TRUE(WaitUntil([&] { return reports.Count(EDGESPOOL_EVENT_STORED) == 2 * kEach; }, 10000));
  EXPECT_EQ(reports.Count(EDGESPOOL_EVENT_DELIVERED), 0u);

  ASSERT_TRUE(broker_->Start()) << broker_->log();
  EXPECT_EQ(edgespool_flush(p, 60000), EDGESPOOL_OK) << agent_->log();
  EXPECT_EQ(reports.Count(EDGESPOOL_EVENT_DELIVERED), size_t{2 * kEach});
  EXPECT_EQ(reports.Count(EDGESPOOL_EVENT_ERROR), 0u);
  edgespool_close(p);

  // Arrival order upstream: the highs' mean position before the lows'.
  std::vector<std::string> arrived;
  ASSERT_TRUE(WaitUntil(
      [&] {
        arrived.clear();
        for (const std::string& line : SubscriberLines()) {
          if (line.rfind("capi/down|", 0) == 0) arrived.push_back(line.substr(line.rfind('|') + 1));
        }
        return arrived.size() >= size_t{2 * kEach};
      },
      20000))
      << ReadFile(dir_.File("sub.out"));
  double hi_sum = 0, lo_sum = 0;
  for (size_t i = 0; i < arrived.size(); ++i) {
    (arrived[i].rfind("hi-", 0) == 0 ? hi_sum : lo_sum) += static_cast<double>(i);
  }
  std::string order;
  for (const auto& a : arrived) order += a + " ";
  EXPECT_LT(hi_sum / kEach, lo_sum / kEach) << order;
  EXPECT_EQ(arrived.front().rfind("hi-", 0), 0u) << order;
}

// A message the broker cannot take (over its Maximum Packet Size) becomes a
// dead letter: its delivery report is an error with the reason.
TEST_F(CApiTest, DeadLetterIsReportedAsAnErrorWithTheReason) {
  edgespool_producer* p = nullptr;
  ASSERT_EQ(edgespool_connect_opts(agent_->socket().c_str(), nullptr, &p), EDGESPOOL_OK);
  Reports reports;
  edgespool_publish_options o;
  edgespool_publish_options_init(&o);
  o.ack = EDGESPOOL_ACK_DELIVERED;
  std::string big(kBrokerMaxPacket * 2, 'x');
  ASSERT_EQ(edgespool_publish_async(p, "capi/big", big.data(), big.size(), &o, &Reports::Callback,
                                    &reports),
            EDGESPOOL_OK);
  ASSERT_EQ(edgespool_flush(p, 30000), EDGESPOOL_OK) << agent_->log();
  auto events = reports.Copy();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].event, EDGESPOOL_EVENT_STORED);
  EXPECT_EQ(events[1].event, EDGESPOOL_EVENT_ERROR);
  EXPECT_EQ(events[1].error, EDGESPOOL_ERR_DEAD) << events[1].reason;
  EXPECT_FALSE(events[1].reason.empty());
  EXPECT_EQ(events[1].seq, events[0].seq);
  edgespool_close(p);
}

TEST(CApiConnectTest, ConnectTimeoutAgainstASocketThatNeverAccepts) {
  TempDir dir;
  std::string path = dir.File("stuck.sock");
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(fd, 0), 0);
  // Fill the (zero-length) backlog: nothing is ever accepted, so every
  // further connect is refused with EAGAIN.
  int filler = ::socket(AF_UNIX, SOCK_STREAM, 0);
  ASSERT_EQ(::connect(filler, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);

  for (int64_t timeout_ms : {300, 1500}) {
    edgespool_connect_options co;
    edgespool_connect_options_init(&co);
    co.connect_timeout_ms = timeout_ms;
    edgespool_producer* p = nullptr;
    auto start = Clock::now();
    EXPECT_EQ(edgespool_connect_opts(path.c_str(), &co, &p), EDGESPOOL_ERR_UNAVAILABLE);
    int64_t took = MsSince(start);
    EXPECT_EQ(p, nullptr);
    EXPECT_GE(took, timeout_ms - 50) << timeout_ms;
    EXPECT_LT(took, timeout_ms + 2500) << timeout_ms;  // one backoff step past it at most
  }
  edgespool_connect_options co;
  edgespool_connect_options_init(&co);
  co.connect_timeout_ms = -1;
  edgespool_producer* p = nullptr;
  EXPECT_EQ(edgespool_connect_opts(path.c_str(), &co, &p), EDGESPOOL_ERR_INVALID_ARGUMENT);
  ::close(filler);
  ::close(fd);
}

}  // namespace
}  // namespace edgespool::testing
