#include "agent/http/server.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "platform/log.h"

namespace edgespool::agent {

// --- listen address ----------------------------------------------------------

namespace {

constexpr size_t kMaxUnixPath = 107;  // sizeof(sockaddr_un::sun_path) - 1 on Linux

bool ParsePort(std::string_view s, uint16_t* out) {
  if (s.empty() || s.size() > 5) return false;
  uint32_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint32_t>(c - '0');
  }
  if (v > 65535) return false;
  *out = static_cast<uint16_t>(v);
  return true;
}

// Dotted quad, each part 0..255 without leading zeros beyond "0".
bool IsIpv4(std::string_view s) {
  int parts = 0;
  while (true) {
    size_t dot = s.find('.');
    std::string_view part = s.substr(0, dot);
    if (part.empty() || part.size() > 3 || (part.size() > 1 && part[0] == '0')) return false;
    int v = 0;
    for (char c : part) {
      if (c < '0' || c > '9') return false;
      v = v * 10 + (c - '0');
    }
    if (v > 255) return false;
    ++parts;
    if (dot == std::string_view::npos) break;
    s.remove_prefix(dot + 1);
  }
  return parts == 4;
}

// A plausibility check only (hex digits, colons, an embedded IPv4 tail); the
// listener's bind makes the final call and names the address if it fails.
bool LooksLikeIpv6(std::string_view s) {
  if (s.find(':') == std::string_view::npos) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == ':' ||
           c == '.';
  });
}

}  // namespace

std::string ListenAddress::ToString() const {
  if (kind == Kind::kUnix) return "unix:" + path;
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

Result<ListenAddress> ParseListenAddress(std::string_view text) {
  ListenAddress a;
  auto bad = [&](const std::string& why) {
    return Status::InvalidArgument("listen address '" + std::string(text) + "': " + why);
  };
  if (text.substr(0, 5) == "unix:") {
    a.kind = ListenAddress::Kind::kUnix;
    a.path = std::string(text.substr(5));
    if (a.path.empty())
      return bad("unix: needs a socket path, e.g. unix:/run/edgespool/metrics.sock");
    if (a.path[0] != '/') return bad("the socket path must be absolute");
    if (a.path.size() > kMaxUnixPath) {
      return bad("the socket path is longer than " + std::to_string(kMaxUnixPath) + " bytes");
    }
    return a;
  }
  std::string_view host, port;
  if (!text.empty() && text[0] == '[') {
    size_t close = text.find(']');
    if (close == std::string_view::npos) return bad("missing ']' after the IPv6 address");
    host = text.substr(1, close - 1);
    if (close + 1 >= text.size() || text[close + 1] != ':') {
      return bad("missing :port after the address, e.g. [::1]:9464");
    }
    port = text.substr(close + 2);
    if (!LooksLikeIpv6(host)) return bad("not an IPv6 address inside [...]");
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) return bad("missing :port, e.g. 127.0.0.1:9464");
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) {
      return bad("IPv6 addresses need brackets, e.g. [::1]:9464");
    }
    if (host.empty()) return bad("missing host (0.0.0.0 listens on every interface)");
    if (!IsIpv4(host)) {
      return bad("the host must be an IP address (names are not resolved), e.g. 127.0.0.1");
    }
  }
  if (!ParsePort(port, &a.port)) return bad("the port must be a number from 0 to 65535");
  a.host = std::string(host);
  return a;
}

// --- connections ---------------------------------------------------------------

// One client: its stream, its deadline and the bytes of a head not yet
// complete (at most max_head_bytes + 1).
class HttpServer::Connection {
 public:
  Connection(platform::Loop& loop, std::unique_ptr<platform::Stream> s)
      : stream(std::move(s)), timer(loop) {}
  std::unique_ptr<platform::Stream> stream;
  platform::TimerHandle timer;
  std::string buffer;
  bool answered = false;    // after the answer, reads are dropped until EOF
  std::string stream_path;  // non-empty: an open event stream
};

namespace {

const char* Reason(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 503:
      return "Service Unavailable";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Unknown";
  }
}

constexpr std::string_view kTextPlain = "text/plain; charset=utf-8";

}  // namespace

HttpServer::HttpServer(platform::Loop& loop, HttpServerHandlers handlers, HttpServerOptions options)
    : loop_(loop),
      handlers_(std::move(handlers)),
      options_(options),
      sweeper_(loop),
      keepalive_(loop) {}

HttpServer::~HttpServer() = default;

Result<std::unique_ptr<HttpServer>> HttpServer::Create(platform::Loop& loop,
                                                       const ListenAddress& address,
                                                       HttpServerHandlers handlers,
                                                       HttpServerOptions options) {
  std::unique_ptr<HttpServer> server(new HttpServer(loop, std::move(handlers), options));
  HttpServer* s = server.get();
  auto on_accept = [s](std::unique_ptr<platform::Stream> stream) {
    s->OnAccept(std::move(stream));
  };
  Result<std::unique_ptr<platform::Listener>> listener =
      address.kind == ListenAddress::Kind::kUnix
          ? platform::Listener::ListenUnix(loop, address.path, options.unix_socket_mode,
                                           options.backlog, on_accept)
          : platform::Listener::ListenTcp(loop, address.host, address.port, options.backlog,
                                          on_accept);
  if (!listener.ok()) return listener.status().Annotate("metrics listen " + address.ToString());
  server->listener_ = std::move(listener).value();
  return server;
}

Result<std::unique_ptr<HttpServer>> HttpServer::CreateFromFd(platform::Loop& loop, int fd,
                                                             bool is_unix,
                                                             HttpServerHandlers handlers,
                                                             HttpServerOptions options) {
  std::unique_ptr<HttpServer> server(new HttpServer(loop, std::move(handlers), options));
  HttpServer* s = server.get();
  auto listener = platform::Listener::FromFd(
      loop, fd, is_unix,
      [s](std::unique_ptr<platform::Stream> stream) { s->OnAccept(std::move(stream)); });
  if (!listener.ok())
    return listener.status().Annotate("metrics listen on fd " + std::to_string(fd));
  server->listener_ = std::move(listener).value();
  return server;
}

void HttpServer::OnAccept(std::unique_ptr<platform::Stream> stream) {
  ++stats_.accepted;
  if (connections_.size() >= options_.max_clients) {
    // Closing at once (the Stream's destructor) is the cheapest answer; an
    // HTTP 503 would need a write and a linger for a client we cannot afford.
    ++stats_.rejected_too_many;
    return;
  }
  auto conn = std::make_unique<Connection>(loop_, std::move(stream));
  Connection* c = conn.get();
  connections_.emplace(c, std::move(conn));
  // The deadline runs from accept, not from the last byte: a client that
  // trickles one byte a second is closed all the same.
  c->timer.Start(options_.request_timeout_ms, 0, [this, c] {
    ++stats_.timed_out;
    Close(c);
  });
  c->stream->StartReading([this, c](const char* data, size_t len) { OnData(c, data, len); },
                          [this, c](const Status&) { Close(c); });
}

void HttpServer::OnData(Connection* c, const char* data, size_t len) {
  if (c->answered) return;  // lingering: drop what the client still sends
  // Keep at most one byte past the limit: enough for the parser to say 431.
  size_t room = options_.max_head_bytes + 1 - std::min(c->buffer.size(), options_.max_head_bytes);
  size_t take = std::min(len, room);
  c->buffer.append(data, take);
  // The parser's answer can only change when a line completes or the limit
  // is reached. Parsing only then keeps a client that trickles bytes from
  // costing a full re-parse per byte: with the field-count limit that is at
  // most max_headers + 2 parses of at most max_head_bytes each.
  if (std::memchr(data, '\n', take) == nullptr && c->buffer.size() < options_.max_head_bytes) {
    return;
  }
  HttpParseLimits limits;
  limits.max_head_bytes = options_.max_head_bytes;
  limits.max_headers = options_.max_headers;
  HttpParseResult r = ParseHttpRequest(c->buffer, limits);
  switch (r.state) {
    case HttpParseResult::State::kIncomplete:
      return;
    case HttpParseResult::State::kError:
      ++stats_.bad_requests;
      ES_LOG_DEBUG("bad metrics request",
                   {{"status", std::to_string(r.error_status)}, {"why", r.error}});
      Respond(c, r.error_status, kTextPlain, r.error + "\n", false);
      return;
    case HttpParseResult::State::kComplete:
      Route(c, r.request);
      return;
  }
}

void HttpServer::Route(Connection* c, const HttpRequest& request) {
  bool head_only = request.method == "HEAD";
  if (request.method != "GET" && !head_only) {
    Respond(c, 405, kTextPlain, "method not allowed\n", false, "Allow: GET, HEAD\r\n");
    return;
  }
  if (auto route = handlers_.routes.find(request.path); route != handlers_.routes.end()) {
    HttpResponse answer = route->second(request);
    Respond(c, answer.status, answer.content_type, std::move(answer.body), head_only);
  } else if (handlers_.event_streams.count(request.path)) {
    OpenStream(c, request.path, head_only);
  } else if (request.path == "/metrics" && handlers_.metrics) {
    Respond(c, 200, MetricsRegistry::kContentType, handlers_.metrics->Render(), head_only);
  } else if (request.path == "/healthz") {
    Respond(c, 200, kTextPlain, "ok\n", head_only);
  } else if (request.path == "/readyz") {
    Readiness r = handlers_.readiness ? handlers_.readiness() : Readiness{true, "ok"};
    Respond(c, r.ready ? 200 : 503, kTextPlain, r.detail + "\n", head_only);
  } else {
    Respond(c, 404, kTextPlain, "not found\n", head_only);
  }
}

void HttpServer::Respond(Connection* c, int status, std::string_view content_type, std::string body,
                         bool head_only, std::string_view extra_headers) {
  c->answered = true;
  c->buffer = std::string();  // release the head buffer now, not at close
  ++stats_.responses;
  std::string head = "HTTP/1.1 " + std::to_string(status) + " " + Reason(status) + "\r\n";
  head.append("Content-Type: ").append(content_type).append("\r\n");
  head.append("Content-Length: ").append(std::to_string(body.size())).append("\r\n");
  head.append("Cache-Control: no-store\r\nConnection: close\r\n");
  head.append(extra_headers).append("\r\n");
  std::vector<std::string> bufs;
  bufs.push_back(std::move(head));
  if (!head_only && !body.empty()) bufs.push_back(std::move(body));
  if (!c->stream->Write(std::move(bufs)).ok()) {
    Close(c);
    return;
  }
  c->stream->Shutdown();  // FIN after the answer; the client then hangs up
  c->timer.Start(options_.linger_timeout_ms, 0, [this, c] { Close(c); });
}

size_t HttpServer::stream_clients(const std::string& path) const {
  auto it = streams_.find(path);
  return it == streams_.end() ? 0 : it->second.size();
}

void HttpServer::OpenStream(Connection* c, const std::string& path, bool head_only) {
  size_t open = 0;
  for (const auto& [p, clients] : streams_) open += clients.size();
  if (open >= options_.max_stream_clients) {
    ++stats_.stream_rejected_too_many;
    Respond(c, 503, kTextPlain, "too many event-stream clients\n", head_only);
    return;
  }
  if (head_only) {
    Respond(c, 200, "text/event-stream", "", true);
    return;
  }
  c->answered = true;
  c->buffer = std::string();
  c->timer.Stop();  // no request deadline for a stream: it lives until either side ends it
  ++stats_.responses;
  ++stats_.streams_opened;
  // No Content-Length: the body ends when the connection does (RFC 9112
  // section 6.3, with Connection: close). X-Accel-Buffering stops nginx
  // from holding events back when it proxies the dashboard.
  std::string bytes =
      "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-store\r\n"
      "Connection: close\r\nX-Accel-Buffering: no\r\n\r\n";
  bytes += handlers_.event_streams[path]();
  if (!c->stream->Write(std::move(bytes)).ok()) {
    Close(c);
    return;
  }
  c->stream_path = path;
  streams_[path].push_back(c);
  if (!keepalive_.active() && options_.stream_keepalive_ms > 0) {
    keepalive_.Start(options_.stream_keepalive_ms, options_.stream_keepalive_ms,
                     [this] { OnStreamKeepalive(); });
  }
}

bool HttpServer::StreamWrite(Connection* c, const std::string& bytes) {
  // The bound is on what the kernel would not take: a reader that keeps up
  // never has more than one event queued here.
  if (c->stream->write_queue_bytes() + bytes.size() > options_.max_stream_buffer_bytes) {
    ++stats_.stream_dropped_slow;
    ES_LOG_WARN("event-stream client too slow: closed",
                {{"path", c->stream_path},
                 {"unsent_bytes", std::to_string(c->stream->write_queue_bytes())}});
    Close(c);
    return false;
  }
  if (!c->stream->Write(bytes).ok()) {
    Close(c);
    return false;
  }
  return true;
}

void HttpServer::Broadcast(const std::string& path, const std::string& events) {
  auto it = streams_.find(path);
  if (it == streams_.end() || events.empty()) return;
  // Close() edits the list: walk a copy.
  std::vector<Connection*> clients = it->second;
  for (Connection* c : clients) StreamWrite(c, events);
}

void HttpServer::OnStreamKeepalive() {
  std::vector<Connection*> all;
  for (const auto& [p, clients] : streams_) all.insert(all.end(), clients.begin(), clients.end());
  if (all.empty()) {
    keepalive_.Stop();
    return;
  }
  static const std::string kComment = ": keepalive\n\n";
  for (Connection* c : all) StreamWrite(c, kComment);
}

void HttpServer::Close(Connection* c) {
  auto it = connections_.find(c);
  if (it == connections_.end()) return;
  if (!c->stream_path.empty()) {
    auto& clients = streams_[c->stream_path];
    clients.erase(std::remove(clients.begin(), clients.end(), c), clients.end());
  }
  c->stream->StopReading();
  c->timer.Stop();
  // Not destroyed here: we may be inside this connection's own read or timer
  // callback. A zero-delay timer frees it once that callback has returned.
  closed_.push_back(std::move(it->second));
  connections_.erase(it);
  if (!sweeper_.active()) sweeper_.Start(0, 0, [this] { SweepClosed(); });
}

void HttpServer::SweepClosed() { closed_.clear(); }

}  // namespace edgespool::agent
