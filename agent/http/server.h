// The metrics and health endpoint (`metrics.listen`): a small HTTP/1.1 server
// on the loop thread.
//
//   GET /metrics  200, Prometheus text format 0.0.4 (MetricsRegistry::Render)
//   GET /healthz  200 "ok": answered by the loop itself, so an answer means
//                 the loop is turning
//   GET /readyz   200 when the readiness callback says ready, else 503; the
//                 body is the callback's detail (e.g. "uplink connected")
//   HEAD          as GET without the body; any other method 405
//   other paths   404; a malformed request 400; a head over the limit 431
//
// One request per connection, answered with "Connection: close": scrapers
// open a connection per scrape anyway, and it keeps the state per client to
// one small buffer. The endpoint cannot be used to stall the loop or grow
// memory: a client gets `request_timeout_ms` from accept to send its whole
// head (slowloris), the head is capped at `max_head_bytes`, at most
// `max_clients` connections are open (one more is closed at once), and after
// the answer a client has `linger_timeout_ms` to hang up. The answer is
// followed by a half-close, and what the client still sends is read and
// dropped until it hangs up, so that unread bytes do not turn our close into
// an RST that could destroy the answer in flight.
//
// Thread-safety and lifetime: loop-thread-only. The server owns its listener
// and connections; destroying it closes them all (callbacks never run after).
// The registry and callbacks must outlive the server.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "agent/http/request.h"
#include "agent/http/metrics.h"
#include "platform/loop.h"
#include "platform/status.h"
#include "platform/stream.h"

namespace edgespool::agent {

// A parsed `metrics.listen` value.
struct ListenAddress {
  enum class Kind { kTcp, kUnix };
  Kind kind = Kind::kTcp;
  std::string host;  // "127.0.0.1", "::1" (no brackets), "0.0.0.0"
  uint16_t port = 0;
  std::string path;  // kUnix

  std::string ToString() const;
};

// "127.0.0.1:9464", "[::1]:9464", "0.0.0.0:9464" or "unix:/run/edgespool/metrics.sock".
// Errors name the problem: missing port, port out of range, IPv6 without
// brackets, a host name instead of an address, a relative or too-long path.
Result<ListenAddress> ParseListenAddress(std::string_view text);

struct Readiness {
  bool ready = false;
  std::string detail;  // the /readyz body: "uplink connected", "journal opening"...
};

struct HttpServerOptions {
  size_t max_head_bytes = 8 * 1024;
  size_t max_headers = 64;
  uint64_t request_timeout_ms = 5000;
  uint64_t linger_timeout_ms = 2000;
  size_t max_clients = 64;
  unsigned unix_socket_mode = 0660;
  int backlog = 64;
};

struct HttpServerHandlers {
  MetricsRegistry* metrics = nullptr;    // null: /metrics answers 404
  std::function<Readiness()> readiness;  // empty: always ready, "ok"
};

// Counts kept by the server (tests and, later, its own metrics).
struct HttpServerStats {
  uint64_t accepted = 0;
  uint64_t rejected_too_many = 0;  // closed at accept: max_clients reached
  uint64_t timed_out = 0;          // head not complete within request_timeout_ms
  uint64_t responses = 0;
  uint64_t bad_requests = 0;  // 400, 431, 505 (405 and 404 are not counted here)
};

class HttpServer {
 public:
  static Result<std::unique_ptr<HttpServer>> Create(platform::Loop& loop,
                                                    const ListenAddress& address,
                                                    HttpServerHandlers handlers,
                                                    HttpServerOptions options = {});
  // An fd passed by systemd socket activation (see platform/sd_notify.h).
  static Result<std::unique_ptr<HttpServer>> CreateFromFd(platform::Loop& loop, int fd,
                                                          bool is_unix, HttpServerHandlers handlers,
                                                          HttpServerOptions options = {});
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // The bound TCP port (useful after port 0), 0 for a Unix socket.
  uint16_t port() const { return listener_->port(); }
  size_t open_connections() const { return connections_.size(); }
  const HttpServerStats& stats() const { return stats_; }

 private:
  class Connection;
  HttpServer(platform::Loop& loop, HttpServerHandlers handlers, HttpServerOptions options);
  void OnAccept(std::unique_ptr<platform::Stream> stream);
  void OnData(Connection* c, const char* data, size_t len);
  void Respond(Connection* c, int status, std::string_view content_type, std::string body,
               bool head_only, std::string_view extra_headers = {});
  void Route(Connection* c, const HttpRequest& request);
  // Removes c from the live set; its memory is freed by a zero-delay timer
  // on the next timer phase (never inside its own callback). A check handle
  // would not do: after a close nothing may wake the poll phase before it.
  void Close(Connection* c);
  void SweepClosed();

  platform::Loop& loop_;
  HttpServerHandlers handlers_;
  HttpServerOptions options_;
  std::unique_ptr<platform::Listener> listener_;
  std::unordered_map<Connection*, std::unique_ptr<Connection>> connections_;
  std::vector<std::unique_ptr<Connection>> closed_;
  platform::TimerHandle sweeper_;
  HttpServerStats stats_;
};

}  // namespace edgespool::agent
