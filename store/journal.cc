// Journal: the asynchronous door over JournalDb (journal_db.h).
//
// Two threads meet here. The loop thread calls the public methods; each
// queues work under mu_ and wakes the store thread through cv_. The store
// thread runs, in turn: one commit group of appends and downlink writes
// (up to group_max_messages, gathered while the previous group committed), then
// every other queued operation, then one bounded cleanup step when one is
// due; it never holds mu_ while touching SQLite. Results go back as closures
// on done_ (guarded by done_mu_) and an AsyncHandle wakes the loop, which
// runs them; each batch carries a fresh JournalStats snapshot.
//
// Reads run on the store thread between groups rather than on a second
// connection. Measured (journal_bench --only reads: a prototype of both on
// the same SQL, 64-append groups against a batch-mode drain; three runs on
// this 2-core machine at load 5-12): with the fetches on a second
// connection the writer appended -10% to +55% faster (42-72k vs 37-49k
// msg/s), but the drain ran 0-40% slower (66-118k vs 93-126k rows/s): its
// fetches took 3-4 ms instead of 0.2 ms per 2000 rows (a shared -shm WAL
// index and a read transaction per fetch, racing the writer). Ack p99 did
// not move (14-28 ms either way): it is set by MarkSent and checkpoints,
// which must stay on the writer. A second reading connection would also
// need the lease set and scan cursors shared across threads (a fetch whose
// snapshot predates a MarkSent's commit must not see those rows as free).
// (Checkpoints did move to a connection and thread of their own since:
// checkpointer.h.)
// The lever that worked was making reads cheap: a 1M-row drain now costs
// the store thread ~2.4 s instead of ~12 s (schema.cc, "WHY PENDING AND
// SENT ARE TABLES").

// Loop liveness: the AsyncHandle is unreferenced (an idle journal must not
// keep the loop running); while any callback is outstanding a referenced
// timer that never fires keeps it alive, as a libuv request would.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <condition_variable>
#include <deque>
#include <list>
#include <mutex>
#include <thread>

#include "platform/log.h"
#include "platform/process_info.h"
#include "store/journal.h"
#include "store/journal_db.h"

namespace edgespool::store {

namespace {
// Appends waiting beyond this many groups count as "above high water".
constexpr size_t kMaxWaitingGroups = 4;
constexpr uint64_t kKeepaliveMs = 3600 * 1000;
// The store thread wakes at least this often while rows are scheduled, so a
// wall clock stepped forward (NTP at boot on a gateway) is noticed.
constexpr int64_t kMaxDueWaitMs = 60 * 1000;
constexpr int64_t kDueRetryMs = 1000;  // after a failed promotion
}  // namespace

class Journal::Impl {
 public:
  Impl(platform::Loop& loop, JournalOptions options, std::unique_ptr<JournalDb> db)
      : loop_(loop),
        options_(std::move(options)),
        clock_(*options_.clock),
        db_(std::move(db)),
        keepalive_(loop) {
    stats_ = db_->RefreshStats();
    wake_ = std::make_unique<platform::AsyncHandle>(loop, [this] { DrainDone(); });
    wake_->Unref();
    next_cleanup_ns_ = clock_.MonotonicNs() + options_.cleanup_interval_ms * 1000000;
    // The background count (after a crash) wakes the store thread, which
    // folds it into the counters and hands the loop fresh stats.
    db_->SetCountListener([this] {
      {
        std::lock_guard<std::mutex> lock(mu_);
        count_ready_ = true;
      }
      cv_.notify_one();
    });
    thread_ = std::thread([this] {
      platform::SetThreadName("es-store");
      StoreThreadMain();
    });
  }

  ~Impl() {
    alive_.reset();  // a staged flush still posted to the loop finds nothing
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_one();
    thread_.join();
    closing_ = true;
    DrainDone();  // finished work: real results
    std::vector<PendingAppend> appends;
    std::deque<Op> ops;
    std::list<DoneCallback> cleanups;
    {
      std::lock_guard<std::mutex> lock(mu_);
      appends.swap(appends_);
      ops.swap(ops_);
      cleanups.swap(cleanup_waiters_);
      cleanups.splice(cleanups.end(), running_waiters_);
    }
    for (auto& a : staged_) appends.push_back(std::move(a));
    staged_.clear();
    for (auto& a : appends) {
      if (a.done) a.done(Status::Cancelled("journal closed before the append was committed"));
    }
    for (auto& op : ops) {
      if (op.cancel) op.cancel();
    }
    for (auto& done : cleanups) {
      if (done) done(Status::Cancelled("journal closed before cleanup finished"));
    }
    db_.reset();
  }

  // --- loop thread --------------------------------------------------------

  void Append(Message message, AppendCallback done) {
    Stage({std::move(message), std::move(done), nullptr});
  }

  // A downlink write joins the commit groups as an append does; `done` gets
  // its inbox seq (0 for a session write) or the group's error.
  void AppendWrite(std::unique_ptr<GroupWrite> write, AppendCallback done) {
    Stage({Message{}, std::move(done), std::move(write)});
  }

  void FlushStaged() {
    if (staged_.empty()) return;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (appends_.empty()) {
        appends_.swap(staged_);
      } else {
        appends_.insert(appends_.end(), std::make_move_iterator(staged_.begin()),
                        std::make_move_iterator(staged_.end()));
      }
    }
    staged_.clear();
    cv_.notify_one();
  }

  // Runs work(db) on the store thread, then done(result) on the loop.
  template <typename R>
  void Submit(std::function<R(JournalDb&)> work, std::function<void(R)> done) {
    if (closing_) {
      if (done) done(R(Status::Cancelled("journal closed")));
      return;
    }
    Hold();
    FlushStaged();  // appends made before this call go first
    auto shared_done = std::make_shared<std::function<void(R)>>(std::move(done));
    Op op;
    op.run = [this, work = std::move(work), shared_done]() {
      auto result = std::make_shared<R>(work(*db_));
      PostDone([this, result, shared_done] {
        Release();
        if (*shared_done) (*shared_done)(std::move(*result));
      });
    };
    op.cancel = [this, shared_done] {
      Release();
      if (*shared_done) (*shared_done)(R(Status::Cancelled("journal closed")));
    };
    {
      std::lock_guard<std::mutex> lock(mu_);
      ops_.push_back(std::move(op));
    }
    cv_.notify_one();
  }

  void RequestCleanup(DoneCallback done) {
    if (closing_) {
      if (done) done(Status::Cancelled("journal closed"));
      return;
    }
    Hold();
    {
      std::lock_guard<std::mutex> lock(mu_);
      cleanup_waiters_.push_back(std::move(done));
      cleanup_requested_ = true;
    }
    cv_.notify_one();
  }

  void SetCommitListener(CommitListener listener) {
    listener_ = std::move(listener);
    has_listener_.store(static_cast<bool>(listener_));
  }

  void SetDueListener(std::function<void()> listener) { due_listener_ = std::move(listener); }
  void SetExpiryListener(std::function<void(const std::vector<uint64_t>&)> listener) {
    expiry_listener_ = std::move(listener);
    has_expiry_listener_.store(static_cast<bool>(expiry_listener_));
  }

  const JournalStats& stats() const { return stats_; }
  bool above_high_water() const {
    return stats_.fill_ratio >= options_.high_water ||
           queued_appends_ > kMaxWaitingGroups * options_.group_max_messages;
  }
  const JournalOptions& options() const { return options_; }

 private:
  struct PendingAppend {
    Message message;
    AppendCallback done;
    std::unique_ptr<GroupWrite> write;  // set: a downlink write, not a producer append
  };

  void Stage(PendingAppend append) {
    if (closing_) {
      if (append.done) append.done(Status::Cancelled("journal closed"));
      return;
    }
    Hold();
    ++queued_appends_;
    // Stage on the loop thread and hand the whole batch over once per loop
    // turn. Handing each append over as it comes lets the store thread wake
    // on the first and commit it alone: measured, 8 producers re-submitting
    // from their ack callbacks got groups of 1 (6k msg/s, durability normal).
    staged_.push_back(std::move(append));
    // Appends made from a journal callback (a producer answering its ack
    // with the next message) are handed over when DrainDone ends: no
    // eventfd round trip through the loop per commit group.
    if (staged_.size() == 1 && !in_drain_) {
      loop_.Post([this, alive = std::weak_ptr<int>(alive_)] {
        if (alive.lock()) FlushStaged();
      });
    }
  }

  struct Op {
    std::function<void()> run;     // store thread
    std::function<void()> cancel;  // loop thread, at close
  };

  // Outstanding callbacks keep the loop alive.
  void Hold() {
    if (outstanding_++ == 0) keepalive_.Start(kKeepaliveMs, kKeepaliveMs, [] {});
  }
  void Release() {
    if (--outstanding_ == 0) keepalive_.Stop();
  }

  void DrainDone() {
    std::vector<std::function<void()>> batch;
    {
      std::lock_guard<std::mutex> lock(done_mu_);
      batch.swap(done_);
      stats_ = latest_stats_;
    }
    in_drain_ = true;
    for (auto& fn : batch) fn();
    in_drain_ = false;
    FlushStaged();
  }

  // --- store thread -------------------------------------------------------

  void PostDone(std::function<void()> fn) {
    const JournalStats& snapshot = db_->RefreshStats();
    {
      std::lock_guard<std::mutex> lock(done_mu_);
      latest_stats_ = snapshot;
      done_.push_back(std::move(fn));
    }
    wake_->Send();
  }

  void StoreThreadMain() {
    std::unique_lock<std::mutex> lock(mu_);
    while (true) {
      if (stop_) break;
      // Due cleanups run under load too, one bounded step per turn.
      if (!cleanup_running_ && clock_.MonotonicNs() >= next_cleanup_ns_) {
        cleanup_requested_ = true;
      }
      // Scheduled rows: the earliest due time bounds the sleep below.
      int64_t due_in_ms = DueInMs();
      if (appends_.empty() && ops_.empty() && !cleanup_running_ && !cleanup_requested_ &&
          !count_ready_ && due_in_ms > 0) {
        int64_t wait_ns = next_cleanup_ns_ - clock_.MonotonicNs();
        if (due_in_ms != INT64_MAX) {
          wait_ns = std::min(wait_ns, std::min(due_in_ms, kMaxDueWaitMs) * 1000000);
        }
        if (wait_ns > 0) {
          cv_.wait_for(lock, std::chrono::nanoseconds(wait_ns));
          if (clock_.MonotonicNs() >= next_cleanup_ns_) cleanup_requested_ = true;
          continue;
        }
        if (clock_.MonotonicNs() >= next_cleanup_ns_) cleanup_requested_ = true;
      }
      if (!appends_.empty() && options_.group_max_delay_us > 0 &&
          appends_.size() < options_.group_max_messages) {
        // Trade latency for bigger groups: wait a little for more company.
        cv_.wait_for(lock, std::chrono::microseconds(options_.group_max_delay_us), [this] {
          return stop_ || appends_.size() >= options_.group_max_messages;
        });
      }
      std::vector<PendingAppend> group;
      size_t n = std::min<size_t>(appends_.size(), options_.group_max_messages);
      if (n == appends_.size()) {
        group.swap(appends_);
      } else {
        group.assign(std::make_move_iterator(appends_.begin()),
                     std::make_move_iterator(appends_.begin() + n));
        appends_.erase(appends_.begin(), appends_.begin() + n);
      }
      std::deque<Op> ops;
      ops.swap(ops_);
      bool cleanup = cleanup_requested_ || cleanup_running_;
      if (cleanup_requested_) {
        cleanup_requested_ = false;
        cleanup_running_ = true;
        running_waiters_.splice(running_waiters_.end(), cleanup_waiters_);
      }
      bool counted = count_ready_;
      count_ready_ = false;
      lock.unlock();
      if (counted) PostDone([] {});  // RefreshStats folds the count in
      if (!group.empty()) CommitGroup(std::move(group));
      for (auto& op : ops) op.run();
      if (cleanup) CleanupStep();
      if (DueInMs() <= 0) PromoteDue();
      lock.lock();
    }
  }

  void CommitGroup(std::vector<PendingAppend> group) {
    std::vector<AppendItem> items(group.size());
    for (size_t i = 0; i < group.size(); ++i) {
      items[i].message = std::move(group[i].message);
      items[i].write = std::move(group[i].write);
    }
    db_->AppendGroup(&items);
    // One allocation carries the whole group's answers to the loop.
    struct Answers {
      std::vector<StoredMessage> committed;
      std::vector<Result<AppendOutcome>> results;
      std::vector<AppendCallback> callbacks;
    };
    auto a = std::make_shared<Answers>();
    if (has_listener_.load()) {
      a->committed.reserve(items.size());
      for (auto& item : items) {
        // Scheduled rows wait in the journal: never served from memory.
        if (!item.stored || item.scheduled) continue;
        a->committed.push_back(StoredMessage{item.outcome->seq, std::move(item.message), 0});
      }
    }
    a->results.reserve(items.size());
    a->callbacks.reserve(items.size());
    for (size_t i = 0; i < items.size(); ++i) {
      a->results.push_back(std::move(items[i].outcome));
      a->callbacks.push_back(std::move(group[i].done));
    }
    PostDone([this, a] {
      queued_appends_ -= a->callbacks.size();
      if (!a->committed.empty() && listener_) listener_(a->committed);
      for (size_t i = 0; i < a->callbacks.size(); ++i) {
        Release();
        if (a->callbacks[i]) a->callbacks[i](std::move(a->results[i]));
      }
    });
  }

  // Store thread: ms until the earliest scheduled row is due (<= 0: now).
  int64_t DueInMs() const {
    int64_t due = db_->next_due_ms();
    if (due == INT64_MAX) return INT64_MAX;
    return due - clock_.WallMs();
  }

  void PromoteDue() {
    Result<size_t> moved = db_->PromoteDue(clock_.WallMs());
    if (!moved.ok()) {
      ES_LOG_WARN("journal: scheduled rows could not be made pending; retrying",
                  {{"path", options_.path}, {"reason", moved.status().ToString()}});
      db_->DeferDue(clock_.WallMs() + kDueRetryMs);
      return;
    }
    if (*moved == 0) return;
    PostDone([this] {
      if (due_listener_) due_listener_();
    });
  }

  void CleanupStep() {
    db_->set_collect_expired(has_expiry_listener_.load());
    Result<bool> more = db_->CleanupStep();
    if (std::vector<uint64_t> expired = db_->TakeExpired(); !expired.empty()) {
      PostDone([this, expired = std::move(expired)] {
        if (expiry_listener_) expiry_listener_(expired);
      });
    }
    if (more.ok() && *more) return;  // next turn, after any waiting appends
    if (!more.ok()) {
      ES_LOG_WARN("journal cleanup failed", {{"path", options_.path},
                                             {"reason", more.status().ToString()}});
    }
    Status s = more.ok() ? Status::Ok() : more.status();
    std::list<DoneCallback> waiters;
    {
      std::lock_guard<std::mutex> lock(mu_);
      cleanup_running_ = false;
      next_cleanup_ns_ = clock_.MonotonicNs() + options_.cleanup_interval_ms * 1000000;
      waiters.swap(running_waiters_);
    }
    if (waiters.empty()) {
      PostDone([] {});  // fresh stats for the loop
      return;
    }
    auto shared = std::make_shared<std::list<DoneCallback>>(std::move(waiters));
    PostDone([this, shared, s] {
      for (auto& w : *shared) {
        Release();
        if (w) w(s);
      }
    });
  }

  platform::Loop& loop_;
  const JournalOptions options_;
  const platform::Clock& clock_;
  std::unique_ptr<JournalDb> db_;  // store thread while it runs

  // Loop thread only.
  JournalStats stats_;
  CommitListener listener_;
  std::function<void()> due_listener_;
  std::function<void(const std::vector<uint64_t>&)> expiry_listener_;
  std::atomic<bool> has_expiry_listener_{false};
  std::atomic<bool> has_listener_{false};
  std::unique_ptr<platform::AsyncHandle> wake_;
  platform::TimerHandle keepalive_;
  size_t outstanding_ = 0;
  size_t queued_appends_ = 0;
  bool closing_ = false;
  bool in_drain_ = false;  // running DrainDone's callbacks
  std::vector<PendingAppend> staged_;  // appends not yet handed to the store thread
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);

  // Loop -> store thread, guarded by mu_.
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<PendingAppend> appends_;
  std::deque<Op> ops_;
  std::list<DoneCallback> cleanup_waiters_;   // asked for, not started
  std::list<DoneCallback> running_waiters_;   // answered when the run ends
  bool cleanup_requested_ = false;
  bool cleanup_running_ = false;
  int64_t next_cleanup_ns_ = 0;
  bool stop_ = false;
  bool count_ready_ = false;  // the background backlog count finished

  // Store thread -> loop, guarded by done_mu_.
  std::mutex done_mu_;
  std::vector<std::function<void()>> done_;
  JournalStats latest_stats_;

  std::thread thread_;  // last: started after every member above exists
};

Result<std::unique_ptr<Journal>> Journal::Open(platform::Loop& loop, JournalOptions options) {
  if (!options.clock) options.clock = &platform::SystemClock::Get();
  if (options.group_max_messages == 0) options.group_max_messages = 1;
  auto db = JournalDb::Open(options, *options.clock);
  if (!db.ok()) return db.status();
  options.on_slow_step = nullptr;  // open is over: the caller's hook may go
  auto impl = std::make_unique<Impl>(loop, std::move(options), std::move(db).value());
  return std::unique_ptr<Journal>(new Journal(std::move(impl)));
}

Journal::Journal(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Journal::~Journal() = default;

void Journal::Append(Message message, AppendCallback done) {
  impl_->Append(std::move(message), std::move(done));
}

void Journal::FetchPending(FetchSpec spec, FetchCallback done) {
  impl_->Submit<Result<std::vector<StoredMessage>>>(
      [spec = std::move(spec)](JournalDb& db) { return db.FetchPending(spec); }, std::move(done));
}

void Journal::MarkSent(std::vector<uint64_t> seqs, DoneCallback done) {
  impl_->Submit<Status>([seqs = std::move(seqs)](JournalDb& db) { return db.MarkSent(seqs); },
                        std::move(done));
}

void Journal::MarkDead(std::vector<std::pair<uint64_t, std::string>> seqs_and_reasons,
                       DoneCallback done) {
  impl_->Submit<Status>(
      [v = std::move(seqs_and_reasons)](JournalDb& db) { return db.MarkDead(v); },
      std::move(done));
}

void Journal::Release(std::vector<uint64_t> seqs, bool count_attempt, DoneCallback done) {
  impl_->Submit<Status>(
      [seqs = std::move(seqs), count_attempt](JournalDb& db) {
        return db.Release(seqs, count_attempt);
      },
      std::move(done));
}

void Journal::ReleaseAll() {
  impl_->Submit<Status>(
      [](JournalDb& db) {
        db.ReleaseAll();
        return Status::Ok();
      },
      nullptr);
}

void Journal::Lease(std::vector<uint64_t> seqs) {
  impl_->Submit<Status>(
      [seqs = std::move(seqs)](JournalDb& db) {
        db.Lease(seqs);
        return Status::Ok();
      },
      nullptr);
}

void Journal::Query(uint64_t seq, std::function<void(Result<QueryResult>)> done) {
  impl_->Submit<Result<QueryResult>>([seq](JournalDb& db) { return db.Query(seq); },
                                     std::move(done));
}

void Journal::QueryById(std::string msg_id, std::function<void(Result<QueryResult>)> done) {
  impl_->Submit<Result<QueryResult>>(
      [id = std::move(msg_id)](JournalDb& db) { return db.QueryById(id); }, std::move(done));
}

void Journal::ListDead(size_t limit,
                       std::function<void(Result<std::vector<DeadLetter>>)> done) {
  impl_->Submit<Result<std::vector<DeadLetter>>>(
      [limit](JournalDb& db) { return db.ListDead(limit); }, std::move(done));
}

void Journal::Requeue(std::vector<uint64_t> seqs, DoneCallback done) {
  impl_->Submit<Status>([seqs = std::move(seqs)](JournalDb& db) { return db.Requeue(seqs); },
                        std::move(done));
}

void Journal::Cleanup(DoneCallback done) { impl_->RequestCleanup(std::move(done)); }

void Journal::AppendInbound(InboundMessage message, InboundCallback done) {
  auto write = std::make_unique<GroupWrite>();
  write->kind = GroupWrite::Kind::kInbound;
  write->inbound = std::move(message);
  impl_->AppendWrite(std::move(write), [done = std::move(done)](Result<AppendOutcome> r) {
    if (!done) return;
    if (!r.ok()) {
      done(r.status());
    } else {
      done(r->seq);
    }
  });
}

namespace {
Journal::AppendCallback AsDone(Journal::DoneCallback done) {
  return [done = std::move(done)](Result<AppendOutcome> r) {
    if (done) done(r.ok() ? Status::Ok() : r.status());
  };
}
}  // namespace

void Journal::SaveConsumerSession(ConsumerSessionRecord session, DoneCallback done) {
  auto write = std::make_unique<GroupWrite>();
  write->kind = GroupWrite::Kind::kSaveSession;
  write->session = std::move(session);
  impl_->AppendWrite(std::move(write), AsDone(std::move(done)));
}

void Journal::DeleteConsumerSession(std::string name, DoneCallback done) {
  auto write = std::make_unique<GroupWrite>();
  write->kind = GroupWrite::Kind::kDeleteSession;
  write->session.name = std::move(name);
  impl_->AppendWrite(std::move(write), AsDone(std::move(done)));
}

void Journal::ReadInbox(InboxReadSpec spec, InboxCallback done) {
  impl_->Submit<Result<std::vector<StoredInbound>>>(
      [spec](JournalDb& db) { return db.ReadInbox(spec); }, std::move(done));
}

void Journal::ReadStored(StoredReadSpec spec, std::function<void(Result<StoredRead>)> done) {
  impl_->Submit<Result<StoredRead>>([spec](JournalDb& db) { return db.ReadStored(spec); },
                                    std::move(done));
}

void Journal::TrimInbox(uint64_t below_seq, int64_t received_before_ms, DoneCallback done) {
  impl_->Submit<Status>(
      [below_seq, received_before_ms](JournalDb& db) {
        return db.TrimInbox(below_seq, received_before_ms);
      },
      std::move(done));
}

void Journal::LoadConsumerSessions(SessionsCallback done) {
  impl_->Submit<Result<std::vector<ConsumerSessionRecord>>>(
      [](JournalDb& db) { return db.LoadConsumerSessions(); }, std::move(done));
}

void Journal::SetExpiryListener(std::function<void(const std::vector<uint64_t>&)> listener) {
  impl_->SetExpiryListener(std::move(listener));
}

void Journal::SetDueListener(std::function<void()> listener) {
  impl_->SetDueListener(std::move(listener));
}

void Journal::SetCommitListener(CommitListener listener) {
  impl_->SetCommitListener(std::move(listener));
}

const JournalStats& Journal::stats() const { return impl_->stats(); }
bool Journal::above_high_water() const { return impl_->above_high_water(); }
const JournalOptions& Journal::options() const { return impl_->options(); }

}  // namespace edgespool::store
