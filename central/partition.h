// Partition: one broker session and one OrderingBuffer. It subscribes, on
// one MQTT connection, to the node statuses (plain, retained) and to its
// share of the uplink topics, so that a node's status arrives behind the
// messages the node sent before it: a status on another connection could
// overtake them and release other nodes' messages too early.
//
// Acknowledgement: inbound PUBLISHes are PUBACKed (manual acks, in arrival
// order, as MQTT requires) only once every message in them was handed to
// the callback, or was a duplicate. A status is acked at once (behind any
// earlier unacked message). With a persistent session (a group), what was
// not acked when this instance died is sent again to whoever resumes the
// session: nothing is lost while a partition moves, and what was handed out
// but not yet acked comes again (at least once).
//
// Loop-thread-only.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "central/message.h"
#include "central/ordering_buffer.h"
#include "platform/loop.h"
#include "platform/status.h"
#include "sync/crypto/sealed.h"
#include "sync/mqtt/client.h"

namespace edgespool::central {

struct PartitionStats {
  uint64_t publishes = 0;  // data PUBLISHes received
  uint64_t statuses = 0;
  uint64_t bad = 0;  // undecodable frames, malformed properties or status documents
  uint64_t undecrypted = 0;  // sealed messages that could not be opened (still handed out)
};

class Partition final : private sync::mqtt::ClientListener {
 public:
  using Callback = std::function<void(const Message&)>;

  // options: URL, client id, session, subscriptions (status filter first)
  // are filled in by the caller; manual acks are forced on here.
  static Result<std::unique_ptr<Partition>> Create(platform::Loop& loop,
                                                   sync::mqtt::ClientOptions options,
                                                   std::string status_filter,
                                                   OrderingOptions ordering, Callback callback);
  ~Partition() override;

  // Runs after each batch of callbacks, before their PUBLISHes are acked
  // (e.g. fflush): what was acked must have left the process.
  void SetFlush(std::function<void()> flush) { flush_ = std::move(flush); }
  // Opens sealed payloads (docs/encryption.md) before they are ordered;
  // null: they pass sealed, with decrypt_error set. Outlives the partition.
  void SetCipher(crypto::Cipher* cipher) { cipher_ = cipher; }
  void Start();
  // Graceful: DISCONNECT (acks already queued are written first). Messages
  // still buffered are neither handed out nor acked: the session keeps them.
  void Stop(std::function<void()> on_stopped);
  // Releases what the watermark or max_wait allows (the consumer's timer).
  void Advance();

  const OrderingBuffer& buffer() const { return buffer_; }
  const PartitionStats& stats() const { return stats_; }
  bool connected() const { return client_ && client_->connected(); }

 private:
  Partition(platform::Loop& loop, std::string status_filter, OrderingOptions ordering,
            Callback callback);

  void OnMessage(const sync::mqtt::IncomingMessage& m) override;
  void OnPublishAcked(uint64_t, const Status&, uint8_t) override {}
  void OnDisconnected(const Status& why) override;
  void OnStatusMessage(const sync::mqtt::IncomingMessage& m);
  // Hands out what `out_` holds and acks the PUBLISHes it completes.
  void Deliver();
  void Done(uint64_t tag);

  platform::Loop& loop_;
  std::string status_filter_;
  OrderingBuffer buffer_;
  Callback callback_;
  std::function<void()> flush_;
  crypto::Cipher* cipher_ = nullptr;
  std::unique_ptr<sync::mqtt::Client> client_;
  // Per PUBLISH (tag): its ack token and how many of its messages are out.
  struct Pending {
    uint64_t ack_token;
    size_t left;
  };
  std::unordered_map<uint64_t, Pending> pending_;
  uint64_t next_tag_ = 1;
  bool persistent_ = false;
  std::vector<Message> scratch_, out_;
  PartitionStats stats_;
};

// True if an MQTT topic matches a filter (+ and #; no $share prefix).
bool TopicMatches(std::string_view filter, std::string_view topic);

}  // namespace edgespool::central
