// JournalDb: opening (with recovery from a corrupt file), group commits of
// appends, the cap (eviction, drop-oldest, the free-disk guard) and stats.
// Reads, resolutions and cleanup: journal_db_reads.cc.
#include "store/journal_db.h"

#include <algorithm>
#include <utility>

#include "platform/disk.h"
#include "platform/files.h"
#include "platform/log.h"
#include "store/schema.h"

namespace edgespool::store {
namespace {

constexpr int64_t kDiskCheckIntervalNs = 500'000'000;
// Rough per-row overhead (record header, cell pointer, index entry) for
// estimating how much to drop to fit a group.
constexpr uint64_t kRowOverhead = 48;

// The dedupe index is made with room for this many ids (the default window
// of 100k fits): it then never stops the store thread to grow while the
// window fills (dedupe_index.h, "Reserve"). A larger store.dedupe_max_ids
// grows past it by doubling, as before.
constexpr size_t kDedupeReserveIds = size_t{1} << 17;

uint64_t RowBytes(const Message& m) {
  uint64_t headers = 0;
  for (const auto& [k, v] : m.headers) headers += 8 + k.size() + v.size();
  return m.payload.size() + m.topic.size() + m.msg_id.size() + headers + kRowOverhead;
}

}  // namespace

JournalDb::JournalDb(const JournalOptions& options, const platform::Clock& clock)
    : options_(options),
      clock_(clock),
      dedupe_(std::max<size_t>(1, options.dedupe_max_ids), nullptr,
              std::min<size_t>(options.dedupe_max_ids, kDedupeReserveIds)) {
  cap_pages_ = static_cast<int64_t>(options_.max_bytes) / kPageSize;
  effective_pages_ = cap_pages_;
  stats_.max_bytes = options_.max_bytes;
}

JournalDb::~JournalDb() {
  integrity_.reset();
  // The commit hook points at the checkpointer, which goes first.
  if (checkpointer_ && db_.raw()) sqlite3_wal_hook(db_.raw(), nullptr, nullptr);
  checkpointer_.reset();
  if (backlog_count_) FinishCount(/*closing=*/true);
  // Written once db_ closed; not while the backlog is uncounted.
  if (opened_ && !counting_) ArmCleanCounts();
}

Result<std::unique_ptr<JournalDb>> JournalDb::Open(const JournalOptions& options,
                                                   const platform::Clock& clock) {
  std::unique_ptr<JournalDb> j(new JournalDb(options, clock));
  const std::string& path = options.path;
  if (options.max_bytes < 16 * kPageSize) {
    return Status::InvalidArgument("store.max_bytes must be at least 64 KiB");
  }
  // Before anything touches the file: a journal held by another agent is
  // refused, never moved aside as if corrupt.
  auto lock = platform::FileLock::Acquire(path + ".lock");
  if (!lock.ok()) {
    if (lock.status().code() == Code::kUnavailable) {
      return Status::Unavailable("journal " + path + " is locked by another process (" +
                                 lock.status().message() + "): one agent per journal");
    }
    return lock.status().Annotate("cannot create journal " + path + " (is " +
                                  platform::DirName(path) +
                                  " writable and on a writable filesystem?)");
  }
  bool existed = platform::FileExists(path);
  Status s = OpenFile(j.get());
  uint64_t moved = 0;
  // Busy (another process holds it), a migration that could not be written
  // and "newer schema" are not corruption: moving such a file aside would
  // orphan a healthy journal.
  if (!s.ok() && existed && s.code() != Code::kUnavailable && s.code() != Code::kInvalidArgument) {
    j->db_.Close();
    std::string aside = path + ".corrupt-" + std::to_string(clock.WallMs());
    Status mv = platform::RenameFile(path, aside);
    if (!mv.ok()) {
      return Status(s.code(), "cannot open journal " + path + " (" + s.ToString() +
                                  ") and cannot move it aside (" + mv.ToString() + ")");
    }
    // The WAL belongs to the bad file: keep it beside it for a post-mortem;
    // the shm index is derived data.
    if (platform::FileExists(path + "-wal"))
      (void)platform::RenameFile(path + "-wal", aside + "-wal");
    (void)platform::RemoveFile(path + "-shm");
    (void)platform::RemoveFile(path + "-journal");
    // A mark left by the background check (integrity_check.h) was about
    // the file just moved aside.
    (void)platform::RemoveFile(IntegrityCheck::MarkerPath(path));
    ES_LOG_ERROR("journal corrupt or unreadable: moved aside, starting a fresh journal",
                 {{"path", path}, {"moved_to", aside}, {"reason", s.ToString()}});
    moved = 1;
    j = std::unique_ptr<JournalDb>(new JournalDb(options, clock));
    s = OpenFile(j.get());
  }
  if (!s.ok()) {
    if (s.code() == Code::kIoError || s.code() == Code::kPermissionDenied) {
      return s.Annotate("cannot create journal " + path + " (is " + platform::DirName(path) +
                        " writable and on a writable filesystem?)");
    }
    return s.Annotate("cannot open journal " + path);
  }
  j->stats_.corrupt_files_moved = moved;
  j->file_lock_ = std::move(lock).value();
  j->StartCheckpointer();
  if (!j->checked_at_open_) {
    auto check = IntegrityCheck::Start(options, kIntegrityCheckDelayMs);
    if (check.ok()) {
      j->integrity_ = std::move(check).value();
    } else {
      ES_LOG_WARN("journal integrity check not started",
                  {{"path", path}, {"reason", check.status().ToString()}});
    }
  }
  j->opened_ = true;
  j->options_.on_slow_step = nullptr;  // open is over: the caller's hook may go
  j->RefreshStats();
  return j;
}

void JournalDb::StartCheckpointer() {
  WalBudget wal = WalBudgetFor(options_.max_bytes);
  auto c = Checkpointer::Start(options_, wal.pass_pages, wal.restart_pages);
  if (!c.ok()) {
    // Still a working journal: SQLite's automatic checkpoint stays in charge
    // (commits then pay for checkpoints, as before).
    ES_LOG_WARN("journal checkpoints inline: cannot open a checkpoint connection",
                {{"path", options_.path}, {"reason", c.status().ToString()}});
    return;
  }
  checkpointer_ = std::move(c).value();
  checkpointer_->Attach(db_);
}

Status JournalDb::OpenFile(JournalDb* j) {
  ES_RETURN_IF_ERROR(
      j->db_.Open(j->options_.path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, kJournalVfs));
  ES_RETURN_IF_ERROR(ConfigureConnection(j->db_, j->options_));
  ES_RETURN_IF_ERROR(j->CheckAtOpen());
  auto version = j->db_.QueryInt("PRAGMA user_version");
  if (!version.ok()) return version.status();
  if (*version > 0 && *version < kSchemaVersion) j->SlowStep("schema migration");
  Status migrated = MigrateSchema(j->db_);
  if (migrated.code() == Code::kIoError || migrated.code() == Code::kResourceExhausted) {
    // A write failed (a full disk, an I/O error), not the file: a healthy
    // journal and its backlog must not be moved aside for that. Unavailable
    // tells Open so; the next start tries the migration again.
    return Status::Unavailable(migrated.ToString() +
                               "; the journal is left as it was, start again once the disk "
                               "accepts writes");
  }
  ES_RETURN_IF_ERROR(migrated);
  ES_RETURN_IF_ERROR(EnsureWalMode(j->db_));
  ES_RETURN_IF_ERROR(j->Prepare());
  ES_RETURN_IF_ERROR(j->LoadState());
  j->last_disk_check_ns_ = j->clock_.MonotonicNs();
  j->CheckDiskSpace();
  return Status::Ok();
}

void JournalDb::SlowStep(const std::string& step) {
  if (options_.on_slow_step) options_.on_slow_step(step);
}

// The full quick_check only where it is cheap, or where the last background
// check found corruption; every other journal gets the background walk
// after open (integrity_check.h).
Status JournalDb::CheckAtOpen() {
  const std::string marker = IntegrityCheck::MarkerPath(options_.path);
  bool marked = platform::FileExists(marker);
  auto size = platform::FileSizeBytes(options_.path);
  if (!marked && size.ok() && *size > kFullCheckMaxBytes) return Status::Ok();
  if (marked) {
    ES_LOG_WARN("journal was found corrupt by the last background check: running the full check",
                {{"path", options_.path}, {"marker", marker}});
    SlowStep("full integrity check");
  }
  ES_RETURN_IF_ERROR(QuickCheck(db_));
  checked_at_open_ = true;
  if (marked) {
    ES_LOG_INFO("journal passed the full check: the background check's mark is removed",
                {{"path", options_.path}});
    (void)platform::RemoveFile(marker);
  }
  return Status::Ok();
}

// Appends, cleanup, the cap and transactions; then the other statements.
Status JournalDb::Prepare() {
  struct {
    Stmt* stmt;
    const char* sql;
  } const kStatements[] = {
      {&insert_,
       "INSERT INTO journal(ts, topic, priority, expires_at, msg_id, headers, payload, "
       "stored_at) VALUES(?, ?, ?, ?, ?, ?, ?, ?)"},
      // A commit group's rows join the upload queue in one statement (schema.cc:
      // "ADDING ROWS TO PENDING").
      {&enqueue_range_,
       "INSERT INTO pending(seq, priority, ts, bytes) SELECT seq, priority, ts, length(payload) "
       "FROM journal WHERE seq BETWEEN ?1 AND ?2"},
      // Retention is first in, first out by seq (see CleanupStep).
      {&sent_head_, "SELECT seq, sent_at FROM sent ORDER BY seq LIMIT ?1"},
      {&delete_sent_upto_,
       "DELETE FROM journal WHERE seq IN (SELECT seq FROM sent WHERE seq <= ?1)"},
      {&expired_scan_,
       "SELECT j.seq, j.state, length(j.payload), j.msg_id, p.seq IS NOT NULL, "
       "d.seq IS NOT NULL FROM journal j LEFT JOIN pending p ON p.seq = j.seq "
       "LEFT JOIN scheduled d ON d.seq = j.seq WHERE j.expires_at <= ?1 LIMIT ?2"},
      {&delete_row_, "DELETE FROM journal WHERE seq = ?1"},
      // The cap (MakeRoom) and the transactions.
      {&drop_scan_,
       "SELECT p.seq, p.bytes + length(j.topic) + ifnull(length(j.headers), 0) "
       "FROM pending p CROSS JOIN journal j ON j.seq = p.seq WHERE p.priority = ?1 "
       "ORDER BY p.ts, p.seq"},
      {&evict_sent_,
       "DELETE FROM journal WHERE seq IN (SELECT seq FROM sent ORDER BY seq LIMIT ?1) "
       "RETURNING seq, length(payload) + length(topic)"},
      {&begin_, "BEGIN"},
      {&commit_, "COMMIT"},
      {&rollback_, "ROLLBACK"},
      {&page_count_, "PRAGMA page_count"},
      {&freelist_count_, "PRAGMA freelist_count"},
      {&delete_seq_,
       "DELETE FROM journal WHERE seq = ?1 AND EXISTS (SELECT 1 FROM pending WHERE seq = ?1) "
       "RETURNING length(payload)"},
  };
  for (const auto& s : kStatements) ES_RETURN_IF_ERROR(db_.Prepare(s.sql, s.stmt));
  ES_RETURN_IF_ERROR(PrepareReads());
  ES_RETURN_IF_ERROR(PrepareSchedule());
  return PrepareInbox();
}

// Reads and resolutions (journal_db_reads.cc).
Status JournalDb::PrepareReads() {
  struct {
    Stmt* stmt;
    const char* sql;
  } const kStatements[] = {
      // Pending rows with their columns, one statement per scan order, each
      // starting after a cursor (FetchPending) so leased rows are not read
      // again. CROSS JOIN keeps `pending` the outer loop: its index gives
      // the order, the message row is one rowid lookup.
      {&scan_order_,
       "SELECT p.seq, j.ts, j.topic, j.priority, j.expires_at, j.msg_id, j.headers, j.payload, "
       "j.attempts FROM pending p CROSS JOIN journal j ON j.seq = p.seq "
       "WHERE (p.priority, p.ts, p.seq) > (?1, ?2, ?3) ORDER BY p.priority, p.ts, p.seq"},
      {&scan_prio_,
       "SELECT p.seq, j.ts, j.topic, j.priority, j.expires_at, j.msg_id, j.headers, j.payload, "
       "j.attempts FROM pending p CROSS JOIN journal j ON j.seq = p.seq "
       "WHERE p.priority = ?1 AND (p.ts, p.seq) > (?2, ?3) ORDER BY p.ts, p.seq"},
      // The live tail in arrival order: a rowid range of `pending`, cheap
      // however many sent rows retention keeps.
      {&scan_seq_,
       "SELECT p.seq, j.ts, j.topic, j.priority, j.expires_at, j.msg_id, j.headers, j.payload, "
       "j.attempts FROM pending p CROSS JOIN journal j ON j.seq = p.seq "
       "WHERE p.seq > ?1 ORDER BY p.seq"},
      // ReadStored: every row in seq order (the rowid), and the high-water
      // mark, which survives deletes.
      {&stored_read_,
       "SELECT seq, ts, topic, priority, expires_at, msg_id, headers, payload, attempts "
       "FROM journal WHERE seq > ?1 ORDER BY seq"},
      {&journal_head_, "SELECT seq FROM sqlite_sequence WHERE name = 'journal'"},
      {&row_by_seq_,
       "SELECT ts, topic, priority, expires_at, msg_id, headers, payload, attempts, reason "
       "FROM journal WHERE seq = ?"},
      // MarkSent works on runs of consecutive seqs: three set statements per
      // run instead of one UPDATE per row.
      {&sum_pending_,
       "SELECT count(*), ifnull(sum(bytes), 0) FROM pending WHERE seq BETWEEN ?1 AND ?2"},
      {&log_sent_,
       "INSERT INTO sent(seq, sent_at) SELECT seq, ?3 FROM pending WHERE seq BETWEEN ?1 AND ?2"},
      {&unqueue_range_, "DELETE FROM pending WHERE seq BETWEEN ?1 AND ?2"},
      {&delete_sent_now_,
       "DELETE FROM journal WHERE seq IN (SELECT seq FROM pending WHERE seq BETWEEN ?1 AND ?2) "
       "RETURNING seq"},
      {&unqueue_one_, "DELETE FROM pending WHERE seq = ?1 RETURNING bytes"},
      {&mark_dead_, "UPDATE journal SET state = 2, reason = ?2 WHERE seq = ?1"},
      {&count_attempt_,
       "UPDATE journal SET attempts = attempts + 1 WHERE seq = ?1 AND "
       "EXISTS (SELECT 1 FROM pending WHERE seq = ?1)"},
      {&requeue_,
       "UPDATE journal SET state = 0, attempts = 0, reason = NULL WHERE seq = ?1 AND state = 2 "
       "RETURNING priority, ts, length(payload)"},
      {&enqueue_, "INSERT INTO pending(seq, priority, ts, bytes) VALUES(?1, ?2, ?3, ?4)"},
      {&query_,
       "SELECT j.state, j.attempts, j.ts, j.topic, j.reason, "
       "(SELECT sent_at FROM sent WHERE seq = j.seq), "
       "EXISTS (SELECT 1 FROM pending WHERE seq = j.seq) FROM journal j WHERE j.seq = ?1"},
      {&query_id_, "SELECT seq FROM journal WHERE msg_id = ? ORDER BY seq DESC LIMIT 1"},
      {&list_dead_, "SELECT seq FROM journal WHERE state = 2 ORDER BY seq LIMIT ?"},
      {&oldest_, "SELECT ts FROM pending WHERE priority = ?1 ORDER BY ts LIMIT 1"},
  };
  for (const auto& s : kStatements) ES_RETURN_IF_ERROR(db_.Prepare(s.sql, s.stmt));
  return Status::Ok();
}

Status JournalDb::LoadState() {
  ES_RETURN_IF_ERROR(LoadPendingCounts());
  auto dead = db_.QueryInt("SELECT count(*) FROM journal WHERE state = 2");
  if (!dead.ok()) return dead.status();
  stats_.dead_count = static_cast<uint64_t>(*dead);
  ES_RETURN_IF_ERROR(LoadInboxState());
  ES_RETURN_IF_ERROR(LoadScheduleState());
  return LoadDedupe();
}

// The clean-close file: "edgespool-counts 1 <pending_count> <pending_bytes>
// <journal head seq> <page_count> <freelist_count>\n", written by a clean
// close after the last connection closed (so after SQLite's final
// checkpoint), fsynced and renamed into place. Open trusts it only when the
// journal's head seq, page count and free page count are what it recorded,
// and removes it (durably: the directory is synced) before anything is
// written, so that a crash later in the run cannot leave a stale one: the
// open after a crash counts.
Status JournalDb::LoadPendingCounts() {
  const std::string path = CountsPath(options_.path);
  if (platform::FileExists(path)) {
    auto text = platform::ReadWholeFile(path);
    Status removed = platform::RemoveFile(path);
    if (removed.ok()) removed = platform::SyncDirectory(platform::DirName(path));
    unsigned long long count = 0, bytes = 0, head = 0, pages = 0, free_pages = 0;
    int version = 0;
    bool parsed = text.ok() &&
                  std::sscanf(text->c_str(), "edgespool-counts %d %llu %llu %llu %llu %llu",
                              &version, &count, &bytes, &head, &pages, &free_pages) == 6 &&
                  version == 1;
    auto now_head =
        db_.QueryInt("SELECT ifnull(max(seq), 0) FROM sqlite_sequence WHERE name = 'journal'");
    auto now_pages = db_.QueryInt("PRAGMA page_count");
    auto now_free = db_.QueryInt("PRAGMA freelist_count");
    if (removed.ok() && parsed && now_head.ok() && now_pages.ok() && now_free.ok() &&
        static_cast<unsigned long long>(*now_head) == head &&
        static_cast<unsigned long long>(*now_pages) == pages &&
        static_cast<unsigned long long>(*now_free) == free_pages) {
      stats_.pending_count = count;
      stats_.pending_bytes = bytes;
      return Status::Ok();
    }
    ES_LOG_INFO("journal counts from the last clean close do not match: counting",
                {{"path", options_.path}, {"removed", removed.ok() ? "yes" : removed.ToString()}});
  }
  auto size = platform::FileSizeBytes(options_.path);
  if ((size.ok() && *size > kCountAtOpenMaxBytes) || BacklogCount::AlwaysForTest()) {
    // The counters start at 0 and take the changes from here on; the
    // snapshot's count is added when it arrives (backlog_count.h).
    count_start_ns_ = clock_.MonotonicNs();
    auto count = BacklogCount::Start(options_.path);
    if (count.ok()) {
      backlog_count_ = std::move(count).value();
      counting_ = true;
      stats_.pending_count = stats_.pending_bytes = 0;
      ES_LOG_INFO(
          "journal opened without clean-close counts: counting the backlog in the "
          "background",
          {{"path", options_.path}});
      return Status::Ok();
    }
    ES_LOG_WARN("journal backlog cannot be counted in the background: counting at open",
                {{"path", options_.path}, {"reason", count.status().ToString()}});
  }
  return CountPendingNow();
}

Status JournalDb::CountPendingNow() {
  SlowStep("counting the backlog");
  Stmt st;
  ES_RETURN_IF_ERROR(db_.Prepare("SELECT count(*), ifnull(sum(bytes), 0) FROM pending", &st));
  Status s;
  if (st.Step(&s)) {
    stats_.pending_count = static_cast<uint64_t>(st.Int(0));
    stats_.pending_bytes = static_cast<uint64_t>(st.Int(1));
  }
  return s;
}

// On the store thread (or the closing one), outside any transaction.
void JournalDb::FinishCount(bool closing) {
  std::unique_ptr<BacklogCount> count = std::move(backlog_count_);
  Result<BacklogCount::Counts> r =
      Status::Cancelled("journal closed before the backlog was counted");
  if (count->ready()) r = count->Take();
  count.reset();  // joins (closing: interrupts a count still running first)
  if (r.ok()) {
    stats_.pending_count += r->pending_count;  // modulo 2^64: exact
    stats_.pending_bytes += r->pending_bytes;
    counting_ = false;
    oldest_dirty_ = true;
    ES_LOG_INFO("journal backlog counted in the background",
                {{"path", options_.path},
                 {"pending", std::to_string(stats_.pending_count)},
                 {"ms", std::to_string((clock_.MonotonicNs() - count_start_ns_) / 1000000)}});
    return;
  }
  if (closing) return;  // counting_ stays: no clean-close counts this time
  // The snapshot is gone with its connection: count what is there now, on
  // this connection (its writes are all committed: no transaction is open).
  ES_LOG_WARN("journal backlog count failed in the background: counting on the store thread",
              {{"path", options_.path}, {"reason", r.status().ToString()}});
  Status s = CountPendingNow();
  if (!s.ok()) {
    ES_LOG_ERROR("journal backlog cannot be counted: pending figures stay unknown",
                 {{"path", options_.path}, {"reason", s.ToString()}});
    return;
  }
  counting_ = false;
  oldest_dirty_ = true;
}

void JournalDb::ArmCleanCounts() {
  auto head =
      db_.QueryInt("SELECT ifnull(max(seq), 0) FROM sqlite_sequence WHERE name = 'journal'");
  auto pages = db_.QueryInt("PRAGMA page_count");
  auto free_pages = db_.QueryInt("PRAGMA freelist_count");
  if (!head.ok() || !pages.ok() || !free_pages.ok() || db_.in_transaction()) return;
  clean_counts_.path = CountsPath(options_.path);
  clean_counts_.content = "edgespool-counts 1 " + std::to_string(stats_.pending_count) + " " +
                          std::to_string(stats_.pending_bytes) + " " + std::to_string(*head) +
                          " " + std::to_string(*pages) + " " + std::to_string(*free_pages) + "\n";
}

JournalDb::DeferredWrite::~DeferredWrite() {
  if (path.empty()) return;
  Status s = platform::WriteFileAtomic(path, content);
  if (!s.ok()) {
    ES_LOG_WARN("cannot write the journal's clean-close counts: the next start counts",
                {{"path", path}, {"reason", s.ToString()}});
  }
}

Status JournalDb::LoadDedupe() {
  // Rebuild the dedupe set from the newest rows that carry an id, newest
  // first, stopping at the window's edge or the count bound. Every row
  // (with an id or not) carries stored_at, rising with seq, so the first
  // row older than the window ends the scan: opening a large backlog of
  // telemetry without ids reads only the window, not the whole table. (A
  // wall clock set forward and back again can end it early: an id then
  // forgotten stores a duplicate, never loses a message.)
  //
  // A backlog stored within the window but mostly without ids would still
  // be read whole (measured: 4.7 s over 7.3M rows), so the scan by seq
  // stops after kDedupeScanRows rows; what is older is read through the
  // msg_id index instead, which holds only rows with an id (empty for
  // telemetry without ids; at most the window's ids otherwise).
  //
  // Two passes, so that no copy of the window's ids is held beside the
  // index being built (measured: 10 MiB of temporaries for 100k ids, the
  // agent's peak RSS on a big journal): the first finds, newest first, the
  // oldest seq to load; the second inserts from there in arrival order.
  int64_t cutoff = clock_.WallMs() - options_.dedupe_window_ms;
  const size_t want = options_.dedupe_max_ids;
  const size_t budget = std::max<size_t>(kDedupeScanRows, 2 * want);
  int64_t from_seq = INT64_MAX;  // the oldest row the second pass reads
  int64_t last_seq = -1;         // the scan by seq stopped at its budget before this seq
  size_t ids = 0;
  {
    Stmt st;
    ES_RETURN_IF_ERROR(db_.Prepare(
        "SELECT msg_id IS NOT NULL, seq, stored_at FROM journal ORDER BY seq DESC", &st));
    Status s;
    size_t visited = 0;
    while (ids < want && st.Step(&s)) {
      if (st.Int(2) < cutoff) break;
      if (++visited > budget) {
        last_seq = st.Int(1) + 1;  // this row not read yet: the index pass includes it
        break;
      }
      from_seq = st.Int(1);
      if (st.Int(0)) ++ids;
    }
    ES_RETURN_IF_ERROR(s);
  }
  auto insert = [this](const std::string& id, int64_t seq, int64_t stored_at_ms) {
    // Oldest first, as they arrived; an id stored twice answers the first seq.
    if (dedupe_.Find(id) == 0) dedupe_.Insert(id, static_cast<uint64_t>(seq), stored_at_ms);
  };
  if (last_seq >= 0 && ids < want) {
    struct Seen {
      std::string id;
      int64_t seq;
      int64_t stored_at_ms;
    };
    Stmt st;
    ES_RETURN_IF_ERROR(db_.Prepare(
        "SELECT msg_id, seq, stored_at FROM journal INDEXED BY journal_msg_id "
        "WHERE msg_id IS NOT NULL AND seq < ?1 AND stored_at >= ?2",
        &st));
    st.Bind(1, last_seq);
    st.Bind(2, cutoff);
    std::vector<Seen> older;
    size_t room = want - ids;
    auto newer = [](const Seen& a, const Seen& b) { return a.seq > b.seq; };
    Status s;
    while (st.Step(&s)) {
      older.push_back({st.Text(0), st.Int(1), st.Int(2)});
      if (older.size() >= 2 * room + 1024) {  // keep memory bounded: the newest `room`
        std::nth_element(older.begin(), older.begin() + room, older.end(), newer);
        older.resize(room);
      }
    }
    ES_RETURN_IF_ERROR(s);
    std::sort(older.begin(), older.end(), newer);
    if (older.size() > room) older.resize(room);
    for (auto it = older.rbegin(); it != older.rend(); ++it)
      insert(it->id, it->seq, it->stored_at_ms);
  }
  if (from_seq == INT64_MAX) return Status::Ok();
  Stmt st;
  // Rowid order, the msg_id filter in code: with "msg_id IS NOT NULL" in the
  // WHERE clause the planner may take the partial msg_id index and sort.
  ES_RETURN_IF_ERROR(
      db_.Prepare("SELECT msg_id, seq, stored_at FROM journal WHERE seq >= ?1 ORDER BY seq", &st));
  st.Bind(1, from_seq);
  Status s;
  while (st.Step(&s)) {
    if (st.IsNull(0)) continue;
    insert(st.Text(0), st.Int(1), st.Int(2));
  }
  return s;
}

// Prepared once: sqlite3_exec would compile "BEGIN"/"COMMIT" again for every
// commit group, a fixed cost that small groups pay per message.
Status JournalDb::Begin() {
  if (checkpointer_) checkpointer_->BeforeWrite();
  return begin_.Run();
}

Status JournalDb::Commit() {
  Status s = commit_.Run();
  if (!s.ok()) {
    Rollback();
    wal_recheck_ = 2;
  } else if (wal_recheck_ > 0) {
    --wal_recheck_;
    RestoreWalMode();
  }
  return s;
}

// Measured under injected fsync errors (journal_fiu_test, ~1 run in 20):
// after a failed commit SQLite can begin the next transaction in
// rollback-journal mode. Nothing is lost, but the journal would run without
// its WAL and checkpointer from then on, so the commits after a failure
// check the mode and switch back.
void JournalDb::RestoreWalMode() {
  auto mode = db_.QueryText("PRAGMA journal_mode");
  if (!mode.ok() || *mode == "wal") return;
  Status s = EnsureWalMode(db_);
  if (s.ok()) {
    ES_LOG_WARN("journal left WAL mode after an I/O error; switched back",
                {{"path", options_.path}, {"was", *mode}});
  } else {
    ES_LOG_WARN("journal left WAL mode after an I/O error and cannot switch back yet",
                {{"path", options_.path}, {"was", *mode}, {"reason", s.ToString()}});
    wal_recheck_ = 2;
  }
}

void JournalDb::Rollback() {
  if (db_.in_transaction()) (void)rollback_.Run();
}

void JournalDb::EvictDedupe(int64_t now_ms) { dedupe_.Evict(now_ms - options_.dedupe_window_ms); }

void JournalDb::AppendGroup(std::vector<AppendItem>* items) {
  int64_t now = clock_.WallMs();
  EvictDedupe(now);
  if (clock_.MonotonicNs() - last_disk_check_ns_ >= kDiskCheckIntervalNs) CheckDiskSpace();

  uint64_t group_bytes = 0;
  for (auto& item : *items) {
    group_bytes += item.write ? item.write->inbound.payload.size() + kRowOverhead
                              : RowBytes(item.message);
  }

  Status s;
  uint64_t dropped = 0, dropped_bytes = 0;
  uint64_t drop_target = 0;
  bool made_room = true;
  for (int attempt = 0;; ++attempt) {
    dropped = dropped_bytes = 0;
    made_room = false;
    s = InsertGroup(items, drop_target, &dropped, &dropped_bytes, &made_room);
    if (s.ok()) break;
    Rollback();
    bool full = s.code() == Code::kResourceExhausted;
    // Full: retry with room made first (sent rows, then for drop-oldest the
    // oldest pending rows), growing the target; give up when a retry could
    // free nothing.
    if (full && attempt < 4 && (attempt == 0 || made_room)) {
      drop_target = group_bytes * (2ull << attempt) + (64u << 10);
      continue;
    }
    if (full) s = FullError(s);
    break;
  }
  if (!s.ok()) dropped = dropped_bytes = 0;  // rolled back with the group
  SettleGroup(items, s, dropped, dropped_bytes, now);
}

// Applies a group's fate to the outcomes, the dedupe set and the counters.
void JournalDb::SettleGroup(std::vector<AppendItem>* items, const Status& s, uint64_t dropped,
                            uint64_t dropped_bytes, int64_t now) {
  uint64_t stored = 0, duplicates = 0, stored_bytes = 0, writes = 0, scheduled = 0;
  int64_t min_ts = 0;
  SettleInbox(s.ok());
  for (auto& item : *items) {
    if (item.write) {
      ++writes;
      if (!s.ok()) item.outcome = s;
      continue;
    }
    if (!s.ok()) {
      // A duplicate of an earlier, committed message keeps its answer; a
      // duplicate of a group mate shares the group's fate.
      bool committed_dup =
          item.outcome.ok() && item.outcome->duplicate && dedupe_.Find(item.message.msg_id) != 0;
      if (committed_dup) {
        ++duplicates;
      } else {
        item.stored = false;
        item.scheduled = false;
        item.outcome = s;
      }
      continue;
    }
    if (item.stored && item.scheduled) {
      // Waits in `scheduled`: no scan sees it until PromoteDue.
      ++stored;
      ++scheduled;
      next_due_ms_ = std::min(next_due_ms_, *item.message.deliver_at_ms);
    } else if (item.stored) {
      if (!cursors_.empty()) LowerCursors(item.message, item.outcome->seq);
      ++stored;
      stored_bytes += item.message.payload.size();
      if (stored - scheduled == 1 || item.message.ts_ms < min_ts) min_ts = item.message.ts_ms;
    } else if (item.outcome.ok() && item.outcome->duplicate) {
      ++duplicates;
    }
  }
  NoteGroupFate(s, items->size(), items->size() - duplicates - writes);
  stats_.duplicate_total += duplicates;
  stats_.appended_total += stored;
  if (stored > scheduled) {
    if (counting_) {
      oldest_dirty_ = true;  // the backlog's oldest is not known here
    } else if (stats_.pending_count == 0 || min_ts < stats_.oldest_pending_ts_ms) {
      stats_.oldest_pending_ts_ms = min_ts;
    }
    stats_.pending_count += stored - scheduled;
    stats_.pending_bytes += stored_bytes;
  }
  stats_.scheduled_count += scheduled;
  if (dropped) {
    stats_.pending_count -= dropped;
    stats_.pending_bytes -= dropped_bytes;
    stats_.dropped_total += dropped;
    stats_.dropped_bytes_total += dropped_bytes;
    oldest_dirty_ = true;
  }
}

// refused: the group's producer appends that were not duplicates.
void JournalDb::NoteGroupFate(const Status& s, size_t items, uint64_t refused) {
  if (s.ok()) {
    if (full_logged_ || failed_groups_) {
      ES_LOG_INFO("journal accepts appends again",
                  {{"path", options_.path}, {"failed_groups", std::to_string(failed_groups_)}});
      full_logged_ = false;
      failed_groups_ = 0;
    }
    ++stats_.commit_groups_total;
  } else if (s.code() == Code::kResourceExhausted) {
    stats_.rejected_full_total += refused;
  } else if (failed_groups_++ == 0) {
    // Once per episode: producers retry, and a disk that stopped taking
    // writes fails every group until it comes back (then logged above).
    ES_LOG_ERROR("journal commit failed; the whole group is refused (further failures are "
                 "counted until a commit succeeds)",
                 {{"path", options_.path},
                  {"messages", std::to_string(items)},
                  {"reason", s.ToString()}});
  }
}

Status JournalDb::InsertGroup(std::vector<AppendItem>* items, uint64_t drop_target_bytes,
                              uint64_t* dropped, uint64_t* dropped_bytes, bool* made_room) {
  inbox_delta_ = InboxDelta{};  // a retry starts the group's inbox afresh
  ES_RETURN_IF_ERROR(Begin());
  if (drop_target_bytes) {
    ES_RETURN_IF_ERROR(MakeRoom(drop_target_bytes, dropped, dropped_bytes, made_room));
  }
  int64_t now = clock_.WallMs();
  // Ids this attempt added to dedupe_, taken out again unless it commits.
  size_t new_ids = 0;
  Status s = InsertRows(items, now, &new_ids);
  if (s.ok()) s = Commit();
  if (!s.ok()) dedupe_.PopNewest(new_ids);
  return s;
}

Status JournalDb::InsertRows(std::vector<AppendItem>* items, int64_t now, size_t* new_ids) {
  uint64_t first = 0, last = 0;
  for (auto& item : *items) {
    if (item.write) {
      ES_RETURN_IF_ERROR(WriteGroupItem(&item));
      continue;
    }
    const Message& m = item.message;
    item.stored = false;
    if (!m.msg_id.empty()) {
      // Also finds a group mate: its id went in when its row did.
      if (uint64_t known = dedupe_.Find(m.msg_id)) {
        item.outcome = AppendOutcome{known, true};
        continue;
      }
    }
    uint64_t seq = 0;
    ES_RETURN_IF_ERROR(InsertRow(m, now, &seq));
    item.outcome = AppendOutcome{seq, false};
    item.stored = true;
    item.scheduled = m.deliver_at_ms && *m.deliver_at_ms > now;
    if (first == 0) first = seq;
    last = seq;
    if (!m.msg_id.empty()) {
      dedupe_.Insert(m.msg_id, seq, now);
      ++*new_ids;
    }
  }
  if (first == 0) return Status::Ok();  // duplicates only
  // The group's seqs are consecutive (one writer, AUTOINCREMENT), so the
  // range holds exactly its rows.
  enqueue_range_.Bind(1, static_cast<int64_t>(first));
  enqueue_range_.Bind(2, static_cast<int64_t>(last));
  Status s = enqueue_range_.Run();
  enqueue_range_.Reset();
  for (size_t i = 0; s.ok() && i < items->size(); ++i) {
    const AppendItem& item = (*items)[i];
    if (item.scheduled) s = ScheduleRow(item.outcome->seq, *item.message.deliver_at_ms);
  }
  return s;
}

Status JournalDb::InsertRow(const Message& m, int64_t now, uint64_t* seq) {
  std::string headers = EncodeHeaders(m.headers);
  insert_.Bind(1, m.ts_ms);
  insert_.BindText(2, m.topic);
  insert_.Bind(3, static_cast<int64_t>(m.priority));
  if (m.expires_at_ms) {
    insert_.Bind(4, *m.expires_at_ms);
  } else {
    insert_.BindNull(4);
  }
  if (m.msg_id.empty()) {
    insert_.BindNull(5);
  } else {
    insert_.BindText(5, m.msg_id);
  }
  if (headers.empty()) {
    insert_.BindNull(6);
  } else {
    insert_.BindBlob(6, headers);
  }
  // A zero-length blob must not bind as NULL (payload is NOT NULL).
  sqlite3_bind_blob(insert_.raw(), 7, m.payload.empty() ? "" : m.payload.data(),
                    static_cast<int>(m.payload.size()), SQLITE_STATIC);
  insert_.Bind(8, now);
  Status s = insert_.Run();
  insert_.Reset();
  if (!s.ok()) return s;
  *seq = static_cast<uint64_t>(sqlite3_last_insert_rowid(db_.raw()));
  return Status::Ok();
}

Status JournalDb::MakeRoom(uint64_t target, uint64_t* dropped, uint64_t* dropped_bytes,
                           bool* made_room) {
  uint64_t freed = 0;
  Status s;
  // Sent rows kept only for retention go first, whatever their age: they are
  // already delivered.
  while (freed < target) {
    evict_sent_.Bind(1, kCleanupChunk);
    int n = 0;
    while (evict_sent_.Step(&s)) {
      RememberDeleted(static_cast<uint64_t>(evict_sent_.Int(0)), MessageState::kSent, "");
      freed += static_cast<uint64_t>(evict_sent_.Int(1)) + kRowOverhead;
      ++n;
    }
    evict_sent_.Reset();
    ES_RETURN_IF_ERROR(s);
    if (n == 0) break;
    *made_room = true;
  }
  if (options_.when_full != WhenFull::kDropOldest) return Status::Ok();
  // Then pending rows: lowest priority first, oldest first within it,
  // never a row the uplink holds a lease on.
  for (int p = static_cast<int>(Priority::kLow); p >= 0 && freed < target; --p) {
    std::vector<uint64_t> victims;
    uint64_t planned = freed;
    drop_scan_.Bind(1, p);
    while (planned < target && drop_scan_.Step(&s)) {
      uint64_t seq = static_cast<uint64_t>(drop_scan_.Int(0));
      if (leases_.count(seq)) continue;
      victims.push_back(seq);
      planned += static_cast<uint64_t>(drop_scan_.Int(1)) + kRowOverhead;
    }
    drop_scan_.Reset();
    ES_RETURN_IF_ERROR(s);
    for (uint64_t seq : victims) {
      delete_seq_.Bind(1, static_cast<int64_t>(seq));
      if (delete_seq_.Step(&s)) {
        *made_room = true;
        ++*dropped;
        *dropped_bytes += static_cast<uint64_t>(delete_seq_.Int(0));
      }
      delete_seq_.Reset();
      ES_RETURN_IF_ERROR(s);
    }
    freed = planned;
  }
  return Status::Ok();
}

Status JournalDb::FullError(const Status& cause) {
  CheckDiskSpace();
  std::string detail = disk_note_.empty() ? "journal reached its cap of " +
                                                std::to_string(options_.max_bytes) + " bytes"
                                          : disk_note_;
  Status s = Status::ResourceExhausted("journal_full: " + detail + " (" + cause.message() + ")");
  if (!full_logged_) {
    ES_LOG_WARN("journal full: refusing appends until space is freed",
                {{"path", options_.path}, {"reason", s.message()}});
    full_logged_ = true;
  }
  return s;
}

void JournalDb::CheckDiskSpace() {
  last_disk_check_ns_ = clock_.MonotonicNs();
  auto free_bytes = platform::FreeDiskBytes(platform::DirName(options_.path));
  auto pages = db_.QueryInt("PRAGMA page_count");
  if (!free_bytes.ok() || !pages.ok()) return;
  WalBudget wal = WalBudgetFor(options_.max_bytes);
  auto wal_size = platform::FileSizeBytes(options_.path + "-wal");
  // The WAL already on disk is part of its own reserve.
  int64_t have =
      static_cast<int64_t>(*free_bytes) + (wal_size.ok() ? static_cast<int64_t>(*wal_size) : 0);
  // Pages that so far live only in the WAL take disk space of their own
  // once a checkpoint copies them into the database file.
  auto db_size = platform::FileSizeBytes(options_.path);
  int64_t unwritten =
      db_size.ok() ? std::max<int64_t>(0, *pages * kPageSize - static_cast<int64_t>(*db_size)) : 0;
  int64_t headroom = std::max<int64_t>(0, have - wal.reserve_bytes - unwritten);
  int64_t allowed = std::min(cap_pages_, *pages + headroom / kPageSize);
  if (allowed == effective_pages_) return;
  std::string pragma = "PRAGMA max_page_count = " + std::to_string(allowed);
  if (!db_.Exec(pragma.c_str()).ok()) return;
  bool lowered = allowed < cap_pages_;
  if (lowered) {
    disk_note_ = "disk nearly full: " + std::to_string(*free_bytes) + " bytes free on " +
                 platform::DirName(options_.path) + ", journal limited to " +
                 std::to_string(allowed * kPageSize) + " bytes to keep " +
                 std::to_string(wal.reserve_bytes) + " bytes free for the WAL";
    if (allowed < effective_pages_ || effective_pages_ == cap_pages_) {
      ES_LOG_WARN("journal cap lowered: disk nearly full",
                  {{"path", options_.path}, {"detail", disk_note_}});
    }
  } else {
    disk_note_.clear();
    ES_LOG_INFO("journal cap restored: disk has room again", {{"path", options_.path}});
  }
  effective_pages_ = allowed;
}

const JournalStats& JournalDb::RefreshStats() {
  if (checkpointer_) {
    Checkpointer::Stats c = checkpointer_->stats();
    stats_.checkpoints_total = c.passes;
    stats_.checkpoint_failures_total = c.failures;
    stats_.wal_restart_waits_total = c.restart_waits;
    stats_.wal_restart_wait_us_total = c.wait_us;
  }
  Status s;
  int64_t pages = page_count_.Step(&s) ? page_count_.Int(0) : -1;
  page_count_.Reset();
  int64_t free_pages = freelist_count_.Step(&s) ? freelist_count_.Int(0) : -1;
  freelist_count_.Reset();
  if (pages >= 0 && free_pages >= 0) {
    stats_.file_bytes = static_cast<uint64_t>(pages) * kPageSize;
    int64_t cap = std::max<int64_t>(1, effective_pages_);
    stats_.fill_ratio =
        std::min(1.0, static_cast<double>(pages - free_pages) / static_cast<double>(cap));
  }
  if (integrity_) {
    IntegrityCheck::Stats c = integrity_->stats();
    stats_.integrity_checks_total = c.passes;
    stats_.integrity_failures_total = c.failures;
  } else {
    stats_.integrity_checks_total = checked_at_open_ ? 1 : 0;
  }
  stats_.inflight_count = leases_.size();
  if (backlog_count_ && backlog_count_->ready()) FinishCount(/*closing=*/false);
  if (stats_.pending_count == 0 && !counting_) {
    stats_.oldest_pending_ts_ms = 0;
    oldest_dirty_ = false;
  } else if (oldest_dirty_) {
    int64_t oldest = 0;
    bool any = false;
    for (int p = 0; p <= 2; ++p) {
      oldest_.Bind(1, p);
      if (oldest_.Step(&s) && (!any || oldest_.Int(0) < oldest)) {
        oldest = oldest_.Int(0);
        any = true;
      }
      oldest_.Reset();
    }
    stats_.oldest_pending_ts_ms = oldest;
    oldest_dirty_ = false;
  }
  if (!counting_) return stats_;
  // The counters are deltas until the count arrives: not for anyone else.
  published_ = stats_;
  published_.pending_count = published_.pending_bytes = 0;
  published_.pending_counting = true;
  return published_;
}

}  // namespace edgespool::store
