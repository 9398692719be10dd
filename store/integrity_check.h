// IntegrityCheck: the journal's structural check, in the background and in
// small steps, on a thread and read connection of its own.
//
// Why not PRAGMA quick_check at open, as before: it reads every page of the
// file in one go. Measured on a 2 GiB journal (7.3M messages, warm page
// cache, tests/bench/big_journal_bench.cc): 18 s, all of it before READY=1.
// Why not quick_check on this thread instead: it is one read transaction,
// and a reader pins the WAL: no checkpoint may copy back a frame committed
// after the reader began, the WAL cannot start over, and the writer waits
// for it in Checkpointer::BeforeWrite (up to 2 s per commit) or the WAL
// outgrows its reserve. 18 s of that under load is not acceptable either.
//
// So the check walks every b-tree of the schema (tables and indexes, all of
// which are ours: store/schema.cc) in key order, kStepRows entries at a
// time, each step one short statement (its own read transaction) resuming
// after the last key of the step before. Every page on the way is parsed by
// SQLite with cell_size_check on: a bad page header, cell pointer, cell
// size, record header or overflow chain comes back as SQLITE_CORRUPT. Pages
// are read, then the thread sleeps as long as the step took, leaving at
// least half of a core and of the disk to the store thread.
//
// What quick_check does that this does not: page accounting (a page used by
// two trees, or by none, and the freelist). A journal found corrupt in the
// background is marked (a file "<path>.check-failed"), and the next open
// runs the full quick_check before anything else (JournalDb::OpenFile):
// corrupt, it is moved aside as before; intact, the mark goes.
//
// Threads: Start and the destructor on the owner's thread (JournalDb's);
// the walk on the checker's own thread; stats() from any thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "platform/status.h"
#include "store/journal.h"
#include "store/sqlite.h"

namespace edgespool::store {

class IntegrityCheck {
 public:
  struct Stats {
    uint64_t passes = 0;    // walks that reached the end
    uint64_t failures = 0;  // walks that found corruption (each also logged)
  };
  // Index entries or rows read per step: ~0.5 MiB of a 200-byte-message
  // journal, a few ms.
  static constexpr int kStepRows = 2000;

  // Opens the connection and starts the walk after delay_ms (the agent's
  // start-up goes first). marker: the file written when corruption is found.
  static Result<std::unique_ptr<IntegrityCheck>> Start(const JournalOptions& options,
                                                       int64_t delay_ms);
  // Stops after the step in progress.
  ~IntegrityCheck();

  Stats stats() const { return {passes_.load(), failures_.load()}; }
  // Path of the mark a failed walk leaves for the next open.
  static std::string MarkerPath(const std::string& journal_path) {
    return journal_path + ".check-failed";
  }

 private:
  explicit IntegrityCheck(std::string path) : path_(std::move(path)) {}
  void ThreadMain(int64_t delay_ms);
  // One b-tree, step by step; kCancelled when stopped.
  Status Walk(const char* name, const char* first_sql, const char* next_sql, int keys);
  bool Sleep(int64_t ms);  // false when stopped
  void Fail(const std::string& tree, const Status& s);

  const std::string path_;
  Db db_;  // the checker thread's
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::atomic<uint64_t> passes_{0}, failures_{0};
  std::thread thread_;  // last
};

}  // namespace edgespool::store
