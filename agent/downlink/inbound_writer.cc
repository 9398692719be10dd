#include "agent/downlink/inbound_writer.h"

#include "platform/log.h"

namespace edgespool::agent::downlink {

InboundWriter::InboundWriter(platform::Loop& loop, store::Journal& journal, TopicMap map,
                             InboundWriterOptions options, InboundWriterHooks hooks)
    : loop_(loop),
      journal_(journal),
      map_(std::move(map)),
      options_(options),
      hooks_(std::move(hooks)),
      clock_(options.clock ? *options.clock : platform::SystemClock::Get()),
      retry_timer_(loop) {}

InboundWriter::~InboundWriter() = default;

std::optional<store::InboundMessage> InboundWriter::Prepare(sync::InboundPublish& p) {
  auto mapped = map_.Map(p.topic);
  if (!mapped) {
    ++stats_.unmatched_total;
    ES_LOG_WARN("downlink message on a topic no subscription claims; acknowledged, not stored",
                {{"topic", p.topic}});
    return std::nullopt;
  }
  uint64_t limit = mapped->mapping->max_message_bytes > 0 ? mapped->mapping->max_message_bytes
                                                          : options_.max_message_bytes;
  if (p.payload.size() > limit) {
    ++stats_.dead_total;
    ES_LOG_WARN("downlink message dead-lettered: larger than max_message_bytes",
                {{"topic", p.topic},
                 {"bytes", std::to_string(p.payload.size())},
                 {"limit", std::to_string(limit)}});
    return std::nullopt;
  }
  store::InboundMessage m;
  m.received_ms = clock_.WallMs();
  m.topic = std::move(mapped->local_topic);
  m.broker_topic = std::move(p.topic);
  m.payload = std::move(p.payload);
  m.headers = std::move(p.user_properties);
  m.response_topic = std::move(p.response_topic);
  m.correlation = std::move(p.correlation_data);
  int64_t ttl_ms = mapped->mapping->ttl_ms;
  if (p.message_expiry_s) ttl_ms = int64_t{*p.message_expiry_s} * 1000;
  if (ttl_ms > 0) m.expires_at_ms = m.received_ms + ttl_ms;
  return m;
}

void InboundWriter::OnPublish(sync::InboundPublish publish) {
  ++stats_.received_total;
  auto entry = std::make_shared<Entry>();
  entry->ack_token = publish.ack_token;
  order_.push_back(entry);
  std::optional<store::InboundMessage> m = Prepare(publish);
  if (!m) {
    entry->resolved = true;
    Drain();
    return;
  }
  Append(std::move(entry), std::move(*m));
}

void InboundWriter::Append(EntryPtr entry, store::InboundMessage message) {
  // The message is copied for a retry only if the append fails: the journal
  // takes it by value, so keep one for that case.
  store::InboundMessage copy = message;
  journal_.AppendInbound(std::move(message),
                         [w = std::weak_ptr<InboundWriter*>(self_), entry,
                          copy = std::move(copy)](Result<uint64_t> res) mutable {
                           auto p = w.lock();
                           if (p) (*p)->OnAppended(entry, std::move(copy), std::move(res));
                         });
}

void InboundWriter::OnAppended(EntryPtr entry, store::InboundMessage message,
                               Result<uint64_t> res) {
  if (!res.ok()) {
    ++stats_.append_failures_total;
    ES_LOG_WARN("downlink message not stored; not acknowledged, tried again",
                {{"topic", message.broker_topic}, {"error", res.status().ToString()}});
    failed_.push_back({std::move(entry), std::move(message)});
    if (!retry_timer_.active()) retry_timer_.Start(options_.retry_ms, 0, [this] { Retry(); });
    return;
  }
  ++stats_.stored_total;
  entry->resolved = true;
  store::StoredInbound row;
  row.seq = *res;
  row.payload_bytes = message.payload.size();
  row.message = std::move(message);
  if (hooks_.committed) hooks_.committed(row);
  Drain();
}

void InboundWriter::Retry() {
  std::deque<std::pair<EntryPtr, store::InboundMessage>> failed;
  failed.swap(failed_);
  for (auto& [entry, message] : failed) Append(std::move(entry), std::move(message));
}

void InboundWriter::Drain() {
  while (!order_.empty() && order_.front()->resolved) {
    uint64_t token = order_.front()->ack_token;
    order_.pop_front();
    if (token != 0 && hooks_.ack) hooks_.ack(token);
  }
}

InboundWriterStats InboundWriter::stats() const {
  InboundWriterStats s = stats_;
  s.waiting = order_.size();
  return s;
}

}  // namespace edgespool::agent::downlink
