#include "agent/websocket/uplink_cursor.h"

namespace edgespool::agent::websocket {

bool UplinkCursor::Matches(std::string_view topic) const {
  for (const std::string& f : filters_) {
    if (store::TopicMatches(f, topic)) return true;
  }
  return false;
}

bool UplinkCursor::OfferLive(uint64_t seq) {
  if (mode_ != Mode::kLive || seq <= cursor_) return false;
  if (Full()) {
    // Not buffered: the journal has it, and the catch-up reads it back once
    // acks open the window (cursor stays before it).
    mode_ = Mode::kCatchUp;
    return false;
  }
  cursor_ = seq;
  inflight_.insert(seq);
  return true;
}

void UplinkCursor::OfferUntapped(uint64_t seq, std::string_view topic) {
  if (!Matches(topic)) return Pass(seq);
  if (mode_ == Mode::kLive && seq > cursor_) mode_ = Mode::kCatchUp;
}

uint64_t UplinkCursor::ApplyRead(const store::StoredRead& read, uint64_t tap_head,
                                 const Emit& emit) {
  reading_ = false;
  uint64_t missed = 0;
  bool consumed_all = true;
  for (const store::StoredMessage& row : read.rows) {
    if (row.seq <= cursor_) continue;  // cannot happen (read after cursor); harmless
    bool wanted = Matches(row.message.topic);
    if (wanted && Full()) {
      consumed_all = false;  // read again from here once acks come
      break;
    }
    if (!skip_first_gap_) missed += row.seq - cursor_ - 1;
    skip_first_gap_ = false;
    cursor_ = row.seq;
    if (!wanted) continue;
    emit(missed, row);
    missed_total += missed;
    missed = 0;
    inflight_.insert(row.seq);
  }
  if (consumed_all && read.complete) {
    // Every row <= head_seq was in this read: the rest up to it is gone.
    if (read.head_seq > cursor_) {
      if (!skip_first_gap_) missed += read.head_seq - cursor_;
      cursor_ = read.head_seq;
    }
    skip_first_gap_ = false;
    if (tap_head <= cursor_) mode_ = Mode::kLive;
  }
  missed_total += missed;
  return missed;
}

Status UplinkCursor::Ack(uint64_t seq, bool cumulative) {
  if (cumulative) {
    if (inflight_.empty() || *inflight_.begin() > seq) {
      return Status::InvalidArgument("no uplink message <= " + std::to_string(seq) + " in flight");
    }
    inflight_.erase(inflight_.begin(), inflight_.upper_bound(seq));
    dirty = true;
    return Status::Ok();
  }
  if (inflight_.erase(seq) == 0) {
    return Status::InvalidArgument("uplink seq " + std::to_string(seq) + " is not in flight");
  }
  dirty = true;
  return Status::Ok();
}

}  // namespace edgespool::agent::websocket
