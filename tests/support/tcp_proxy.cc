#include "tests/support/tcp_proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>

#include "tests/support/test_env.h"

namespace edgespool::testing {

// Both sockets of one proxied connection; closed by the thread that owns
// them once both directions stopped.
struct TcpProxy::Conn {
  int id = 0;
  int client = -1;
  int upstream = -1;
  std::atomic<bool> done{false};
  std::atomic<bool> reset{false};  // close with RST instead of FIN
};

namespace {

using Clock = std::chrono::steady_clock;

int ConnectLoopback(uint16_t port) {
  int s = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  if (::connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(s);
    return -1;
  }
  return s;
}

void CloseWithReset(int fd) {
  linger l{1, 0};  // RST: the peer sees ECONNRESET, not an orderly close
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  ::close(fd);
}

bool SendAll(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
    if (w <= 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

}  // namespace

TcpProxy::TcpProxy(uint16_t target_port, uint16_t listen_port)
    : target_(target_port), port_(listen_port ? listen_port : FreePort()) {}

TcpProxy::~TcpProxy() {
  stop_ = true;
  if (accept_thread_.joinable()) accept_thread_.join();
  std::vector<std::thread> pumps;
  {
    std::lock_guard<std::mutex> lock(mu_);
    pumps.swap(pumps_);
  }
  for (auto& t : pumps) t.join();
  if (listen_fd_ >= 0) ::close(listen_fd_);
}

bool TcpProxy::Start() {
  listen_fd_ = ListenOnLoopback(port_, 64);
  if (listen_fd_ < 0) return false;
  accept_thread_ = std::thread([this] { AcceptLoop(); });
  return true;
}

void TcpProxy::AcceptLoop() {
  while (!stop_) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    int c = ::accept(listen_fd_, nullptr, nullptr);
    if (c < 0) continue;
    int s = ConnectLoopback(target_);
    if (s < 0) {  // the broker is down: so is the link
      ::close(c);
      continue;
    }
    auto conn = std::make_shared<Conn>();
    conn->id = next_id_.fetch_add(1);
    conn->client = c;
    conn->upstream = s;
    std::lock_guard<std::mutex> lock(mu_);
    pumps_.emplace_back([this, conn] {
      std::thread up([&] { Pump(conn.get(), true); });
      Pump(conn.get(), false);
      up.join();
      if (conn->reset) {
        CloseWithReset(conn->client);
        CloseWithReset(conn->upstream);
      } else {
        ::close(conn->client);
        ::close(conn->upstream);
      }
    });
  }
}

// Copies one direction until either side closes, the connection is reset,
// or the proxy stops. A stalled connection is simply not read.
void TcpProxy::Pump(Conn* conn, bool upstream) {
  int from = upstream ? conn->client : conn->upstream;
  int to = upstream ? conn->upstream : conn->client;
  char buf[4096];
  size_t forwarded = 0;
  double tokens = 0;
  auto last = Clock::now();
  auto frozen = [&] { return black_hole_ || conn->id < stall_below_; };
  while (!stop_ && !conn->done) {
    if (frozen()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      continue;
    }
    pollfd p{from, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0 || frozen()) continue;  // frozen while waiting: read nothing
    int64_t rate = rate_;
    size_t want = sizeof buf;
    if (rate > 0) {  // token bucket, 4 KiB burst
      auto now = Clock::now();
      tokens = std::min(4096.0, tokens + std::chrono::duration<double>(now - last).count() *
                                             static_cast<double>(rate));
      last = now;
      if (tokens < 1) {
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
        continue;
      }
      want = std::min(want, static_cast<size_t>(tokens));
    }
    ssize_t n = ::recv(from, buf, want, 0);
    if (n <= 0) break;
    tokens -= static_cast<double>(n);
    if (int d = delay_ms_; d > 0) std::this_thread::sleep_for(std::chrono::milliseconds(d));
    size_t len = static_cast<size_t>(n);
    size_t mark = reset_after_;
    if (upstream && mark > 0 && forwarded + len > mark && resets_left_.load() > 0 &&
        resets_left_.fetch_sub(1) > 0) {
      // Forward up to the mark and half of what lies beyond: a cut packet.
      size_t keep = mark > forwarded ? mark - forwarded : 0;
      keep += (len - keep) / 2;
      SendAll(to, buf, keep);
      resets_done_.fetch_add(1);
      conn->reset = true;
      break;
    }
    if (!SendAll(to, buf, len)) break;
    forwarded += len;
    if (upstream) up_bytes_.fetch_add(n);
  }
  conn->done = true;
}

}  // namespace edgespool::testing
