// uplink_bench: how fast the uplink can go on this machine, against a real
// mosquitto on loopback, as ratios measured in one run (absolute numbers move
// with the machine; see TESTING.md).
//
//   (a) the limit: libmosquitto's own QoS 1 publisher, 200-byte payloads,
//       a window of 1000 in flight, timed until the last PUBACK;
//   (b) edgespool's MQTT client (sync::mqtt::Client), same messages and window;
//   both over plain TCP and over TLS, with CPU seconds per million messages
//   for the publisher (getrusage) and the broker (/proc/<pid>/stat);
//   plus raw transport throughput (MB/s of QoS 0 PUBLISH bytes, TCP and TLS)
//   and the TLS connection setup costs that TlsConfig sharing saves.
//
// Usage: uplink_bench [messages=100000] [window=1000]
#include <mosquitto.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <optional>
#include <sstream>
#include <string>

#include "platform/log.h"
#include "platform/loop.h"
#include "sync/mqtt/client.h"
#include "sync/tls_config.h"
#include "sync/tls_transport.h"
#include "sync/transport.h"
#include "tests/support/test_env.h"
#include "tests/support/tls_certs.h"
#include "tests/support/raw_mqtt.h"

namespace edgespool::bench {
namespace {

using ::edgespool::testing::RemainingLength;
using ::edgespool::testing::Utf8;

using Clock = std::chrono::steady_clock;
using testing::Mosquitto;

constexpr size_t kPayloadBytes = 200;
const char kTopic[] = "edgespool/bench/uplink";

double SelfCpuSeconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

// utime + stime of another process, from /proc/<pid>/stat fields 14 and 15.
double ProcCpuSeconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto paren = stat.rfind(')');
  if (paren == std::string::npos) return 0;
  std::istringstream fields(stat.substr(paren + 2));
  std::string f;
  unsigned long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && fields >> f; ++i) {
    if (i == 14) utime = std::strtoull(f.c_str(), nullptr, 10);
    if (i == 15) stime = std::strtoull(f.c_str(), nullptr, 10);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

struct Measure {
  Clock::time_point t0 = Clock::now();
  double self0 = SelfCpuSeconds();
  double broker0;
  pid_t broker;
  explicit Measure(pid_t broker_pid) : broker0(ProcCpuSeconds(broker_pid)), broker(broker_pid) {}
  double Seconds() const { return std::chrono::duration<double>(Clock::now() - t0).count(); }
  double SelfCpu() const { return SelfCpuSeconds() - self0; }
  double BrokerCpu() const { return ProcCpuSeconds(broker) - broker0; }
};

struct RunResult {
  bool ok = false;
  uint64_t messages = 0;
  double seconds = 0, self_cpu = 0, broker_cpu = 0;
  double Rate() const { return messages / seconds; }
  double SelfPerM() const { return self_cpu * 1e6 / messages; }
  double BrokerPerM() const { return broker_cpu * 1e6 / messages; }
};

void PrintRun(const char* name, const RunResult& r) {
  if (!r.ok) {
    std::printf("  %-34s FAILED\n", name);
    return;
  }
  std::printf("  %-34s %9.0f msg/s  %6.2f s  cpu/1M msgs: publisher %6.2f s, broker %6.2f s\n",
              name, r.Rate(), r.seconds, r.SelfPerM(), r.BrokerPerM());
}

// --- (a) libmosquitto -------------------------------------------------------

struct LibCtx {
  bool connected = false;
  int connack_rc = -1;
  uint64_t acked = 0;
};

RunResult LibmosquittoRun(const Mosquitto& broker, const std::string& cafile, uint64_t n,
                          int window) {
  RunResult out;
  LibCtx ctx;
  mosquitto* m = mosquitto_new("bench-libmosquitto", true, &ctx);
  if (!m) return out;
  mosquitto_int_option(m, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
  mosquitto_int_option(m, MOSQ_OPT_TCP_NODELAY, 1);
  mosquitto_max_inflight_messages_set(m, static_cast<unsigned>(window));
  mosquitto_connect_callback_set(m, [](mosquitto*, void* p, int rc) {
    auto* c = static_cast<LibCtx*>(p);
    c->connected = rc == 0;
    c->connack_rc = rc;
  });
  mosquitto_publish_callback_set(m, [](mosquitto*, void* p, int) {
    ++static_cast<LibCtx*>(p)->acked;
  });
  std::string host = "127.0.0.1";
  if (!cafile.empty()) {
    host = "localhost";
    if (mosquitto_tls_set(m, cafile.c_str(), nullptr, nullptr, nullptr, nullptr) != 0) {
      mosquitto_destroy(m);
      return out;
    }
  }
  if (mosquitto_connect(m, host.c_str(), broker.port(), 60) != MOSQ_ERR_SUCCESS) {
    mosquitto_destroy(m);
    return out;
  }
  auto deadline = Clock::now() + std::chrono::seconds(10);
  while (ctx.connack_rc < 0 && Clock::now() < deadline) mosquitto_loop(m, 100, 1);
  if (!ctx.connected) {
    mosquitto_destroy(m);
    return out;
  }
  const std::string payload(kPayloadBytes, 'p');
  Measure measure(broker.pid());
  uint64_t published = 0;
  deadline = Clock::now() + std::chrono::seconds(300);
  while (ctx.acked < n && Clock::now() < deadline) {
    while (published < n && published - ctx.acked < static_cast<uint64_t>(window)) {
      if (mosquitto_publish(m, nullptr, kTopic, static_cast<int>(payload.size()), payload.data(), 1,
                            false) != MOSQ_ERR_SUCCESS) {
        break;
      }
      ++published;
    }
    if (mosquitto_loop(m, 100, 1) != MOSQ_ERR_SUCCESS) break;
  }
  out.seconds = measure.Seconds();
  out.self_cpu = measure.SelfCpu();
  out.broker_cpu = measure.BrokerCpu();
  out.messages = ctx.acked;
  out.ok = ctx.acked == n;
  mosquitto_disconnect(m);
  mosquitto_destroy(m);
  return out;
}

// --- (b) edgespool's MQTT client -----------------------------------------

bool RunUntil(platform::Loop& loop, const std::function<bool()>& pred, int timeout_ms);

class BenchListener final : public sync::mqtt::ClientListener {
 public:
  uint64_t acked = 0, refused = 0;
  bool connected = false;
  std::function<void()> on_writable;
  void OnConnected(const sync::mqtt::ConnectInfo&) override { connected = true; }
  void OnPublishAcked(uint64_t, const Status& status, uint8_t) override {
    ++(status.ok() ? acked : refused);
  }
  void OnWritable() override {
    if (on_writable) on_writable();
  }
};

// The same load as LibmosquittoRun: at most `window` unacknowledged, QoS 1,
// MQTT 3.1.1, through sync::mqtt::Client on our loop.
RunResult EdgespoolRun(platform::Loop& loop, const Mosquitto& broker, const std::string& cafile,
                       uint64_t n, int window) {
  const std::string url = broker.url();
  RunResult out;
  BenchListener listener;
  sync::mqtt::ClientOptions o;
  o.url = url;
  o.session.protocol = 4;
  o.session.client_id = "bench-edgespool";
  o.session.inflight = static_cast<uint16_t>(window);
  o.tls.ca_file = cafile;
  auto client_or = sync::mqtt::Client::Create(loop, o, &listener);
  if (!client_or.ok()) {
    std::printf("  client: %s\n", client_or.status().ToString().c_str());
    return out;
  }
  std::unique_ptr<sync::mqtt::Client> client = std::move(client_or).value();
  client->Start();
  if (!RunUntil(loop, [&] { return listener.connected; }, 10000)) return out;

  sync::mqtt::OutgoingMessage msg;
  msg.topic = kTopic;
  msg.payload = std::string(kPayloadBytes, 'p');
  msg.qos = 1;
  uint64_t published = 0;
  bool filling = false;
  auto fill = [&] {
    if (filling) return;
    filling = true;
    while (published < n && published - listener.acked - listener.refused <
                                static_cast<uint64_t>(window)) {
      if (!client->Publish(msg).ok()) break;
      ++published;
    }
    filling = false;
  };
  listener.on_writable = fill;
  Measure measure(broker.pid());
  fill();
  RunUntil(loop, [&] { return listener.acked + listener.refused >= n; }, 300000);
  out.seconds = measure.Seconds();
  out.self_cpu = measure.SelfCpu();
  out.broker_cpu = measure.BrokerCpu();
  out.messages = listener.acked;
  out.ok = listener.acked == n;
  listener.on_writable = nullptr;
  bool stopped = false;
  client->Stop([&] { stopped = true; });
  RunUntil(loop, [&] { return stopped; }, 5000);
  client.reset();
  return out;
}

// --- our transport ------------------------------------------------------------

bool RunUntil(platform::Loop& loop, const std::function<bool()>& pred, int timeout_ms) {
  auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  platform::TimerHandle tick(loop);
  tick.Start(5, 5, [] {});
  while (!pred() && Clock::now() < deadline) loop.RunOnce();
  return pred();
}

Result<std::unique_ptr<sync::Transport>> ConnectTransport(
    platform::Loop& loop, const std::string& url, std::shared_ptr<sync::TlsConfig> tls) {
  auto u = sync::ParseBrokerUrl(url);
  if (!u.ok()) return u.status();
  std::optional<Result<std::unique_ptr<sync::Transport>>> res;
  auto req = sync::Connect(loop, *u, std::move(tls),
                           [&](Result<std::unique_ptr<sync::Transport>> r) { res.emplace(std::move(r)); });
  if (!RunUntil(loop, [&] { return res.has_value(); }, 10000)) return Status::Timeout("connect");
  return std::move(*res);
}

// QoS 0 PUBLISH of 64 KiB payloads, ~4 MiB queued at most, then PINGREQ; the
// PINGRESP says the broker has read everything.
void RawThroughput(platform::Loop& loop, const std::string& url,
                   std::shared_ptr<sync::TlsConfig> tls, const char* name, size_t total) {
  auto t = ConnectTransport(loop, url, tls);
  if (!t.ok()) {
    std::printf("  %-34s connect failed: %s\n", name, t.status().ToString().c_str());
    return;
  }
  std::unique_ptr<sync::Transport> tr = std::move(t).value();
  std::string rx;
  bool ended = false;
  tr->StartReading([&](const char* d, size_t n) { rx.append(d, n); },
                   [&](const Status&) { ended = true; });
  std::string connect_body = Utf8("MQTT") + std::string("\x04\x02\x00\x3c", 4) + Utf8("bench-raw");
  (void)tr->Write({"\x10" + RemainingLength(connect_body.size()) + connect_body});
  if (!RunUntil(loop, [&] { return rx.size() >= 4 || ended; }, 10000)) return;
  rx.clear();
  std::string body = Utf8(kTopic) + std::string(64 << 10, 'x');
  const std::string packet = "\x30" + RemainingLength(body.size()) + body;
  size_t sent = 0;
  Measure measure(getpid());
  platform::TimerHandle pump(loop);
  pump.Start(0, 1, [&] {
    while (sent < total && tr->write_queue_bytes() < (4u << 20)) {
      (void)tr->Write(std::vector<std::string>(8, packet));
      sent += 8 * packet.size();
    }
    if (sent >= total) {
      pump.Stop();
      (void)tr->Write({std::string("\xc0\x00", 2)});
    }
  });
  bool done = RunUntil(loop, [&] { return rx.size() >= 2 || ended; }, 120000);
  double s = measure.Seconds();
  auto* tls_transport = dynamic_cast<sync::TlsTransport*>(tr.get());
  std::printf("  %-34s %s %7.1f MB/s  (%.0f MB in %.2f s, publisher cpu %.2f s) %s\n", name,
              done && !ended ? "  " : "!!", sent / 1e6 / s, sent / 1e6, s, measure.SelfCpu(),
              tls_transport ? tls_transport->Describe().c_str() : "");
  pump.Stop();
}

// Connection setup: handshakes with one shared TlsConfig vs a new one (DRBG
// seed + CA parse) per attempt.
void HandshakeCosts(platform::Loop& loop, const std::string& url, const std::string& cafile) {
  constexpr int kRounds = 30;
  sync::TlsOptions opts;
  opts.ca_file = cafile;
  auto timed = [](const std::function<void()>& fn, int rounds) {
    auto t0 = Clock::now();
    for (int i = 0; i < rounds; ++i) fn();
    return std::chrono::duration<double, std::milli>(Clock::now() - t0).count() / rounds;
  };
  double create_small = timed([&] { (void)sync::TlsConfig::Create(opts); }, kRounds);
  double create_system =
      timed([&] { (void)sync::TlsConfig::Create(sync::TlsOptions{}); }, kRounds);
  auto shared = sync::TlsConfig::Create(opts);
  if (!shared.ok()) return;
  int failures = 0;
  double with_shared = timed(
      [&] {
        if (!ConnectTransport(loop, url, *shared).ok()) ++failures;
      },
      kRounds);
  double with_fresh = timed(
      [&] {
        auto cfg = sync::TlsConfig::Create(opts);
        if (!cfg.ok() || !ConnectTransport(loop, url, *cfg).ok()) ++failures;
      },
      kRounds);
  std::printf("  TlsConfig::Create, test CA file:      %7.2f ms\n", create_small);
  std::printf("  TlsConfig::Create, system CA store:   %7.2f ms\n", create_system);
  std::printf("  connect+handshake, shared TlsConfig:  %7.2f ms\n", with_shared);
  std::printf("  connect+handshake, fresh TlsConfig:   %7.2f ms%s\n", with_fresh,
              failures ? "  (some FAILED)" : "");
}

int Main(int argc, char** argv) {
  uint64_t n = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 100000;
  int window = argc > 2 ? std::atoi(argv[2]) : 1000;
  platform::IgnoreSigpipe();
  platform::Logger::SetLevel(platform::LogLevel::kWarn);
  mosquitto_lib_init();

  testing::TempDir dir;
  testing::TlsCerts certs;
  std::string err;
  if (!testing::TlsCerts::Generate(dir.path(), &certs, &err)) {
    std::fprintf(stderr, "%s\n", err.c_str());
    return 1;
  }
  testing::TempDir plain_dir, tls_dir;
  Mosquitto plain(plain_dir.path());
  testing::MosquittoOptions tls_opts;
  tls_opts.cafile = certs.ca_cert;
  tls_opts.certfile = certs.server_cert;
  tls_opts.keyfile = certs.server_key;
  Mosquitto tls(tls_dir.path(), tls_opts);
  if (!plain.Start() || !tls.Start()) {
    std::fprintf(stderr, "mosquitto did not start\n%s\n%s\n", plain.log().c_str(),
                 tls.log().c_str());
    return 1;
  }
  auto loop_or = platform::Loop::Create();
  if (!loop_or.ok()) return 1;
  platform::Loop& loop = **loop_or;
  auto tls_config = sync::TlsConfig::Create([&] {
    sync::TlsOptions o;
    o.ca_file = certs.ca_cert;
    return o;
  }());
  if (!tls_config.ok()) return 1;

  std::printf("uplink_bench: %llu QoS 1 messages of %zu B, window %d, mosquitto on loopback\n",
              static_cast<unsigned long long>(n), kPayloadBytes, window);
  std::printf("\nQoS 1 publish until the last PUBACK:\n");
  RunResult lib_tcp = LibmosquittoRun(plain, "", n, window);
  PrintRun("(a) libmosquitto, TCP", lib_tcp);
  RunResult ours_tcp = EdgespoolRun(loop, plain, "", n, window);
  PrintRun("(b) edgespool client, TCP", ours_tcp);
  RunResult lib_tls = LibmosquittoRun(tls, certs.ca_cert, n, window);
  PrintRun("(a) libmosquitto, TLS", lib_tls);
  RunResult ours_tls = EdgespoolRun(loop, tls, certs.ca_cert, n, window);
  PrintRun("(b) edgespool client, TLS", ours_tls);
  auto ratio = [](const char* name, const RunResult& ours, const RunResult& lib) {
    if (!ours.ok || !lib.ok) return;
    std::printf("  %-34s rate %.2fx, publisher cpu/msg %.2fx, broker cpu/msg %.2fx\n", name,
                ours.Rate() / lib.Rate(), ours.SelfPerM() / lib.SelfPerM(),
                ours.BrokerPerM() / lib.BrokerPerM());
  };
  ratio("(b)/(a) TCP:", ours_tcp, lib_tcp);
  ratio("(b)/(a) TLS:", ours_tls, lib_tls);

  std::printf("\nRaw transport throughput (QoS 0 PUBLISH of 64 KiB, 200 MB):\n");
  RawThroughput(loop, plain.url(), nullptr, "edgespool transport, TCP", 200u << 20);
  RawThroughput(loop, tls.url(), *tls_config, "edgespool transport, TLS", 200u << 20);

  std::printf("\nTLS connection setup (mean of 30):\n");
  HandshakeCosts(loop, tls.url(), certs.ca_cert);

  RunUntil(loop, [] { return false; }, 50);  // let closes finish
  mosquitto_lib_cleanup();
  return lib_tcp.ok && lib_tls.ok && ours_tcp.ok && ours_tls.ok ? 0 : 1;
}

}  // namespace
}  // namespace edgespool::bench

int main(int argc, char** argv) { return edgespool::bench::Main(argc, argv); }
