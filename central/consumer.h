// Consumer: the central side of edgespool. Subscribes to the uplink topics
// of a fleet (message mode with MQTT 5 user properties, and batch frames),
// decodes, drops duplicates by (node, seq) and hands every message to a
// callback in original-timestamp order per topic across all nodes, behind
// the nodes' upload watermarks (OrderingBuffer; docs/central.md).
//
// Partitions. Local topics are hashed into `partitions` partitions
// (sync::TopicPartition, FNV-1a), which the agents put in their upstream
// topic with {part:N}: a filter such as "fleet/{part}/#" names partition k
// as "fleet/k/#". Each partition is one MQTT session with its own ordering
// buffer; order is per topic, and a topic lives in one partition.
//
// Scale-out (a group): several Consumers with the same group share the
// partitions. Each announces itself with a retained message on
// edgespool/consume/GROUP/members/INSTANCE whose last will (empty, retained)
// removes it when its connection dies. Every member sees the same sorted
// member list and owns partition k iff it is member k mod M. A partition's
// session is persistent and its client id is GROUP-pK whoever runs it, so
// the member taking it over resumes the session: every message the dead one
// had not acked is there. A member releases a partition at once and takes
// one over only after the list has been quiet for settle_ms, so two members
// rarely hold the same session (if they do, the broker's session takeover
// disconnects the older connection; order on that topic may be broken for
// that moment, and nothing is lost).
//
// Why not $share alone: a shared subscription hands each message to any
// member, so two messages of one topic could be ordered by two instances
// that never see each other's. The broker session per partition, owned by
// one member at a time, keeps a topic on one instance.
//
// Loop-thread-only; the callback runs on the loop thread.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "central/message.h"
#include "central/ordering_buffer.h"
#include "central/partition.h"
#include "platform/loop.h"
#include "platform/status.h"
#include "sync/crypto/sealed.h"
#include "sync/mqtt/client.h"

namespace edgespool::central {

struct ConsumerOptions {
  std::string url;  // mqtt:// or mqtts:// (TLS with the system's CAs)
  std::optional<std::string> username, password;
  sync::TlsOptions tls;
  // Uplink topic filters; with partitions > 1 each must contain {part}.
  std::vector<std::string> topics = {"edgespool/+/batch"};
  std::string status_topic = "edgespool/+/status";
  uint32_t partitions = 1;
  // Empty: one instance alone, clean sessions. Else scale-out (above).
  std::string group;
  std::string instance;  // unique in the group; default host-pid
  std::string client_id_prefix = "edgespool-consume";
  uint32_t session_expiry_s = 86400;
  uint16_t keepalive_s = 10;
  uint64_t settle_ms = 1000;
  OrderingOptions ordering;
  // Message-level encryption (docs/encryption.md): the keys that open
  // sealed payloads. Null: sealed messages are handed out as they came,
  // with decrypt_error saying so.
  std::shared_ptr<const crypto::KeyRing> keys;
};

struct ConsumerStats {
  uint64_t delivered = 0, late = 0, duplicates = 0, unordered = 0, forced = 0, bad = 0;
  uint64_t undecrypted = 0;  // sealed messages handed out unopened (decrypt_error)
  size_t buffered = 0, partitions_owned = 0, members = 0;
};

class Consumer final : private sync::mqtt::ClientListener {
 public:
  using Callback = std::function<void(const Message&)>;

  static Result<std::unique_ptr<Consumer>> Create(platform::Loop& loop, ConsumerOptions options,
                                                  Callback callback);
  ~Consumer() override;

  // See Partition::SetFlush. Call before Start.
  void SetFlush(std::function<void()> flush) { flush_ = std::move(flush); }
  void Start();
  // Leaves the group (its membership goes) and closes every session;
  // buffered messages stay unacked in the broker's sessions.
  void Stop(std::function<void()> on_stopped);

  ConsumerStats stats() const;
  // Partitions this instance runs now (tests).
  std::vector<uint32_t> owned() const;

 private:
  Consumer(platform::Loop& loop, ConsumerOptions options, Callback callback);

  // The membership client's listener.
  void OnConnected(const sync::mqtt::ConnectInfo& info) override;
  void OnMessage(const sync::mqtt::IncomingMessage& m) override;
  void OnPublishAcked(uint64_t, const Status&, uint8_t) override {}

  Status OpenPartition(uint32_t k);
  void ClosePartition(uint32_t k);
  // Releases what is no longer ours now; takes ours after settle_ms.
  void Rebalance();
  void TakeOwned();
  bool Owns(uint32_t k) const;
  std::string MemberTopic(const std::string& instance) const;

  platform::Loop& loop_;
  ConsumerOptions options_;
  Callback callback_;
  std::function<void()> flush_;
  std::unique_ptr<crypto::Cipher> cipher_;  // null without options.keys
  std::map<uint32_t, std::unique_ptr<Partition>> partitions_;
  std::unique_ptr<sync::mqtt::Client> members_client_;
  std::set<std::string> members_;
  platform::TimerHandle tick_timer_;
  platform::TimerHandle settle_timer_;
  ConsumerStats closed_;  // counts of partitions closed already
  bool stopping_ = false;
  // Partitions given up, until their client has stopped.
  std::map<Partition*, std::unique_ptr<Partition>> closing_;
  std::function<void()> on_stopped_;
};

// Expands {part} in a filter to the partition number.
std::string PartitionFilter(const std::string& filter, uint32_t partition);

}  // namespace edgespool::central
