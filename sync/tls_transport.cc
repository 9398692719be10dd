#include "sync/tls_transport.h"

#include <mbedtls/error.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509.h>

#include <cstring>
#include <utility>

#include "sync/tls_config.h"

namespace edgespool::sync {

namespace {

// Largest plaintext of one TLS record (RFC 5246 6.2.1).
constexpr size_t kMaxRecordPlaintext = 16384;

const char* AlertName(unsigned char desc) {
  switch (desc) {
    case MBEDTLS_SSL_ALERT_MSG_CLOSE_NOTIFY: return "close_notify";
    case MBEDTLS_SSL_ALERT_MSG_UNEXPECTED_MESSAGE: return "unexpected_message";
    case MBEDTLS_SSL_ALERT_MSG_BAD_RECORD_MAC: return "bad_record_mac";
    case MBEDTLS_SSL_ALERT_MSG_HANDSHAKE_FAILURE: return "handshake_failure";
    case MBEDTLS_SSL_ALERT_MSG_BAD_CERT: return "bad_certificate";
    case MBEDTLS_SSL_ALERT_MSG_UNSUPPORTED_CERT: return "unsupported_certificate";
    case MBEDTLS_SSL_ALERT_MSG_CERT_REVOKED: return "certificate_revoked";
    case MBEDTLS_SSL_ALERT_MSG_CERT_EXPIRED: return "certificate_expired";
    case MBEDTLS_SSL_ALERT_MSG_CERT_UNKNOWN: return "certificate_unknown";
    case MBEDTLS_SSL_ALERT_MSG_ILLEGAL_PARAMETER: return "illegal_parameter";
    case MBEDTLS_SSL_ALERT_MSG_UNKNOWN_CA: return "unknown_ca";
    case MBEDTLS_SSL_ALERT_MSG_ACCESS_DENIED: return "access_denied";
    case MBEDTLS_SSL_ALERT_MSG_DECODE_ERROR: return "decode_error";
    case MBEDTLS_SSL_ALERT_MSG_DECRYPT_ERROR: return "decrypt_error";
    case MBEDTLS_SSL_ALERT_MSG_PROTOCOL_VERSION: return "protocol_version";
    case MBEDTLS_SSL_ALERT_MSG_INSUFFICIENT_SECURITY: return "insufficient_security";
    case MBEDTLS_SSL_ALERT_MSG_INTERNAL_ERROR: return "internal_error";
    case MBEDTLS_SSL_ALERT_MSG_UNRECOGNIZED_NAME: return "unrecognized_name";
    case MBEDTLS_SSL_ALERT_MSG_NO_APPLICATION_PROTOCOL: return "no_application_protocol";
    case 116: return "certificate_required";  // TLS 1.3 (RFC 8446)
    default: return "alert";
  }
}

// The verify flags as causes a person acts on, most useful first.
std::string VerifyCauses(uint32_t flags, const std::string& expected_name) {
  std::string out;
  auto add = [&out](const std::string& s) { out += (out.empty() ? "" : "; ") + s; };
  if (flags & MBEDTLS_X509_BADCERT_EXPIRED) add("certificate expired");
  if (flags & MBEDTLS_X509_BADCERT_FUTURE) add("certificate not yet valid (check the clock)");
  if (flags & MBEDTLS_X509_BADCERT_NOT_TRUSTED) add("unknown CA (certificate not trusted)");
  if (flags & MBEDTLS_X509_BADCERT_CN_MISMATCH) {
    add("hostname mismatch (expected " + expected_name + ")");
  }
  if (flags & MBEDTLS_X509_BADCERT_REVOKED) add("certificate revoked");
  if (out.empty()) add("certificate rejected");
  return out;
}

}  // namespace

struct TlsTransport::Ssl {
  mbedtls_ssl_context ctx;
  Ssl() { mbedtls_ssl_init(&ctx); }
  ~Ssl() { mbedtls_ssl_free(&ctx); }
};

TlsTransport::TlsTransport(std::unique_ptr<platform::Stream> stream,
                           std::shared_ptr<TlsConfig> config)
    : stream_(std::move(stream)), config_(std::move(config)), ssl_(new Ssl) {}

// Best effort close_notify, so the broker sees an orderly close rather than a
// truncation: libuv tries a write at once when its queue is empty, and
// cancels it on close otherwise (the callback then finds alive_ gone).
TlsTransport::~TlsTransport() {
  if (handshake_done_ && !ended_ && write_failed_.ok() &&
      mbedtls_ssl_close_notify(&ssl_->ctx) == 0) {
    (void)Flush();
  }
}

Result<std::unique_ptr<TlsTransport>> TlsTransport::Create(
    std::unique_ptr<platform::Stream> stream, std::shared_ptr<TlsConfig> config,
    const std::string& server_name) {
  std::unique_ptr<TlsTransport> t(new TlsTransport(std::move(stream), std::move(config)));
  t->server_name_ = server_name;
  int rc = mbedtls_ssl_setup(&t->ssl_->ctx, t->config_->ssl_config());
  if (rc != 0) return Status::Internal("tls: ssl_setup: " + MbedtlsErrorText(rc));
  // Always, even with verify off: it also sends SNI, and with verification
  // on, mbedTLS checks the host name only if one was set (CVE-2025-27809).
  rc = mbedtls_ssl_set_hostname(&t->ssl_->ctx, server_name.c_str());
  if (rc != 0) return Status::InvalidArgument("tls: server name: " + MbedtlsErrorText(rc));
  mbedtls_ssl_set_bio(&t->ssl_->ctx, t.get(), &TlsTransport::OnBioSend, &TlsTransport::OnBioRecv,
                      nullptr);
  return t;
}

std::string TlsTransport::Describe() const {
  const char* cs = mbedtls_ssl_get_ciphersuite(&ssl_->ctx);
  return std::string(mbedtls_ssl_get_version(&ssl_->ctx)) + " " + (cs ? cs : "?");
}

// --- BIO --------------------------------------------------------------------

int TlsTransport::OnBioSend(void* ctx, const unsigned char* buf, size_t len) {
  auto* self = static_cast<TlsTransport*>(ctx);
  self->out_.append(reinterpret_cast<const char*>(buf), len);
  return static_cast<int>(len);
}

int TlsTransport::OnBioRecv(void* ctx, unsigned char* buf, size_t len) {
  auto* self = static_cast<TlsTransport*>(ctx);
  size_t avail = self->in_.size() - self->in_off_;
  if (avail == 0) {
    // 0 tells mbedTLS the transport's read side is closed.
    return self->peer_eof_ || !self->peer_error_.ok() ? 0 : MBEDTLS_ERR_SSL_WANT_READ;
  }
  size_t n = len < avail ? len : avail;
  std::memcpy(buf, self->in_.data() + self->in_off_, n);
  self->in_off_ += n;
  if (self->in_off_ == self->in_.size()) {
    self->in_.clear();
    self->in_off_ = 0;
  }
  return static_cast<int>(n);
}

// --- Stream events ----------------------------------------------------------

void TlsTransport::OnStreamData(const char* data, size_t len) {
  // Compact only once the consumed prefix is at least half the buffer, so
  // each byte is moved O(1) times on average.
  if (in_off_ > 0 && in_off_ * 2 >= in_.size()) {
    in_.erase(0, in_off_);
    in_off_ = 0;
  }
  in_.append(data, len);
  if (!handshake_done_) return DriveHandshake();
  if (reading_) Pump();
}

void TlsTransport::OnStreamEnd(const Status& why) {
  if (why.ok()) {
    peer_eof_ = true;
  } else {
    peer_error_ = why;
  }
  if (!handshake_done_) {
    if (!why.ok()) {
      return FinishHandshake(
          Status::Unavailable("tls: connection failed during the handshake: " + why.message()));
    }
    return DriveHandshake();  // the BIO now reports EOF
  }
  if (reading_) Pump();
}

// --- Handshake --------------------------------------------------------------

void TlsTransport::StartHandshake(HandshakeCallback on_done) {
  on_handshake_ = std::move(on_done);
  stream_->StartReading([this](const char* d, size_t n) { OnStreamData(d, n); },
                        [this](const Status& why) { OnStreamEnd(why); });
  DriveHandshake();
}

void TlsTransport::DriveHandshake() {
  if (handshake_done_ || !on_handshake_) return;
  int rc = mbedtls_ssl_handshake(&ssl_->ctx);
  Status flushed = Flush();  // whatever this step produced, as one write
  if (rc == MBEDTLS_ERR_SSL_WANT_READ || rc == MBEDTLS_ERR_SSL_WANT_WRITE) {
    if (!flushed.ok()) FinishHandshake(flushed);
    return;
  }
  if (rc != 0) return FinishHandshake(HandshakeError(rc));
  if (!flushed.ok()) return FinishHandshake(flushed);
  handshake_done_ = true;
  // Application data waits in the socket until someone reads.
  stream_->StopReading();
  FinishHandshake(Status::Ok());
}

void TlsTransport::FinishHandshake(const Status& result) {
  if (!on_handshake_) return;
  if (!result.ok()) {
    ended_ = true;
    stream_->StopReading();
  }
  HandshakeCallback cb = std::move(on_handshake_);
  on_handshake_ = nullptr;
  cb(result);  // may destroy this
}

Status TlsTransport::HandshakeError(int rc) const {
  if (rc == MBEDTLS_ERR_X509_CERT_VERIFY_FAILED) {
    uint32_t flags = mbedtls_ssl_get_verify_result(&ssl_->ctx);
    char info[512];
    int n = mbedtls_x509_crt_verify_info(info, sizeof info, "", flags);
    std::string detail(info, n > 0 ? static_cast<size_t>(n) : 0);
    while (!detail.empty() && detail.back() == '\n') detail.pop_back();
    for (auto& c : detail) {
      if (c == '\n') c = ';';
    }
    return Status::PermissionDenied("tls: " + VerifyCauses(flags, server_name_) +
                                    " [mbedtls: " + detail + "]");
  }
  if (rc == MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE) {
    // mbedTLS 2.28 has no getter; the alert is still in the input record.
    unsigned char desc = ssl_->ctx.in_msg ? ssl_->ctx.in_msg[1] : 0;
    std::string msg = "tls: handshake alert from the server: " + std::string(AlertName(desc)) +
                      " (" + std::to_string(desc) + ")";
    bool cert_alert = desc == MBEDTLS_SSL_ALERT_MSG_HANDSHAKE_FAILURE ||
                      desc == MBEDTLS_SSL_ALERT_MSG_BAD_CERT ||
                      desc == MBEDTLS_SSL_ALERT_MSG_UNKNOWN_CA ||
                      desc == MBEDTLS_SSL_ALERT_MSG_CERT_EXPIRED ||
                      desc == MBEDTLS_SSL_ALERT_MSG_CERT_UNKNOWN || desc == 116;
    if (cert_alert) {
      msg += config_->options().cert_file.empty()
                 ? ": the broker may require a client certificate (set cert_file and key_file)"
                 : ": the broker may not accept our client certificate";
    }
    return Status::PermissionDenied(msg);
  }
  if (rc == MBEDTLS_ERR_SSL_CONN_EOF) {
    return Status::Unavailable("tls: connection closed by the server during the handshake");
  }
  if (rc == MBEDTLS_ERR_SSL_INVALID_RECORD || rc == MBEDTLS_ERR_SSL_BAD_HS_SERVER_HELLO ||
      rc == MBEDTLS_ERR_SSL_UNEXPECTED_MESSAGE) {
    return Status::ProtocolError("tls: handshake failed: " + MbedtlsErrorText(rc) +
                                 ": is this port speaking TLS?");
  }
  return Status::ProtocolError("tls: handshake failed: " + MbedtlsErrorText(rc));
}

// --- Application data -------------------------------------------------------

void TlsTransport::StartReading(DataCallback on_data, EndCallback on_end) {
  on_data_ = std::move(on_data);
  on_end_ = std::move(on_end);
  if (ended_ || !handshake_done_) return;
  reading_ = true;
  if (peer_eof_ || !peer_error_.ok() || !write_failed_.ok() || in_off_ < in_.size() ||
      mbedtls_ssl_get_bytes_avail(&ssl_->ctx) > 0) {
    // Deliver what is already here on a later turn, never from inside
    // StartReading itself.
    std::weak_ptr<bool> alive = alive_;
    stream_->loop().Post([this, alive] {
      if (!alive.lock()) return;
      if (!write_failed_.ok()) return End(write_failed_);
      Pump();
    });
  }
  if (!peer_eof_ && peer_error_.ok()) {
    stream_->StartReading([this](const char* d, size_t n) { OnStreamData(d, n); },
                          [this](const Status& why) { OnStreamEnd(why); });
  }
}

void TlsTransport::StopReading() {
  reading_ = false;
  stream_->StopReading();
}

void TlsTransport::Pump() {
  std::weak_ptr<bool> alive = alive_;
  unsigned char buf[kMaxRecordPlaintext];
  while (reading_ && !ended_) {
    int rc = mbedtls_ssl_read(&ssl_->ctx, buf, sizeof buf);
    if (rc > 0) {
      on_data_(reinterpret_cast<const char*>(buf), static_cast<size_t>(rc));
      if (!alive.lock()) return;
      continue;
    }
    if (rc == MBEDTLS_ERR_SSL_WANT_READ || rc == MBEDTLS_ERR_SSL_WANT_WRITE) break;
    (void)Flush();  // an alert mbedTLS may have queued
    if (rc == 0 || rc == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY || rc == MBEDTLS_ERR_SSL_CONN_EOF) {
      return End(peer_error_);  // OK for an orderly close
    }
    return End(Status::ProtocolError("tls: read: " + MbedtlsErrorText(rc)));
  }
  if (!ended_ && !out_.empty()) (void)Flush();
}

Status TlsTransport::Write(std::vector<std::string> bufs) {
  if (!handshake_done_) return Status::Internal("tls: write before the handshake completed");
  if (ended_) return Status::Unavailable("tls: write on a closed connection");
  if (!write_failed_.ok()) return write_failed_;
  // Pack small buffers into full records; large ones go straight through.
  std::string stage;
  for (const auto& b : bufs) {
    if (b.size() >= kMaxRecordPlaintext) {
      if (!stage.empty()) {
        ES_RETURN_IF_ERROR(WriteRecord(stage.data(), stage.size()));
        stage.clear();
      }
      ES_RETURN_IF_ERROR(WriteRecord(b.data(), b.size()));
      continue;
    }
    stage += b;
    if (stage.size() >= kMaxRecordPlaintext) {
      ES_RETURN_IF_ERROR(WriteRecord(stage.data(), stage.size()));
      stage.clear();
    }
  }
  if (!stage.empty()) ES_RETURN_IF_ERROR(WriteRecord(stage.data(), stage.size()));
  return Flush();
}

Status TlsTransport::WriteRecord(const char* data, size_t len) {
  size_t off = 0;
  while (off < len) {
    int rc = mbedtls_ssl_write(&ssl_->ctx, reinterpret_cast<const unsigned char*>(data) + off,
                               len - off);
    if (rc > 0) {
      off += static_cast<size_t>(rc);
      continue;
    }
    // The send BIO never says WANT_WRITE, so anything else is fatal.
    return Status::ProtocolError("tls: write: " + MbedtlsErrorText(rc));
  }
  return Status::Ok();
}

Status TlsTransport::Flush() {
  if (out_.empty()) return Status::Ok();
  std::string chunk;
  chunk.swap(out_);
  uint64_t bytes = chunk.size();
  std::weak_ptr<bool> alive = alive_;
  return stream_->Write(std::move(chunk), [this, alive, bytes](const Status& st) {
    if (!alive.lock()) return;
    if (st.ok()) {
      wire_bytes_ += bytes;
      return;
    }
    if (!write_failed_.ok()) return;
    write_failed_ = st;
    if (!handshake_done_) return FinishHandshake(st);
    if (on_end_ && reading_) End(st);
  });
}

size_t TlsTransport::write_queue_bytes() const {
  return stream_->write_queue_bytes() + out_.size();
}

void TlsTransport::End(const Status& why) {
  if (ended_) return;
  ended_ = true;
  reading_ = false;
  stream_->StopReading();
  EndCallback cb = std::move(on_end_);
  on_end_ = nullptr;
  if (cb) cb(why);  // may destroy this
}

}  // namespace edgespool::sync
