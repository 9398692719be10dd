#include "agent/websocket/session.h"

#include "agent/websocket/session_message.h"

namespace edgespool::agent::websocket {

bool Session::MatchesUplink(std::string_view topic) const {
  for (const std::string& f : uplink_filters) {
    if (store::TopicMatches(f, topic)) return true;
  }
  return false;
}

void Session::Push(std::shared_ptr<const std::string> frame, Kind kind) {
  bool was_empty = queue_.empty();
  queued_bytes_ += frame->size();
  queue_.push_back(Out{std::move(frame), kind});
  if (was_empty && wake) wake();
}

void Session::Deliver(const std::string& session, const store::StoredInbound& row) {
  // Bounded by the session's window: the hub delivers no more than that
  // until the client acks (see the top of session.h).
  frame_.clear();
  AppendDownlinkMessage(&frame_, anonymous ? std::string() : session, row);
  ++downlink_delivered;
  Push(std::make_shared<const std::string>(frame_), Kind::kDownlink);
}

bool Session::QueueControl(std::string frame) {
  if (control_queued_ >= kMaxControlFrames) return false;
  ++control_queued_;
  Push(std::make_shared<const std::string>(std::move(frame)), Kind::kControl);
  return true;
}

bool Session::QueueStatus(std::shared_ptr<const std::string> frame) {
  if (status_queued_) return false;
  status_queued_ = true;
  Push(std::move(frame), Kind::kStatus);
  return true;
}

bool Session::QueueUplink(const std::shared_ptr<const std::string>& frame) {
  if (uplink_queued_ >= limits_.max_uplink_messages ||
      uplink_queued_bytes_ + frame->size() > limits_.max_uplink_bytes) {
    ++uplink_dropped;
    ++unreported_drops_;
    return false;
  }
  if (unreported_drops_ > 0) {
    // Told in order: the client learns of the gap before the next message.
    Push(std::make_shared<const std::string>(RenderDropped(unreported_drops_, uplink_dropped)),
         Kind::kDropped);
    unreported_drops_ = 0;
  }
  ++uplink_queued_;
  uplink_queued_bytes_ += frame->size();
  ++uplink_delivered;
  Push(frame, Kind::kUplink);
  return true;
}

void Session::QueueUplinkInFlight(std::shared_ptr<const std::string> frame) {
  ++uplink_delivered;
  Push(std::move(frame), Kind::kDownlink);  // like the downlink: its window bounds it
}

void Session::QueueMissed(uint64_t count) {
  if (count == 0) return;
  uplink_dropped += count;
  Push(std::make_shared<const std::string>(RenderDropped(count, uplink_dropped)), Kind::kDropped);
}

void Session::PopFront() {
  const Out& o = queue_.front();
  queued_bytes_ -= o.frame->size();
  switch (o.kind) {
    case Kind::kControl:
      --control_queued_;
      break;
    case Kind::kUplink:
      --uplink_queued_;
      uplink_queued_bytes_ -= o.frame->size();
      break;
    case Kind::kStatus:
      status_queued_ = false;
      break;
    case Kind::kDownlink:
    case Kind::kDropped:
      break;
  }
  queue_.pop_front();
  if (queue_.empty() && unreported_drops_ > 0) {
    // Drops at the end of a burst: no next uplink message would carry the
    // news, so it goes out as soon as the client has caught up.
    Push(std::make_shared<const std::string>(RenderDropped(unreported_drops_, uplink_dropped)),
         Kind::kDropped);
    unreported_drops_ = 0;
  }
}

}  // namespace edgespool::agent::websocket
