// The journal file format.
//
// One SQLite database (default "journal.db") in WAL mode, page size 4096,
// auto_vacuum = INCREMENTAL, PRAGMA user_version = schema version (5).
//
// ROW FORMAT: table `journal`, one row a message; tables `pending` and
// `sent` say which rows wait for upload and which were delivered. Tables
// `inbox` and `consumer_sessions` hold the downlink (version 4, below).
//
//   seq         INTEGER PRIMARY KEY AUTOINCREMENT  arrival order
//   ts          INTEGER NOT NULL   producer's timestamp, ms since epoch
//   topic       TEXT NOT NULL      local topic
//   priority    INTEGER NOT NULL   0 high, 1 normal, 2 low
//   expires_at  INTEGER            ms since epoch, NULL: never
//   msg_id      TEXT               producer's idempotency key, NULL: none
//   headers     BLOB               NULL or: u32 count, then per pair
//                                  u32 klen, key, u32 vlen, value (big-endian)
//   payload     BLOB NOT NULL
//   state       INTEGER NOT NULL   2 dead; otherwise see `pending`/`sent`
//                                  (version 1 wrote 0 pending, 1 sent)
//   attempts    INTEGER NOT NULL   failed upload attempts (Release counted)
//   sent_at     INTEGER            version 1 only (now in `sent`)
//   reason      TEXT               why a dead letter died
//   stored_at   INTEGER NOT NULL   ms since epoch when appended (dedupe window)
//
//   pending(seq INTEGER PRIMARY KEY, priority, ts, bytes)
//                  one row per message waiting for upload; bytes =
//                  length(payload); index pending_order(priority, ts)
//                  (rowid last: upload order (priority, ts, seq)).
//   sent(seq INTEGER PRIMARY KEY, sent_at)
//                  one row per delivered message kept for retention.
//   scheduled(seq INTEGER PRIMARY KEY, due_at, priority, ts, bytes)
//                  one row per message stored with a deliver_at still in
//                  the future; index scheduled_due(due_at).
// A message is pending iff its seq is in `pending`; scheduled iff in
// `scheduled`; else dead iff journal.state = 2; else sent. The store adds
// each commit group's rows to `pending` in the group's transaction (version
// 2 did it with a trigger), moving the scheduled ones to `scheduled` in the
// same transaction; the trigger journal_forget removes a deleted row's seq
// from `pending` and `sent`. A scheduled row is deleted only by expiry,
// which deletes its `scheduled` row itself: widening the trigger would add a
// lookup to every delete of a sent row, the drain's hot path.
//
// Indexes on `journal`, all partial so each costs only the rows it serves:
//   journal_dead(seq) WHERE state = 2                   ListDead
//   journal_expiry(expires_at) WHERE expires_at NOT NULL
//   journal_msg_id(msg_id) WHERE msg_id NOT NULL        QueryById
// Queries spell `state = 2` literally: SQLite uses a partial index only when
// the WHERE clause implies the index's, which a bound parameter never does.
//
// WHY PENDING AND SENT ARE TABLES (version 2)
//   Version 1 kept a state column and a partial index over pending rows.
//   Marking a row sent then rewrote the whole message row (an UPDATE writes
//   the full record) and every page of the backlog went through the WAL and
//   a checkpoint a second time: measured, 1M MarkSent took 9.6 s through the
//   journal and 4.3 s as a bare UPDATE, the largest share of a batch-mode
//   drain. Now it deletes ~20-byte `pending` rows and appends ~16-byte `sent`
//   rows: the message rows are written once and only read afterwards.
//   Rejected: splitting payloads into their own table (the UPDATE still
//   rewrites the metadata rows and two indexes: ~2.5x slower than this).
//
// ADDING ROWS TO PENDING (version 3)
//   Version 2 had an AFTER INSERT trigger copy each new row into `pending`.
//   A trigger runs as a sub-program per row, and measured here that halved
//   the insert rate: 160k rows/s with it against 304k without `pending` at
//   all, in groups of 64 (211k against 429k in groups of 1000). One
//   INSERT INTO pending ... SELECT over the group's seq range, in the same
//   transaction, brings groups of 64 to 231k and of 1000 to 352k rows/s
//   (an explicit INSERT per row: 211k and 302k).
//
// THE INBOX AND CONSUMER SESSIONS (version 4; docs/downlink.md)
//   Messages from the central broker to local consumers, in the journal's
//   file so they share its cap (max_page_count) and its commit groups.
//
//   inbox(seq INTEGER PRIMARY KEY AUTOINCREMENT  delivery order, never reused
//         received_at INTEGER NOT NULL           ms since epoch
//         topic TEXT NOT NULL                    local topic
//         broker_topic TEXT NOT NULL
//         expires_at INTEGER                     ms since epoch, NULL: never
//         headers BLOB                           as journal.headers
//         response_topic TEXT                    NULL: none
//         correlation BLOB                       NULL: none
//         payload BLOB NOT NULL)
//     index inbox_expiry(expires_at) WHERE expires_at NOT NULL   Cleanup
//   consumer_sessions(name TEXT PRIMARY KEY
//         filters TEXT NOT NULL      local topic filters, '\n'-separated
//         acked INTEGER NOT NULL     every matching inbox seq <= acked is done
//         last_seen INTEGER NOT NULL ms since epoch, last attached
//         dropped INTEGER NOT NULL)  messages dropped for this session
//
//   Inbox seqs are a sequence of their own (sqlite_sequence row "inbox"),
//   unrelated to journal seqs. No trigger and no `pending` row: the uplink
//   never sees inbox rows (the CommitListener is not given them either).
//   An inbox row is deleted by exactly one of: Cleanup past expires_at
//   (inbox_expired_total); TrimInbox, once every durable session is past it
//   and it is older than downlink.retention; or, oldest first, inside the
//   group that would take the inbox's payload bytes past
//   downlink.max_bytes (inbox_dropped_total). A message larger than that
//   cap by itself is refused alone, dropping nothing.
//
// SCHEDULED DELIVERY (version 5)
//   A publish with deliver_at (or delay) in the future is stored at once and
//   acknowledged as stored, but its seq goes to `scheduled`, not `pending`.
//   The upload scans (FetchPending, the commit listener) only ever read
//   `pending`, so rows not yet due cost unscheduled traffic nothing: no
//   extra column in pending_order, no row to skip. The store thread sleeps
//   until the earliest due_at (scheduled_due gives it in one seek) and then,
//   in one transaction, moves every due row into `pending` with its original
//   (priority, ts): from there it goes out in the usual upload order, among
//   rows of its original timestamp. A restart keeps both tables; rows that
//   fell due while the agent was down move at open's first turn.
//   Rejected: a due_at column in `pending` with the scans filtering on it.
//   Every lease scan would step over not-yet-due rows, in index order, each
//   time (a day's schedule ahead of a backlog is read again per fetch).
//   Scheduled rows are not dropped by when_full = drop-oldest (they are not
//   in `pending`): the cap then refuses new appends as for reject.
//
// INVARIANTS
//   1. seq strictly increases and is never reused, even after every row was
//      deleted: AUTOINCREMENT keeps the high-water mark in sqlite_sequence,
//      updated in the same transaction as the insert. (A plain rowid would
//      hand out max(seq)+1 again after the newest rows were deleted, and a
//      consumer that de-duplicates by seq would drop a new message.)
//   2. Upload order is (priority, ts, seq); rows with equal ts keep arrival
//      order because seq breaks the tie.
//   3. Only the store thread writes rows, over one connection (a second
//      connection only checkpoints the WAL); leases (rows handed
//      to the uplink and not yet resolved) live in memory only. After a crash
//      every leased row is pending again: at-least-once, never lost.
//   4. The database file never exceeds max_bytes: PRAGMA max_page_count is
//      set on every connection (it does not persist in the file).
//   5. Inbox seqs obey invariant 1 by the same means. Only the store thread
//      writes the inbox and the sessions, inside commit groups (AppendGroup),
//      in the order the loop thread called: a session saved and then
//      deleted stays deleted. sum(length(inbox.payload)) stays at or below
//      inbox_max_bytes after every commit.
//
// DURABILITY: WHICH WRITES MUST BE DURABLE BEFORE WHICH ACKS
//   - An append is acknowledged to its producer only after the COMMIT of its
//     whole group returned SQLITE_OK: with synchronous=FULL the WAL was
//     fsynced (survives power loss); with synchronous=NORMAL it reached the
//     OS (survives a process crash; a power cut may lose the last groups).
//     A group whose COMMIT fails fails as a whole: no producer gets an ack
//     for a row that might not be durable. (The row may still appear after a
//     restart if the WAL frames reached disk before fsync failed: that is a
//     "recovered" message, allowed; a lost ack is not.)
//   - MarkSent runs only after the broker's PUBACK, and needs no durability
//     of its own: if it is lost in a crash the row is uploaded again, a
//     duplicate the broker side tolerates; never a loss.
//   - An inbox row is acknowledged (AppendInbound's callback, and only then
//     the PUBACK to the broker) after its group's COMMIT, exactly as an
//     append: a crash before that loses nothing, the broker resends.
//   - A session save (SaveConsumerSession: its acked position) is durable
//     when its callback runs. A save lost in a crash leaves an older acked
//     position: messages delivered again, never skipped. TrimInbox deletes
//     only what every session acked; if a session's save that the trim
//     relied on was lost, what the trim took had been acked by the consumer
//     already: not redelivered, and not lost either.
//   - The msg_id dedupe set is memory, rebuilt at open from rows still in the
//     file (stored_at within the window). An id whose row was already deleted
//     (sent, retention 0) is forgotten by a restart: a producer retry then
//     stores a second copy. Duplicates over losses, again.
//
// THE CAP AND THE FULL DISK
//   Measured on Debian's SQLite: when the filesystem is 100% full, a WAL
//   database can no longer DELETE (secure_delete is compiled on, so freeing a
//   page rewrites it) nor checkpoint, and the journal deadlocks: it cannot
//   make room because making room needs room. So:
//   - secure_delete = OFF on every connection. Zeroing freed pages protects
//     nothing here (the file's permissions guard the payloads, and deleted
//     telemetry is not secret), doubles the write cost of every delete, and
//     needs WAL space exactly when space is short.
//   - max_page_count = max_bytes / page_size bounds the main file; the WAL
//     beside it is bounded by wal_autocheckpoint and journal_size_limit
//     (WalBudgetFor). Free disk space is checked at open and periodically;
//     when the filesystem cannot hold the cap plus that WAL reserve, the
//     effective max_page_count is lowered so SQLite says SQLITE_FULL while a
//     reserve is still free, and cleanup and checkpoints keep working.
#include "store/schema.h"

#include <algorithm>

namespace edgespool::store {
namespace {

// Migration i brings user_version i to i + 1. Append, never edit.
const char* const kMigrations[] = {
    // 0 -> 1: the initial schema.
    "CREATE TABLE journal("
    "  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  ts INTEGER NOT NULL,"
    "  topic TEXT NOT NULL,"
    "  priority INTEGER NOT NULL,"
    "  expires_at INTEGER,"
    "  msg_id TEXT,"
    "  headers BLOB,"
    "  payload BLOB NOT NULL,"
    "  state INTEGER NOT NULL DEFAULT 0,"
    "  attempts INTEGER NOT NULL DEFAULT 0,"
    "  sent_at INTEGER,"
    "  reason TEXT,"
    "  stored_at INTEGER NOT NULL);"
    "CREATE INDEX journal_pending ON journal(priority, ts, seq) WHERE state = 0;"
    "CREATE INDEX journal_sent ON journal(sent_at) WHERE state = 1;"
    "CREATE INDEX journal_dead ON journal(seq) WHERE state = 2;"
    "CREATE INDEX journal_expiry ON journal(expires_at) WHERE expires_at IS NOT NULL;"
    "CREATE INDEX journal_msg_id ON journal(msg_id) WHERE msg_id IS NOT NULL;",
    // 1 -> 2: the upload queue and the sent log leave the message rows, so
    // that marking rows sent no longer rewrites every 250-byte row (see
    // "WHY PENDING AND SENT ARE TABLES" above). Old sent rows keep their
    // state = 1; only state = 2 (dead) is read from the row from now on.
    "CREATE TABLE pending("
    "  seq INTEGER PRIMARY KEY,"
    "  priority INTEGER NOT NULL,"
    "  ts INTEGER NOT NULL,"
    "  bytes INTEGER NOT NULL);"
    "CREATE INDEX pending_order ON pending(priority, ts);"
    "CREATE TABLE sent(seq INTEGER PRIMARY KEY, sent_at INTEGER NOT NULL);"
    "INSERT INTO pending SELECT seq, priority, ts, length(payload) FROM journal WHERE state = 0;"
    "INSERT INTO sent SELECT seq, ifnull(sent_at, 0) FROM journal WHERE state = 1;"
    "DROP INDEX journal_pending;"
    "DROP INDEX journal_sent;"
    "CREATE TRIGGER journal_enqueue AFTER INSERT ON journal BEGIN"
    "  INSERT INTO pending VALUES(new.seq, new.priority, new.ts, length(new.payload));"
    "END;"
    "CREATE TRIGGER journal_forget AFTER DELETE ON journal BEGIN"
    "  DELETE FROM pending WHERE seq = old.seq;"
    "  DELETE FROM sent WHERE seq = old.seq;"
    "END;",
    // 2 -> 3: a commit group adds its rows to `pending` with one INSERT ...
    // SELECT instead of a trigger per row (see "ADDING ROWS TO PENDING").
    "DROP TRIGGER journal_enqueue;",
    // 3 -> 4: the downlink's inbox and its consumer sessions (see "THE
    // INBOX AND CONSUMER SESSIONS" above).
    "CREATE TABLE inbox("
    "  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  received_at INTEGER NOT NULL,"
    "  topic TEXT NOT NULL,"
    "  broker_topic TEXT NOT NULL,"
    "  expires_at INTEGER,"
    "  headers BLOB,"
    "  response_topic TEXT,"
    "  correlation BLOB,"
    "  payload BLOB NOT NULL);"
    "CREATE INDEX inbox_expiry ON inbox(expires_at) WHERE expires_at IS NOT NULL;"
    "CREATE TABLE consumer_sessions("
    "  name TEXT PRIMARY KEY,"
    "  filters TEXT NOT NULL,"
    "  acked INTEGER NOT NULL,"
    "  last_seen INTEGER NOT NULL,"
    "  dropped INTEGER NOT NULL);",
    // 4 -> 5: scheduled delivery (see "SCHEDULED DELIVERY" above). No row
    // of a version-4 journal is scheduled, so nothing moves.
    "CREATE TABLE scheduled("
    "  seq INTEGER PRIMARY KEY,"
    "  due_at INTEGER NOT NULL,"
    "  priority INTEGER NOT NULL,"
    "  ts INTEGER NOT NULL,"
    "  bytes INTEGER NOT NULL);"
    "CREATE INDEX scheduled_due ON scheduled(due_at);",
};
static_assert(sizeof(kMigrations) / sizeof(kMigrations[0]) == kSchemaVersion,
              "one migration per schema version");

void PutU32(std::string* out, uint32_t v) {
  char b[4] = {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
               static_cast<char>(v)};
  out->append(b, 4);
}

bool GetU32(std::string_view* in, uint32_t* v) {
  if (in->size() < 4) return false;
  const auto* p = reinterpret_cast<const unsigned char*>(in->data());
  *v = (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
  in->remove_prefix(4);
  return true;
}

bool GetString(std::string_view* in, std::string* out) {
  uint32_t n;
  if (!GetU32(in, &n) || in->size() < n) return false;
  out->assign(in->data(), n);
  in->remove_prefix(n);
  return true;
}

}  // namespace

WalBudget WalBudgetFor(uint64_t max_bytes) {
  int64_t cap_pages = static_cast<int64_t>(max_bytes) / kPageSize;
  WalBudget b;
  // SQLite's default of 1000 pages (4 MiB) is right for large journals; a
  // small cap gets a proportionally small WAL so the pair stays near the cap.
  b.autocheckpoint_pages = std::clamp<int64_t>(cap_pages / 8, 32, 1000);
  // The WAL holds one checkpoint interval plus the group that crossed it
  // (a 2048-message group of 200-byte rows is ~150 pages): budget twice the
  // interval, and truncate back to that after a checkpoint.
  b.size_limit_bytes = 2 * b.autocheckpoint_pages * (kPageSize + 24);
  // The Checkpointer lets the WAL grow to restart_pages and one transaction
  // more before it starts over: inside the same budget.
  b.pass_pages = b.autocheckpoint_pages;
  b.restart_pages = std::max(b.pass_pages, 2 * b.autocheckpoint_pages - 256);
  b.reserve_bytes = b.size_limit_bytes + (512 << 10);
  return b;
}

Status ConfigureConnection(Db& db, const JournalOptions& options) {
  // A second process on the same file is an operator error; say so quickly
  // rather than wait.
  ES_RETURN_IF_ERROR(SqliteStatus(sqlite3_busy_timeout(db.raw(), 1000), db.raw(), "busy_timeout"));
  // page_size and auto_vacuum only take effect before the first table
  // exists. Set them on a new file only: on an existing one, setting
  // auto_vacuum writes page 1 even when unchanged, and a file about to be
  // moved aside as corrupt must reach the post-mortem untouched.
  auto pages = db.QueryInt("PRAGMA page_count");
  if (!pages.ok()) return pages.status();
  if (*pages == 0) {
    ES_RETURN_IF_ERROR(db.Exec("PRAGMA page_size = 4096; PRAGMA auto_vacuum = INCREMENTAL;"));
  }
  // Normal locking mode: the journal's Checkpointer copies the WAL back over
  // a second connection (checkpointer.h). Other processes are kept out by
  // the lock file (JournalDb::Open) and the VFS (kJournalVfs).
  auto mode = db.QueryText("PRAGMA journal_mode = WAL");
  if (!mode.ok()) return mode.status();
  if (*mode != "wal")
    return Status::IoError("cannot switch journal to WAL mode (got " + *mode + ")");
  ES_RETURN_IF_ERROR(db.Exec(options.durability == Durability::kFull
                                 ? "PRAGMA synchronous = FULL"
                                 : "PRAGMA synchronous = NORMAL"));
  ES_RETURN_IF_ERROR(db.Exec("PRAGMA secure_delete = OFF"));  // why: see "THE CAP" above
  WalBudget wal = WalBudgetFor(options.max_bytes);
  std::string pragmas =
      "PRAGMA max_page_count = " + std::to_string(options.max_bytes / kPageSize) + ";" +
      "PRAGMA wal_autocheckpoint = " + std::to_string(wal.autocheckpoint_pages) + ";" +
      "PRAGMA journal_size_limit = " + std::to_string(wal.size_limit_bytes) + ";" +
      // Temp b-trees (ORDER BY without an index) stay in memory, never in /tmp.
      "PRAGMA temp_store = MEMORY;"
      "PRAGMA cache_size = -8192;";  // 8 MiB: the pending index's hot pages
  return db.Exec(pragmas.c_str());
}

Status EnsureWalMode(Db& db) {
  auto mode = db.QueryText("PRAGMA journal_mode");
  if (!mode.ok()) return mode.status();
  if (*mode == "wal") return Status::Ok();
  mode = db.QueryText("PRAGMA journal_mode = WAL");
  if (!mode.ok()) return mode.status();
  if (*mode != "wal")
    return Status::IoError("cannot switch journal to WAL mode (got " + *mode + ")");
  return Status::Ok();
}

Status QuickCheck(Db& db) {
  auto r = db.QueryText("PRAGMA quick_check(1)");
  if (!r.ok()) return r.status();
  if (*r != "ok") return Status::Corruption("quick_check: " + *r);
  return Status::Ok();
}

Status MigrateSchema(Db& db) {
  auto version = db.QueryInt("PRAGMA user_version");
  if (!version.ok()) return version.status();
  if (*version > kSchemaVersion) {
    return Status::InvalidArgument("journal " + db.path() + " has schema version " +
                                   std::to_string(*version) + ", newer than this agent's " +
                                   std::to_string(kSchemaVersion) + "; refusing to modify it");
  }
  for (int64_t v = *version; v < kSchemaVersion; ++v) {
    ES_RETURN_IF_ERROR(db.Exec("BEGIN IMMEDIATE"));
    Status s = db.Exec(kMigrations[v]);
    if (s.ok()) {
      std::string stamp = "PRAGMA user_version = " + std::to_string(v + 1);
      s = db.Exec(stamp.c_str());
    }
    if (s.ok()) s = db.Exec("COMMIT");
    if (!s.ok()) {
      (void)db.Exec("ROLLBACK");
      return s.Annotate("schema migration " + std::to_string(v) + " -> " + std::to_string(v + 1));
    }
  }
  return Status::Ok();
}

std::string EncodeHeaders(const Headers& headers) {
  std::string out;
  if (headers.empty()) return out;
  PutU32(&out, static_cast<uint32_t>(headers.size()));
  for (const auto& [k, v] : headers) {
    PutU32(&out, static_cast<uint32_t>(k.size()));
    out += k;
    PutU32(&out, static_cast<uint32_t>(v.size()));
    out += v;
  }
  return out;
}

bool DecodeHeaders(std::string_view blob, Headers* out) {
  out->clear();
  if (blob.empty()) return true;
  uint32_t n;
  if (!GetU32(&blob, &n)) return false;
  for (uint32_t i = 0; i < n; ++i) {
    std::string k, v;
    if (!GetString(&blob, &k) || !GetString(&blob, &v)) return false;
    out->emplace_back(std::move(k), std::move(v));
  }
  return blob.empty();
}

}  // namespace edgespool::store
