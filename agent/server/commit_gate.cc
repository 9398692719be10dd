#include "agent/server/commit_gate.h"

#include <utility>

namespace edgespool::agent::server {

CommitGate::CommitGate(platform::Loop& loop, store::Journal& journal, const platform::Clock& clock,
                       Options options, std::function<void(bool blocked)> on_change)
    : journal_(journal),
      clock_(clock),
      options_(options),
      on_change_(std::move(on_change)),
      linger_timer_(loop),
      pulse_timer_(loop) {}

CommitGate::~CommitGate() { HandOver(); }

void CommitGate::Append(store::Message m, store::Journal::AppendCallback done) {
  ++awaiting_commit_;
  if (awaiting_commit_ > peak_awaiting_commit_) peak_awaiting_commit_ = awaiting_commit_;
  Hold(std::move(m), std::move(done));
  Recompute();
}

void CommitGate::Committed() {
  --awaiting_commit_;
  --handed_;
  Recompute();
}

// --- handing appends to the journal ---------------------------------------
//
// Why appends are held here at all: at a moderate rate (20,000 msg/s from 8
// producers) each publish used to find the journal idle and was committed
// alone: ~10,000 tiny transactions a second, each paying SQLite's fixed
// commit cost (WAL frames, and an fdatasync with durability full), one
// store-thread wake-up and one reply write per message. Measured, that
// saturated both cores (65-80 us of CPU per message) and queueing pushed ack
// p99 to 25-270 ms. So when the journal is idle, a first publish waits up to
// append_linger_ms for company (as Kafka's linger.ms), or until
// kEagerGroup publishes are held; while the journal is committing, publishes
// are held until that commit is answered and then handed over together (the
// group commit of the design, done one step earlier). Flat out, groups form
// at once and nothing lingers. Durability is untouched: an ack still
// follows COMMIT.
//
// A producer that publishes one message at a time, waiting for each ack,
// never has company: a linger would only add its full length to every
// ack. So a linger that ends with a group of one turns lingering off, and
// it comes back on when company shows up by itself (two or more publishes
// held when a group is handed over: arrived while the journal was busy or
// in the same loop turn).

void CommitGate::Hold(store::Message m, store::Journal::AppendCallback done) {
  if (options_.append_linger_ms <= 0) {
    ++handed_;
    return journal_.Append(std::move(m), std::move(done));
  }
  if (held_.empty()) held_since_ns_ = clock_.MonotonicNs();
  held_.push_back(HeldAppend{std::move(m), std::move(done)});
  if (held_.size() >= journal_.options().group_max_messages) HandOver();
}

void CommitGate::MaybeHandOver(bool linger_over) {
  if (held_.empty()) return;
  bool idle = handed_ == 0;
  if (idle && !linger_useful_) return HandOver();
  if (!linger_over) {
    linger_over = clock_.MonotonicNs() - held_since_ns_ >= options_.append_linger_ms * 1000000;
  }
  if (idle && (linger_over || held_.size() >= kEagerGroup)) return HandOver();
  // Idle: wait for company, at most the linger. Busy: the commit's answer
  // brings us back here (OnTurn runs every loop turn).
  if (idle && !linger_timer_.active()) {
    linger_timer_.Start(static_cast<uint64_t>(options_.append_linger_ms), 0, [this] {
      linger_timer_fired_ = true;
      MaybeHandOver(true);
    });
  }
}

void CommitGate::HandOver() {
  linger_timer_.Stop();
  if (held_.size() >= 2) {
    linger_useful_ = true;
  } else if (linger_timer_fired_) {
    linger_useful_ = false;  // lingered, and nobody came
  }
  linger_timer_fired_ = false;
  std::vector<HeldAppend> batch;
  batch.swap(held_);
  handed_ += batch.size();
  for (HeldAppend& a : batch) journal_.Append(std::move(a.message), std::move(a.done));
}

// --- blocking reads -----------------------------------------------------------

// Measured: pulsing on a commit backlog too (as the server did before) stalled
// 64 flat-out producers for 200 ms at a time, a third of the run; hence the
// two reasons (top of commit_gate.h).
void CommitGate::Recompute() {
  bool was = blocked();
  bool filling = journal_.stats().fill_ratio >= journal_.options().high_water;
  bool backlog = !filling && journal_.above_high_water();
  if (!commit_blocked_ && (awaiting_commit_ >= options_.max_awaiting_commit || backlog)) {
    commit_blocked_ = true;
    commit_block_level_ = awaiting_commit_;
  } else if (commit_blocked_ && !backlog && awaiting_commit_ <= commit_block_level_ / 2) {
    commit_blocked_ = false;
  }
  if (!pulsing_ && filling) {
    pulsing_ = true;
    highwater_paused_ = true;
    pulse_timer_.Start(kPulsePauseMs, 0, [this] { OnPulse(); });
  }
  Apply(was);
}

// Above the journal's high-water mark: pause kPulsePauseMs, read for
// kPulseReadMs, and again while the journal stays above it.
void CommitGate::OnPulse() {
  bool was = blocked();
  if (highwater_paused_) {
    highwater_paused_ = false;
    pulse_timer_.Start(kPulseReadMs, 0, [this] { OnPulse(); });
  } else {
    pulsing_ = false;
  }
  Apply(was);
  if (!pulsing_) Recompute();
}

void CommitGate::Apply(bool was_blocked) {
  if (blocked() == was_blocked) return;
  if (blocked()) ++read_pauses_;
  if (on_change_) on_change_(blocked());
}

}  // namespace edgespool::agent::server
