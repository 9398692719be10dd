// Broker URL parsing and Connect(): resolve + TCP connect (platform), then,
// for mqtts://, the TLS handshake (tls_transport.cc).
#include "sync/transport.h"

#include <cctype>
#include <utility>

#include "platform/log.h"
#include "platform/stream.h"
#include "sync/tcp_transport.h"
#include "sync/tls_config.h"
#include "sync/tls_transport.h"

namespace edgespool::sync {

namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool ValidHostChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_';
}

bool ValidIpv6Char(char c) {
  return std::isxdigit(static_cast<unsigned char>(c)) || c == ':' || c == '.' || c == '%' ||
         std::isalnum(static_cast<unsigned char>(c));  // zone ids: fe80::1%eth0
}

Status BadUrl(std::string_view why) {
  return Status::InvalidArgument("uplink url: " + std::string(why));
}

}  // namespace

std::string BrokerUrl::Redacted() const {
  bool v6 = host.find(':') != std::string::npos;
  return std::string(tls ? "mqtts://" : "mqtt://") + (v6 ? "[" + host + "]" : host) + ":" +
         std::to_string(port);
}

namespace {

// "[v6addr]" or "[v6addr]:port": the host into *host, the port's digits (if
// any) into *port_text.
Status ParseBracketedHost(std::string_view authority, std::string* host,
                          std::string_view* port_text) {
  auto close = authority.find(']');
  if (close == std::string_view::npos) return BadUrl("unterminated '[' in IPv6 address");
  std::string_view v6 = authority.substr(1, close - 1);
  if (v6.empty() || v6.find(':') == std::string_view::npos) {
    return BadUrl("brackets must hold an IPv6 address");
  }
  for (char c : v6) {
    if (!ValidIpv6Char(c)) return BadUrl("invalid character in IPv6 address");
  }
  *host = std::string(v6);
  std::string_view after = authority.substr(close + 1);
  if (!after.empty()) {
    if (after.front() != ':') return BadUrl("unexpected text after ']'");
    *port_text = after.substr(1);
    if (port_text->empty()) return BadUrl("empty port");
  }
  return Status::Ok();
}

// "host" or "host:port" (a name or an IPv4 address).
Status ParsePlainHost(std::string_view authority, std::string* host,
                      std::string_view* port_text) {
  auto colon = authority.find(':');
  std::string_view name = authority.substr(0, colon);
  if (colon != std::string_view::npos) {
    *port_text = authority.substr(colon + 1);
    if (port_text->find(':') != std::string_view::npos) {
      return BadUrl("IPv6 addresses need brackets: mqtt://[::1]:1883");
    }
    if (port_text->empty()) return BadUrl("empty port");
  }
  if (name.empty()) return BadUrl("missing host");
  for (char c : name) {
    if (!ValidHostChar(c)) return BadUrl("invalid character in host name");
  }
  if (name.front() == '-' || name.front() == '.') return BadUrl("invalid host name");
  *host = std::string(name);
  return Status::Ok();
}

Status ParsePort(std::string_view port_text, uint16_t* port) {
  if (port_text.size() > 5) return BadUrl("port out of range (1-65535)");
  uint32_t n = 0;
  for (char c : port_text) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return BadUrl("port is not a number");
    n = n * 10 + static_cast<uint32_t>(c - '0');
  }
  if (n == 0 || n > 65535) return BadUrl("port out of range (1-65535)");
  *port = static_cast<uint16_t>(n);
  return Status::Ok();
}

}  // namespace

// The error messages never echo the input: a URL may carry a password.
Result<BrokerUrl> ParseBrokerUrl(std::string_view url) {
  BrokerUrl out;
  auto sep = url.find("://");
  if (sep == std::string_view::npos) {
    return BadUrl("missing scheme: write mqtt://host[:port] or mqtts://host[:port]");
  }
  std::string scheme = Lower(url.substr(0, sep));
  if (scheme == "mqtt") {
    out.tls = false;
    out.port = 1883;
  } else if (scheme == "mqtts") {
    out.tls = true;
    out.port = 8883;
  } else {
    return BadUrl("unsupported scheme '" + scheme + "' (use mqtt:// or mqtts://)");
  }
  std::string_view rest = url.substr(sep + 3);
  // Authority ends at the first '/', '?' or '#'; only an empty path or "/" is
  // meaningful for MQTT.
  auto end = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, end);
  if (end != std::string_view::npos && rest.substr(end) != "/") {
    return BadUrl("a path, query or fragment is not allowed (only scheme://host:port)");
  }
  if (authority.find('@') != std::string_view::npos) {
    return BadUrl(
        "credentials in the URL are not accepted: use uplink.username and "
        "uplink.password_file");
  }
  std::string_view port_text;
  Status st = !authority.empty() && authority.front() == '['
                  ? ParseBracketedHost(authority, &out.host, &port_text)
                  : ParsePlainHost(authority, &out.host, &port_text);
  if (st.ok() && !port_text.empty()) st = ParsePort(port_text, &out.port);
  if (!st.ok()) return st;
  return out;
}

namespace {

constexpr uint64_t kTcpConnectTimeoutMs = 10000;

// One connection attempt: resolve + connect, then the TLS handshake.
// Destroying it cancels whichever step is running; on_done never runs then.
class ConnectRequestImpl final : public ConnectRequest {
 public:
  ConnectRequestImpl(platform::Loop& loop, BrokerUrl url, std::shared_ptr<TlsConfig> tls,
                     Callback on_done)
      : loop_(loop), url_(std::move(url)), tls_(std::move(tls)), on_done_(std::move(on_done)) {}

  void Start() {
    ES_LOG_DEBUG("uplink connecting", {{"url", url_.Redacted()}});
    // Without a bound, a black-holed route (SYNs dropped) keeps one attempt
    // pending for the kernel's ~2 minutes of SYN retries, and the link
    // coming back goes unnoticed until the next retransmission.
    timer_ = std::make_unique<platform::TimerHandle>(loop_);
    timer_->Start(kTcpConnectTimeoutMs, 0, [this] {
      Finish(Status::Timeout("tcp: no connection to " + url_.host + ":" + std::to_string(url_.port) +
                             " within " + std::to_string(kTcpConnectTimeoutMs) + " ms"));
    });
    tcp_ = std::make_unique<platform::TcpConnectRequest>(
        loop_, url_.host, url_.port,
        [this](Result<std::unique_ptr<platform::Stream>> r) { OnTcp(std::move(r)); });
    tcp_->Start();
  }

  // Reports an error found before any I/O, on a later turn.
  void FailLater(Status why) {
    std::weak_ptr<bool> alive = alive_;
    loop_.Post([this, alive, why] {
      if (alive.lock()) Finish(why);
    });
  }

 private:
  void OnTcp(Result<std::unique_ptr<platform::Stream>> r) {
    timer_->Stop();
    if (!r.ok()) return Finish(r.status());
    std::unique_ptr<platform::Stream> stream = std::move(r).value();
    // Nagle off: the MQTT client coalesces writes itself, once per turn.
    stream->SetTcpOptions(true, 60);
    if (!url_.tls) return Finish(std::unique_ptr<Transport>(new TcpTransport(std::move(stream))));
    auto t = TlsTransport::Create(std::move(stream), tls_, tls_->ServerNameFor(url_.host));
    if (!t.ok()) return Finish(t.status());
    tls_transport_ = std::move(t).value();
    uint32_t timeout_ms = tls_->options().handshake_timeout_ms;
    if (timeout_ms > 0) {
      timer_->Start(timeout_ms, 0, [this, timeout_ms] {
        Finish(Status::Timeout("tls: no handshake within " + std::to_string(timeout_ms) +
                               " ms (is this port speaking TLS?)"));
      });
    }
    tls_transport_->StartHandshake([this](const Status& st) { OnHandshake(st); });
  }

  // Runs inside the TLS stream's read callback: hand the result over on a
  // later turn, so that neither we nor the caller destroy the transport from
  // inside its own callback.
  void OnHandshake(const Status& st) {
    std::weak_ptr<bool> alive = alive_;
    loop_.Post([this, alive, st] {
      if (!alive.lock()) return;
      if (!st.ok()) return Finish(st);
      ES_LOG_DEBUG("tls established",
                   {{"url", url_.Redacted()}, {"cipher", tls_transport_->Describe()}});
      Finish(std::unique_ptr<Transport>(std::move(tls_transport_)));
    });
  }

  // Never called from inside the TLS transport's own callbacks (OnHandshake
  // defers), so a failed transport can be destroyed here and now; deferring
  // it could outlive the loop. The timer is only stopped: Finish may run
  // inside the timer's callback.
  void Finish(Result<std::unique_ptr<Transport>> result) {
    if (!on_done_) return;
    if (timer_) timer_->Stop();
    tls_transport_.reset();
    Callback cb = std::move(on_done_);
    on_done_ = nullptr;
    cb(std::move(result));  // may destroy this
  }

  platform::Loop& loop_;
  BrokerUrl url_;
  std::shared_ptr<TlsConfig> tls_;
  Callback on_done_;
  std::unique_ptr<platform::TcpConnectRequest> tcp_;
  std::unique_ptr<TlsTransport> tls_transport_;
  std::unique_ptr<platform::TimerHandle> timer_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace

std::unique_ptr<ConnectRequest> Connect(platform::Loop& loop, const BrokerUrl& url,
                                        std::shared_ptr<TlsConfig> tls,
                                        ConnectRequest::Callback on_done) {
  auto req = std::make_unique<ConnectRequestImpl>(loop, url, tls, std::move(on_done));
  if (url.tls && !tls) {
    req->FailLater(Status::InvalidArgument("tls: mqtts:// needs a TLS configuration"));
  } else {
    req->Start();
  }
  return req;
}

std::unique_ptr<ConnectRequest> Connect(platform::Loop& loop, const BrokerUrl& url,
                                        const TlsOptions& tls, ConnectRequest::Callback on_done) {
  if (!url.tls) return Connect(loop, url, std::shared_ptr<TlsConfig>(), std::move(on_done));
  auto config = TlsConfig::Create(tls);
  if (!config.ok()) {
    auto req = std::make_unique<ConnectRequestImpl>(loop, url, nullptr, std::move(on_done));
    req->FailLater(config.status());
    return req;
  }
  return Connect(loop, url, std::move(config).value(), std::move(on_done));
}

}  // namespace edgespool::sync
