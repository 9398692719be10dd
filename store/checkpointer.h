// Checkpointer: copies the journal's WAL back into the database file on a
// thread and connection of its own, so that no commit waits for it.
//
// Why: with SQLite's automatic checkpoint, the commit that crosses the
// threshold copies ~1000 pages and fsyncs the WAL and the database file
// before it returns: 18-37 ms on this disk every few thousand appends, and
// that set the appenders' p99 (producer_bench, 20k msg/s offered, no socket:
// p99 13.6 ms with it, 2.0 ms with checkpoints disabled).
//
// The catch is the WAL's restart. SQLite writes the WAL from its beginning
// again only when a write transaction begins while every frame has been
// copied back; a writer that never pauses would grow the WAL without end
// while a checkpointer chases it. So:
//   - from pass_pages frames on, a pass (PASSIVE: it never blocks the
//     writer) runs each time the WAL has grown by another pass_step frames
//     (an eighth of the way from pass_pages to restart_pages), so the part
//     not yet copied stays short. Not after every commit: at 20,000 msg/s
//     commits are ~20 rows, and a pass per commit was ~300 passes a second,
//     each with two fdatasyncs (13% of a core, and the disk kept busy);
//   - from restart_pages frames on, the writer waits in BeforeWrite() until
//     a pass that began after its last commit has finished (that short tail:
//     one pass), and its next transaction starts the WAL over. The WAL never
//     outgrows restart_pages plus one transaction: the budget the free-disk
//     guard keeps (WalBudgetFor).
//
// Durability is unchanged: a checkpoint syncs the WAL before copying and the
// database file after (the connection has the writer's synchronous level).
//
// Threads: Attach, BeforeWrite and the commit hook run on the writer's
// thread (the store thread); passes run on the checkpointer's own thread.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

#include "platform/status.h"
#include "store/journal.h"
#include "store/sqlite.h"

namespace edgespool::store {

class Checkpointer {
 public:
  struct Stats {
    uint64_t passes = 0;
    uint64_t restart_waits = 0;  // times the writer waited for the WAL to restart
    uint64_t wait_us = 0;        // how long, in all
    uint64_t failures = 0;       // passes that failed (logged; retried on the next commit)
  };

  // Opens a second connection on an existing journal (WAL mode, schema
  // current) and starts the thread.
  static Result<std::unique_ptr<Checkpointer>> Start(const JournalOptions& options,
                                                     int64_t pass_pages, int64_t restart_pages);
  // Stops the thread after the pass in progress, closes the connection.
  ~Checkpointer();

  // Takes over the writer connection's commit hook (replacing SQLite's
  // automatic checkpoint: a PRAGMA wal_autocheckpoint afterwards would undo
  // this).
  void Attach(Db& writer);
  // Before a write transaction: returns at once unless the WAL is due for a
  // restart (see above).
  void BeforeWrite();

  // Runs fn on the caller's (the writer's) thread while no pass runs: a
  // checkpoint of the writer's own (cleanup's TRUNCATE) cannot take the
  // checkpoint lock while a pass holds it, and SQLite does not wait for it.
  void WhilePaused(const std::function<void()>& fn);

  Stats stats() const;

 private:
  Checkpointer(std::string path, int64_t pass_pages, int64_t restart_pages);
  static int OnCommit(void* self, sqlite3* db, const char* schema, int wal_frames);
  void AfterCommit(int64_t wal_frames);
  bool CaughtUp() const {  // mu_ held
    return copied_generation_ == wal_generation_ && copied_frames_ >= wal_frames_;
  }
  void ThreadMain();

  const std::string path_;
  const int64_t pass_pages_;
  const int64_t restart_pages_;
  const int64_t pass_step_;
  Db db_;  // the checkpointer thread's

  mutable std::mutex mu_;
  std::condition_variable wake_;       // a pass is wanted, or stop
  std::condition_variable pass_done_;  // a pass finished
  bool stop_ = false;
  bool pass_wanted_ = false;
  bool pass_running_ = false;
  bool paused_ = false;  // WhilePaused: no pass starts
  // The WAL as the writer's commits left it: frames since it last started
  // over, and how many times it did (seen as the frame count not growing).
  int64_t wal_frames_ = 0;
  uint64_t wal_generation_ = 0;
  int64_t requested_frames_ = 0;  // wal_frames_ when a commit last asked for a pass
  // Frames a finished pass copied back, and in which generation: the writer
  // is caught up when that reaches wal_frames_ (a pass that began before
  // the last commit still counts if it saw the commit's frames).
  int64_t copied_frames_ = 0;
  uint64_t copied_generation_ = 0;
  bool failing_ = false;  // the last pass failed: do not wait for passes
  bool not_wal_ = false;  // the last pass found no WAL: do not wait either
  int64_t last_failure_log_ns_ = -1;
  Stats stats_;
  std::thread thread_;  // last: started once everything above exists
};

}  // namespace edgespool::store
