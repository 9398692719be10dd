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
// Owners may add GET routes of their own (HttpServerHandlers::routes, e.g.
// the fleet dashboard's page) and event streams (Server-Sent Events,
// HttpServerHandlers::event_streams): a GET on a stream path is answered
// with `Content-Type: text/event-stream`, the bytes its `on_open` returns (a
// snapshot, say), and then whatever the owner Broadcast()s to that path,
// until either side hangs up. A stream client's memory is bounded: a client
// that does not read, so that its unsent bytes would pass
// `max_stream_buffer_bytes`, is closed and counted (`stream_dropped_slow`),
// never buffered for without limit; it reconnects (EventSource does) and
// starts again from a fresh snapshot. At most `max_stream_clients` streams are
// open (one more is answered 503). Every `stream_keepalive_ms` each stream
// gets an SSE comment line, so that a peer gone without a FIN is found by a
// failed write and proxies keep the connection.
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
#include <map>
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
  size_t max_stream_clients = 32;
  size_t max_stream_buffer_bytes = 4 * 1024 * 1024;
  uint64_t stream_keepalive_ms = 15000;
  size_t max_head_bytes = 8 * 1024;
  size_t max_headers = 64;
  uint64_t request_timeout_ms = 5000;
  uint64_t linger_timeout_ms = 2000;
  size_t max_clients = 64;
  unsigned unix_socket_mode = 0660;
  int backlog = 64;
};

// What an owner's route answers.
struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

struct HttpServerHandlers {
  MetricsRegistry* metrics = nullptr;    // null: /metrics answers 404
  std::function<Readiness()> readiness;  // empty: always ready, "ok"
  // GET/HEAD by exact path, checked before the built-in paths.
  std::map<std::string, std::function<HttpResponse(const HttpRequest&)>> routes;
  // Event streams by exact path: on_open returns the first bytes a new
  // client gets (complete SSE events, or "").
  std::map<std::string, std::function<std::string()>> event_streams;
};

// Counts kept by the server (tests and, later, its own metrics).
struct HttpServerStats {
  uint64_t accepted = 0;
  uint64_t rejected_too_many = 0;  // closed at accept: max_clients reached
  uint64_t timed_out = 0;          // head not complete within request_timeout_ms
  uint64_t responses = 0;
  uint64_t bad_requests = 0;  // 400, 431, 505 (405 and 404 are not counted here)
  uint64_t streams_opened = 0;
  uint64_t stream_rejected_too_many = 0;  // answered 503: max_stream_clients reached
  uint64_t stream_dropped_slow = 0;       // closed: unsent bytes over the bound
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
  // Open event streams on `path`.
  size_t stream_clients(const std::string& path) const;

  // Queues `events` (complete SSE events: "event: x\ndata: y\n\n") to every
  // client of the stream at `path`, closing those that fall too far behind.
  void Broadcast(const std::string& path, const std::string& events);
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
  void OpenStream(Connection* c, const std::string& path, bool head_only);
  // Writes to one stream client; false (and the client closed) if it is
  // too far behind or the write fails.
  bool StreamWrite(Connection* c, const std::string& bytes);
  void OnStreamKeepalive();

  platform::Loop& loop_;
  HttpServerHandlers handlers_;
  HttpServerOptions options_;
  std::unique_ptr<platform::Listener> listener_;
  std::unordered_map<Connection*, std::unique_ptr<Connection>> connections_;
  std::vector<std::unique_ptr<Connection>> closed_;
  platform::TimerHandle sweeper_;
  platform::TimerHandle keepalive_;
  // Stream path -> its open clients (also in connections_).
  std::map<std::string, std::vector<Connection*>> streams_;
  HttpServerStats stats_;
};

}  // namespace edgespool::agent
