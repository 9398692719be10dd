// Downlink: the broker -> local consumers path, composed (docs/downlink.md).
//
//   MqttUplink --inbound--> InboundWriter --AppendInbound--> Journal (inbox)
//        ^                       | committed (seq order)
//        +------ PUBACK ---------+--------> Hub --> ConsumerEndpoint --> sockets
//
// The uplink must be created with broker_filters() as its subscriptions and
// a persistent session; the Downlink installs itself as the uplink's inbound
// listener, which turns on deferred PUBACKs.
//
// Loop-thread-only. Destroy before the uplink and the journal.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "agent/downlink/consumer_endpoint.h"
#include "agent/downlink/hub.h"
#include "agent/downlink/inbound_writer.h"
#include "agent/downlink/topic_map.h"
#include "platform/loop.h"
#include "store/journal.h"
#include "sync/mqtt_uplink.h"

namespace edgespool::agent::downlink {

struct DownlinkOptions {
  std::vector<TopicMapping> mappings;  // the built-in downlink first
  InboundWriterOptions writer;
  HubOptions hub;
};

class Downlink {
 public:
  Downlink(platform::Loop& loop, store::Journal& journal, sync::MqttUplink& uplink,
           DownlinkOptions options);
  ~Downlink();
  Downlink(const Downlink&) = delete;
  Downlink& operator=(const Downlink&) = delete;

  ConsumerEndpoint& endpoint() { return *endpoint_; }
  const Hub& hub() const { return *hub_; }
  Hub& hub() { return *hub_; }
  const InboundWriter& writer() const { return *writer_; }

  // The status document's "downlink" object (status_document.h).
  std::string StatusJson(const store::JournalStats& journal) const;
  // Persists every session's position (shutdown).
  void Flush(std::function<void()> done) { hub_->Flush(std::move(done)); }

 private:
  sync::MqttUplink& uplink_;
  std::unique_ptr<Hub> hub_;
  std::unique_ptr<ConsumerEndpoint> endpoint_;
  std::unique_ptr<InboundWriter> writer_;
};

}  // namespace edgespool::agent::downlink
