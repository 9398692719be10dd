// InboundWriter: broker -> inbox. Each inbound PUBLISH is mapped to its
// local topic (topic_map.h), checked, appended to the journal's inbox, and
// acknowledged to the broker only once the commit group holding it is
// durable (docs/downlink.md, "Subscriptions on the uplink").
//
// PUBACK order: MQTT asks for PUBACKs in the order the PUBLISHes arrived.
// Every message takes a place in an ordered queue when it arrives; its PUBACK
// goes out when it and every message before it are resolved (stored, or
// refused below). Appends commit in call order, so in practice the queue
// drains at each commit.
//
// What is not stored, but still acknowledged (the broker must not send it
// again forever), counted and logged: a message over its max_message_bytes
// (a dead letter, with the reason) and one no mapping claims.
//
// A failed append (the journal's file is full, the disk failed) is NOT
// acknowledged: it is tried again after retry_ms, holding the queue (and so
// the broker's window: the broker keeps the message, which is the
// backpressure we want) until it is stored. Nothing is lost.
//
// Loop-thread-only. Destroy before the Journal.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "agent/downlink/topic_map.h"
#include "platform/clock.h"
#include "platform/loop.h"
#include "store/journal.h"
#include "sync/mqtt_uplink.h"

namespace edgespool::agent::downlink {

struct InboundWriterOptions {
  uint64_t max_message_bytes = 1u << 20;
  int64_t retry_ms = 1000;
  const platform::Clock* clock = nullptr;  // nullptr: SystemClock
};

struct InboundWriterHooks {
  std::function<void(uint64_t ack_token)> ack;                 // PUBACK now
  std::function<void(const store::StoredInbound&)> committed;  // durable, in seq order
};

struct InboundWriterStats {
  uint64_t received_total = 0;
  uint64_t stored_total = 0;
  uint64_t dead_total = 0;       // over max_message_bytes
  uint64_t unmatched_total = 0;  // no mapping
  uint64_t append_failures_total = 0;
  uint64_t waiting = 0;          // received, not yet acknowledged
};

class InboundWriter {
 public:
  InboundWriter(platform::Loop& loop, store::Journal& journal, TopicMap map,
                InboundWriterOptions options, InboundWriterHooks hooks);
  ~InboundWriter();
  InboundWriter(const InboundWriter&) = delete;
  InboundWriter& operator=(const InboundWriter&) = delete;

  void OnPublish(sync::InboundPublish publish);

  const TopicMap& map() const { return map_; }
  InboundWriterStats stats() const;

 private:
  struct Entry {
    uint64_t ack_token = 0;
    bool resolved = false;
  };
  using EntryPtr = std::shared_ptr<Entry>;

  // nullopt when the message is not to be stored (the reason is logged).
  std::optional<store::InboundMessage> Prepare(sync::InboundPublish& p);
  void Append(EntryPtr entry, store::InboundMessage message);
  void OnAppended(EntryPtr entry, store::InboundMessage message, Result<uint64_t> res);
  void Retry();
  void Drain();

  [[maybe_unused]] platform::Loop& loop_;  // not read yet: clang warns (-Wunused-private-field)
  store::Journal& journal_;
  TopicMap map_;
  InboundWriterOptions options_;
  InboundWriterHooks hooks_;
  const platform::Clock& clock_;
  std::deque<EntryPtr> order_;
  platform::TimerHandle retry_timer_;
  std::deque<std::pair<EntryPtr, store::InboundMessage>> failed_;
  InboundWriterStats stats_;
  std::shared_ptr<InboundWriter*> self_ = std::make_shared<InboundWriter*>(this);
};

}  // namespace edgespool::agent::downlink
