// The metrics/health endpoint over real sockets: a platform::Loop runs on a
// thread, the test is an ordinary blocking client on 127.0.0.1 (port 0) or a
// Unix socket. Everything the server owns is created and destroyed on the
// loop thread (via RunOnLoop).
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <future>
#include <thread>

#include "agent/http/server.h"
#include "tests/support/loop_thread.h"
#include "tests/support/test_env.h"
#include "tests/unit/agent/exposition_parser.h"

namespace edgespool::agent {
namespace {

using Clock = std::chrono::steady_clock;

int64_t MsSince(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t).count();
}

// --- a blocking test client ------------------------------------------------------

int ConnectTcp(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

int ConnectUnix(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

bool SendAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

// Reads until the server closes (EOF or reset) or timeout_ms passes.
// closed is set when the peer closed.
std::string ReadUntilClose(int fd, int timeout_ms, bool* closed = nullptr) {
  std::string out;
  auto start = Clock::now();
  if (closed) *closed = false;
  while (true) {
    int left = timeout_ms - static_cast<int>(MsSince(start));
    if (left <= 0) return out;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, left) != 1) return out;
    char buf[65536];
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) {
      if (closed) *closed = true;
      return out;
    }
    out.append(buf, static_cast<size_t>(n));
  }
}

struct Response {
  int status = 0;
  std::string head;
  std::string body;
  bool closed = false;
};

Response ParseResponse(const std::string& raw, bool closed) {
  Response r;
  r.closed = closed;
  size_t end = raw.find("\r\n\r\n");
  if (raw.compare(0, 9, "HTTP/1.1 ") != 0 || end == std::string::npos) return r;
  r.status = std::atoi(raw.c_str() + 9);
  r.head = raw.substr(0, end + 4);
  r.body = raw.substr(end + 4);
  return r;
}

// Sends raw bytes on a fresh connection and reads the answer.
Response Exchange(uint16_t port, std::string_view request, int timeout_ms = 3000) {
  int fd = ConnectTcp(port);
  if (fd < 0) return {};
  SendAll(fd, request);
  bool closed = false;
  std::string raw = ReadUntilClose(fd, timeout_ms, &closed);
  ::close(fd);
  return ParseResponse(raw, closed);
}

Response Get(uint16_t port, const std::string& path) {
  return Exchange(port, "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: test\r\n\r\n");
}

using ::edgespool::testing::LoopThread;  // tests/support/loop_thread.h

// A server with a registry and a readiness flag, owned on the loop thread.
class HttpServerTest : public ::testing::Test {
 protected:
  void StartServer(HttpServerOptions options = {}, std::string listen = "127.0.0.1:0",
                   std::function<void(HttpServerHandlers&)> extra = {}) {
    auto addr = ParseListenAddress(listen);
    ASSERT_TRUE(addr.ok()) << addr.status().ToString();
    Status st = loop_.RunOnLoop([&]() -> Status {
      scrapes_ = registry_.AddCounter("edgespool_test_scrapes_total", "Scrapes seen.");
      events_ = registry_.AddCounter("edgespool_test_events_total", "Events.", {{"kind", "a"}});
      latency_ = registry_.AddHistogram("edgespool_test_latency_seconds", "Latency.",
                                        ExponentialBuckets(0.001, 10, 4));
      registry_.AddCollector([this] { scrapes_->Inc(); });
      HttpServerHandlers h;
      h.metrics = &registry_;
      h.readiness = [this] {
        return ready_ ? Readiness{true, "uplink connected"}
                      : Readiness{false, "uplink disconnected"};
      };
      if (extra) extra(h);
      auto server = HttpServer::Create(loop_.loop(), *addr, std::move(h), options);
      if (!server.ok()) return server.status();
      server_ = std::move(server).value();
      return Status::Ok();
    });
    ASSERT_TRUE(st.ok()) << st.ToString();
    port_ = loop_.RunOnLoop([this] { return server_->port(); });
  }
  void TearDown() override {
    loop_.RunOnLoop([this] { server_.reset(); });
  }
  HttpServerStats Stats() {
    return loop_.RunOnLoop([this] { return server_->stats(); });
  }
  size_t OpenConnections() {
    return loop_.RunOnLoop([this] { return server_->open_connections(); });
  }

  LoopThread loop_;
  MetricsRegistry registry_;
  Counter* scrapes_ = nullptr;
  Counter* events_ = nullptr;
  Histogram* latency_ = nullptr;
  bool ready_ = false;  // read and written on the loop thread only
  std::unique_ptr<HttpServer> server_;
  uint16_t port_ = 0;
};

TEST_F(HttpServerTest, MetricsParseStrictlyAndCountersIncreaseAcrossScrapes) {
  StartServer();
  ASSERT_NE(port_, 0);
  double last_scrapes = -1, last_events = -1, last_count = -1;
  for (int i = 0; i < 5; ++i) {
    loop_.RunOnLoop([&] {
      events_->Inc(i + 1);
      latency_->Observe(0.002 * i);
    });
    Response r = Get(port_, "/metrics");
    ASSERT_EQ(r.status, 200) << r.head;
    EXPECT_NE(r.head.find("Content-Type: text/plain; version=0.0.4"), std::string::npos) << r.head;
    EXPECT_NE(r.head.find("Content-Length: " + std::to_string(r.body.size()) + "\r\n"),
              std::string::npos)
        << r.head;
    EXPECT_TRUE(r.closed);
    auto e = testing::ParseExposition(r.body);
    ASSERT_TRUE(e.ok()) << e.error << "\n" << r.body;
    double scrapes = e.At("edgespool_test_scrapes_total");
    double events = e.At("edgespool_test_events_total{kind=\"a\"}");
    double count = e.At("edgespool_test_latency_seconds_count");
    EXPECT_GT(scrapes, last_scrapes);
    EXPECT_GT(events, last_events);
    EXPECT_GT(count, last_count);
    last_scrapes = scrapes;
    last_events = events;
    last_count = count;
  }
  EXPECT_EQ(last_scrapes, 5);
  EXPECT_EQ(last_events, 15);
  // A query string does not change the route.
  EXPECT_EQ(Get(port_, "/metrics?name[]=x").status, 200);
  // HEAD: the same head, no body.
  Response head = Exchange(port_, "HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(head.status, 200);
  EXPECT_TRUE(head.body.empty());
}

TEST_F(HttpServerTest, HealthzAndReadyz) {
  StartServer();
  Response h = Get(port_, "/healthz");
  EXPECT_EQ(h.status, 200);
  EXPECT_EQ(h.body, "ok\n");
  Response not_ready = Get(port_, "/readyz");
  EXPECT_EQ(not_ready.status, 503);
  EXPECT_EQ(not_ready.body, "uplink disconnected\n");
  loop_.RunOnLoop([this] { ready_ = true; });
  Response ready = Get(port_, "/readyz");
  EXPECT_EQ(ready.status, 200);
  EXPECT_EQ(ready.body, "uplink connected\n");
  // HTTP/1.0 without Host is fine.
  EXPECT_EQ(Exchange(port_, "GET /healthz HTTP/1.0\r\n\r\n").status, 200);
}

TEST_F(HttpServerTest, ErrorsGetTheirStatusAndTheServerKeepsServing) {
  StartServer();
  EXPECT_EQ(Get(port_, "/nope").status, 404);
  Response post =
      Exchange(port_, "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc");
  EXPECT_EQ(post.status, 405);
  EXPECT_NE(post.head.find("Allow: GET, HEAD\r\n"), std::string::npos);
  EXPECT_TRUE(post.closed);
  const char* garbage[] = {
      "\x16\x03\x01\x02\x31\x01\xfc\x03\x03\r\n\r\n",  // TLS ClientHello-ish
      "GARBAGE\r\n\r\n",
      "GET /metrics\r\n\r\n",
      "GET metrics HTTP/1.1\r\nHost: x\r\n\r\n",
      "GET /metrics HTTP/1.1\r\n\r\n",  // no Host
      "GET /metrics HTTP/1.1\r\nHost : x\r\n\r\n",
      "GET /metrics HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n",
      "GET /metrics HTTP/1.1\r\nHost: a\x01\r\n\r\n",
  };
  for (const char* g : garbage) {
    Response r = Exchange(port_, g);
    EXPECT_EQ(r.status, 400) << g;
    EXPECT_TRUE(r.closed) << g;
  }
  EXPECT_EQ(Exchange(port_, "GET /metrics HTTP/2.0\r\nHost: x\r\n\r\n").status, 505);
  // Still serving, and nothing left open.
  EXPECT_EQ(Get(port_, "/healthz").status, 200);
  EXPECT_GE(Stats().bad_requests, 9u);
  for (int i = 0; i < 100 && OpenConnections() > 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(OpenConnections(), 0u);
}

TEST_F(HttpServerTest, GarbageIsRefusedBeforeTheHeadEnds) {
  StartServer();
  // A bad request line is answered as soon as its line is complete, without
  // waiting for the blank line (or the timeout).
  int fd = ConnectTcp(port_);
  ASSERT_GE(fd, 0);
  auto start = Clock::now();
  SendAll(fd, "BAD REQUEST LINE HERE\r\nHost: x\r\n");
  bool closed = false;
  Response r = ParseResponse(ReadUntilClose(fd, 3000, &closed), closed);
  ::close(fd);
  EXPECT_EQ(r.status, 400);
  EXPECT_LT(MsSince(start), 1000);
}

TEST_F(HttpServerTest, HugeHeadersGet431AndClose) {
  StartServer();
  // Over 8 KiB of head, never finished: 431 as soon as the limit is passed.
  std::string big = "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Filler: " + std::string(9000, 'a');
  Response r = Exchange(port_, big);
  EXPECT_EQ(r.status, 431);
  EXPECT_TRUE(r.closed);
  // Many small fields adding up past the limit, finished.
  std::string many = "GET /metrics HTTP/1.1\r\nHost: x\r\n";
  for (int i = 0; i < 500; ++i) many += "X-F" + std::to_string(i) + ": 0123456789\r\n";
  many += "\r\n";
  EXPECT_EQ(Exchange(port_, many).status, 431);
  // Just under the limit is fine.
  std::string fits = "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Filler: ";
  fits += std::string(8192 - fits.size() - 4, 'b') + "\r\n\r\n";
  ASSERT_EQ(fits.size(), 8192u);
  EXPECT_EQ(Exchange(port_, fits).status, 200);
  // A client that streams 1 MiB of junk gets its 431; memory stays bounded
  // because the server keeps at most max_head_bytes + 1 of it.
  int fd = ConnectTcp(port_);
  ASSERT_GE(fd, 0);
  SendAll(fd, "GET / HTTP/1.1\r\nX: ");
  std::string chunk(64 * 1024, 'z');
  for (int i = 0; i < 16; ++i) {
    if (!SendAll(fd, chunk)) break;  // the server may already have closed
  }
  bool closed = false;
  Response streamed = ParseResponse(ReadUntilClose(fd, 3000, &closed), closed);
  ::close(fd);
  EXPECT_EQ(streamed.status, 431);
  EXPECT_EQ(Get(port_, "/healthz").status, 200);
}

TEST_F(HttpServerTest, SlowlorisIsClosedAfterTheTimeout) {
  HttpServerOptions o;
  o.request_timeout_ms = 300;
  StartServer(o);
  int fd = ConnectTcp(port_);
  ASSERT_GE(fd, 0);
  auto start = Clock::now();
  // One byte at a time, never finishing: the deadline runs from accept.
  bool closed = false;
  std::string got;
  for (const char c : std::string("GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaa")) {
    if (!SendAll(fd, std::string_view(&c, 1))) break;
    got += ReadUntilClose(fd, 40, &closed);
    if (closed) break;
  }
  if (!closed) got += ReadUntilClose(fd, 2000, &closed);
  int64_t elapsed = MsSince(start);
  ::close(fd);
  EXPECT_TRUE(closed);
  EXPECT_TRUE(got.empty()) << got;  // closed without an answer
  EXPECT_GE(elapsed, 250);
  EXPECT_LT(elapsed, 1500);
  EXPECT_EQ(Stats().timed_out, 1u);
  EXPECT_EQ(Get(port_, "/healthz").status, 200);
}

TEST_F(HttpServerTest, TooManyClientsAreClosedAtOnce) {
  HttpServerOptions o;
  o.max_clients = 4;
  o.request_timeout_ms = 1500;
  StartServer(o);
  std::vector<int> idle;
  for (int i = 0; i < 4; ++i) {
    idle.push_back(ConnectTcp(port_));
    ASSERT_GE(idle.back(), 0);
  }
  // Wait until the server has accepted all four.
  for (int i = 0; i < 200 && OpenConnections() < 4; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_EQ(OpenConnections(), 4u);
  // The fifth is accepted and closed at once, without an answer.
  int extra = ConnectTcp(port_);
  ASSERT_GE(extra, 0);
  SendAll(extra, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  auto start = Clock::now();
  bool closed = false;
  std::string got = ReadUntilClose(extra, 1000, &closed);
  ::close(extra);
  EXPECT_TRUE(closed);
  EXPECT_LT(MsSince(start), 500);
  EXPECT_TRUE(got.empty()) << got;
  EXPECT_EQ(Stats().rejected_too_many, 1u);
  // Once the idle ones go away, clients are served again.
  for (int fd : idle) ::close(fd);
  for (int i = 0; i < 200 && OpenConnections() > 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(Get(port_, "/healthz").status, 200);
}

TEST_F(HttpServerTest, ClientThatNeverHangsUpIsClosedAfterLinger) {
  HttpServerOptions o;
  o.linger_timeout_ms = 200;
  StartServer(o);
  int fd = ConnectTcp(port_);
  ASSERT_GE(fd, 0);
  SendAll(fd, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  // The answer arrives, then EOF (half-close), but we keep our side open and
  // keep talking: the server reads and drops it, and closes after the linger.
  bool closed = false;
  std::string got = ReadUntilClose(fd, 2000, &closed);
  EXPECT_TRUE(closed);
  EXPECT_EQ(ParseResponse(got, closed).status, 200);
  SendAll(fd, "more bytes the server must drop");
  for (int i = 0; i < 200 && OpenConnections() > 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(OpenConnections(), 0u);
  ::close(fd);
}

TEST_F(HttpServerTest, ManySequentialScrapesLeaveNothingOpen) {
  StartServer();
  auto start = Clock::now();
  for (int i = 0; i < 200 && MsSince(start) < 10000; ++i) {
    ASSERT_EQ(Get(port_, i % 2 ? "/metrics" : "/healthz").status, 200) << i;
  }
  for (int i = 0; i < 200 && OpenConnections() > 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(OpenConnections(), 0u);
  EXPECT_EQ(Stats().responses, 200u);
}

TEST_F(HttpServerTest, UnixListener) {
  edgespool::testing::TempDir dir;
  std::string path = dir.File("run/metrics.sock");
  StartServer({}, "unix:" + path);
  EXPECT_EQ(port_, 0);
  int fd = ConnectUnix(path);
  ASSERT_GE(fd, 0);
  SendAll(fd, "GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n");
  bool closed = false;
  Response r = ParseResponse(ReadUntilClose(fd, 3000, &closed), closed);
  ::close(fd);
  ASSERT_EQ(r.status, 200);
  auto e = testing::ParseExposition(r.body);
  EXPECT_TRUE(e.ok()) << e.error;
  EXPECT_TRUE(e.Has("edgespool_test_scrapes_total"));
  // Stop serving before the directory goes: the listener unlinks its socket,
  // and the loop thread is done with its fds before this thread reuses them.
  loop_.RunOnLoop([this] { server_.reset(); });
}

TEST_F(HttpServerTest, ServesOnASocketActivatedFd) {
  StartServer();  // the loop and registry; this test adds a second server
  // What systemd would pass: a bound, listening TCP socket.
  uint16_t port = 0;
  int fd = edgespool::testing::ListenOnLoopback(0, 8, &port);
  ASSERT_GE(fd, 0);
  std::unique_ptr<HttpServer> activated;
  Status st = loop_.RunOnLoop([&]() -> Status {
    HttpServerHandlers h;
    h.metrics = &registry_;
    auto s = HttpServer::CreateFromFd(loop_.loop(), fd, /*is_unix=*/false, std::move(h));
    if (!s.ok()) return s.status();
    activated = std::move(s).value();
    return Status::Ok();
  });
  ASSERT_TRUE(st.ok()) << st.ToString();
  Response r = Get(port, "/metrics");
  EXPECT_EQ(r.status, 200);
  EXPECT_TRUE(testing::ParseExposition(r.body).ok());
  EXPECT_EQ(Get(port, "/readyz").status, 200);  // no readiness callback: ready
  loop_.RunOnLoop([&] { activated.reset(); });  // closes the adopted fd too
}

TEST_F(HttpServerTest, Ipv6Loopback) {
  // Skipped where the kernel has no IPv6 (some CI containers).
  int probe = ::socket(AF_INET6, SOCK_STREAM, 0);
  sockaddr_in6 a6{};
  a6.sin6_family = AF_INET6;
  a6.sin6_addr = in6addr_loopback;
  bool has_v6 = probe >= 0 && ::bind(probe, reinterpret_cast<sockaddr*>(&a6), sizeof a6) == 0;
  if (probe >= 0) ::close(probe);
  if (!has_v6) GTEST_SKIP() << "no IPv6 loopback here";
  StartServer({}, "[::1]:0");
  int fd = ::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  a6.sin6_port = htons(port_);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a6), sizeof a6), 0);
  SendAll(fd, "GET /healthz HTTP/1.1\r\nHost: [::1]\r\n\r\n");
  bool closed = false;
  Response r = ParseResponse(ReadUntilClose(fd, 3000, &closed), closed);
  ::close(fd);
  EXPECT_EQ(r.status, 200);
}

TEST_F(HttpServerTest, ListenErrorsNameTheAddress) {
  StartServer();
  auto addr = ParseListenAddress("127.0.0.1:" + std::to_string(port_));
  ASSERT_TRUE(addr.ok());
  Status st = loop_.RunOnLoop(
      [&]() -> Status { return HttpServer::Create(loop_.loop(), *addr, {}).status(); });
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.ToString().find("127.0.0.1:" + std::to_string(port_)), std::string::npos)
      << st.ToString();
}

// --- owner routes and event streams ------------------------------------------------

void AddStream(HttpServerHandlers& h) {
  h.routes["/page"] = [](const HttpRequest&) {
    return HttpResponse{200, "text/html; charset=utf-8", "<p>hi</p>"};
  };
  h.event_streams["/events"] = [] { return std::string("event: hello\ndata: 1\n\n"); };
}

// Reads from fd until `needle` has arrived (or timeout_ms); returns what came.
std::string ReadUntil(int fd, const std::string& needle, int timeout_ms) {
  std::string out;
  auto start = Clock::now();
  while (out.find(needle) == std::string::npos) {
    int left = timeout_ms - static_cast<int>(MsSince(start));
    pollfd p{fd, POLLIN, 0};
    if (left <= 0 || ::poll(&p, 1, left) != 1) break;
    char buf[65536];
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

TEST_F(HttpServerTest, OwnerRoutesAndAnEventStream) {
  HttpServerOptions o;
  o.stream_keepalive_ms = 100;
  StartServer(o, "127.0.0.1:0", AddStream);
  Response page = Get(port_, "/page");
  EXPECT_EQ(page.status, 200);
  EXPECT_EQ(page.body, "<p>hi</p>");
  EXPECT_NE(page.head.find("Content-Type: text/html"), std::string::npos);
  EXPECT_EQ(Get(port_, "/metrics").status, 200);  // the built-in paths still answer

  int fd = ConnectTcp(port_);
  ASSERT_GE(fd, 0);
  SendAll(fd, "GET /events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n");
  std::string got = ReadUntil(fd, "data: 1\n\n", 3000);
  EXPECT_EQ(got.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << got;
  EXPECT_NE(got.find("Content-Type: text/event-stream"), std::string::npos) << got;
  EXPECT_EQ(got.find("Content-Length"), std::string::npos) << got;
  EXPECT_NE(got.find("\r\n\r\nevent: hello\ndata: 1\n\n"), std::string::npos) << got;
  loop_.RunOnLoop([this] { server_->Broadcast("/events", "event: x\ndata: 2\n\n"); });
  EXPECT_NE(ReadUntil(fd, "data: 2\n\n", 3000).find("event: x"), std::string::npos);
  // Idle streams get comment lines (a dead peer is found by the write).
  EXPECT_NE(ReadUntil(fd, ": keepalive\n\n", 3000).find(": keepalive"), std::string::npos);
  EXPECT_EQ(loop_.RunOnLoop([this] { return server_->stream_clients("/events"); }), 1u);
  ::close(fd);
  for (int i = 0; i < 200 && OpenConnections() > 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(OpenConnections(), 0u);
  EXPECT_EQ(loop_.RunOnLoop([this] { return server_->stream_clients("/events"); }), 0u);
  EXPECT_EQ(Stats().streams_opened, 1u);
}

TEST_F(HttpServerTest, SlowStreamClientIsDroppedAndAFastOneKeepsUp) {
  HttpServerOptions o;
  o.max_stream_buffer_bytes = 256 * 1024;
  StartServer(o, "127.0.0.1:0", AddStream);
  // The slow client asks for a small receive buffer and never reads.
  int slow = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int small = 4096;
  ::setsockopt(slow, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port_);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(slow, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  SendAll(slow, "GET /events HTTP/1.1\r\nHost: x\r\n\r\n");
  int fast = ConnectTcp(port_);
  SendAll(fast, "GET /events HTTP/1.1\r\nHost: x\r\n\r\n");
  for (int i = 0; i < 400; ++i) {
    if (loop_.RunOnLoop([this] { return server_->stream_clients("/events"); }) == 2) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_EQ(loop_.RunOnLoop([this] { return server_->stream_clients("/events"); }), 2u);
  // The fast client reads everything on a thread of its own.
  std::atomic<size_t> fast_bytes{0};
  std::thread reader([&] {
    char buf[65536];
    while (true) {
      pollfd p{fast, POLLIN, 0};
      if (::poll(&p, 1, 3000) != 1) return;
      ssize_t n = ::recv(fast, buf, sizeof buf, 0);
      if (n <= 0) return;
      fast_bytes += static_cast<size_t>(n);
    }
  });
  // 200 events of 32 KiB: 6.4 MiB, far past the slow client's bound.
  const std::string event = "event: big\ndata: " + std::string(32 * 1024, 'x') + "\n\n";
  auto start = Clock::now();
  for (int i = 0; i < 200 && MsSince(start) < 20000; ++i) {
    loop_.RunOnLoop([&] { server_->Broadcast("/events", event); });
    // Paced a little, so the fast reader keeps up as a real one would.
    if (i % 8 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  HttpServerStats st = Stats();
  EXPECT_EQ(st.stream_dropped_slow, 1u);
  EXPECT_EQ(loop_.RunOnLoop([this] { return server_->stream_clients("/events"); }), 1u);
  for (int i = 0; i < 1000 && fast_bytes < 200 * event.size(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_GE(fast_bytes.load(), 200 * event.size());
  ::shutdown(fast, SHUT_RDWR);
  reader.join();
  ::close(fast);
  ::close(slow);
}

TEST_F(HttpServerTest, StreamsBeyondTheLimitGet503) {
  HttpServerOptions o;
  o.max_stream_clients = 1;
  StartServer(o, "127.0.0.1:0", AddStream);
  int first = ConnectTcp(port_);
  SendAll(first, "GET /events HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_NE(ReadUntil(first, "data: 1", 3000).find("data: 1"), std::string::npos);
  EXPECT_EQ(Get(port_, "/events").status, 503);
  EXPECT_EQ(Stats().stream_rejected_too_many, 1u);
  ::close(first);
}

TEST(ListenAddressTest, ParsesTheThreeForms) {
  auto v4 = ParseListenAddress("127.0.0.1:9464");
  ASSERT_TRUE(v4.ok());
  EXPECT_EQ(v4->kind, ListenAddress::Kind::kTcp);
  EXPECT_EQ(v4->host, "127.0.0.1");
  EXPECT_EQ(v4->port, 9464);
  EXPECT_EQ(v4->ToString(), "127.0.0.1:9464");
  auto v6 = ParseListenAddress("[::1]:9464");
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->ToString(), "[::1]:9464");
  auto unix_addr = ParseListenAddress("unix:/run/edgespool/metrics.sock");
  ASSERT_TRUE(unix_addr.ok());
  EXPECT_EQ(unix_addr->kind, ListenAddress::Kind::kUnix);
  EXPECT_EQ(unix_addr->path, "/run/edgespool/metrics.sock");
  EXPECT_TRUE(ParseListenAddress("0.0.0.0:0").ok());
}

TEST(ListenAddressTest, ErrorsSayWhatIsWrong) {
  struct Case {
    const char* text;
    const char* expect;
  } cases[] = {
      {"127.0.0.1", "missing :port"},
      {"127.0.0.1:", "port must be a number"},
      {"127.0.0.1:65536", "port must be a number"},
      {"127.0.0.1:-1", "port must be a number"},
      {":9464", "missing host"},
      {"localhost:9464", "must be an IP address"},
      {"256.1.1.1:9464", "must be an IP address"},
      {"::1:9464", "need brackets"},
      {"[::1]9464", "missing :port"},
      {"[::1:9464", "missing ']'"},
      {"[abc]:9464", "not an IPv6"},
      {"unix:", "needs a socket path"},
      {"unix:relative.sock", "absolute"},
      {"", "missing :port"},
  };
  for (const auto& c : cases) {
    auto r = ParseListenAddress(c.text);
    ASSERT_FALSE(r.ok()) << c.text;
    EXPECT_NE(r.status().message().find(c.expect), std::string::npos)
        << c.text << " -> " << r.status().ToString();
  }
  auto long_path = ParseListenAddress("unix:/" + std::string(200, 'p'));
  EXPECT_FALSE(long_path.ok());
}

}  // namespace
}  // namespace edgespool::agent
