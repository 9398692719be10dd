#include "central/ordering_buffer.h"

#include <algorithm>
#include <cassert>
#include <utility>

namespace edgespool::central {

namespace {
// Silence is checked this often: a node going stale is noticed within it.
constexpr int64_t kRecomputeEveryMs = 100;
}  // namespace

OrderingBuffer::OrderingBuffer(OrderingOptions options) : options_(options) {}

uint32_t OrderingBuffer::NodeIndex(const std::string& name, int64_t now_ms) {
  auto it = node_index_.find(name);
  if (it != node_index_.end()) return it->second;
  uint32_t i = static_cast<uint32_t>(nodes_.size());
  nodes_.emplace_back();
  nodes_.back().name = name;
  nodes_.back().heard_ms = now_ms;
  nodes_.back().seen = SeqDedupe(options_.dedupe_ranges);
  node_index_.emplace(name, i);
  dirty_ = true;
  return i;
}

bool OrderingBuffer::Following(const Node& n, int64_t now_ms) const {
  return n.follow.for_ms > 0 && now_ms - n.follow_from_ms <= n.follow.for_ms;
}

bool OrderingBuffer::Holds(const Node& n, int64_t now_ms) const {
  // An idle node is quiet on purpose: it holds while its follow lasts.
  return n.online && !n.lagging &&
         (now_ms - n.heard_ms <= options_.max_wait_ms || Following(n, now_ms));
}

int64_t OrderingBuffer::Effective(const Node& n, int64_t now_ms) const {
  if (!n.reported) return kNone;
  if (n.follow.for_ms <= 0) return n.watermark;
  int64_t elapsed = std::min(now_ms - n.follow_from_ms, n.follow.for_ms);
  return n.watermark + std::max<int64_t>(0, elapsed - n.follow.lag_ms);
}

void OrderingBuffer::OnStatus(const std::string& node, bool online, int64_t watermark_ms,
                              int64_t now_ms, WatermarkFollow follow) {
  Node& n = nodes_[NodeIndex(node, now_ms)];
  n.online = online;
  n.heard_ms = std::max(n.heard_ms, now_ms);
  if (watermark_ms >= 0) {
    n.reported = true;
    n.watermark = watermark_ms;
    // A status without a follow (busy again, offline, an older agent) ends it.
    n.follow = follow.for_ms > 0 ? follow : WatermarkFollow{};
    n.follow_from_ms = now_ms - std::max<int64_t>(0, follow.age_ms);
  } else {
    n.follow = {};
  }
  // Caught up with what was released: it can hold the watermark again.
  if (n.lagging && n.reported && Effective(n, now_ms) > released_ts_) n.lagging = false;
  dirty_ = true;
}

void OrderingBuffer::Recompute(int64_t now_ms) {
  int64_t w = std::numeric_limits<int64_t>::max();
  for (Node& n : nodes_) {
    // An idle node's watermark moves on its own: one that fell behind what
    // was released catches up without a new status.
    if (n.lagging && n.follow.for_ms > 0 && Effective(n, now_ms) > released_ts_) {
      n.lagging = false;
    }
    if (!Holds(n, now_ms)) continue;
    int64_t nw = Effective(n, now_ms);
    // Back (online again, heard again) below what went out already: waiting
    // for it cannot restore order, only stall everyone.
    if (released_ts_ != kNone && nw <= released_ts_) {
      n.lagging = true;
      continue;
    }
    w = std::min(w, nw);
  }
  watermark_ = w;
  dirty_ = false;
  computed_ms_ = now_ms;
}

int64_t OrderingBuffer::watermark(int64_t now_ms) {
  if (dirty_ || now_ms - computed_ms_ >= kRecomputeEveryMs) Recompute(now_ms);
  return watermark_;
}

bool OrderingBuffer::Add(Message m, int64_t now_ms, std::vector<Message>* out) {
  ++stats_.added;
  if (m.node.empty() || m.seq == 0) {
    ++stats_.unordered;
    ++stats_.released;
    out->push_back(std::move(m));
    return true;
  }
  uint32_t ni = NodeIndex(m.node, now_ms);
  Node& n = nodes_[ni];
  if (!n.seen.Insert(m.seq)) {
    ++stats_.duplicates;
    return false;
  }
  // Traffic is a sign of life; a node silent until now may hold again.
  if (now_ms - n.heard_ms > options_.max_wait_ms) dirty_ = true;
  n.heard_ms = std::max(n.heard_ms, now_ms);
  Key key{m.ts_ms, ni, m.seq};
  auto last = released_.find(m.topic);
  if (last != released_.end() && key < last->second) {
    m.late = true;
    ++stats_.late;
    ++stats_.released;
    out->push_back(std::move(m));
    return true;
  }
  auto [it, inserted] = buffer_.emplace(key, Entry{std::move(m), now_ms});
  if (!inserted) {  // the dedupe ranges forgot it, the buffer did not
    ++stats_.duplicates;
    return false;
  }
  arrivals_.push_back(key);
  return true;
}

void OrderingBuffer::ReleaseFront(std::vector<Message>* out) {
  auto it = buffer_.begin();
  const Key& key = it->first;
  auto topic = released_.find(it->second.message.topic);
  if (topic == released_.end()) {
    released_.emplace(it->second.message.topic, key);
  } else {
    topic->second = key;
  }
  released_ts_ = std::max(released_ts_, key.ts);
  ++stats_.released;
  out->push_back(std::move(it->second.message));
  buffer_.erase(it);
}

void OrderingBuffer::ReleaseBelow(int64_t w, std::vector<Message>* out) {
  while (!buffer_.empty() && buffer_.begin()->first.ts < w) ReleaseFront(out);
}

const OrderingBuffer::Key* OrderingBuffer::OldestArrival() {
  while (!arrivals_.empty() && buffer_.find(arrivals_.front()) == buffer_.end()) {
    arrivals_.pop_front();
  }
  return arrivals_.empty() ? nullptr : &arrivals_.front();
}

void OrderingBuffer::Advance(int64_t now_ms, std::vector<Message>* out) {
  ReleaseBelow(watermark(now_ms), out);
  // Due: waited max_wait_ms (or the buffer is over its bound). The nodes
  // holding it back stop doing so; it goes with everything older.
  while (const Key* oldest = OldestArrival()) {
    const Entry& e = buffer_.find(*oldest)->second;
    if (now_ms - e.arrived_ms < options_.max_wait_ms && buffer_.size() <= options_.max_buffered) {
      break;
    }
    Key due = *oldest;
    for (Node& n : nodes_) {
      if (Holds(n, now_ms) && Effective(n, now_ms) <= due.ts) n.lagging = true;
    }
    size_t before = buffer_.size();
    while (!buffer_.empty() && !(due < buffer_.begin()->first)) ReleaseFront(out);
    stats_.forced += before - buffer_.size();
    dirty_ = true;
    ReleaseBelow(watermark(now_ms), out);
  }
}

void OrderingBuffer::DropBuffered() {
  for (const auto& [key, entry] : buffer_) nodes_[key.node].seen.Erase(key.seq);
  buffer_.clear();
  arrivals_.clear();
}

void OrderingBuffer::Flush(std::vector<Message>* out) {
  stats_.forced += buffer_.size();
  while (!buffer_.empty()) ReleaseFront(out);
  arrivals_.clear();
}

}  // namespace edgespool::central
