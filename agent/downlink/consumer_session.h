// ConsumerSession: one local consumer's place in the inbox, as a plain
// state machine (no I/O). The hub (hub.h) feeds it inbox rows in seq order
// and the consumer's acks; it says what to deliver and where the session
// stands.
//
// Position: every inbox seq <= position() is done for this session: acked,
// or not matching its filters. It is what is persisted for a durable session
// and where it resumes after a reconnect or a restart, so a message that was
// delivered and not acked is delivered again (at least once):
//   position = read_pos - 0        when nothing is in flight
//            = oldest in flight - 1 otherwise
// Acks may come in any order; the position moves only past a contiguous
// acked prefix, which the in-flight map gives for free.
//
// Flow control: at most window() messages in flight; the rest stay in the
// journal (the hub reads them when room opens), never in memory.
//
// Not thread-safe; the hub's loop thread.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace edgespool::agent::downlink {

class ConsumerSink;

class ConsumerSession {
 public:
  ConsumerSession(std::string name, bool durable, std::vector<std::string> filters,
                  uint32_t window);

  const std::string& name() const { return name_; }
  bool durable() const { return durable_; }
  const std::vector<std::string>& filters() const { return filters_; }
  uint32_t window() const { return window_; }
  void set_filters(std::vector<std::string> filters) { filters_ = std::move(filters); }
  void set_window(uint32_t window) { window_ = window; }

  bool Matches(std::string_view topic) const;
  bool HasRoom() const { return inflight_.size() < window_; }
  // The last inbox seq looked at (delivered or skipped).
  uint64_t read_pos() const { return read_pos_; }
  uint64_t position() const {
    return inflight_.empty() ? read_pos_ : inflight_.begin()->first - 1;
  }
  size_t inflight() const { return inflight_.size(); }
  // Wall ms of the oldest message in flight (0: none).
  int64_t oldest_inflight_ms() const;

  // Starts over from `position`: what was in flight is forgotten (it will be
  // read and delivered again).
  void Rewind(uint64_t position);
  // An inbox row that does not match, was removed, or lies before the start.
  void Skip(uint64_t seq);
  // A matching row was handed to the consumer.
  void Delivered(uint64_t seq, uint64_t bytes, int64_t received_ms);
  // One message; false if seq is not in flight (already acked, never sent).
  bool Ack(uint64_t seq);
  // Every message in flight with seq <= up_to; returns how many.
  size_t AckUpTo(uint64_t up_to);

  // The connection it is attached to (nullptr: detached).
  ConsumerSink* sink() const { return sink_; }
  void Attach(ConsumerSink* sink, int64_t now_ms);
  void Detach(int64_t now_ms);
  int64_t last_seen_ms() const { return last_seen_ms_; }
  void set_last_seen_ms(int64_t ms) { last_seen_ms_ = ms; }

  // Counters for the status document and metrics.
  uint64_t delivered_total = 0;
  uint64_t acked_total = 0;
  uint64_t dropped_total = 0;
  // Position last written to the journal (the hub persists changes).
  uint64_t persisted_position = 0;
  bool reading = false;  // a ReadInbox for this session is in flight

 private:
  struct InFlight {
    uint64_t bytes = 0;
    int64_t received_ms = 0;
  };
  std::string name_;
  bool durable_;
  std::vector<std::string> filters_;
  uint32_t window_;
  uint64_t read_pos_ = 0;
  std::map<uint64_t, InFlight> inflight_;
  ConsumerSink* sink_ = nullptr;
  int64_t last_seen_ms_ = 0;
};

}  // namespace edgespool::agent::downlink
