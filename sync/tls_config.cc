#include "sync/tls_config.h"

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/pk.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>

#include <cstdio>

#include "platform/log.h"

namespace edgespool::sync {

std::string MbedtlsErrorText(int code) {
  char text[160];
  mbedtls_strerror(code, text, sizeof text);
  char hex[16];
  std::snprintf(hex, sizeof hex, "-0x%04x", static_cast<unsigned>(-code));
  return std::string(text) + " (" + hex + ")";
}

struct TlsConfig::Impl {
  mbedtls_entropy_context entropy;
  mbedtls_ctr_drbg_context drbg;
  mbedtls_x509_crt ca_chain;
  mbedtls_x509_crt own_cert;
  mbedtls_pk_context own_key;
  mbedtls_ssl_config conf;

  Impl() {
    mbedtls_entropy_init(&entropy);
    mbedtls_ctr_drbg_init(&drbg);
    mbedtls_x509_crt_init(&ca_chain);
    mbedtls_x509_crt_init(&own_cert);
    mbedtls_pk_init(&own_key);
    mbedtls_ssl_config_init(&conf);
  }
  ~Impl() {
    mbedtls_ssl_config_free(&conf);
    mbedtls_pk_free(&own_key);
    mbedtls_x509_crt_free(&own_cert);
    mbedtls_x509_crt_free(&ca_chain);
    mbedtls_ctr_drbg_free(&drbg);
    mbedtls_entropy_free(&entropy);
  }
};

namespace {

Status TlsError(const std::string& what, int code) {
  return Status::InvalidArgument("tls: " + what + ": " + MbedtlsErrorText(code));
}

// Parses the trust anchors. A bundle in which some entries fail to parse
// (mbedTLS returns how many) is still usable: system bundles carry a few
// certificates mbedTLS cannot read, which must not take the others down.
Status LoadCaChain(const TlsOptions& o, mbedtls_x509_crt* chain) {
  std::string file = o.ca_file;
  if (file.empty() && o.ca_dir.empty()) file = TlsConfig::kSystemCaFile;
  int failed = 0;
  if (!file.empty()) {
    int rc = mbedtls_x509_crt_parse_file(chain, file.c_str());
    if (rc < 0) return TlsError("ca_file " + file, rc);
    failed += rc;
  }
  if (!o.ca_dir.empty()) {
    int rc = mbedtls_x509_crt_parse_path(chain, o.ca_dir.c_str());
    if (rc < 0) return TlsError("ca_dir " + o.ca_dir, rc);
    failed += rc;
  }
  if (chain->version == 0) {  // nothing parsed at all
    return Status::InvalidArgument("tls: no usable CA certificate in " +
                                   (file.empty() ? o.ca_dir : file));
  }
  if (failed > 0) {
    ES_LOG_WARN("tls: some CA certificates could not be parsed and are ignored",
                {{"count", std::to_string(failed)}});
  }
  return Status::Ok();
}

Status LoadClientCert(const TlsOptions& o, mbedtls_x509_crt* crt, mbedtls_pk_context* key) {
  if (o.cert_file.empty() != o.key_file.empty()) {
    return Status::InvalidArgument("tls: cert_file and key_file must be given together");
  }
  if (o.cert_file.empty()) return Status::Ok();
  int rc = mbedtls_x509_crt_parse_file(crt, o.cert_file.c_str());
  if (rc != 0) return TlsError("cert_file " + o.cert_file, rc < 0 ? rc : -1);
  rc = mbedtls_pk_parse_keyfile(key, o.key_file.c_str(), nullptr);
  if (rc != 0) return TlsError("key_file " + o.key_file, rc);
  rc = mbedtls_pk_check_pair(&crt->pk, key);
  if (rc != 0) {
    return Status::InvalidArgument("tls: key_file " + o.key_file + " does not match cert_file " +
                                   o.cert_file);
  }
  return Status::Ok();
}

}  // namespace

TlsConfig::TlsConfig(TlsOptions options) : options_(std::move(options)), impl_(new Impl) {}
TlsConfig::~TlsConfig() = default;

mbedtls_ssl_config* TlsConfig::ssl_config() { return &impl_->conf; }
mbedtls_ctr_drbg_context* TlsConfig::drbg() { return &impl_->drbg; }

Result<std::shared_ptr<TlsConfig>> TlsConfig::Create(const TlsOptions& options) {
  std::shared_ptr<TlsConfig> cfg(new TlsConfig(options));
  Impl& s = *cfg->impl_;
  static const char kPersonalization[] = "edgespool-uplink";
  int rc = mbedtls_ctr_drbg_seed(&s.drbg, mbedtls_entropy_func, &s.entropy,
                                 reinterpret_cast<const unsigned char*>(kPersonalization),
                                 sizeof kPersonalization - 1);
  if (rc != 0) return Status::Internal("tls: seeding the DRBG: " + MbedtlsErrorText(rc));

  if (options.verify) ES_RETURN_IF_ERROR(LoadCaChain(options, &s.ca_chain));
  ES_RETURN_IF_ERROR(LoadClientCert(options, &s.own_cert, &s.own_key));

  rc = mbedtls_ssl_config_defaults(&s.conf, MBEDTLS_SSL_IS_CLIENT, MBEDTLS_SSL_TRANSPORT_STREAM,
                                   MBEDTLS_SSL_PRESET_DEFAULT);
  if (rc != 0) return Status::Internal("tls: ssl_config_defaults: " + MbedtlsErrorText(rc));
  // TLS 1.0/1.1 are deprecated (RFC 8996); no broker we support needs them.
  mbedtls_ssl_conf_min_version(&s.conf, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3);
  mbedtls_ssl_conf_rng(&s.conf, mbedtls_ctr_drbg_random, &s.drbg);
  if (options.verify) {
    mbedtls_ssl_conf_authmode(&s.conf, MBEDTLS_SSL_VERIFY_REQUIRED);
    mbedtls_ssl_conf_ca_chain(&s.conf, &s.ca_chain, nullptr);
  } else {
    // Anyone on the path can read and change the traffic. Only an explicit
    // config gets here, and it is said loudly once per config load.
    mbedtls_ssl_conf_authmode(&s.conf, MBEDTLS_SSL_VERIFY_NONE);
    ES_LOG_WARN("tls: certificate verification is OFF: the broker is not authenticated");
  }
  if (!options.cert_file.empty()) {
    rc = mbedtls_ssl_conf_own_cert(&s.conf, &s.own_cert, &s.own_key);
    if (rc != 0) return Status::Internal("tls: conf_own_cert: " + MbedtlsErrorText(rc));
  }
  return cfg;
}

}  // namespace edgespool::sync
