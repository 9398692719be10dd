// A TCP proxy on a free loopback port in front of a real broker, for the
// network faults a namespace cannot make (TESTING.md: this kernel has no
// netem): added delay, a silent stall (the connection stays open, nothing
// moves, no FIN, no RST — only keepalive can tell) and a reset in the middle
// of a packet. Threads and blocking sockets; test code only.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace edgespool::testing {

class TcpProxy {
 public:
  // listen_port 0: a free one. A port given up front lets the client be
  // configured before the link exists (until Start() its connects are refused).
  explicit TcpProxy(uint16_t target_port, uint16_t listen_port = 0);
  ~TcpProxy();  // closes every connection and joins the threads
  TcpProxy(const TcpProxy&) = delete;
  TcpProxy& operator=(const TcpProxy&) = delete;

  bool Start();
  uint16_t port() const { return port_; }
  std::string url() const { return "mqtt://127.0.0.1:" + std::to_string(port_); }

  // Every chunk waits this long before it is forwarded (both directions).
  void SetDelayMs(int ms) { delay_ms_ = ms; }
  // Each direction of each connection at most this many bytes/s (0: no cap).
  void SetRate(int64_t bytes_per_s) { rate_ = bytes_per_s; }
  // While on, nothing is forwarded on any connection, old or new (accepted
  // connections stay open and silent): a black hole.
  void SetBlackHole(bool on) { black_hole_ = on; }
  // Freezes the connections open now: they stay open and silent for good.
  // Connections accepted later work normally.
  void StallExisting() { stall_below_ = next_id_.load(); }
  // The next `times` connections are reset (RST, not FIN) after forwarding
  // `after_bytes` client-to-broker bytes, cutting the chunk that crosses the
  // mark in two: the broker sees half a packet, then the reset.
  void ResetAfter(size_t after_bytes, int times) {
    reset_after_ = after_bytes;
    resets_left_ = times;
  }

  int connections() const { return next_id_.load(); }
  int resets_done() const { return resets_done_.load(); }
  int64_t upstream_bytes() const { return up_bytes_.load(); }  // client to broker

 private:
  struct Conn;
  void AcceptLoop();
  void Pump(Conn* conn, bool upstream);

  uint16_t target_;
  uint16_t port_ = 0;
  int listen_fd_ = -1;
  std::atomic<bool> stop_{false};
  std::atomic<int> delay_ms_{0};
  std::atomic<int64_t> rate_{0};
  std::atomic<bool> black_hole_{false};
  std::atomic<int64_t> up_bytes_{0};
  std::atomic<int> next_id_{0};
  std::atomic<int> stall_below_{0};
  std::atomic<size_t> reset_after_{0};
  std::atomic<int> resets_left_{0};
  std::atomic<int> resets_done_{0};
  std::thread accept_thread_;
  std::mutex mu_;
  std::vector<std::thread> pumps_;
};

}  // namespace edgespool::testing
