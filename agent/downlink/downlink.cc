#include "agent/downlink/downlink.h"

#include "agent/protocol/json_writer.h"

namespace edgespool::agent::downlink {

Downlink::Downlink(platform::Loop& loop, store::Journal& journal, sync::MqttUplink& uplink,
                   DownlinkOptions options)
    : uplink_(uplink), hub_(Hub::Start(loop, journal, options.hub)) {
  endpoint_ = std::make_unique<ConsumerEndpoint>(*hub_);
  InboundWriterHooks hooks;
  hooks.ack = [this](uint64_t token) { uplink_.AckInbound(token); };
  hooks.committed = [this](const store::StoredInbound& row) { hub_->OnCommitted(row); };
  writer_ = std::make_unique<InboundWriter>(loop, journal, TopicMap(std::move(options.mappings)),
                                            options.writer, std::move(hooks));
  uplink_.SetInboundListener(
      [this](sync::InboundPublish p) { writer_->OnPublish(std::move(p)); });
}

Downlink::~Downlink() { uplink_.SetInboundListener({}); }

namespace {

std::string SessionsJson(const std::vector<SessionSnapshot>& sessions) {
  std::string out = "[";
  for (const SessionSnapshot& s : sessions) {
    if (out.size() > 1) out += ',';
    out += std::move(protocol::JsonObjectWriter()
                         .Str("name", s.durable ? s.name : "")
                         .Bool("durable", s.durable)
                         .Bool("attached", s.attached)
                         .Uint("position", s.position)
                         .Uint("inflight", s.inflight)
                         .Uint("backlog", s.backlog)
                         .Int("oldest_unacked_age_ms", s.oldest_unacked_age_ms)
                         .Uint("delivered", s.delivered_total)
                         .Uint("acked", s.acked_total)
                         .Uint("dropped", s.dropped_total))
               .Finish();
  }
  return out + "]";
}

}  // namespace

std::string Downlink::StatusJson(const store::JournalStats& j) const {
  InboundWriterStats w = writer_->stats();
  HubStats h = hub_->stats();
  std::string inbox = std::move(protocol::JsonObjectWriter()
                                    .Uint("messages", j.inbox_count)
                                    .Uint("bytes", j.inbox_bytes)
                                    .Uint("head_seq", j.inbox_head_seq))
                          .Finish();
  return std::move(protocol::JsonObjectWriter()
                       .Raw("inbox", inbox)
                       .Uint("received", w.received_total)
                       .Uint("stored", w.stored_total)
                       .Uint("dead", w.dead_total)
                       .Uint("unmatched", w.unmatched_total)
                       .Uint("delivered", h.delivered_total)
                       .Uint("acked", h.acked_total)
                       .Uint("dropped", h.dropped_total + j.inbox_dropped_total)
                       .Uint("expired", j.inbox_expired_total)
                       .Raw("sessions", SessionsJson(hub_->Sessions())))
      .Finish();
}

}  // namespace edgespool::agent::downlink
