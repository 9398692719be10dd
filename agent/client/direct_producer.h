// DirectProducer: a Producer's direct mode (docs/direct-mode.md). Given an
// mqtt:// or mqtts:// URL instead of the agent's socket, the Producer
// publishes to that broker itself, through the uplink's own MQTT client
// (sync/mqtt/client.h: MQTT 5 with the 3.1.1 fallback, TLS over mbedTLS,
// reconnects with jittered backoff), with no agent and no journal.
//
// On the wire a message is what the agent's message mode sends for a route
// with upstream_topic "{topic}" (sync/sync_worker.cc, Enqueue): QoS 1 on the
// topic given, the payload as is, and (MQTT 5) the user properties
//   es-ts   the message's ts (PublishOptions::ts_ms, else the time of Publish)
//   es-id   the idempotency id (given or generated, as through the agent)
//   then every header, in order,
// and a message expiry of ceil(ttl / 1 s) when a ttl is given. es-seq and
// es-node are not sent: they name a row of a journal there is not. A
// counter of this process would restart at 1, and the central consumer,
// which deduplicates by (node, seq), would drop the new messages as
// duplicates of old ones; without them it passes the messages through
// unordered, as it does for any publisher that is not an agent
// (central/uplink_parse.h).
//
// Results: Receipt::kSent once the broker's PUBACK arrived (ack kStored or
// kDelivered; with kDelivered on_delivered runs at the same moment),
// Receipt::kWritten for ack kNone once handed to the MQTT client. Nothing
// waits for a link that is down: before the first connection Connect()
// fails after connect_timeout_ms; later, a publish made while the link is
// down fails at once with Unavailable, and one already accepted gets
// connect_timeout_ms for the link to come back (the client resends it, DUP)
// before it fails with Unavailable. Such a failed message may still have
// reached the broker: publish it again with the same id.
//
// Refused here (InvalidArgument, code bad_request) because they need the
// agent: deliver_at / delay (scheduled delivery is stored). Priority is
// accepted and has no effect (there is no backlog to order).
//
// Thread-safety: Publish, Drain and the accessors from any thread (Publish
// blocks while max_queued are outstanding, except on the SDK thread).
// Callbacks run on the IoThread. Destroy from any thread but that one.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "agent/client/io_thread.h"
#include "agent/client/message_ids.h"
#include "agent/client/producer.h"
#include "platform/loop.h"
#include "platform/status.h"
#include "sync/mqtt/client.h"

namespace edgespool::client {

class DirectProducer final : private sync::mqtt::ClientListener {
 public:
  // Starts (or joins) the IoThread and waits up to connect_timeout_ms for
  // the first CONNACK. InvalidArgument for a bad URL or TLS file,
  // Unavailable (with the last cause) when the broker was not reached in time.
  static Result<std::unique_ptr<DirectProducer>> Connect(ProducerOptions options);
  ~DirectProducer() override;
  DirectProducer(const DirectProducer&) = delete;
  DirectProducer& operator=(const DirectProducer&) = delete;

  void Publish(std::string topic, std::string payload, PublishOptions options,
               std::function<void(PublishResult)> done);
  bool Drain(int64_t timeout_ms);
  bool connected() const { return connected_.load(); }
  uint64_t reconnects() const { return reconnects_.load(); }

 private:
  // One publish from its Publish() to its result.
  struct Pending {
    sync::mqtt::OutgoingMessage msg;
    std::string id;
    protocol::AckMode ack = protocol::AckMode::kStored;
    std::function<void(PublishResult)> done;
    std::function<void(const PublishResult&)> on_delivered;
  };

  explicit DirectProducer(ProducerOptions options);
  Status Start();
  // Loop thread.
  void StartOnLoop(std::promise<Status>* created);
  void OnWake();
  void Complete(Pending& p, const Status& status, Receipt receipt, uint8_t reason_code = 0);
  void FailInflight(const Status& why);
  void FinishFirstConnect(const Status& st);
  void ShutdownOnLoop();
  // sync::mqtt::ClientListener
  void OnConnected(const sync::mqtt::ConnectInfo& info) override;
  void OnDisconnected(const Status& why) override;
  void OnPublishAcked(uint64_t token, const Status& status, uint8_t reason_code) override;

  ProducerOptions options_;
  std::string url_shown_;  // the URL as logged (no secrets)
  MessageIds ids_;
  std::shared_ptr<IoThread> io_;
  platform::Loop* loop_ = nullptr;
  std::promise<void> shut_down_;

  // Callers' side, guarded by mu_.
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Pending> queue_;  // waiting for the loop to hand them to the client
  size_t outstanding_ = 0;     // published, not yet completed
  bool stopping_ = false;

  std::atomic<bool> connected_{false};
  std::atomic<bool> ever_connected_{false};
  std::atomic<uint64_t> reconnects_{0};

  // Loop thread only.
  std::unique_ptr<sync::mqtt::Client> client_;
  std::unique_ptr<platform::AsyncHandle> wake_;
  std::unique_ptr<platform::TimerHandle> first_connect_timer_;
  // Armed when the link drops; fires connect_timeout_ms later unless it is back.
  std::unique_ptr<platform::TimerHandle> grace_timer_;
  std::unordered_map<uint64_t, Pending> inflight_;  // by the client's token
  std::promise<Status> first_connect_;
  bool first_connect_done_ = false;
  Status last_error_;
};

}  // namespace edgespool::client
