// BacklogCount: the pending backlog's count and bytes after a crash, counted
// on a thread and read connection of its own instead of on the start path.
//
// Why: after a clean close the counts come from a file (JournalDb::
// LoadPendingCounts); after a crash `SELECT count(*), sum(bytes) FROM
// pending` reads the whole `pending` table: measured on a 2 GiB journal
// (7.3M rows, tests/bench/big_journal_bench.cc) 2.1-3.3 s, which held
// READY=1 at 2.9 s (6.5 s on a busy machine); the goal is 2 s.
//
// How it stays exact: Start() begins a read transaction and reads from it
// before returning, on the opening thread, before the journal writes
// anything. In WAL mode that fixes the connection's snapshot: the journal
// exactly as opened. The count then runs on that snapshot while the store
// thread writes; JournalDb keeps its counters from 0 as deltas meanwhile
// (the same increments and decrements as always, in uint64_t: modulo 2^64,
// so a delta below zero is exact too), and adds the snapshot's count when
// it arrives. Rows written after the snapshot are in the deltas and not in
// the count; rows from before it are in the count, and each later change to
// them in the deltas.
//
// The price: the read transaction pins the WAL for the count's duration (no
// checkpoint can start the WAL over: see integrity_check.h), once, at start.
//
// Threads: Start, SetListener and the destructor on the owner's thread
// (JournalDb's: the opening thread, then the store thread); the count on its
// own thread; ready()/Take() from the owner's thread once ready() is true.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "platform/status.h"
#include "store/sqlite.h"

namespace edgespool::store {

class BacklogCount {
 public:
  struct Counts {
    uint64_t pending_count = 0;
    uint64_t pending_bytes = 0;
  };

  // Opens a read connection on `path` and fixes its snapshot before
  // returning; the count starts at once on the counter's thread.
  static Result<std::unique_ptr<BacklogCount>> Start(const std::string& path);
  // Interrupts a count in progress and joins.
  ~BacklogCount();

  // True once the count finished (successfully or not).
  bool ready() const { return ready_.load(std::memory_order_acquire); }
  // The snapshot's counts, or why there are none; only once ready().
  Result<Counts> Take();
  // Called on the counter's thread when the count finished (at once if it
  // already has): the owner's cue to fold it in on its own thread.
  void SetListener(std::function<void()> listener);

  // Tests: before_count runs on the counter's thread after the snapshot was
  // fixed and before counting (a gate holds the count back while a test
  // writes); always: count in the background whatever the journal's size.
  struct TestHooks {
    std::function<void()> before_count;
    bool always = false;
  };
  static void SetTestHooks(TestHooks hooks);
  static bool AlwaysForTest();

 private:
  BacklogCount() = default;
  void ThreadMain();

  Db db_;  // the counter's, read-only
  std::atomic<bool> ready_{false};
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::function<void()> listener_;
  Status status_ = Status::Internal("not counted yet");  // the count's, with counts_
  Counts counts_;
  std::thread thread_;
};

}  // namespace edgespool::store
