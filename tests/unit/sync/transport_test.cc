// sync/transport: broker URL parsing, and Connect() against real loopback
// peers (platform::Listener): refused, DNS of localhost, IPv6, cancellation,
// and the TLS failure paths that need no broker (silent peer, garbage,
// immediate close, bad files).
#include "sync/transport.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <optional>

#include "platform/stream.h"
#include "sync/tls_config.h"
#include "tests/support/test_env.h"
#include "tests/support/tls_certs.h"

namespace edgespool::sync {
namespace {

using platform::Loop;
using platform::Stream;

// --- ParseBrokerUrl ---------------------------------------------------------

TEST(ParseBrokerUrlTest, SchemesAndDefaultPorts) {
  auto a = ParseBrokerUrl("mqtt://broker.example");
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(a->host, "broker.example");
  EXPECT_EQ(a->port, 1883);
  EXPECT_FALSE(a->tls);

  auto b = ParseBrokerUrl("mqtts://broker.example");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->port, 8883);
  EXPECT_TRUE(b->tls);

  auto c = ParseBrokerUrl("MQTTS://10.1.2.3:18883/");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->host, "10.1.2.3");
  EXPECT_EQ(c->port, 18883);
  EXPECT_TRUE(c->tls);
  EXPECT_EQ(c->Redacted(), "mqtts://10.1.2.3:18883");
}

TEST(ParseBrokerUrlTest, Ipv6NeedsBrackets) {
  auto a = ParseBrokerUrl("mqtt://[::1]:1884");
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(a->host, "::1");
  EXPECT_EQ(a->port, 1884);
  EXPECT_EQ(a->Redacted(), "mqtt://[::1]:1884");

  auto b = ParseBrokerUrl("mqtts://[2001:db8::7]");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->host, "2001:db8::7");
  EXPECT_EQ(b->port, 8883);

  auto c = ParseBrokerUrl("mqtt://::1:1883");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("brackets"), std::string::npos) << c.status().message();
}

TEST(ParseBrokerUrlTest, RejectsMalformed) {
  for (const char* bad :
       {"broker:1883", "", "http://broker", "tcp://broker:1883", "mqtt://", "mqtt://:1883",
        "mqtt://broker:", "mqtt://broker:0", "mqtt://broker:65536", "mqtt://broker:123456",
        "mqtt://broker:12a", "mqtt://[::1", "mqtt://[::1]x", "mqtt://[]:1883",
        "mqtt://[broker]:1883", "mqtt://broker/topic", "mqtt://broker?x=1", "mqtt://bro ker",
        "mqtt://-broker"}) {
    auto r = ParseBrokerUrl(bad);
    EXPECT_FALSE(r.ok()) << "accepted: " << bad;
    if (!r.ok()) {
      EXPECT_EQ(r.status().code(), Code::kInvalidArgument) << bad;
      EXPECT_EQ(r.status().message().rfind("uplink url: ", 0), 0u) << r.status().message();
    }
  }
}

TEST(ParseBrokerUrlTest, UserinfoIsRejectedAndNeverEchoed) {
  auto r = ParseBrokerUrl("mqtts://alice:s3cr3t-pw@broker.example:8883");
  ASSERT_FALSE(r.ok());
  const std::string& msg = r.status().message();
  EXPECT_EQ(msg.find("s3cr3t"), std::string::npos) << msg;
  EXPECT_EQ(msg.find("alice"), std::string::npos) << msg;
  EXPECT_NE(msg.find("password_file"), std::string::npos) << msg;
}

// --- Loop helpers -------------------------------------------------------------

class TransportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto l = Loop::Create();
    ASSERT_TRUE(l.ok());
    loop_ = std::move(l).value();
  }
  void TearDown() override {
    accepted_.clear();
    listener_.reset();
    loop_.reset();  // requires every handle closed
  }

  // Runs the loop until pred() or timeout; returns pred().
  bool RunUntil(const std::function<bool()>& pred, int timeout_ms = 5000) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    platform::TimerHandle tick(*loop_);
    tick.Start(5, 5, [] {});
    while (!pred() && std::chrono::steady_clock::now() < deadline) loop_->RunOnce();
    return pred();
  }
  // Lets pending callbacks (cancelled requests, closes) finish.
  void Drain(int ms = 100) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    RunUntil([&] { return std::chrono::steady_clock::now() >= deadline; }, ms + 50);
  }

  // A loopback TCP peer; what it receives goes to peer_rx_.
  uint16_t Listen(const std::string& host = "127.0.0.1") {
    auto l = platform::Listener::ListenTcp(*loop_, host, 0, 16, [this](std::unique_ptr<Stream> s) {
      Stream* raw = s.get();
      accepted_.push_back(std::move(s));
      if (on_accept_) on_accept_(raw);
      raw->StartReading([this](const char* d, size_t n) { peer_rx_.append(d, n); },
                        [this](const Status&) { peer_eof_ = true; });
    });
    if (!l.ok()) return 0;
    listener_ = std::move(l).value();
    return listener_->port();
  }

  using ConnectResult = std::optional<Result<std::unique_ptr<Transport>>>;
  std::unique_ptr<ConnectRequest> StartConnect(const std::string& url, const TlsOptions& tls,
                                               ConnectResult* out) {
    auto u = ParseBrokerUrl(url);
    EXPECT_TRUE(u.ok()) << u.status().ToString();
    return Connect(*loop_, *u, tls, [out](Result<std::unique_ptr<Transport>> r) {
      out->emplace(std::move(r));
    });
  }
  Result<std::unique_ptr<Transport>> ConnectNow(const std::string& url, const TlsOptions& tls = {},
                                                int timeout_ms = 5000) {
    ConnectResult res;
    auto req = StartConnect(url, tls, &res);
    if (!RunUntil([&] { return res.has_value(); }, timeout_ms)) {
      return Status::Timeout("test: connect did not finish");
    }
    return std::move(*res);
  }

  std::unique_ptr<Loop> loop_;
  std::unique_ptr<platform::Listener> listener_;
  std::vector<std::unique_ptr<Stream>> accepted_;
  std::function<void(Stream*)> on_accept_;
  std::string peer_rx_;
  bool peer_eof_ = false;
};

// --- TCP ----------------------------------------------------------------------

TEST_F(TransportTest, ConnectionRefusedIsUnavailableAndSaysSo) {
  uint16_t port = testing::FreePort();
  auto r = ConnectNow("mqtt://127.0.0.1:" + std::to_string(port));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kUnavailable) << r.status().ToString();
  EXPECT_NE(r.status().message().find("ECONNREFUSED"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("refused"), std::string::npos);
}

TEST_F(TransportTest, LocalhostResolvesAndCarriesBytesBothWays) {
  uint16_t port = Listen();
  ASSERT_NE(port, 0);
  auto r = ConnectNow("mqtt://localhost:" + std::to_string(port));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  std::unique_ptr<Transport> t = std::move(r).value();
  std::string rx;
  std::optional<Status> end;
  t->StartReading([&](const char* d, size_t n) { rx.append(d, n); },
                  [&](const Status& why) { end = why; });
  ASSERT_TRUE(t->Write({"hel", "lo"}).ok());
  ASSERT_TRUE(RunUntil([&] { return peer_rx_ == "hello"; }));
  EXPECT_TRUE(RunUntil([&] { return t->wire_bytes_written() == 5; }));
  EXPECT_EQ(t->write_queue_bytes(), 0u);

  ASSERT_EQ(accepted_.size(), 1u);
  ASSERT_TRUE(accepted_[0]->Write("world").ok());
  ASSERT_TRUE(RunUntil([&] { return rx == "world"; }));
  accepted_.clear();  // the peer hangs up: an orderly end
  ASSERT_TRUE(RunUntil([&] { return end.has_value(); }));
  EXPECT_TRUE(end->ok()) << end->ToString();
  EXPECT_FALSE(t->Write({"late"}).ok());
  t.reset();
  Drain(20);
}

TEST_F(TransportTest, Ipv6Loopback) {
  uint16_t port = Listen("::1");
  if (port == 0) GTEST_SKIP() << "no IPv6 loopback here";
  auto r = ConnectNow("mqtt://[::1]:" + std::to_string(port));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_TRUE((*r)->Write({"v6"}).ok());
  EXPECT_TRUE(RunUntil([&] { return peer_rx_ == "v6"; }));
  r->reset();
  Drain(20);
}

TEST_F(TransportTest, DestroyingTheRequestCancelsIt) {
  uint16_t port = Listen();
  ConnectResult res;
  auto req = StartConnect("mqtt://localhost:" + std::to_string(port), {}, &res);
  req.reset();  // while the name is being resolved
  Drain(200);
  EXPECT_FALSE(res.has_value());
}

TEST_F(TransportTest, CallbackNeverRunsInsideConnect) {
  uint16_t port = testing::FreePort();
  ConnectResult res;
  TlsOptions bad;
  bad.ca_file = "/nonexistent/ca.pem";
  auto req = StartConnect("mqtts://localhost:" + std::to_string(port), bad, &res);
  EXPECT_FALSE(res.has_value());
  ASSERT_TRUE(RunUntil([&] { return res.has_value(); }));
  ASSERT_FALSE(res->ok());
  EXPECT_NE(res->status().message().find("/nonexistent/ca.pem"), std::string::npos)
      << res->status().ToString();
}

// --- TLS paths that need no broker -------------------------------------------

TlsOptions NoVerify(uint32_t handshake_timeout_ms = 10000) {
  TlsOptions o;
  o.verify = false;
  o.handshake_timeout_ms = handshake_timeout_ms;
  return o;
}

// A listener that never accepts, with its one-slot queue taken: the kernel
// drops further SYNs, as a black-holed route does.
TEST_F(TransportTest, ConnectIntoABlackHoleGivesUpAfterTenSeconds) {
  uint16_t port = 0;
  int l = testing::ListenOnLoopback(0, 0, &port);
  ASSERT_GE(l, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  int filler = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_EQ(::connect(filler, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  auto t0 = std::chrono::steady_clock::now();
  auto r = ConnectNow("mqtt://127.0.0.1:" + std::to_string(port), {}, 20000);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ::close(filler);
  ::close(l);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kTimeout) << r.status().ToString();
  EXPECT_NE(r.status().message().find("no connection to 127.0.0.1"), std::string::npos)
      << r.status().message();
  EXPECT_GE(secs, 9.5);
  EXPECT_LT(secs, 15.0);
}

TEST_F(TransportTest, TlsSilentPeerTimesOut) {
  uint16_t port = Listen();
  auto t0 = std::chrono::steady_clock::now();
  auto r = ConnectNow("mqtts://localhost:" + std::to_string(port), NoVerify(300));
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                  t0).count();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kTimeout) << r.status().ToString();
  EXPECT_NE(r.status().message().find("no handshake within 300 ms"), std::string::npos);
  EXPECT_GE(ms, 250);
  // The ClientHello went out (and SNI with it).
  EXPECT_TRUE(RunUntil([&] { return peer_eof_; }));
  ASSERT_GE(peer_rx_.size(), 5u);
  EXPECT_EQ(static_cast<unsigned char>(peer_rx_[0]), 0x16);  // handshake record
  EXPECT_NE(peer_rx_.find("localhost"), std::string::npos);  // server_name extension
}

TEST_F(TransportTest, TlsToAPlainTextPortSaysSo) {
  on_accept_ = [](Stream* s) { (void)s->Write("HTTP/1.1 400 Bad Request\r\n\r\n"); };
  uint16_t port = Listen();
  auto r = ConnectNow("mqtts://localhost:" + std::to_string(port), NoVerify());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kProtocolError) << r.status().ToString();
  EXPECT_NE(r.status().message().find("is this port speaking TLS?"), std::string::npos)
      << r.status().message();
}

TEST_F(TransportTest, TlsPeerClosingDuringHandshake) {
  on_accept_ = [this](Stream*) {
    loop_->Post([this] { accepted_.clear(); });
  };
  uint16_t port = Listen();
  auto r = ConnectNow("mqtts://localhost:" + std::to_string(port), NoVerify());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kUnavailable) << r.status().ToString();
  EXPECT_NE(r.status().message().find("during the handshake"), std::string::npos)
      << r.status().message();
}

TEST_F(TransportTest, CancelDuringTlsHandshakeClosesTheSocket) {
  uint16_t port = Listen();
  ConnectResult res;
  auto req = StartConnect("mqtts://localhost:" + std::to_string(port), NoVerify(), &res);
  ASSERT_TRUE(RunUntil([&] { return !peer_rx_.empty(); }));  // ClientHello arrived
  req.reset();
  EXPECT_TRUE(RunUntil([&] { return peer_eof_; }));
  Drain(50);
  EXPECT_FALSE(res.has_value());
}

// --- TlsConfig ----------------------------------------------------------------

TEST(TlsConfigTest, FileErrorsNameTheFile) {
  TlsOptions o;
  o.ca_file = "/nonexistent/ca.pem";
  auto a = TlsConfig::Create(o);
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.status().code(), Code::kInvalidArgument);
  EXPECT_NE(a.status().message().find("ca_file /nonexistent/ca.pem"), std::string::npos)
      << a.status().message();

  testing::TempDir dir;
  testing::TlsCerts certs;
  std::string err;
  ASSERT_TRUE(testing::TlsCerts::Generate(dir.path(), &certs, &err)) << err;
  TlsOptions b;
  b.ca_file = certs.ca_cert;
  b.cert_file = certs.client_cert;  // no key
  auto rb = TlsConfig::Create(b);
  ASSERT_FALSE(rb.ok());
  EXPECT_NE(rb.status().message().find("together"), std::string::npos);

  b.key_file = certs.server_key;  // a key of another certificate
  auto rc = TlsConfig::Create(b);
  ASSERT_FALSE(rc.ok());
  EXPECT_NE(rc.status().message().find("does not match"), std::string::npos)
      << rc.status().message();

  b.key_file = certs.client_key;
  auto ok = TlsConfig::Create(b);
  EXPECT_TRUE(ok.ok()) << ok.status().ToString();

  TlsOptions d;
  d.ca_dir = dir.path() + "/newcerts";  // the issued leaf certificates, as a CA dir
  auto rd = TlsConfig::Create(d);
  EXPECT_TRUE(rd.ok()) << rd.status().ToString();
}

// The cost a reconnect saves by sharing one TlsConfig (printed, not asserted).
TEST(TlsConfigTest, SystemStoreIsTheDefaultAndLoadsOnce) {
  if (!std::ifstream(TlsConfig::kSystemCaFile).good()) {
    GTEST_SKIP() << "no system CA bundle at " << TlsConfig::kSystemCaFile;
  }
  constexpr int kRounds = 5;
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < kRounds; ++i) {
    auto c = TlsConfig::Create(TlsOptions{});
    ASSERT_TRUE(c.ok()) << c.status().ToString();
  }
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                std::chrono::steady_clock::now() - t0).count() / kRounds;
  std::printf("TlsConfig::Create with the system CA store (DRBG seed + %s): %lld us\n",
              TlsConfig::kSystemCaFile, static_cast<long long>(us));
}

}  // namespace
}  // namespace edgespool::sync
