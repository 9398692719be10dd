// TlsTransport: the mqtts:// transport. mbedTLS 2.28 runs over a
// platform::Stream through its BIO callbacks, on the loop thread, with no
// blocking socket call and no second thread:
//
//   stream read  -> in_ (ciphertext) -> Recv BIO -> mbedtls_ssl_read -> on_data
//   Write(bufs)  -> mbedtls_ssl_write -> Send BIO -> out_ (ciphertext)
//                -> one Stream::Write per Write() (and per handshake step)
//
// The Recv BIO returns MBEDTLS_ERR_SSL_WANT_READ when in_ is empty; the Send
// BIO always takes everything (out_ grows; backpressure is the caller's job,
// through write_queue_bytes()). in_ is consumed from an offset and compacted
// only when the offset passes half its size, so a 50 MB stream costs linear
// time, not quadratic.
//
// Small plaintext buffers of one Write() are packed into full 16 KiB records:
// a window of 1000 PUBLISH packets of 230 bytes becomes 15 records, not 1000
// (each record costs 29 bytes of header+tag and a MAC computation).
//
// End of stream: close_notify and a bare TCP EOF both end with OK (a killed
// broker sends no close_notify, and MQTT's own framing already detects a
// truncated packet); a reset or a TLS error ends with the reason.
//
// Loop-thread-only. Callbacks may destroy the transport; nothing here touches
// members after calling out without checking the alive token.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "platform/stream.h"
#include "sync/transport.h"

namespace edgespool::sync {

class TlsConfig;

class TlsTransport final : public Transport {
 public:
  using HandshakeCallback = std::function<void(const Status&)>;

  // server_name: checked against the certificate and sent as SNI (always set:
  // without mbedtls_ssl_set_hostname mbedTLS skips the host name check).
  static Result<std::unique_ptr<TlsTransport>> Create(std::unique_ptr<platform::Stream> stream,
                                                      std::shared_ptr<TlsConfig> config,
                                                      const std::string& server_name);
  ~TlsTransport() override;

  // Runs the handshake; on_done runs once, OK when it completed and the
  // certificate and host name checked out, else with the cause named. After
  // OK the stream is paused until StartReading.
  void StartHandshake(HandshakeCallback on_done);

  void StartReading(DataCallback on_data, EndCallback on_end) override;
  void StopReading() override;
  Status Write(std::vector<std::string> bufs) override;
  size_t write_queue_bytes() const override;
  uint64_t wire_bytes_written() const override { return wire_bytes_; }

  // "TLSv1.2 TLS-ECDHE-ECDSA-WITH-AES-128-GCM-SHA256", after the handshake.
  std::string Describe() const;

 private:
  struct Ssl;
  TlsTransport(std::unique_ptr<platform::Stream> stream, std::shared_ptr<TlsConfig> config);

  static int OnBioSend(void* ctx, const unsigned char* buf, size_t len);
  static int OnBioRecv(void* ctx, unsigned char* buf, size_t len);

  void OnStreamData(const char* data, size_t len);
  void OnStreamEnd(const Status& why);
  void DriveHandshake();
  void FinishHandshake(const Status& result);
  Status HandshakeError(int rc) const;
  void Pump();  // decrypts what is buffered and hands it to on_data_
  Status WriteRecord(const char* data, size_t len);
  Status Flush();  // hands out_ to the stream as one write
  void End(const Status& why);

  std::unique_ptr<platform::Stream> stream_;
  std::shared_ptr<TlsConfig> config_;
  std::unique_ptr<Ssl> ssl_;
  std::string server_name_;

  std::string in_;        // ciphertext received, consumed from in_off_
  size_t in_off_ = 0;
  bool peer_eof_ = false;  // the TCP stream ended (after in_)
  Status peer_error_;      // the TCP stream failed
  std::string out_;       // ciphertext produced, not yet handed to the stream

  HandshakeCallback on_handshake_;
  bool handshake_done_ = false;
  DataCallback on_data_;
  EndCallback on_end_;
  bool reading_ = false;
  bool ended_ = false;
  Status write_failed_;
  uint64_t wire_bytes_ = 0;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace edgespool::sync
