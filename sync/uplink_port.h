// UplinkPort: the MQTT uplink as the sync worker sees it. The real one is an
// adapter over mqtt::Client (sync/mqtt_uplink.h); tests drive the worker with
// a scripted port. Loop-thread-only.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace edgespool::sync {

struct OutboundPublish {
  std::string topic;
  std::string payload;
  bool retain = false;
  // MQTT 5 only (dropped on 3.1.1): user properties and message expiry.
  std::vector<std::pair<std::string, std::string>> user_properties;
  uint32_t message_expiry_s = 0;  // 0: none
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
