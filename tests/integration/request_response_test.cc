// Request/response both ways, end to end (docs/request-response.md): the
// agent as a process, a real mosquitto, and on the central side libmosquitto
// clients (tests/support/central_client.h) playing the cloud: a service
// answering the gateway's requests, and a caller of the gateway's methods.
// Every test runs with the uplink on MQTT 5 (properties) and on 3.1.1 (the
// envelope), and the central clients speak the same version.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "agent/client/producer.h"
#include "agent/client/responder.h"
#include "agent/methods/wire.h"
#include "agent/protocol/envelope.h"
#include "tests/support/central_client.h"
#include "tests/support/downlink_fixture.h"
#include "tests/support/http_get.h"

namespace edgespool::testing {
namespace {

namespace cl = ::edgespool::client;
using Clock = std::chrono::steady_clock;

constexpr char kMethodTopic[] = "edgespool/test-node/method/";

int64_t MsSince(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t).count();
}

// What a cloud caller got back for one call.
struct Answer {
  std::string payload, error, message;
};

class RequestResponseTest : public DownlinkFixture, public ::testing::WithParamInterface<int> {
 protected:
  int protocol() const { return GetParam(); }

  void SetUp() override {
    StartBroker();
    metrics_port_ = FreePort();
    StartAgent({{"uplink", "protocol = " + std::to_string(protocol())},
                {"metrics", "listen = \"127.0.0.1:" + std::to_string(metrics_port_) + "\""}});
    cl::ProducerOptions o;
    o.socket_path = agent_->socket();
    auto p = cl::Producer::Connect(o);
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    producer_ = std::move(*p);
  }

  void StartService(const std::string& filter = "svc/#") {
    service_ =
        std::make_unique<CentralClient>(broker_->port(), protocol(), "service", EchoResponder);
    ASSERT_TRUE(service_->Start({filter}));
  }

  // Requests until one is answered: the agent is connected and its reply
  // subscription is in place on the broker.
  void WaitUntilAnswering() {
    for (int i = 0; i < 100; ++i) {
      cl::RequestOptions o;
      o.timeout_ms = 300;
      auto r = producer_->Request("svc/probe", "probe", o).get();
      if (r.status.ok()) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    FAIL() << "no request was ever answered: " << agent_->log();
  }

  // A cloud caller of the gateway's methods: publishes calls, collects
  // answers by correlation.
  void StartCaller() {
    caller_ = std::make_unique<CentralClient>(
        broker_->port(), protocol(), "caller", [this](CentralClient& c, const CentralMessage& m) {
          Answer a;
          std::string correlation;
          if (c.protocol() == 5) {
            correlation = m.correlation;
            a.payload = m.payload;
            for (const auto& [k, v] : m.user_properties) {
              if (k == agent::methods::kErrorProperty) a.error = v;
              if (k == agent::methods::kMessageProperty) a.message = v;
            }
          } else {
            protocol::Envelope e;
            std::string_view body;
            std::string error;
            if (!protocol::ParseEnvelope(m.payload, &e, &body, &error)) return;
            correlation = e.correlation;
            a.payload = std::string(body);
            a.error = e.error;
            a.message = e.message;
          }
          std::lock_guard<std::mutex> lock(mu_);
          answers_[correlation] = a;
          cv_.notify_all();
        });
    ASSERT_TRUE(caller_->Start({"caller/replies/#"}));
  }

  void Call(const std::string& method, const std::string& correlation, const std::string& payload,
            int64_t timeout_ms = 0) {
    std::string topic = kMethodTopic + method;
    std::string reply = "caller/replies/" + correlation;
    if (protocol() == 5) {
      std::vector<std::pair<std::string, std::string>> props;
      if (timeout_ms)
        props.emplace_back(agent::methods::kTimeoutProperty, std::to_string(timeout_ms));
      ASSERT_TRUE(caller_->Publish(topic, payload, reply, correlation, props));
    } else {
      protocol::Envelope e;
      e.correlation = correlation;
      e.response_topic = reply;
      if (timeout_ms) e.timeout_ms = timeout_ms;
      ASSERT_TRUE(caller_->Publish(topic, protocol::EncodeEnvelope(e, payload)));
    }
  }

  std::optional<Answer> WaitAnswer(const std::string& correlation, int timeout_ms) {
    std::unique_lock<std::mutex> lock(mu_);
    if (!cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms),
                      [&] { return answers_.count(correlation) > 0; })) {
      return std::nullopt;
    }
    return answers_[correlation];
  }

  // Calls until the agent answers: its method subscription is in place.
  void WaitUntilCallable() {
    for (int i = 0; i < 100; ++i) {
      std::string id = "probe-" + std::to_string(i);
      Call("probe", id, "");
      if (WaitAnswer(id, 200)) return;
    }
    FAIL() << "the agent never answered a call: " << agent_->log();
  }

  double Metric(const std::string& name) {
    return MetricValue(HttpGet(metrics_port_, "/metrics"), name);
  }

  uint16_t metrics_port_ = 0;
  std::unique_ptr<cl::Producer> producer_;
  std::unique_ptr<CentralClient> service_;
  std::unique_ptr<CentralClient> caller_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, Answer> answers_;
};

// 1,000 requests in flight at once through one connection, answered by one
// central service: every answer goes to its own request.
TEST_P(RequestResponseTest, ThousandConcurrentRequestsEachGetsItsOwnAnswer) {
  StartService();
  WaitUntilAnswering();
  constexpr int kRequests = 1000;
  std::vector<std::future<cl::RequestResult>> futures;
  futures.reserve(kRequests);
  auto start = Clock::now();
  for (int i = 0; i < kRequests; ++i) {
    futures.push_back(
        producer_->Request("svc/echo/" + std::to_string(i % 7), "payload-" + std::to_string(i)));
  }
  int matched = 0, crossed = 0, failed = 0;
  for (int i = 0; i < kRequests; ++i) {
    cl::RequestResult r = futures[i].get();
    if (!r.status.ok()) {
      ++failed;
      ADD_FAILURE() << i << ": " << r.status.ToString();
      continue;
    }
    (r.payload == "re:payload-" + std::to_string(i) ? matched : crossed)++;
  }
  std::printf("%d requests: %d matched, %d crossed, %d failed in %lld ms\n", kRequests, matched,
              crossed, failed, static_cast<long long>(MsSince(start)));
  EXPECT_EQ(matched, kRequests);
  EXPECT_EQ(crossed, 0);
}

// No one serves the topic: the request fails after its timeout (within
// 100 ms), with a clear error, while requests and publishes on the same
// connection go on being answered.
TEST_P(RequestResponseTest, TimeoutIsOnTimeAndLeavesOthersAlone) {
  StartService();
  WaitUntilAnswering();
  cl::RequestOptions o;
  o.timeout_ms = 700;
  auto start = Clock::now();
  std::atomic<int64_t> elapsed{-1};
  std::promise<cl::RequestResult> done;
  producer_->Request("nobody/home", "hello", o, [&](cl::RequestResult r) {
    elapsed = MsSince(start);
    done.set_value(std::move(r));
  });
  for (int i = 0; i < 20; ++i) {
    auto r = producer_->Request("svc/x", std::to_string(i)).get();
    ASSERT_TRUE(r.status.ok()) << r.status.ToString();
    EXPECT_EQ(r.payload, "re:" + std::to_string(i));
    ASSERT_TRUE(producer_->Publish("telemetry/t", "v").get().status.ok());
  }
  cl::RequestResult r = done.get_future().get();
  EXPECT_EQ(r.status.code(), Code::kTimeout) << r.status.ToString();
  ASSERT_TRUE(r.code.has_value());
  EXPECT_EQ(*r.code, protocol::ErrorCode::kTimeout);
  EXPECT_NE(r.status.message().find("no answer within 700 ms"), std::string::npos)
      << r.status.ToString();
  std::printf("timeout of 700 ms reported after %lld ms\n", static_cast<long long>(elapsed.load()));
  EXPECT_GE(elapsed.load(), 700 - 100);
  EXPECT_LE(elapsed.load(), 700 + 100);
  EXPECT_TRUE(producer_->Ping().get().ok());
  EXPECT_TRUE(producer_->Request("svc/after", "a").get().status.ok());
}

// A service that answers after the request's timeout: the request fails
// with timeout, and the late answer is dropped and counted, not delivered.
TEST_P(RequestResponseTest, LateAnswerIsDroppedAndCounted) {
  StartService();
  WaitUntilAnswering();
  std::mutex late_mu;
  std::vector<std::thread> late;
  auto slow = std::make_unique<CentralClient>(
      broker_->port(), protocol(), "slow-service", [&](CentralClient& c, const CentralMessage& m) {
        std::lock_guard<std::mutex> lock(late_mu);
        late.emplace_back([&c, m] {
          std::this_thread::sleep_for(std::chrono::milliseconds(600));
          EchoResponder(c, m);
        });
      });
  ASSERT_TRUE(slow->Start({"slow/#"}));
  // Relative to what the probes of WaitUntilAnswering may have left.
  double late0 = Metric("edgespool_requests_late_answers_total");
  double timeouts0 = Metric("edgespool_requests_timeout_total");
  ASSERT_GE(late0, 0);
  cl::RequestOptions o;
  o.timeout_ms = 200;
  cl::RequestResult r = producer_->Request("slow/op", "x", o).get();
  EXPECT_EQ(r.code, protocol::ErrorCode::kTimeout) << r.status.ToString();
  EXPECT_TRUE(
      WaitUntil([&] { return Metric("edgespool_requests_late_answers_total") == late0 + 1; }, 5000))
      << Metric("edgespool_requests_late_answers_total");
  EXPECT_EQ(Metric("edgespool_requests_timeout_total"), timeouts0 + 1);
  EXPECT_EQ(Metric("edgespool_requests_pending"), 0);
  // The connection is fine, and the next answer is the next request's.
  r = producer_->Request("svc/next", "n").get();
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_EQ(r.payload, "re:n");
  {
    std::lock_guard<std::mutex> lock(late_mu);
    for (std::thread& t : late) t.join();
  }
  slow.reset();
}

// While the uplink is down a request fails at once (unavailable); with a
// ttl it waits for the uplink and is answered once it is back.
TEST_P(RequestResponseTest, UplinkDownFailsAtOnceUnlessTtl) {
  StartService();
  WaitUntilAnswering();
  service_.reset();
  broker_->Stop();
  cl::RequestResult r;
  ASSERT_TRUE(WaitUntil(
      [&] {
        r = producer_->Request("svc/x", "down").get();
        return r.code == protocol::ErrorCode::kUnavailable;
      },
      10000))
      << r.status.ToString();
  auto start = Clock::now();
  r = producer_->Request("svc/x", "down").get();
  EXPECT_EQ(r.status.code(), Code::kUnavailable) << r.status.ToString();
  EXPECT_LT(MsSince(start), 100);

  cl::RequestOptions o;
  o.ttl_ms = 20000;
  auto waiting = producer_->Request("svc/x", "patient", o);
  ASSERT_TRUE(broker_->Start()) << broker_->log();
  StartService();
  r = waiting.get();
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_EQ(r.payload, "re:patient");
}

// The cloud calls a method of the gateway: the local responder's answer
// comes back; a method nobody serves is answered no_handler; a responder
// that does not answer in time gets its caller a timeout.
TEST_P(RequestResponseTest, CloudCallsGatewayMethod) {
  StartCaller();
  WaitUntilCallable();
  ASSERT_TRUE(WaitAnswer("probe-0", 0) || true);

  std::unique_ptr<cl::Responder> responder;
  cl::ResponderOptions ro;
  ro.socket_path = agent_->socket();
  ro.methods = {"echo", "slow", "fail"};
  std::mutex calls_mu;
  std::vector<std::string> seen;
  auto opened = cl::Responder::Open(ro, [&](const cl::IncomingCall& c) {
    {
      std::lock_guard<std::mutex> lock(calls_mu);
      seen.push_back(c.method);
    }
    if (c.method == "echo") (void)responder->Answer(c.call, "pong:" + c.payload);
    if (c.method == "fail") (void)responder->AnswerError(c.call, "bad_args", "no such thing");
    // "slow" is never answered.
  });
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  responder = std::move(*opened);

  Call("echo", "c-1", "ping");
  auto a = WaitAnswer("c-1", 5000);
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->payload, "pong:ping");
  EXPECT_EQ(a->error, "");

  Call("missing", "c-2", "x");
  a = WaitAnswer("c-2", 5000);
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->error, "no_handler");
  EXPECT_NE(a->message.find("missing"), std::string::npos) << a->message;

  Call("fail", "c-3", "x");
  a = WaitAnswer("c-3", 5000);
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->error, "bad_args");
  EXPECT_EQ(a->message, "no such thing");

  auto start = Clock::now();
  Call("slow", "c-4", "x", /*timeout_ms=*/400);
  a = WaitAnswer("c-4", 5000);
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->error, "timeout");
  EXPECT_GE(MsSince(start), 400 - 100);
  EXPECT_LE(MsSince(start), 400 + 300);  // plus two broker hops

  // The responder goes away with nothing pending: no_handler again.
  responder.reset();
  ASSERT_TRUE(WaitUntil(
      [&] {
        static int n = 0;
        std::string id = "c-5-" + std::to_string(n++);
        Call("echo", id, "x");
        auto got = WaitAnswer(id, 2000);
        return got && got->error == "no_handler";
      },
      10000));
}

// A gateway request answered by a method of the same gateway, through the
// broker: both directions at once, with the agent's own envelope/properties
// on both sides.
TEST_P(RequestResponseTest, RequestToOwnMethodRoundTrips) {
  std::unique_ptr<cl::Responder> responder;
  cl::ResponderOptions ro;
  ro.socket_path = agent_->socket();
  ro.methods = {"sum"};
  auto opened = cl::Responder::Open(
      ro, [&](const cl::IncomingCall& c) { (void)responder->Answer(c.call, "sum:" + c.payload); });
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  responder = std::move(*opened);
  cl::RequestResult r;
  ASSERT_TRUE(WaitUntil(
      [&] {
        cl::RequestOptions o;
        o.timeout_ms = 500;
        r = producer_->Request(std::string(kMethodTopic) + "sum", "1+2", o).get();
        return r.status.ok();
      },
      10000))
      << r.status.ToString();
  EXPECT_EQ(r.payload, "sum:1+2");
  r = producer_->Request(std::string(kMethodTopic) + "nothing", "x").get();
  EXPECT_EQ(r.code, protocol::ErrorCode::kNoHandler) << r.status.ToString();
}

// The CLI, as the real binary: `edgespool request` prints the answer and
// exits by its outcome; `edgespool respond -- CMD` runs CMD per call.
TEST_P(RequestResponseTest, CliRequestAndRespond) {
  const char* bin = std::getenv("EDGESPOOL_BIN");
  if (!bin) GTEST_SKIP() << "EDGESPOOL_BIN not set (run through ctest)";
  StartService();
  WaitUntilAnswering();
  auto run = [&](std::vector<std::string> argv, std::string* out) {
    Process p;
    std::string log = dir_.File("cli.log");
    argv.insert(argv.begin(), bin);
    if (!p.Start(argv, log)) return -1;
    int st = p.Wait(20000);
    *out = ReadFile(log);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  };
  std::string out;
  EXPECT_EQ(run({"request", "svc/cli", "hello", "--socket", agent_->socket()}, &out), 0) << out;
  EXPECT_EQ(out, "re:hello");
  EXPECT_EQ(
      run({"request", "nobody/x", "hello", "--timeout", "300ms", "--socket", agent_->socket()},
          &out),
      75)
      << out;
  EXPECT_NE(out.find("timeout"), std::string::npos) << out;
  EXPECT_EQ(run({"request", "bad/#", "x", "--socket", agent_->socket()}, &out), 65) << out;
  EXPECT_EQ(run({"request", "svc/x", "x", "--timeout", "5x", "--socket", agent_->socket()}, &out),
            64)
      << out;  // not a duration
  EXPECT_EQ(run({"request", "svc/x", "x", "--socket", dir_.File("nobody.sock")}, &out), 69);

  StartCaller();
  Process respond;
  ASSERT_TRUE(respond.Start(
      {bin, "respond", "echo", "-m", "fail", "--socket", agent_->socket(), "--", "sh", "-c",
       "if [ \"$EDGESPOOL_METHOD\" = fail ]; then echo oops >&2; exit 3; fi; printf got:; cat"},
      dir_.File("respond.log")));
  std::optional<Answer> a;
  ASSERT_TRUE(WaitUntil(
      [&] {
        static int n = 0;
        std::string id = "cli-" + std::to_string(n++);
        Call("echo", id, "ping");
        a = WaitAnswer(id, 2000);
        return a && a->error.empty();
      },
      10000))
      << ReadFile(dir_.File("respond.log"));
  EXPECT_EQ(a->payload, "got:ping");
  Call("fail", "cli-fail", "x");
  a = WaitAnswer("cli-fail", 5000);
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->error, "handler_error");
  EXPECT_NE(a->message.find("exit status 3: oops"), std::string::npos) << a->message;
  respond.Signal(SIGTERM);
  int st = respond.Wait(5000);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << st;
}

INSTANTIATE_TEST_SUITE_P(Mqtt, RequestResponseTest, ::testing::Values(5, 4),
                         [](const ::testing::TestParamInfo<int>& p) {
                           return p.param == 5 ? std::string("V5") : std::string("V311");
                         });

}  // namespace
}  // namespace edgespool::testing
