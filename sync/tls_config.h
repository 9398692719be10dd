// TlsConfig: everything a TLS client connection needs that does not change
// between reconnects: the parsed CA chain, the client certificate and key,
// the seeded CTR-DRBG and the mbedtls_ssl_config that points at them.
//
// Why shared: parsing the system CA bundle (~140 certificates, 220 KB of PEM)
// and seeding the DRBG from the OS entropy source cost milliseconds on an ARM
// gateway; a reconnect storm must not pay them per attempt. The uplink loads
// one TlsConfig at startup (a bad file is a config error then, not a surprise
// at the first reconnect) and every connection holds a shared_ptr to it, so a
// config swapped on reload stays alive until its last connection is gone.
//
// Thread-safety: loop-thread-only. The DRBG and the ssl_config are mutated by
// handshakes without a lock; one TlsConfig must not be shared by two loops.
#pragma once

#include <memory>
#include <string>

#include "platform/status.h"
#include "sync/transport.h"

struct mbedtls_ssl_config;
struct mbedtls_ctr_drbg_context;

namespace edgespool::sync {

class TlsConfig {
 public:
  // The bundle used when neither ca_file nor ca_dir is given.
  static constexpr const char* kSystemCaFile = "/etc/ssl/certs/ca-certificates.crt";

  // Loads and checks every file named in options. Errors name the file and
  // mbedTLS's reason ("tls: ca_file /x.pem: X509 - ... (-0x2180)").
  static Result<std::shared_ptr<TlsConfig>> Create(const TlsOptions& options);
  ~TlsConfig();
  TlsConfig(const TlsConfig&) = delete;
  TlsConfig& operator=(const TlsConfig&) = delete;

  const TlsOptions& options() const { return options_; }
  // The name checked against the certificate (and sent as SNI) for `host`.
  const std::string& ServerNameFor(const std::string& host) const {
    return options_.server_name.empty() ? host : options_.server_name;
  }
  mbedtls_ssl_config* ssl_config();
  mbedtls_ctr_drbg_context* drbg();

 private:
  struct Impl;
  explicit TlsConfig(TlsOptions options);
  TlsOptions options_;
  std::unique_ptr<Impl> impl_;
};

// mbedTLS's error text for code, with its hex value: "SSL - ... (-0x7780)".
std::string MbedtlsErrorText(int code);

}  // namespace edgespool::sync
