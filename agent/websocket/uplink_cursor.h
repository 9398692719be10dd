// UplinkCursor: a named WebSocket session's position in uplink traffic as it
// is stored (docs/websocket.md, "Resumable uplink sessions"). Pure state, no
// I/O: the server (server.cc) feeds it the live tap and journal reads
// (store::Journal::ReadStored) and persists its position.
//
// Two modes:
//   catch-up  messages come from journal reads after `cursor`, at most
//             `window` unacked in flight; what does not fit waits in the
//             journal, not in memory;
//   live      messages come from the commit hook (the producer server's tap)
//             as they are stored.
// The seam: a catch-up read that reached the journal's head H (complete) and
// saw every committed row <= H switches to live with cursor = H, but only if
// no tapped seq above H was offered already (tap_head <= H): every commit
// after the read then reaches the hook with a seq > H, which live delivery
// takes, and the hooks of commits before it carry seqs <= H, which it skips.
// Live falls back to catch-up (from its cursor, nothing buffered) when the
// window is full, or when a message it wants was stored untapped.
//
// Positions are journal seqs. position(): every matching seq <= it was acked
// (or is gone from the journal and was reported missed).
//
// Loop-thread-only.
#pragma once

#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "platform/status.h"
#include "store/journal.h"

namespace edgespool::agent::websocket {

// The consumer_sessions row that holds a cursor: the session's name behind a
// prefix no consumer name can have (a newline: ValidateSessionName refuses
// it), so the WebSocket "hmi" and a downlink session "hmi" never collide,
// and the hub skips these rows when it loads its sessions.
inline constexpr std::string_view kUplinkCursorPrefix = "\nuplink:";
inline std::string UplinkCursorRow(std::string_view session) {
  return std::string(kUplinkCursorPrefix) + std::string(session);
}

class UplinkCursor {
 public:
  enum class Mode { kCatchUp, kLive };

  UplinkCursor(std::string name, std::vector<std::string> filters, uint32_t window,
               uint64_t position)
      : name_(std::move(name)), filters_(std::move(filters)), window_(window), cursor_(position) {}

  // From "oldest": the rows before the first one still present are not
  // missed, they are what "oldest" skips.
  void SkipFirstGap() { skip_first_gap_ = true; }

  const std::string& name() const { return name_; }
  const std::vector<std::string>& filters() const { return filters_; }
  Mode mode() const { return mode_; }
  bool Matches(std::string_view topic) const;

  // A tapped message stored as seq: true to deliver it now (it is then in
  // flight). False: already covered (seq <= cursor), not live, or the window
  // is full, which switches to catch-up (the message is read back later).
  bool OfferLive(uint64_t seq);
  // A message stored on a topic this cursor does not want: a live cursor
  // moves past it (so a later catch-up does not count it missed if it is
  // gone by then).
  void Pass(uint64_t seq) {
    if (mode_ == Mode::kLive && seq > cursor_) cursor_ = seq;
  }
  // A message stored that the tap did not copy (nobody watched its topic
  // when it was appended): a live cursor that wants it reads it back.
  void OfferUntapped(uint64_t seq, std::string_view topic);

  // Whether a journal read should start now, and after which seq.
  bool WantsRead() const { return mode_ == Mode::kCatchUp && !reading_ && !Full(); }
  uint64_t read_after() const { return cursor_; }
  void set_reading(bool r) { reading_ = r; }

  // Applies a read that started after read_after(): emit(missed_before, row)
  // for each row to deliver, in seq order; missed_before counts the seqs
  // no longer in the journal before that row (see docs: an upper bound
  // when the filters do not take every topic). Returns the missed seqs after
  // the last row delivered (to report at once). tap_head: the largest seq
  // the hook has offered (tapped or not).
  using Emit = std::function<void(uint64_t missed_before, const store::StoredMessage& row)>;
  uint64_t ApplyRead(const store::StoredRead& read, uint64_t tap_head, const Emit& emit);

  // The client's ack of one delivered seq, or of every one <= seq.
  Status Ack(uint64_t seq, bool cumulative);

  uint64_t position() const { return inflight_.empty() ? cursor_ : *inflight_.begin() - 1; }
  size_t in_flight() const { return inflight_.size(); }
  uint64_t missed_total = 0;
  bool dirty = false;   // acked since the position was last saved
  uint64_t serial = 0;  // the server's, to match a journal read to this cursor

 private:
  bool Full() const { return inflight_.size() >= window_; }

  std::string name_;
  std::vector<std::string> filters_;
  uint32_t window_;
  uint64_t cursor_;  // every seq <= cursor was delivered, skipped or missed
  Mode mode_ = Mode::kCatchUp;
  bool reading_ = false;
  bool skip_first_gap_ = false;
  std::set<uint64_t> inflight_;
};

}  // namespace edgespool::agent::websocket
