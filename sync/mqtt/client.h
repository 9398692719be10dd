// The MQTT client: thin I/O glue around mqtt::Session. It owns the
// transport (sync::Connect: TCP or TLS), the session, a tick timer, a
// reconnect timer and a check handle that flushes writes.
//
// Writes are coalesced: everything the session encodes during one loop turn
// (publishes, PUBACKs, PINGREQs) is appended to one buffer and handed to the
// transport once, from a CheckHandle, so throughput is bound by the broker
// and not by syscalls. While the transport's own write queue is above a
// high-water mark no more publishes are moved into the window (memory stays
// bounded; the session keeps them queued).
//
// Reconnects: any loss of the link (connect failure, broker refusal,
// protocol error, keepalive or PUBACK timeout, close by the peer) is logged
// with its cause, reported through OnDisconnected, and followed by a new
// attempt after Backoff::NextDelayMs() (full jitter between
// backoff_initial_ms and backoff_max_ms); the backoff restarts once a
// connection has been healthy for healthy_after_ms. With a list of brokers
// (ClientOptions::urls) the next broker of the round is tried at once and
// the backoff applies between rounds (sync/broker_rotation.h); with one
// broker every reconnect waits. In-flight publishes are kept and sent again,
// first and in order, on the next connection (DUP set), whichever broker
// that is.
//
// Loop-thread-only. Listener callbacks run on the loop thread; they may call
// Publish() and the accessors. Destroying the Client closes everything at
// once (no DISCONNECT); Stop() is the graceful way.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "platform/loop.h"
#include "platform/status.h"
#include "sync/backoff.h"
#include "sync/broker_rotation.h"
#include "sync/mqtt/session.h"
#include "sync/transport.h"

namespace edgespool::sync {
class TlsConfig;
}

namespace edgespool::sync::mqtt {

struct ClientOptions {
  std::string url;  // mqtt://host:port or mqtts://host:port
  // Brokers to fail over between (BrokerRotation), tried instead of `url`
  // when not empty. TLS options and credentials apply to every one.
  std::vector<std::string> urls;
  FailoverOrder failover = FailoverOrder::kOrdered;
  // Protocol (4 or 5; 5 falls back to 4 once), client id, credentials (the
  // password already read from its file by the caller), keepalive, window,
  // timeouts, persistent session, will, manual acks, Receive Maximum.
  SessionOptions session;
  TlsOptions tls;
  uint64_t backoff_initial_ms = 1000;
  uint64_t backoff_max_ms = 30000;
  // A connection that lasted this long resets the backoff.
  uint64_t healthy_after_ms = 10000;
  uint64_t backoff_seed = 0;  // 0: seeded from std::random_device
  // Subscribed again on every connection.
  std::vector<std::pair<std::string, uint8_t>> subscriptions;
  // Stop moving publishes into the window while this much is unwritten.
  size_t write_high_water_bytes = 4 * 1024 * 1024;
};

// Where and as whom the client connects: what a reload may change
// (Client::SwitchEndpoint). Made by Client::MakeEndpoint, which checks the
// URL and loads the TLS files, so that switching cannot fail.
struct Endpoint {
  std::vector<BrokerUrl> urls;  // at least one
  FailoverOrder failover = FailoverOrder::kOrdered;
  std::shared_ptr<TlsConfig> tls;  // when any URL is mqtts://
  std::optional<std::string> username;
  std::optional<std::string> password;
  // Only the list changed (not TLS or credentials): a link to a broker that
  // is still in the list stays up (SwitchEndpoint).
  bool list_only = false;
};

class ClientListener {
 public:
  virtual ~ClientListener() = default;
  virtual void OnConnected(const ConnectInfo& info) {}
  virtual void OnDisconnected(const Status& why) {}
  // Exactly once per accepted Publish(): OK (PUBACK success; reason_code
  // 0x00 or 0x10), or the broker's or the client's refusal of that message.
  virtual void OnPublishAcked(uint64_t token, const Status& status, uint8_t reason_code) = 0;
  virtual void OnMessage(const IncomingMessage& msg) {}
  // A SUBACK (one reason code per filter; >= 0x80 is a refusal, which the
  // client has logged with its filter).
  virtual void OnSubscribed(const std::vector<uint8_t>& reason_codes) {}
  // The window has room again (after PUBACKs, or on connect).
  virtual void OnWritable() {}
};

class Client final : private SessionListener {
 public:
  // Validates the options (URL, TLS files); does not connect yet.
  static Result<std::unique_ptr<Client>> Create(platform::Loop& loop, ClientOptions options,
                                                ClientListener* listener);
  ~Client() override;
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Connects, and keeps reconnecting with backoff until Stop().
  void Start();
  // Sends DISCONNECT (so no will is published) once what is queued for the
  // socket is written, closes, then runs on_stopped. Messages still queued or
  // in flight stay unreported (the owner resends them another time).
  void Stop(std::function<void()> on_stopped = {});

  // Parses the URLs and, when one is mqtts://, loads every TLS file now (a
  // bad CA or key is reported here, with the file's name).
  static Result<Endpoint> MakeEndpoint(const std::vector<std::string>& urls,
                                       FailoverOrder failover, const TlsOptions& tls,
                                       std::optional<std::string> username,
                                       std::optional<std::string> password);
  // Connects to `endpoint` from now on. With endpoint.list_only and the
  // broker of the current link (or attempt) still in the list, only the list
  // changes: nothing reconnects. Otherwise a live link (or one being set up) is
  // closed gracefully: DISCONNECT, so the old broker publishes no will, and
  // up to 1 s for the broker to close it; then a new connection at once,
  // without backoff. Publishes in flight are kept and sent again first on the new
  // connection (DUP), exactly as after a lost link: nothing accepted by
  // Publish() is dropped. Reported as OnDisconnected (Cancelled) when a
  // connection was up. Before Start() or after Stop() only the endpoint
  // changes.
  void SwitchEndpoint(Endpoint endpoint);

  // Queues a publish (sent when connected and the window has room). The
  // token identifies it in OnPublishAcked.
  Result<uint64_t> Publish(OutgoingMessage msg);
  // Adds a subscription (sent now if connected, and on every reconnect).
  Status Subscribe(std::string filter, uint8_t qos);
  // session.manual_acks: PUBACKs an inbound message (IncomingMessage::
  // ack_token), in arrival order, with the next flush. See Session::AckIncoming.
  Status AckIncoming(uint64_t ack_token, uint8_t reason_code = 0);

  bool connected() const { return session_.connected(); }
  size_t inflight() const { return session_.inflight_count(); }
  size_t queued() const { return session_.queued_count(); }
  // Window slots free for new publishes (0 while disconnected).
  size_t capacity() const { return session_.capacity(); }
  uint32_t max_packet_size() const { return session_.max_packet_size(); }
  uint8_t protocol() const { return session_.protocol(); }
  const ConnectInfo& connect_info() const { return session_.info(); }
  uint64_t wire_bytes() const;
  uint64_t connects() const { return connects_; }
  uint64_t connect_attempts() const { return attempts_; }
  // Acks of a connection already gone (ignored: the broker resends).
  uint64_t stale_acks() const { return session_.stale_acks(); }
  uint64_t receive_maximum_exceeded() const { return session_.receive_maximum_exceeded(); }
  const Status& last_error() const { return last_error_; }
  // The broker connected to, or being tried (redacted), and the list.
  std::string current_url() const { return urls_[rotation_.current()].Redacted(); }
  const std::vector<BrokerUrl>& urls() const { return urls_; }
  // Connections made to another broker than the previous connection's.
  uint64_t failovers() const { return failovers_; }

 private:
  Client(platform::Loop& loop, ClientOptions options, std::vector<BrokerUrl> urls,
         std::shared_ptr<TlsConfig> tls, ClientListener* listener);

  void Connect();
  void OnTransport(Result<std::unique_ptr<Transport>> result);
  void OnData(const char* data, size_t len);
  void OnEnd(const Status& why);
  void OnTick();
  void OnCheck();
  void Wake();
  void Flush();
  // Closes the link (if any) and schedules the next attempt.
  void LinkLost(const Status& why);
  void ReleaseTransport();
  void FinishStop();
  // SwitchEndpoint's second half: the old link is gone (or 1 s passed).
  void FinishSwitch();
  // Sends one SUBSCRIBE for these filters (connected only).
  Status SendSubscribe(const std::vector<std::pair<std::string, uint8_t>>& filters);

  // SessionListener
  void OnConnected(const ConnectInfo& info) override;
  void OnPublishAcked(uint64_t token, uint8_t reason_code) override;
  void OnPublishRejected(uint64_t token, const Status& why, uint8_t reason_code) override;
  void OnMessage(const IncomingMessage& msg) override;
  void OnSubscribed(uint16_t packet_id, const std::vector<uint8_t>& reason_codes) override;

  platform::Loop& loop_;
  ClientOptions options_;
  std::vector<BrokerUrl> urls_;
  std::shared_ptr<TlsConfig> tls_;
  ClientListener* listener_;
  Session session_;
  Backoff backoff_;
  BrokerRotation rotation_;

  std::unique_ptr<ConnectRequest> connect_request_;
  std::unique_ptr<Transport> transport_;
  std::string write_buffer_;
  platform::TimerHandle tick_timer_;
  platform::TimerHandle reconnect_timer_;
  platform::TimerHandle stop_timer_;
  platform::CheckHandle flusher_;

  bool started_ = false;
  bool stopping_ = false;
  bool switching_ = false;  // SwitchEndpoint: reading the old link to its end
  bool wake_pending_ = false;
  bool in_read_ = false;
  bool acked_since_check_ = false;
  std::function<void()> on_stopped_;
  uint64_t connected_at_ms_ = 0;
  uint64_t wire_bytes_closed_ = 0;
  uint64_t connects_ = 0;
  uint64_t attempts_ = 0;
  uint64_t failovers_ = 0;
  size_t last_connected_ = BrokerRotation::kNone;  // index of the last connection's broker
  Status last_error_;
  // SUBSCRIBEs of this connection awaiting their SUBACK: packet id -> filters.
  std::map<uint16_t, std::vector<std::string>> subscribing_;
};

}  // namespace edgespool::sync::mqtt
