// OrderingBuffer: dedupe by (node, seq) and release in original-timestamp
// order across nodes, per topic, behind a watermark. A plain class: events
// in (Add, OnStatus, Advance with the time), released messages out; no I/O,
// no clock of its own (tests drive it with a fake one).
//
// Watermark. Each node reports, in its retained status document, the
// watermark_ms below which it has nothing left to upload
// (agent/status_document.h). The buffer's watermark W is the minimum over the
// nodes that *hold* it: online, heard from (status or traffic) within
// max_wait_ms, and not lagging. Buffered messages with ts < W are released
// in (ts, node, seq) order, which is ts order on every topic.
//
// Bounded waiting. No message waits longer than max_wait_ms after it arrived:
// when the oldest arrival is due, the nodes whose watermark is at or below
// its ts are marked lagging (they stop holding W back) and it goes, with
// everything older. A node offline, silent for max_wait_ms or lagging holds
// nothing back; it holds again once its watermark passes what was released.
// What such a node sends meanwhile is still released in order if it can be
// (its ts is at or after the last released on its topic); otherwise at once,
// marked late and counted. Nothing is dropped except duplicates.
//
// Idle nodes. A status with a follow (an idle agent's watermark_follow:
// nothing pending as of the document) makes the node's watermark follow the
// clock: W + max(0, min(elapsed, for) - lag), elapsed since the document
// (the consumer's clock, plus the age of a retained copy). Such a node holds
// while elapsed <= for even if nothing else is heard (it republishes every
// status.interval, for = 1.5 x that); after that the watermark stops where
// it is and the silent rule applies. The agent publishes a status without a
// follow as soon as it accepts a message, ahead of that message on the same
// connection: the follow is safe as long as that status is not delayed by
// more than lag + 500 ms (its commit slack) beyond the idle one
// (docs/central.md, "Idle nodes").
//
// Nodes never heard of hold nothing back (they cannot be waited for); a node
// heard of whose status has no watermark yet holds everything back until it
// reports one or max_wait_ms passes.
//
// Memory: the buffered messages (at most max_buffered: beyond it the oldest
// goes early, as if due); per node its dedupe ranges (SeqDedupe, at most
// dedupe_ranges each) and ~100 bytes; per topic its last released key.
//
// Not thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <limits>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "central/message.h"
#include "central/seq_dedupe.h"

namespace edgespool::central {

struct OrderingOptions {
  int64_t max_wait_ms = 30000;
  size_t max_buffered = 1000000;
  size_t dedupe_ranges = 1024;  // per node
};

// An idle node's watermark_follow (central/uplink_parse.h); for_ms 0: none.
struct WatermarkFollow {
  int64_t lag_ms = 0;
  int64_t for_ms = 0;
  int64_t age_ms = 0;  // how old the document already was when it arrived
};

struct OrderingStats {
  uint64_t added = 0;
  uint64_t duplicates = 0;
  uint64_t released = 0;
  uint64_t late = 0;
  uint64_t unordered = 0;  // no node/seq (MQTT 3.1.1 message mode): passed through
  uint64_t forced = 0;     // released by max_wait or max_buffered, not the watermark
};

class OrderingBuffer {
 public:
  explicit OrderingBuffer(OrderingOptions options = {});

  // A status document of a node (online flag and watermark; watermark_ms
  // < 0: none reported). now_ms: the consumer's monotonic clock.
  // follow: the watermark follows the clock from now - age (an idle node).
  void OnStatus(const std::string& node, bool online, int64_t watermark_ms, int64_t now_ms,
                WatermarkFollow follow = {});
  // A message. Duplicates are dropped (false). A late message, or one with no
  // node/seq, goes to *out at once; others are buffered until Advance.
  bool Add(Message m, int64_t now_ms, std::vector<Message>* out);
  // Releases, in order, what the watermark or max_wait allows.
  void Advance(int64_t now_ms, std::vector<Message>* out);
  // Releases everything buffered, in order (shutdown, or a test's end).
  void Flush(std::vector<Message>* out);
  // Drops everything buffered and forgets it was seen: the connection it
  // came on is gone unacked, so the broker sends it again.
  void DropBuffered();

  size_t buffered() const { return buffer_.size(); }
  size_t nodes() const { return nodes_.size(); }
  // The current watermark (max when no node holds it back).
  int64_t watermark(int64_t now_ms);
  const OrderingStats& stats() const { return stats_; }

 private:
  static constexpr int64_t kNone = std::numeric_limits<int64_t>::min();

  struct Key {
    int64_t ts;
    uint32_t node;
    uint64_t seq;
    bool operator<(const Key& o) const {
      if (ts != o.ts) return ts < o.ts;
      if (node != o.node) return node < o.node;
      return seq < o.seq;
    }
  };
  struct Node {
    std::string name;
    bool online = true;
    bool lagging = false;
    bool reported = false;  // a watermark was ever reported
    int64_t watermark = kNone;
    int64_t heard_ms = 0;
    WatermarkFollow follow;
    int64_t follow_from_ms = 0;  // when the follow's document was written (our clock)
    SeqDedupe seen;
  };
  struct Entry {
    Message message;
    int64_t arrived_ms;
  };

  uint32_t NodeIndex(const std::string& name, int64_t now_ms);
  bool Holds(const Node& n, int64_t now_ms) const;
  bool Following(const Node& n, int64_t now_ms) const;
  // The node's watermark now (kNone: none reported), following if idle.
  int64_t Effective(const Node& n, int64_t now_ms) const;
  void Recompute(int64_t now_ms);
  void ReleaseBelow(int64_t w, std::vector<Message>* out);
  void ReleaseFront(std::vector<Message>* out);
  // The oldest arrival still buffered, or nullptr (drops released entries).
  const Key* OldestArrival();

  OrderingOptions options_;
  std::vector<Node> nodes_;
  std::unordered_map<std::string, uint32_t> node_index_;
  std::map<Key, Entry> buffer_;
  std::deque<Key> arrivals_;  // arrival order; entries released already are skipped
  std::unordered_map<std::string, Key> released_;  // per topic: the last released key
  int64_t released_ts_ = kNone;                    // the highest released ts, any topic
  int64_t watermark_ = kNone;
  bool dirty_ = true;
  int64_t computed_ms_ = kNone;
  OrderingStats stats_;
};

}  // namespace edgespool::central
