#include "store/checkpointer.h"

#include <algorithm>
#include <chrono>
#include <string>
#include <utility>

#include "platform/clock.h"
#include "platform/log.h"
#include "platform/process_info.h"
#include "store/schema.h"

namespace edgespool::store {
namespace {

// A pass that never finishes (a disk that stopped answering) must not stall
// the writer for good: past this it goes on and the WAL grows instead.
constexpr auto kMaxRestartWait = std::chrono::seconds(2);
constexpr int64_t kFailureLogIntervalNs = 60'000'000'000;

int64_t NowNs() { return platform::SystemClock::Get().MonotonicNs(); }

}  // namespace

Checkpointer::Checkpointer(std::string path, int64_t pass_pages, int64_t restart_pages)
    : path_(std::move(path)),
      pass_pages_(pass_pages),
      restart_pages_(restart_pages),
      pass_step_(std::max<int64_t>(1, (restart_pages - pass_pages) / 8)) {}

Result<std::unique_ptr<Checkpointer>> Checkpointer::Start(const JournalOptions& options,
                                                          int64_t pass_pages,
                                                          int64_t restart_pages) {
  std::unique_ptr<Checkpointer> c(new Checkpointer(options.path, pass_pages, restart_pages));
  ES_RETURN_IF_ERROR(c->db_.Open(options.path, SQLITE_OPEN_READWRITE, kJournalVfs));
  ES_RETURN_IF_ERROR(
      SqliteStatus(sqlite3_busy_timeout(c->db_.raw(), 1000), c->db_.raw(), "busy_timeout"));
  // A checkpoint syncs by its own connection's level: the writer's.
  ES_RETURN_IF_ERROR(c->db_.Exec(options.durability == Durability::kFull
                                     ? "PRAGMA synchronous = FULL"
                                     : "PRAGMA synchronous = NORMAL"));
  // Reading the header once here attaches the connection to the WAL index
  // now, so a broken file fails Start rather than the first pass.
  ES_RETURN_IF_ERROR(c->db_.QueryInt("PRAGMA page_count").status());
  c->thread_ = std::thread([p = c.get()] {
    platform::SetThreadName("es-checkpoint");
    p->ThreadMain();
  });
  return c;
}

Checkpointer::~Checkpointer() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  wake_.notify_one();
  pass_done_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Checkpointer::Attach(Db& writer) { sqlite3_wal_hook(writer.raw(), &OnCommit, this); }

int Checkpointer::OnCommit(void* self, sqlite3*, const char*, int wal_frames) {
  static_cast<Checkpointer*>(self)->AfterCommit(wal_frames);
  return SQLITE_OK;
}

void Checkpointer::AfterCommit(int64_t wal_frames) {
  bool wake;
  {
    std::lock_guard<std::mutex> lock(mu_);
    // A commit adds at least one frame to its generation: a count that did
    // not grow means the WAL started over.
    if (wal_frames <= wal_frames_) {
      ++wal_generation_;
      requested_frames_ = 0;
    }
    wal_frames_ = wal_frames;
    not_wal_ = false;
    wake = wal_frames >= pass_pages_ && !pass_wanted_ &&
           wal_frames - requested_frames_ >= pass_step_;
    if (wake) {
      pass_wanted_ = true;
      requested_frames_ = wal_frames;
    }
  }
  if (wake) wake_.notify_one();
}

void Checkpointer::BeforeWrite() {
  std::unique_lock<std::mutex> lock(mu_);
  if (wal_frames_ < restart_pages_ || failing_ || not_wal_ || CaughtUp()) return;
  int64_t start = NowNs();
  pass_wanted_ = true;
  wake_.notify_one();
  pass_done_.wait_for(lock, kMaxRestartWait,
                      [&] { return stop_ || failing_ || not_wal_ || CaughtUp(); });
  int64_t waited_us = (NowNs() - start) / 1000;
  ++stats_.restart_waits;
  stats_.wait_us += static_cast<uint64_t>(waited_us);
}

void Checkpointer::WhilePaused(const std::function<void()>& fn) {
  {
    std::unique_lock<std::mutex> lock(mu_);
    paused_ = true;
    pass_done_.wait(lock, [this] { return !pass_running_; });
  }
  fn();
  bool wake;
  {
    std::lock_guard<std::mutex> lock(mu_);
    paused_ = false;
    wake = pass_wanted_;
  }
  if (wake) wake_.notify_one();
}

Checkpointer::Stats Checkpointer::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

void Checkpointer::ThreadMain() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    wake_.wait(lock, [this] { return stop_ || (pass_wanted_ && !paused_); });
    if (stop_) return;
    pass_wanted_ = false;
    pass_running_ = true;
    // A generation only gains frames; it ends when the writer starts the
    // WAL over, which it can do only after a pass has finished.
    uint64_t generation = wal_generation_;
    int64_t frames_at_start = wal_frames_;
    lock.unlock();
    int log_frames = -1, copied_frames = -1;
    int rc = sqlite3_wal_checkpoint_v2(db_.raw(), "main", SQLITE_CHECKPOINT_PASSIVE, &log_frames,
                                       &copied_frames);
    Status s = SqliteStatus(rc, db_.raw(), "checkpoint");
    lock.lock();
    pass_running_ = false;
    ++stats_.passes;
    if (s.ok() && log_frames < 0) {
      // Not in WAL mode (SQLite can fall back to a rollback journal after an
      // I/O error; JournalDb::RestoreWalMode switches back): nothing to
      // wait for until a commit reaches the WAL again.
      not_wal_ = true;
    } else if (s.ok()) {
      failing_ = false;
      // Frames only grow within a generation. A pass that found fewer than
      // the last commit reported, with no commit since it began, means the
      // WAL started over without a commit to tell us: the writer's own
      // TRUNCATE checkpoint (cleanup), or a write transaction that restarted
      // it and then committed nothing. Left as it was, CaughtUp() waited for
      // frames that no longer exist, and every write stalled kMaxRestartWait
      // until the next commit (found by journal_power_loss_test: rounds
      // stalled 2-6 s after a reopen with a WAL past restart_pages).
      if (generation == wal_generation_ && wal_frames_ == frames_at_start &&
          log_frames < wal_frames_) {
        ++wal_generation_;
        generation = wal_generation_;
        wal_frames_ = log_frames;
        requested_frames_ = 0;
      }
      if (copied_frames == log_frames) {
        copied_frames_ = copied_frames;
        copied_generation_ = generation;
      }
    } else if (rc == SQLITE_BUSY) {
      // The writer runs a checkpoint of its own (cleanup truncates the
      // WAL); its next commit asks again.
    } else {
      ++stats_.failures;
      failing_ = true;
      int64_t now = NowNs();
      if (last_failure_log_ns_ < 0 || now - last_failure_log_ns_ >= kFailureLogIntervalNs) {
        last_failure_log_ns_ = now;
        ES_LOG_WARN("journal checkpoint failed; the WAL grows until it succeeds",
                    {{"path", path_},
                     {"reason", s.ToString()},
                     {"wal_frames", std::to_string(wal_frames_)}});
      }
    }
    pass_done_.notify_all();
  }
}

}  // namespace edgespool::store
