// JournalDb: the journal's SQL, run synchronously on the store thread.
//
// Journal (journal.cc) is the asynchronous door; this class does the work:
// group commits, leases, cleanup, the cap, and the counters behind
// JournalStats. Keeping it synchronous makes every rule testable in one
// place and keeps threads out of the SQL.
//
// Thread-safety: none; one thread at a time (opened on the loop thread by
// Journal::Open, then used only by the store thread).
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "platform/clock.h"
#include "platform/files.h"
#include "store/backlog_count.h"
#include "store/checkpointer.h"
#include "store/dedupe_index.h"
#include "store/integrity_check.h"
#include "store/journal.h"
#include "store/sqlite.h"

namespace edgespool::store {

// A downlink write that joins a commit group beside the producer appends
// (journal_db_inbox.cc): an inbox row, or a session upsert or delete.
struct GroupWrite {
  enum class Kind : uint8_t { kInbound, kSaveSession, kDeleteSession };
  Kind kind = Kind::kInbound;
  InboundMessage inbound;         // kInbound
  ConsumerSessionRecord session;  // kSaveSession; kDeleteSession: name only
};

// One item of a commit group, and what became of it.
struct AppendItem {
  Message message;  // a producer append, unless `write` is set
  // Meaningful once AppendGroup returned (seq 0 until then: no allocation
  // per message for a placeholder error). For an inbox row, seq is its
  // inbox seq.
  Result<AppendOutcome> outcome = AppendOutcome{};
  bool stored = false;  // a new journal row (not a duplicate), in the committed group
  bool scheduled = false;  // stored into `scheduled`: not yet due for upload
  // A downlink write instead of a producer append: never a journal row,
  // never `stored`, never shown to the CommitListener.
  std::unique_ptr<GroupWrite> write;
};

class JournalDb {
 public:
  // Opens (moving a corrupt file aside) and configures; see Journal::Open.
  static Result<std::unique_ptr<JournalDb>> Open(const JournalOptions& options,
                                                 const platform::Clock& clock);
  ~JournalDb();

  // Commits the group in one transaction. Every item gets an outcome; on a
  // failed commit every non-duplicate item gets the same error.
  void AppendGroup(std::vector<AppendItem>* items);

  Result<std::vector<StoredMessage>> FetchPending(const FetchSpec& spec);
  Status MarkSent(const std::vector<uint64_t>& seqs);
  Status MarkDead(const std::vector<std::pair<uint64_t, std::string>>& seqs_and_reasons);
  Status Release(const std::vector<uint64_t>& seqs, bool count_attempt);
  void ReleaseAll() {
    leases_.clear();
    cursors_.clear();
  }
  void Lease(const std::vector<uint64_t>& seqs) { leases_.insert(seqs.begin(), seqs.end()); }
  // Moves every scheduled row due at now_ms into `pending` (one
  // transaction); returns how many. next_due_ms(): the earliest due time
  // still scheduled, INT64_MAX when none (the store thread sleeps until it).
  Result<size_t> PromoteDue(int64_t now_ms);
  int64_t next_due_ms() const { return next_due_ms_; }
  // Seqs deleted by expiry since the last take, collected only while
  // collect_expired (the audit log's "expired").
  void set_collect_expired(bool on) { collect_expired_ = on; }
  std::vector<uint64_t> TakeExpired() { return std::move(expired_seqs_); }
  void DeferDue(int64_t ms) { next_due_ms_ = ms; }
  Result<QueryResult> Query(uint64_t seq);
  Result<QueryResult> QueryById(const std::string& msg_id);
  Result<std::vector<DeadLetter>> ListDead(size_t limit);
  Status Requeue(const std::vector<uint64_t>& seqs);

  // The downlink's reads and deletes (journal_db_inbox.cc); its writes come
  // in commit groups (AppendGroup, GroupWrite).
  Result<std::vector<StoredInbound>> ReadInbox(const InboxReadSpec& spec);
  Result<StoredRead> ReadStored(const StoredReadSpec& spec);
  Status TrimInbox(uint64_t below_seq, int64_t received_before_ms);
  Result<std::vector<ConsumerSessionRecord>> LoadConsumerSessions();

  // One bounded chunk of retention/expiry/vacuum (a few ms at most). Returns
  // true when more work remains; the caller interleaves appends between steps.
  Result<bool> CleanupStep();
  // Re-reads free disk space and lowers/restores the effective page cap.
  void CheckDiskSpace();

  // Counters are kept incrementally; this refreshes the cheap derived fields
  // (file size, fill ratio, oldest pending ts), folds in the background
  // count once it arrived (BacklogCount), and returns the snapshot.
  const JournalStats& RefreshStats();
  // True while the backlog is counted in the background (after a crash):
  // the pending counters hold only the changes since open.
  bool counting() const { return counting_; }
  // Called on the counter's thread when the background count is ready for
  // RefreshStats (at once if it already is); never called when none runs.
  void SetCountListener(std::function<void()> listener) {
    if (backlog_count_) backlog_count_->SetListener(std::move(listener));
  }
  const JournalStats& stats() const { return stats_; }
  size_t lease_count() const { return leases_.size(); }
  Db& db() { return db_; }
  // nullptr when the journal checkpoints inline (the Checkpointer could not
  // start: logged at open).
  const Checkpointer* checkpointer() const { return checkpointer_.get(); }

  // Journals up to this size get the full PRAGMA quick_check at open (~0.3 s
  // here: it reads ~115 MB/s); larger ones the background IntegrityCheck,
  // unless the last one found corruption (integrity_check.h).
  static constexpr uint64_t kFullCheckMaxBytes = 32ull << 20;
  // LoadDedupe reads at most this many newest rows by seq (or twice
  // dedupe_max_ids), then the msg_id index.
  static constexpr size_t kDedupeScanRows = 200000;
  // The background check starts this long after open: start-up goes first.
  static constexpr int64_t kIntegrityCheckDelayMs = 1000;
  // Beside the journal after a clean close: the backlog's count and bytes,
  // so that the next open need not count them (see LoadPendingCounts).
  static std::string CountsPath(const std::string& path) { return path + ".counts"; }
  // Without the counts file, journals up to this size are counted at open
  // (~1 s per GiB here: ~60 ms); larger ones in the background
  // (backlog_count.h).
  static constexpr uint64_t kCountAtOpenMaxBytes = 64ull << 20;

 private:
  // Rows deleted per cleanup (and eviction) transaction: ~1-2 ms here
  // (TESTING.md: deleting 1000 rows takes 1.3-2.2 ms), so an append waits
  // at most that long behind cleanup.
  static constexpr int64_t kCleanupChunk = 256;

  JournalDb(const JournalOptions& options, const platform::Clock& clock);
  static Status OpenFile(JournalDb* j);
  Status Prepare();
  Status PrepareReads();
  Status PrepareInbox();
  Status PrepareSchedule();
  Status LoadScheduleState();
  // Inside InsertRows' transaction: moves a row just enqueued to `scheduled`.
  Status ScheduleRow(uint64_t seq, int64_t due_ms);
  Status LoadState();
  // pending_count/bytes from the clean-close file when it matches the
  // journal, else by counting `pending` (O(backlog): 2.1 s at 7.3M rows),
  // in the background for a big journal.
  Status LoadPendingCounts();
  Status CountPendingNow();
  // Adds the background count to the deltas kept since open (RefreshStats;
  // the destructor, closing: a count not finished is abandoned).
  void FinishCount(bool closing);
  // At a clean close: what the counts file will say, written by
  // clean_counts_ once db_ has closed.
  void ArmCleanCounts();
  void SlowStep(const std::string& step);
  Status CheckAtOpen();
  Status LoadDedupe();
  Status LoadInboxState();
  void StartCheckpointer();
  Status InsertGroup(std::vector<AppendItem>* items, uint64_t drop_target_bytes, uint64_t* dropped,
                     uint64_t* dropped_bytes, bool* made_room);
  // InsertGroup's rows, inside its transaction; counts the ids it remembered.
  Status InsertRows(std::vector<AppendItem>* items, int64_t now, size_t* new_ids);
  Status InsertRow(const Message& m, int64_t now, uint64_t* seq);
  // Inside the group's transaction: evicts sent rows (kept only for
  // retention), then under drop-oldest the oldest pending rows of the lowest
  // priority, until about target_bytes are freed.
  Status MakeRoom(uint64_t target_bytes, uint64_t* dropped, uint64_t* dropped_bytes,
                  bool* made_room);
  void SettleGroup(std::vector<AppendItem>* items, const Status& s, uint64_t dropped,
                   uint64_t dropped_bytes, int64_t now);
  void NoteGroupFate(const Status& s, size_t items, uint64_t refused);
  Status FullError(const Status& cause);

  // The inbox's share of the group being written, applied to stats_ only
  // if the group commits (a rolled-back group leaves the counters alone).
  struct InboxDelta {
    uint64_t appended = 0, added_bytes = 0, dropped = 0, dropped_bytes = 0, head_seq = 0;
  };
  // Inside the group's transaction. A GroupWrite's own refusal (an inbox
  // row larger than the whole cap, a filter with '\n') is its outcome and
  // leaves the group going; an SQL error fails the group.
  Status WriteGroupItem(AppendItem* item);
  Status InsertInbound(AppendItem* item);
  // Deletes the oldest inbox rows until `incoming` more payload bytes fit
  // under inbox_max_bytes.
  Status MakeInboxRoom(uint64_t incoming);
  Status WriteSession(const GroupWrite& w);
  void SettleInbox(bool committed);
  // Inside the cleanup transaction: one chunk of expired inbox rows.
  Status ExpireInbox(int64_t now_ms, uint64_t* n, uint64_t* bytes);
  // CleanupStep's parts.
  Status DeleteRetainedSent(int64_t cutoff_ms, std::vector<uint64_t>* sent);
  struct ExpiredRow {
    uint64_t seq;
    MessageState state;
    uint64_t bytes;
    std::string msg_id;
  };
  Status DeleteExpired(int64_t now_ms, std::vector<ExpiredRow>* expired);
  void SettleExpired(const std::vector<ExpiredRow>& expired);
  Result<bool> VacuumAndTruncate();
  // One transaction over runs of consecutive seqs: logged in `sent` (keep)
  // or deleted.
  Status MarkSentRuns(const std::vector<std::pair<int64_t, int64_t>>& runs, bool keep);
  Status Begin();
  Status Commit();
  void RestoreWalMode();
  void Rollback();
  void RememberDeleted(uint64_t seq, MessageState state, const std::string& msg_id);
  void EvictDedupe(int64_t now_ms);
  Result<QueryResult> QueryRow(uint64_t seq, bool* found);

  JournalOptions options_;
  const platform::Clock& clock_;
  // Declared before db_ and checkpointer_ so it is released after both
  // closed: one agent per journal file.
  std::optional<platform::FileLock> file_lock_;
  // Writes the clean-close counts file (LoadPendingCounts) when destroyed,
  // if armed: after db_ closed (its statements, declared after it, are
  // finalized first, so SQLite's final checkpoint has run and synced the
  // file), before the lock is released.
  struct DeferredWrite {
    std::string path, content;
    DeferredWrite() = default;
    DeferredWrite(const DeferredWrite&) = delete;
    DeferredWrite& operator=(const DeferredWrite&) = delete;
    ~DeferredWrite();
  };
  DeferredWrite clean_counts_;
  Db db_;
  std::unique_ptr<Checkpointer> checkpointer_;  // after db_: stops first
  std::unique_ptr<IntegrityCheck> integrity_;   // likewise
  // Set while the backlog is counted in the background; counting_ until
  // its result was folded into stats_ (pending_count/bytes are deltas until
  // then, modulo 2^64).
  std::unique_ptr<BacklogCount> backlog_count_;
  bool counting_ = false;
  int64_t count_start_ns_ = 0;
  JournalStats published_;                      // RefreshStats' answer while counting_
  bool checked_at_open_ = false;                // quick_check ran (and passed) at open
  bool opened_ = false;                         // Open succeeded: a close is clean
  JournalStats stats_;
  bool oldest_dirty_ = true;
  int64_t cap_pages_ = 0;        // from max_bytes
  int64_t effective_pages_ = 0;  // lowered when the disk is short of space
  int64_t last_disk_check_ns_ = 0;
  std::string disk_note_;     // why the cap is lowered, for error messages
  bool full_logged_ = false;  // one warning per episode of journal_full
  uint64_t failed_groups_ = 0;  // failed commits (not full) since the last good one
  int wal_recheck_ = 0;       // commits after a failed one that check the journal mode

  std::unordered_set<uint64_t> leases_;
  InboxDelta inbox_delta_;

  // Scan cursors: FetchPending resumes each scan (order, priority class or
  // arrival order, per topic filter) after the last row it passed instead of
  // walking every leased row again: a batch-mode drain keeps thousands of
  // rows leased, and skipping them cost more than reading the fresh ones.
  // A cursor is an exclusive lower bound in its scan's order: every pending
  // row before it is leased, expired, or outside the scan's filter. So it
  // moves back when an append lands before it (a producer's old ts), and
  // all cursors are dropped whenever rows may become fetchable again behind
  // them (Release, ReleaseAll, Requeue, a failed MarkDead, and the
  // end of each cleanup run, which bounds what a wall-clock jump back can
  // strand behind a cursor that passed rows as expired).
  struct ScanCursor {
    int64_t priority;
    int64_t ts;
    int64_t seq;
  };
  std::unordered_map<std::string, ScanCursor> cursors_;
  ScanCursor* CursorFor(const FetchSpec& spec, char kind);
  Stmt* StartScan(const FetchSpec& spec, ScanCursor** cursor);
  Status ReadScanRow(const Stmt& scan, std::string topic, StoredMessage* out);
  void LowerCursors(const Message& m, uint64_t seq);

  // msg_id -> seq for the dedupe window. Ids of a group go in as its rows
  // are inserted (so a group mate is found too) and come out again if the
  // group rolls back.
  DedupeIndex dedupe_;

  // Recently deleted rows, so Query can say "expired" or "sent" instead of
  // "unknown" (bounded: kRecentDeleted entries).
  std::unordered_map<uint64_t, MessageState> recent_deleted_;
  std::deque<uint64_t> recent_order_;
  std::unordered_map<std::string, uint64_t> recent_expired_ids_;
  std::deque<std::string> recent_ids_order_;

  Stmt insert_, enqueue_range_, scan_order_, scan_prio_, scan_seq_, row_by_seq_, sum_pending_,
      log_sent_, unqueue_range_, delete_sent_now_, unqueue_one_, mark_dead_, count_attempt_,
      requeue_, enqueue_, query_, query_id_, list_dead_, oldest_, sent_head_, delete_sent_upto_,
      expired_scan_, delete_row_, drop_scan_, evict_sent_, delete_seq_, page_count_,
      freelist_count_, begin_, commit_, rollback_, stored_read_, journal_head_;
  // Scheduled delivery (journal_db_schedule.cc).
  Stmt schedule_, promote_, unschedule_due_, unschedule_one_, next_due_, scheduled_sum_,
      scheduled_due_at_;
  int64_t next_due_ms_ = INT64_MAX;  // earliest due_at in `scheduled`; INT64_MAX: none
  bool collect_expired_ = false;     // the expiry listener is set (Journal)
  std::vector<uint64_t> expired_seqs_;
  Stmt inbox_insert_, inbox_read_, inbox_oldest_, inbox_drop_upto_, inbox_trim_, inbox_expire_,
      session_upsert_, session_delete_, session_load_;
};

}  // namespace edgespool::store
