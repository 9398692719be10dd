// The uplink transport against a REAL mosquitto, plain and TLS: a raw MQTT
// 3.1.1 CONNECT (bytes, no codec) must be answered by CONNACK 20 02 00 00, and
// every way a TLS connection must be refused is refused with its cause named.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <optional>

#include "platform/loop.h"
#include "sync/tls_config.h"
#include "sync/transport.h"
#include "tests/support/test_env.h"
#include "tests/support/tls_certs.h"
#include "tests/support/raw_mqtt.h"

namespace edgespool::sync {
namespace {

using ::edgespool::testing::RemainingLength;
using ::edgespool::testing::Utf8;

using edgespool::testing::Mosquitto;
using edgespool::testing::MosquittoOptions;
using edgespool::testing::TempDir;
using edgespool::testing::TlsCerts;

const std::string kConnack("\x20\x02\x00\x00", 4);
const std::string kPingreq("\xc0\x00", 2);
const std::string kPingresp("\xd0\x00", 2);

// MQTT 3.1.1 CONNECT, clean session, keepalive 60 s.
std::string ConnectPacket(const std::string& client_id) {
  std::string body = Utf8("MQTT") + std::string("\x04\x02\x00\x3c", 4) + Utf8(client_id);
  return "\x10" + RemainingLength(body.size()) + body;
}

std::string PublishQos0(const std::string& topic, const std::string& payload) {
  std::string body = Utf8(topic) + payload;
  return "\x30" + RemainingLength(body.size()) + body;
}

class TlsTransportTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    pki_dir_ = new TempDir;
    certs_ = new TlsCerts;
    std::string err;
    ASSERT_TRUE(TlsCerts::Generate(pki_dir_->path(), certs_, &err)) << err;
  }
  static void TearDownTestSuite() {
    delete certs_;
    delete pki_dir_;
  }

  void SetUp() override {
    auto l = platform::Loop::Create();
    ASSERT_TRUE(l.ok());
    loop_ = std::move(l).value();
  }
  void TearDown() override {
    transport_.reset();
    Drain();
    loop_.reset();
  }

  bool RunUntil(const std::function<bool()>& pred, int timeout_ms = 10000) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    platform::TimerHandle tick(*loop_);
    tick.Start(5, 5, [] {});
    while (!pred() && std::chrono::steady_clock::now() < deadline) loop_->RunOnce();
    return pred();
  }
  void Drain() {
    auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(30);
    RunUntil([&] { return std::chrono::steady_clock::now() >= until; }, 100);
  }

  // Starts a broker presenting cert/key (TLS) or plain when cert is empty.
  Mosquitto* StartBroker(const std::string& cert, const std::string& key,
                         bool require_certificate = false) {
    MosquittoOptions o;
    if (!cert.empty()) {
      o.cafile = certs_->ca_cert;
      o.certfile = cert;
      o.keyfile = key;
      o.require_certificate = require_certificate;
    }
    broker_ = std::make_unique<Mosquitto>(broker_dir_.path(), o);
    if (!broker_->Start()) {
      ADD_FAILURE() << "mosquitto did not start: " << broker_->log();
      return nullptr;
    }
    return broker_.get();
  }

  // Connects; on success keeps the transport and reads into rx_.
  Status Connect(const std::string& url, const TlsOptions& tls) {
    auto u = ParseBrokerUrl(url);
    if (!u.ok()) return u.status();
    std::optional<Result<std::unique_ptr<Transport>>> res;
    auto req = sync::Connect(*loop_, *u, tls, [&](Result<std::unique_ptr<Transport>> r) {
      res.emplace(std::move(r));
    });
    if (!RunUntil([&] { return res.has_value(); })) return Status::Timeout("test: no result");
    if (!res->ok()) {
      std::printf("  connect %s -> %s\n", url.c_str(), res->status().ToString().c_str());
      return res->status();
    }
    transport_ = std::move(*res).value();
    transport_->StartReading([this](const char* d, size_t n) { rx_.append(d, n); },
                             [this](const Status& why) { end_ = why; });
    return Status::Ok();
  }

  // Sends CONNECT and waits for the 4-byte CONNACK.
  void ExpectConnack() {
    ASSERT_TRUE(transport_);
    ASSERT_TRUE(transport_->Write({ConnectPacket("edgespool-tls-test")}).ok());
    ASSERT_TRUE(RunUntil([&] { return rx_.size() >= 4 || end_.has_value(); }))
        << "no CONNACK; broker log:\n" << broker_->log();
    EXPECT_EQ(rx_.substr(0, 4), kConnack);
  }

  TlsOptions WithCa(const std::string& ca) {
    TlsOptions o;
    o.ca_file = ca;
    return o;
  }

  static TempDir* pki_dir_;
  static TlsCerts* certs_;
  TempDir broker_dir_;
  std::unique_ptr<platform::Loop> loop_;
  std::unique_ptr<Mosquitto> broker_;
  std::unique_ptr<Transport> transport_;
  std::string rx_;
  std::optional<Status> end_;
};

TempDir* TlsTransportTest::pki_dir_ = nullptr;
TlsCerts* TlsTransportTest::certs_ = nullptr;

TEST_F(TlsTransportTest, PlainTcp) {
  auto* b = StartBroker("", "");
  ASSERT_TRUE(b);
  ASSERT_TRUE(Connect(b->url(), {}).ok());
  ExpectConnack();
  EXPECT_TRUE(RunUntil([&] { return transport_->wire_bytes_written() > 0; }));
  EXPECT_EQ(transport_->wire_bytes_written(), ConnectPacket("edgespool-tls-test").size());
}

TEST_F(TlsTransportTest, TlsWithTheTestCa) {
  auto* b = StartBroker(certs_->server_cert, certs_->server_key);
  ASSERT_TRUE(b);
  EXPECT_EQ(b->url().rfind("mqtts://localhost:", 0), 0u);
  Status st = Connect(b->url(), WithCa(certs_->ca_cert));
  ASSERT_TRUE(st.ok()) << st.ToString() << "\n" << b->log();
  ExpectConnack();
  // Ciphertext: the handshake plus a record bigger than the CONNECT itself.
  EXPECT_GT(transport_->wire_bytes_written(), ConnectPacket("edgespool-tls-test").size() + 29);

  // A DISCONNECT makes the broker close: the end arrives once, orderly.
  ASSERT_TRUE(transport_->Write({std::string("\xe0\x00", 2)}).ok());
  ASSERT_TRUE(RunUntil([&] { return end_.has_value(); }));
  EXPECT_TRUE(end_->ok()) << end_->ToString();
}

TEST_F(TlsTransportTest, CaDirectoryWorksToo) {
  auto* b = StartBroker(certs_->server_cert, certs_->server_key);
  ASSERT_TRUE(b);
  TempDir ca_dir;
  edgespool::testing::WriteFile(ca_dir.File("ca.pem"), edgespool::testing::ReadFile(certs_->ca_cert));
  TlsOptions o;
  o.ca_dir = ca_dir.path();
  Status st = Connect(b->url(), o);
  ASSERT_TRUE(st.ok()) << st.ToString();
  ExpectConnack();
}

TEST_F(TlsTransportTest, MutualTlsWithClientCertificate) {
  auto* b = StartBroker(certs_->server_cert, certs_->server_key, /*require_certificate=*/true);
  ASSERT_TRUE(b);
  TlsOptions o = WithCa(certs_->ca_cert);
  o.cert_file = certs_->client_cert;
  o.key_file = certs_->client_key;
  Status st = Connect(b->url(), o);
  ASSERT_TRUE(st.ok()) << st.ToString() << "\n" << b->log();
  ExpectConnack();
}

TEST_F(TlsTransportTest, MutualTlsWithoutClientCertificateIsRefused) {
  auto* b = StartBroker(certs_->server_cert, certs_->server_key, /*require_certificate=*/true);
  ASSERT_TRUE(b);
  Status st = Connect(b->url(), WithCa(certs_->ca_cert));
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), Code::kPermissionDenied) << st.ToString();
  EXPECT_NE(st.message().find("handshake alert"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("client certificate"), std::string::npos) << st.message();
}

TEST_F(TlsTransportTest, UnknownCaIsRefused) {
  auto* b = StartBroker(certs_->server_cert, certs_->server_key);
  ASSERT_TRUE(b);
  Status st = Connect(b->url(), WithCa(certs_->other_ca_cert));
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), Code::kPermissionDenied) << st.ToString();
  EXPECT_NE(st.message().find("tls: unknown CA"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("not trusted"), std::string::npos) << st.message();
}

TEST_F(TlsTransportTest, SystemStoreIsTheDefaultAndDoesNotTrustTheTestCa) {
  if (!std::ifstream(TlsConfig::kSystemCaFile).good()) GTEST_SKIP() << "no system CA bundle";
  auto* b = StartBroker(certs_->server_cert, certs_->server_key);
  ASSERT_TRUE(b);
  Status st = Connect(b->url(), TlsOptions{});
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("unknown CA"), std::string::npos) << st.message();
}

// mbedTLS checks the host name only after mbedtls_ssl_set_hostname
// (CVE-2025-27809 class): a valid certificate for another name must fail.
TEST_F(TlsTransportTest, CertificateForAnotherNameIsRefused) {
  auto* b = StartBroker(certs_->other_cert, certs_->other_key);
  ASSERT_TRUE(b);
  Status st = Connect(b->url(), WithCa(certs_->ca_cert));
  ASSERT_FALSE(st.ok()) << "a certificate for other.example was accepted for localhost";
  EXPECT_EQ(st.code(), Code::kPermissionDenied) << st.ToString();
  EXPECT_NE(st.message().find("tls: hostname mismatch (expected localhost)"), std::string::npos)
      << st.message();
}

TEST_F(TlsTransportTest, ServerNameOverridesTheUrlHost) {
  auto* b = StartBroker(certs_->server_cert, certs_->server_key);
  ASSERT_TRUE(b);
  TlsOptions o = WithCa(certs_->ca_cert);
  o.server_name = "other.example";
  Status st = Connect(b->url(), o);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("hostname mismatch (expected other.example)"), std::string::npos)
      << st.message();

  // And the other way round: reach the other.example broker through 127.0.0.1.
  broker_.reset();
  auto* b2 = StartBroker(certs_->other_cert, certs_->other_key);
  ASSERT_TRUE(b2);
  TlsOptions o2 = WithCa(certs_->ca_cert);
  o2.server_name = "other.example";
  st = Connect("mqtts://127.0.0.1:" + std::to_string(b2->port()), o2);
  ASSERT_TRUE(st.ok()) << st.ToString();
  ExpectConnack();
}

TEST_F(TlsTransportTest, ExpiredCertificateIsRefused) {
  auto* b = StartBroker(certs_->expired_cert, certs_->expired_key);
  ASSERT_TRUE(b);
  Status st = Connect(b->url(), WithCa(certs_->ca_cert));
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), Code::kPermissionDenied) << st.ToString();
  EXPECT_NE(st.message().find("tls: certificate expired"), std::string::npos) << st.message();
}

TEST_F(TlsTransportTest, VerifyOffConnectsAnyway) {
  auto* b = StartBroker(certs_->expired_cert, certs_->expired_key);
  ASSERT_TRUE(b);
  TlsOptions o = WithCa(certs_->other_ca_cert);
  o.verify = false;
  o.server_name = "wrong.example";
  Status st = Connect(b->url(), o);
  ASSERT_TRUE(st.ok()) << st.ToString();
  ExpectConnack();
}

TEST_F(TlsTransportTest, PlainClientOnTlsPortFails) {
  auto* b = StartBroker(certs_->server_cert, certs_->server_key);
  ASSERT_TRUE(b);
  ASSERT_TRUE(Connect("mqtt://127.0.0.1:" + std::to_string(b->port()), {}).ok());
  ASSERT_TRUE(transport_->Write({ConnectPacket("plain-on-tls")}).ok());
  ASSERT_TRUE(RunUntil([&] { return end_.has_value(); }));
  EXPECT_TRUE(rx_.find(kConnack) == std::string::npos);
}

TEST_F(TlsTransportTest, PausedReadingKeepsDataUntilResumed) {
  auto* b = StartBroker(certs_->server_cert, certs_->server_key);
  ASSERT_TRUE(b);
  ASSERT_TRUE(Connect(b->url(), WithCa(certs_->ca_cert)).ok());
  ExpectConnack();
  rx_.clear();
  transport_->StopReading();
  ASSERT_TRUE(transport_->Write({kPingreq}).ok());
  auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(200);
  RunUntil([&] { return std::chrono::steady_clock::now() >= until; }, 300);
  EXPECT_TRUE(rx_.empty());
  transport_->StartReading([this](const char* d, size_t n) { rx_.append(d, n); },
                           [this](const Status& why) { end_ = why; });
  EXPECT_TRUE(RunUntil([&] { return rx_ == kPingresp; }));
}

TEST_F(TlsTransportTest, BrokerDeathEndsTheTlsConnection) {
  auto* b = StartBroker(certs_->server_cert, certs_->server_key);
  ASSERT_TRUE(b);
  ASSERT_TRUE(Connect(b->url(), WithCa(certs_->ca_cert)).ok());
  ExpectConnack();
  b->Kill();
  ASSERT_TRUE(RunUntil([&] { return end_.has_value(); }));
  // Kernel closes the socket: EOF without close_notify (or a reset).
  std::printf("  end after SIGKILL: %s\n", end_->ToString().c_str());
  EXPECT_FALSE(transport_->Write({kPingreq}).ok());
}

// The receive side: 8 MB published to ourselves come back through the Recv
// BIO in 64 KiB reads, exactly.
TEST_F(TlsTransportTest, LargeInboundStreamThroughTls) {
  auto* b = StartBroker(certs_->server_cert, certs_->server_key);
  ASSERT_TRUE(b);
  ASSERT_TRUE(Connect(b->url(), WithCa(certs_->ca_cert)).ok());
  ExpectConnack();
  rx_.clear();
  const std::string topic = "edgespool/echo";
  std::string sub = std::string("\x00\x01", 2) + Utf8(topic) + std::string(1, '\0');
  ASSERT_TRUE(transport_->Write({"\x82" + RemainingLength(sub.size()) + sub}).ok());
  const std::string suback("\x90\x03\x00\x01\x00", 5);
  ASSERT_TRUE(RunUntil([&] { return rx_.size() >= suback.size(); }));
  ASSERT_EQ(rx_, suback);
  rx_.clear();
  constexpr int kMessages = 128;
  std::string payload(64 << 10, '\0');
  for (size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<char>(i * 7 + 3);
  const std::string packet = PublishQos0(topic, payload);
  for (int i = 0; i < kMessages; i += 8) {
    ASSERT_TRUE(transport_->Write(std::vector<std::string>(8, packet)).ok());
  }
  const size_t expected = kMessages * packet.size();
  ASSERT_TRUE(RunUntil([&] { return rx_.size() >= expected || end_.has_value(); }, 30000))
      << rx_.size() << " of " << expected;
  ASSERT_EQ(rx_.size(), expected);
  for (int i = 0; i < kMessages; ++i) {
    ASSERT_EQ(rx_.compare(i * packet.size(), packet.size(), packet), 0) << "message " << i;
  }
}

// 50 MB of QoS 0 PUBLISH through TLS, with the writer holding at most ~4 MB
// queued; a PINGRESP after the last PUBLISH proves the broker read it all.
// Quadratic buffering (erase-from-front per record) would take minutes.
TEST_F(TlsTransportTest, FiftyMegabytesThroughTls) {
  auto* b = StartBroker(certs_->server_cert, certs_->server_key);
  ASSERT_TRUE(b);
  ASSERT_TRUE(Connect(b->url(), WithCa(certs_->ca_cert)).ok());
  ExpectConnack();
  rx_.clear();

  constexpr size_t kTotal = 50u << 20, kPayload = 64u << 10, kMaxQueued = 4u << 20;
  const std::string packet = PublishQos0("edgespool/bench/tls", std::string(kPayload, 'x'));
  size_t sent = 0;
  uint64_t wire_before = transport_->wire_bytes_written();
  auto t0 = std::chrono::steady_clock::now();
  platform::TimerHandle pump(*loop_);
  pump.Start(0, 1, [&] {
    while (sent < kTotal && transport_->write_queue_bytes() < kMaxQueued) {
      // Several publishes per Write, as the client's per-turn flush does.
      std::vector<std::string> bufs(8, packet);
      ASSERT_TRUE(transport_->Write(std::move(bufs)).ok());
      sent += 8 * packet.size();
    }
    if (sent >= kTotal) {
      pump.Stop();
      ASSERT_TRUE(transport_->Write({kPingreq}).ok());
    }
  });
  ASSERT_TRUE(RunUntil([&] { return rx_ == kPingresp || end_.has_value(); }, 60000))
      << "sent " << sent << " bytes; broker log:\n" << b->log();
  ASSERT_EQ(rx_, kPingresp);
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_TRUE(RunUntil([&] { return transport_->write_queue_bytes() == 0; }));
  uint64_t wire = transport_->wire_bytes_written() - wire_before;
  std::printf("TLS transport: %.1f MB plaintext in %.2f s = %.1f MB/s; wire overhead %.2f%%\n",
              sent / 1e6, s, sent / 1e6 / s, 100.0 * (static_cast<double>(wire) - sent) / sent);
  EXPECT_GE(wire, sent);
  EXPECT_LT(s, 45.0);
}

}  // namespace
}  // namespace edgespool::sync
