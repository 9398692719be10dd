// MqttUplink: the UplinkPort over the MQTT client (sync/mqtt/client.h) — the
// uplink the agent runs. Adds what the agent needs around the port: a state
// for the status document, the last error and when, and state-change
// notifications (the status topic is republished on every change).
//
// It also carries the downlink's half on the wire (docs/downlink.md,
// "Subscriptions on the uplink"): a persistent session, QoS 1 subscriptions
// sent on every connection, and inbound messages whose PUBACK waits for
// AckInbound(). The MQTT session always defers its PUBACKs here (manual
// acks); while no inbound listener is set the uplink acks each message
// itself on receipt and drops it, which is what a plain client does.
//
// Loop-thread-only.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "platform/loop.h"
#include "platform/status.h"
#include "sync/mqtt/client.h"
#include "sync/transport.h"
#include "sync/uplink_port.h"

namespace edgespool::sync {

struct MqttUplinkOptions {
  // One broker, or several to fail over between (sync/broker_rotation.h);
  // tls and the credentials apply to each.
  std::vector<BrokerUrl> urls;
  FailoverOrder failover = FailoverOrder::kOrdered;
  TlsOptions tls;
  uint8_t protocol = 5;  // falls back to 4 once if the broker refuses 5
  std::string client_id;
  std::string username;
  std::string password;  // already read from uplink.password_file
  uint16_t keepalive_s = 30;
  uint16_t inflight = 1000;
  uint32_t ack_timeout_ms = 30000;
  int64_t backoff_initial_ms = 1000;
  int64_t backoff_max_ms = 30000;
  // Last will: retained on will_topic (the status topic) when set.
  std::string will_topic;
  std::string will_payload;
  // Persistent session: with clean_start false the broker keeps our
  // subscriptions and what arrives for them across connections (MQTT 5
  // clean_start = 0 with session_expiry_s, which must then be > 0 for the
  // session to outlive a connection; 3.1.1 clean_session = 0).
  bool clean_start = true;
  uint32_t session_expiry_s = 0;
  // MQTT 5 Receive Maximum: at most this many inbound QoS 1 messages
  // unacknowledged (0: not sent; the broker then assumes 65535).
  uint16_t receive_maximum = 0;
  // A broker that exceeds receive_maximum: true ends the connection (0x93,
  // the spec); false counts it in receive_maximum_exceeded() and goes on,
  // which mosquitto 2.0.11 needs (see sync/mqtt/session.h).
  bool strict_receive_maximum = false;
  // Topic filters subscribed with QoS 1, again on every connection (a broker
  // that lost the session's state must not leave us deaf).
  std::vector<std::string> subscriptions;
};

class MqttUplink : public UplinkPort {
 public:
  static Result<std::unique_ptr<MqttUplink>> Create(platform::Loop& loop, MqttUplinkOptions options);
  ~MqttUplink() override;

  // Starts connecting (and reconnecting with backoff, forever).
  void Start();
  // Sends DISCONNECT (no will) after what is queued, then closes; done runs
  // once the connection is closed (at once if not connected).
  void Stop(std::function<void()> done);

  // A reload: the broker URLs, TLS files and credentials of `options` (urls,
  // failover, tls, username, password; the rest is ignored), checked now:
  // the URLs parsed, every TLS file loaded. Errors name the file; nothing
  // changes.
  static Result<mqtt::Endpoint> PrepareEndpoint(const MqttUplinkOptions& options);
  // Moves to the endpoint: the connection is closed gracefully (no will)
  // and made again at once; what is in flight is sent again on the new
  // connection (mqtt::Client::SwitchEndpoint). An endpoint with list_only
  // whose list still holds the current broker keeps the connection.
  void SwitchEndpoint(mqtt::Endpoint endpoint);

  // "connecting", "connected", "backoff", "stopped"
  const std::string& state() const { return state_; }
  int64_t connected_since_ms() const { return connected_since_ms_; }
  const std::string& last_error() const { return last_error_; }
  int64_t last_error_ms() const { return last_error_ms_; }
  uint64_t reconnects() const { return reconnects_; }
  // The broker connected to, or being tried, redacted; every broker of the
  // list, redacted; connections made to another broker than the last one.
  std::string current_url() const;
  std::vector<std::string> broker_urls() const;
  uint64_t failovers() const;
  void SetStateListener(std::function<void()> on_change) { on_state_ = std::move(on_change); }
  // A publish of the agent's own (status, requests and answers): its result
  // goes to on_result, not to the port's listener. Synchronous refusals
  // (an invalid topic) run on_result before this returns.
  void PublishOwn(OutboundPublish publish, std::function<void(const PublishResult&)> on_result);

  // Inbound messages go to on_message (loop thread, inside the read), QoS 1
  // ones with an ack token: the broker gets their PUBACK only from
  // AckInbound, and PUBACKs leave in arrival order, so one message never
  // acked holds back the PUBACKs of all that came after it on its
  // connection. A message not acked before the connection drops is resent by
  // the broker (DUP) on the next connection, with a new token.
  void SetInboundListener(std::function<void(InboundPublish)> on_message);
  // PUBACKs the inbound message now (with this loop turn's write). Token 0
  // (QoS 0) is ignored; a token of an earlier connection is ignored and
  // counted in stale_acks(); an unknown or twice-acked token is logged.
  void AckInbound(uint64_t ack_token);
  uint64_t inbound_received() const { return inbound_received_; }
  uint64_t inbound_acked() const { return inbound_acked_; }
  uint64_t stale_acks() const;
  // Inbound messages the broker sent beyond our Receive Maximum.
  uint64_t receive_maximum_exceeded() const;
  // Filters the broker refused in a SUBACK (reason >= 0x80), over all
  // connections; each is logged with its filter.
  uint64_t subscribe_refusals() const { return subscribe_refusals_; }
  // Filters the broker granted in a SUBACK, over all connections.
  uint64_t subscriptions_granted() const { return subscriptions_granted_; }

  // UplinkPort
  void SetListener(Listener listener) override;
  bool connected() const override;
  size_t window_free() const override;
  uint32_t max_packet_size() const override;
  bool properties_supported() const override;
  uint64_t Publish(OutboundPublish publish) override;
  uint64_t wire_bytes() const override;

  class Impl;

 private:
  MqttUplink() = default;
  friend class Impl;
  void SetState(std::string state);

  std::unique_ptr<Impl> impl_;
  std::string state_ = "stopped";
  int64_t connected_since_ms_ = 0;
  std::string last_error_;
  int64_t last_error_ms_ = 0;
  uint64_t reconnects_ = 0;
  uint64_t inbound_received_ = 0;
  uint64_t inbound_acked_ = 0;
  uint64_t subscribe_refusals_ = 0;
  uint64_t subscriptions_granted_ = 0;
  std::function<void()> on_state_;
};

}  // namespace edgespool::sync
