#include "agent/downlink/consumer_session.h"

#include <algorithm>

#include "store/journal.h"

namespace edgespool::agent::downlink {

ConsumerSession::ConsumerSession(std::string name, bool durable, std::vector<std::string> filters,
                                 uint32_t window)
    : name_(std::move(name)), durable_(durable), filters_(std::move(filters)), window_(window) {}

bool ConsumerSession::Matches(std::string_view topic) const {
  for (const std::string& f : filters_) {
    if (store::TopicMatches(f, topic)) return true;
  }
  return false;
}

int64_t ConsumerSession::oldest_inflight_ms() const {
  int64_t oldest = 0;
  for (const auto& [seq, f] : inflight_) {
    if (oldest == 0 || f.received_ms < oldest) oldest = f.received_ms;
  }
  return oldest;
}

void ConsumerSession::Rewind(uint64_t position) {
  inflight_.clear();
  read_pos_ = position;
}

void ConsumerSession::Skip(uint64_t seq) { read_pos_ = std::max(read_pos_, seq); }

void ConsumerSession::Delivered(uint64_t seq, uint64_t bytes, int64_t received_ms) {
  inflight_[seq] = InFlight{bytes, received_ms};
  read_pos_ = std::max(read_pos_, seq);
  ++delivered_total;
}

bool ConsumerSession::Ack(uint64_t seq) {
  if (inflight_.erase(seq) == 0) return false;
  ++acked_total;
  return true;
}

size_t ConsumerSession::AckUpTo(uint64_t up_to) {
  auto end = inflight_.upper_bound(up_to);
  size_t n = static_cast<size_t>(std::distance(inflight_.begin(), end));
  inflight_.erase(inflight_.begin(), end);
  acked_total += n;
  return n;
}

void ConsumerSession::Attach(ConsumerSink* sink, int64_t now_ms) {
  sink_ = sink;
  last_seen_ms_ = now_ms;
}

void ConsumerSession::Detach(int64_t now_ms) {
  sink_ = nullptr;
  last_seen_ms_ = now_ms;
  // What was in flight goes again to whoever attaches next.
  Rewind(position());
}

}  // namespace edgespool::agent::downlink
