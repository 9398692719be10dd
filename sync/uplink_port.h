// UplinkPort: the MQTT uplink as the sync worker sees it. The real one is an
// adapter over mqtt::Client (sync/mqtt_uplink.h); tests drive the worker with
// a scripted port. Loop-thread-only. InboundPublish is what comes the other
// way (the downlink, MqttUplink::SetInboundListener).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace edgespool::sync {

struct OutboundPublish {
  std::string topic;
  std::string payload;
  bool retain = false;
  // MQTT 5 only (dropped on 3.1.1): user properties, message expiry, and
  // request/response (docs/request-response.md).
  std::vector<std::pair<std::string, std::string>> user_properties;
  uint32_t message_expiry_s = 0;  // 0: none
  std::string response_topic;     // empty: none
  std::string correlation_data;   // empty: none
};

// A PUBLISH from the broker on one of the uplink's subscriptions, owned.
struct InboundPublish {
  std::string topic;
  std::string payload;
  uint8_t qos = 0;
  bool retain = false;
  bool dup = false;  // the broker sent it before (possibly to us, unacked)
  // QoS 1: hand to MqttUplink::AckInbound once the message is durable; the
  // broker gets no PUBACK before. 0 for QoS 0.
  uint64_t ack_token = 0;
  // MQTT 5 only (absent / empty on 3.1.1):
  std::optional<uint32_t> message_expiry_s;  // what is left of it, per the broker
  std::string response_topic;
  std::string correlation_data;
  std::string content_type;
  std::vector<std::pair<std::string, std::string>> user_properties;
};

enum class PublishOutcome {
  kAcked,     // PUBACK with success: the message is the broker's now
  kRejected,  // PUBACK with an error reason, or too large to send: a dead letter
  kRetry,     // dropped without an answer (the client gave it up): send again later
};

struct PublishResult {
  PublishOutcome outcome = PublishOutcome::kAcked;
  uint8_t reason_code = 0;
  std::string reason;
};

class UplinkPort {
 public:
  struct Listener {
    std::function<void()> on_connected;
    std::function<void(const std::string& why)> on_disconnected;
    std::function<void(uint64_t token, const PublishResult&)> on_publish_result;
    // The in-flight window has room again (after PUBACKs or a reconnect).
    std::function<void()> on_writable;
  };

  virtual ~UplinkPort() = default;
  virtual void SetListener(Listener listener) = 0;
  virtual bool connected() const = 0;
  // How many more publishes may be queued now.
  virtual size_t window_free() const = 0;
  // The broker's Maximum Packet Size (0: no limit known).
  virtual uint32_t max_packet_size() const = 0;
  // True when MQTT 5 was negotiated (user properties, message expiry).
  virtual bool properties_supported() const = 0;
  // Queues a QoS 1 publish; its result arrives through on_publish_result with
  // the returned token. A publish accepted here is never silently lost: it is
  // acked, rejected, or reported kRetry.
  virtual uint64_t Publish(OutboundPublish publish) = 0;
  // Bytes written to the socket so far (for rates and wire-bytes figures).
  virtual uint64_t wire_bytes() const = 0;
};

}  // namespace edgespool::sync
