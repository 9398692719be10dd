// MqttUplink: the UplinkPort over the MQTT client (sync/mqtt/client.h) — the
// uplink the agent runs. Adds what the agent needs around the port: a state
// for the status document, the last error and when, and state-change
// notifications (the status topic is republished on every change).
//
// Loop-thread-only.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "platform/loop.h"
#include "platform/status.h"
#include "sync/transport.h"
#include "sync/uplink_port.h"

namespace edgespool::sync {

struct MqttUplinkOptions {
  BrokerUrl url;
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

  // "connecting", "connected", "backoff", "stopped"
  const std::string& state() const { return state_; }
  int64_t connected_since_ms() const { return connected_since_ms_; }
  const std::string& last_error() const { return last_error_; }
  int64_t last_error_ms() const { return last_error_ms_; }
  uint64_t reconnects() const { return reconnects_; }
  void SetStateListener(std::function<void()> on_change) { on_state_ = std::move(on_change); }
  // A publish of the agent's own (status): its result goes to on_result, not
  // to the port's listener.
  void PublishOwn(OutboundPublish publish, std::function<void(const PublishResult&)> on_result);

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
  std::function<void()> on_state_;
};

}  // namespace edgespool::sync
