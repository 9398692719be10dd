// Transport: a connected byte stream to the broker, plain TCP or TLS
// (mbedTLS driven through its BIO callbacks over a platform::Stream: no
// blocking socket calls, no second thread).
//
// Loop-thread-only. The MQTT client sees plaintext either way. Destroying a
// Transport closes the connection; destroying a ConnectRequest cancels it
// (its callback never runs).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "platform/loop.h"
#include "platform/status.h"

namespace edgespool::sync {

// mqtt://host[:1883], mqtts://host[:8883], IPv6 as mqtt://[::1]:1883.
struct BrokerUrl {
  std::string host;
  uint16_t port = 1883;
  bool tls = false;
  // The URL as it may be shown to people: no userinfo.
  std::string Redacted() const;
};
Result<BrokerUrl> ParseBrokerUrl(std::string_view url);

struct TlsOptions {
  std::string ca_file;      // PEM bundle; empty with ca_dir empty: system store
  std::string ca_dir;       // directory of PEM certificates
  std::string cert_file;    // client certificate (mutual TLS)
  std::string key_file;
  std::string server_name;  // SNI and hostname check; default: the URL's host
  bool verify = true;       // off only by explicit config, logged loudly
  // From TCP connected to handshake done; a broker that accepts the TCP
  // connection and then says nothing must not hold the uplink forever.
  uint32_t handshake_timeout_ms = 10000;
};

class Transport {
 public:
  using DataCallback = std::function<void(const char* data, size_t len)>;
  // why: OK for an orderly close by the peer, else the reason.
  using EndCallback = std::function<void(const Status& why)>;

  virtual ~Transport() = default;
  virtual void StartReading(DataCallback on_data, EndCallback on_end) = 0;
  virtual void StopReading() = 0;
  // Queues plaintext; bufs are written in order as one write (TLS: records).
  virtual Status Write(std::vector<std::string> bufs) = 0;
  // Bytes queued and not yet handed to the kernel (for backpressure).
  virtual size_t write_queue_bytes() const = 0;
  // Total bytes written to the socket so far (TLS: ciphertext).
  virtual uint64_t wire_bytes_written() const = 0;
};

class ConnectRequest {
 public:
  using Callback = std::function<void(Result<std::unique_ptr<Transport>>)>;
  virtual ~ConnectRequest() = default;
};

// Resolves, connects and (for mqtts) completes the TLS handshake, verifying
// the server's certificate and host name unless tls.verify is false. Errors
// name their cause: "tls: certificate expired", "tls: unknown CA",
// "tls: hostname mismatch (expected broker.example)", "connect: ECONNREFUSED".
// on_done always runs on a later loop turn, never inside Connect().
//
// Note (mbedTLS 2.28): the certificate is matched against DNS names only; an
// IP address in the URL matches only a certificate whose CN or DNS SAN is that
// literal text. Use a host name, or set server_name.
// Loads the TLS files on every call (a bad file is reported through
// on_done); reconnecting callers should load a TlsConfig once and use the
// overload below.
std::unique_ptr<ConnectRequest> Connect(platform::Loop& loop, const BrokerUrl& url,
                                        const TlsOptions& tls, ConnectRequest::Callback on_done);

// Same, with CA chain, client certificate and seeded DRBG loaded once
// (TlsConfig::Create in sync/tls_config.h) and shared across reconnects.
// tls may be null for mqtt:// URLs.
class TlsConfig;
std::unique_ptr<ConnectRequest> Connect(platform::Loop& loop, const BrokerUrl& url,
                                        std::shared_ptr<TlsConfig> tls,
                                        ConnectRequest::Callback on_done);

}  // namespace edgespool::sync
