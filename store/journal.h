// The journal: edgespool's durable store, one SQLite database in WAL mode.
//
// This is store/'s door: the rest of the agent includes only this header.
//
// Threads: a Journal is created, used and destroyed on the loop thread. It
// owns a store thread that holds the SQLite write connection; every call here
// queues work for that thread and returns at once, and every callback runs
// later on the loop thread (through a uv_async_t), never inline. The loop
// never waits on the disk.
//
// Group commit: Append()s made while the store thread commits group N form
// group N+1, committed in one transaction when N is done (bounded by
// group_max_messages / group_max_delay). An append's callback runs only after
// COMMIT returned: durable at options.durability ("full": survives power
// loss; "normal": survives a process crash). The downlink's writes
// (AppendInbound, SaveConsumerSession, DeleteConsumerSession) join the same
// groups, in call order with the appends, with the same promise.
//
// Ordering: operations run in call order, except that appends are handed to
// the store thread once per loop turn; any call made after an append's
// callback ran sees that append. The journal keeps the loop alive while any
// callback is outstanding, and not otherwise.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "platform/clock.h"
#include "platform/loop.h"
#include "platform/status.h"

namespace edgespool::store {

enum class Priority : uint8_t { kHigh = 0, kNormal = 1, kLow = 2 };
enum class Durability { kFull, kNormal };
enum class WhenFull { kReject, kDropOldest };
// State as persisted (pending, sent, dead, scheduled: stored, not yet due for
// upload); kExpired and kUnknown are only reported by Query() for rows
// deleted by expiry or never seen.
enum class MessageState { kPending, kSent, kDead, kExpired, kUnknown, kScheduled };

const char* PriorityName(Priority p);
const char* MessageStateName(MessageState s);

using Headers = std::vector<std::pair<std::string, std::string>>;

struct JournalOptions {
  std::string path;                   // the database file
  uint64_t max_bytes = 256ull << 20;  // cap on the database file
  WhenFull when_full = WhenFull::kReject;
  Durability durability = Durability::kFull;
  int64_t sent_retention_ms = 0;  // sent rows kept this long (0: delete at once)
  int64_t cleanup_interval_ms = 60000;
  // Per commit group. 1000 rows/txn is where bare SQLite inserts level off
  // here (TESTING.md); 2048 leaves room for a burst without a second fsync.
  uint32_t group_max_messages = 2048;
  // Extra wait to grow a group (0: none). Measured: the group that fills
  // while the previous one commits is already as large as the producers
  // allow; a delay only adds latency unless producers trickle in (see
  // tests/bench/journal_bench.cc and the group-delay test).
  int64_t group_max_delay_us = 0;
  // Cap on the inbox's payload bytes (downlink.max_bytes): the oldest inbox
  // rows make way for new ones, counted as dropped.
  uint64_t inbox_max_bytes = 64ull << 20;
  int64_t dedupe_window_ms = 600000;       // msg_id dedupe: 10 minutes...
  uint32_t dedupe_max_ids = 100000;        // ...or this many ids, whichever is smaller
  double high_water = 0.8;                 // fill ratio that signals backpressure
  const platform::Clock* clock = nullptr;  // nullptr: SystemClock
  // Called on the opening thread as Open begins a step that can take long
  // on a big journal ("full integrity check", "schema migration", "counting
  // the backlog", ...), so the agent can tell systemd (EXTEND_TIMEOUT_USEC).
  std::function<void(const std::string& step)> on_slow_step;
};

// A message as handed in by a producer.
struct Message {
  std::string topic;
  int64_t ts_ms = 0;  // original timestamp, ms since epoch
  Priority priority = Priority::kNormal;
  std::optional<int64_t> expires_at_ms;
  std::string msg_id;  // idempotency key; empty: none
  Headers headers;
  std::string payload;
  // Scheduled delivery: not uploaded before this wall time (ms since epoch).
  // At or before the time of the append: uploaded at once, as if unset.
  std::optional<int64_t> deliver_at_ms;
};

// A message as stored: what the sync worker uploads.
struct StoredMessage {
  uint64_t seq = 0;
  Message message;
  uint32_t attempts = 0;
};

// A message from the central broker, for local consumers (docs/downlink.md).
struct InboundMessage {
  std::string topic;  // local topic
  std::string broker_topic;
  int64_t received_ms = 0;
  std::optional<int64_t> expires_at_ms;
  Headers headers;             // MQTT 5 user properties
  std::string response_topic;  // empty: none
  std::string correlation;     // empty: none
  std::string payload;
};

// An inbox row. payload_bytes is the payload's size even when the read left
// the payload out (InboxReadSpec::with_payload = false).
struct StoredInbound {
  uint64_t seq = 0;
  InboundMessage message;
  uint64_t payload_bytes = 0;
};

// A durable consumer session as persisted (docs/downlink.md, "Sessions").
struct ConsumerSessionRecord {
  std::string name;
  std::vector<std::string> filters;  // local topic filters; none may contain '\n'
  uint64_t acked = 0;                // every matching inbox seq <= acked is done
  int64_t last_seen_ms = 0;
  uint64_t dropped = 0;
};

// Selects inbox rows for ReadInbox: seq > after_seq, in seq order, at most
// max_messages and (payloads included) max_bytes of payload; the first row
// is returned whatever its size.
struct InboxReadSpec {
  uint64_t after_seq = 0;
  size_t max_messages = 256;
  size_t max_bytes = 1u << 20;
  bool with_payload = true;
};

// Selects stored producer rows for ReadStored: seq > after_seq, in seq order,
// whatever their state (pending, sent within retention, dead), at most
// max_messages and max_bytes of payload (the first row whatever its size).
struct StoredReadSpec {
  uint64_t after_seq = 0;
  size_t max_messages = 256;
  size_t max_bytes = 1u << 20;
};

// What ReadStored found. head_seq: the largest journal seq ever assigned
// when the read ran (every row <= head_seq was committed and is either in
// `rows`, past the budget, or deleted: sent past retention, expired,
// dropped). complete: no row past the last one returned (the read reached
// head_seq).
struct StoredRead {
  std::vector<StoredMessage> rows;
  uint64_t head_seq = 0;
  bool complete = false;
};

struct AppendOutcome {
  uint64_t seq = 0;
  bool duplicate = false;  // msg_id seen within the dedupe window; seq is the original's
};

struct QueryResult {
  uint64_t seq = 0;
  MessageState state = MessageState::kUnknown;
  uint32_t attempts = 0;
  int64_t ts_ms = 0;
  std::string topic;
  std::string reason;  // for dead letters
  int64_t sent_at_ms = 0;
  int64_t deliver_at_ms = 0;  // kScheduled: when it becomes due
};

struct DeadLetter {
  StoredMessage stored;
  std::string reason;
};

struct JournalStats {
  uint64_t pending_count = 0;
  uint64_t pending_bytes = 0;
  // True while a big journal opened after a crash (no clean-close counts)
  // still counts its backlog in the background, a few seconds after open:
  // pending_count and pending_bytes are 0 and mean "not known yet". The
  // cap and backpressure go by the file's pages (fill_ratio), not by these.
  bool pending_counting = false;
  int64_t oldest_pending_ts_ms = 0;  // 0 when nothing is pending
  uint64_t dead_count = 0;
  // Scheduled rows not yet due: stored, counted in none of the pending_*.
  uint64_t scheduled_count = 0;
  uint64_t inflight_count = 0;  // leased by FetchPending, not yet resolved
  uint64_t file_bytes = 0;      // database file (page_count * page_size)
  uint64_t max_bytes = 0;
  // Pages in use (file minus free pages, which new rows reuse) over the
  // effective cap: max_bytes, or less while the disk is short of space (the
  // journal keeps a WAL reserve free on the filesystem), 0..1.
  double fill_ratio = 0;
  uint64_t appended_total = 0;
  uint64_t duplicate_total = 0;
  uint64_t sent_total = 0;
  uint64_t dead_total = 0;
  uint64_t dropped_total = 0;  // by when_full = drop-oldest
  uint64_t dropped_bytes_total = 0;
  uint64_t expired_total = 0;
  uint64_t rejected_full_total = 0;  // appends refused with journal_full
  uint64_t commit_groups_total = 0;
  uint64_t corrupt_files_moved = 0;  // journals moved aside on open
  // Integrity checks that ran to the end (the full one at open, or the
  // background walk: store/integrity_check.h), and those that found the
  // journal corrupt.
  uint64_t integrity_checks_total = 0;
  uint64_t integrity_failures_total = 0;
  // WAL checkpoints (checkpointer.h): background passes, failed passes, and
  // the time the writer waited for the WAL to start over.
  uint64_t checkpoints_total = 0;
  uint64_t checkpoint_failures_total = 0;
  uint64_t wal_restart_waits_total = 0;
  uint64_t wal_restart_wait_us_total = 0;
  // The downlink's inbox. head_seq is the largest inbox seq ever assigned
  // (kept by AUTOINCREMENT: it survives deletes). dropped: made way for new
  // rows under inbox_max_bytes; expired: deleted by Cleanup past expires_at.
  uint64_t inbox_count = 0;
  uint64_t inbox_bytes = 0;  // payload bytes
  uint64_t inbox_head_seq = 0;
  uint64_t inbox_appended_total = 0;
  uint64_t inbox_dropped_total = 0;
  uint64_t inbox_dropped_bytes_total = 0;
  uint64_t inbox_expired_total = 0;
};

// Selects pending rows for FetchPending. Empty topic_filter: all topics.
struct FetchSpec {
  size_t max_messages = 1000;
  size_t max_bytes = 4u << 20;
  std::string topic_filter;  // MQTT filter (+, #) on the local topic
  // Only rows of this priority, in (ts, seq) order: the sync worker shares
  // the uplink between priorities by weight instead of draining strictly.
  std::optional<Priority> priority;
  // Only rows with min_seq <= seq (0: no bound), in arrival (seq) order: the
  // live part of a live-first route. max_seq > 0 keeps only seq < max_seq
  // (the backlog behind the live part), in the usual order.
  uint64_t min_seq = 0;
  uint64_t max_seq = 0;
};

class Journal {
 public:
  using AppendCallback = std::function<void(Result<AppendOutcome>)>;
  using DoneCallback = std::function<void(Status)>;
  using FetchCallback = std::function<void(Result<std::vector<StoredMessage>>)>;
  using InboundCallback = std::function<void(Result<uint64_t>)>;  // the inbox seq
  using InboxCallback = std::function<void(Result<std::vector<StoredInbound>>)>;
  using SessionsCallback = std::function<void(Result<std::vector<ConsumerSessionRecord>>)>;
  // Called on the loop thread after each commit group with the producer
  // messages it made durable (in seq order; never inbox rows), so the sync
  // worker can serve fresh messages from memory instead of reading them
  // back. The listener may move messages out (the vector is dropped
  // afterwards); rows it keeps it must Lease().
  using CommitListener = std::function<void(std::vector<StoredMessage>&)>;

  // Opens or creates the journal: WAL, the full quick_check for a file up to
  // 32 MiB or one the last background check marked, schema migration, the
  // backlog's counts; a bigger file is checked afterwards in the background
  // (integrity_check.h, JournalStats::integrity_*). A corrupt or unreadable
  // file found at open is moved aside to "<path>.corrupt-<unix ms>",
  // logged with the reason, counted, and a fresh journal started. Fails only
  // when no journal can be created at all (e.g. read-only directory).
  static Result<std::unique_ptr<Journal>> Open(platform::Loop& loop, JournalOptions options);
  // Finishes the group in progress, stops the store thread, closes SQLite.
  // Callbacks of work not yet started run with Cancelled.
  ~Journal();

  // Appends one message; callback after its group committed. Errors:
  // kResourceExhausted ("journal_full") when the cap is reached and
  // when_full = reject; kIoError/kInternal when the commit failed (the whole
  // group fails: never an ack for a row that is not durable).
  void Append(Message message, AppendCallback done);

  // Leases up to spec.max_messages pending rows in upload order (priority,
  // ts, seq), skipping rows already leased and rows past expires_at.
  void FetchPending(FetchSpec spec, FetchCallback done);
  // Resolves leases: sent (PUBACKed), dead (with reason), or back to pending
  // (attempts += 1 when count_attempt). Release of all leases: on disconnect.
  // A MarkSent that fails (disk full) leaves its rows pending and still
  // leased, so they are not fetched again: the caller marks them again later.
  void MarkSent(std::vector<uint64_t> seqs, DoneCallback done);
  void MarkDead(std::vector<std::pair<uint64_t, std::string>> seqs_and_reasons, DoneCallback done);
  void Release(std::vector<uint64_t> seqs, bool count_attempt, DoneCallback done);
  void ReleaseAll();
  // Leases rows the caller took from a commit group (CommitListener) instead
  // of fetching them, so FetchPending skips them; they are resolved like
  // fetched rows. Runs in call order with the other operations, so a fetch
  // made after this call never returns them.
  void Lease(std::vector<uint64_t> seqs);

  void Query(uint64_t seq, std::function<void(Result<QueryResult>)> done);
  void QueryById(std::string msg_id, std::function<void(Result<QueryResult>)> done);
  void ListDead(size_t limit, std::function<void(Result<std::vector<DeadLetter>>)> done);
  // Dead letters back to pending (attempts reset).
  void Requeue(std::vector<uint64_t> seqs, DoneCallback done);
  // Runs retention/expiry now (expired inbox rows too, counted in
  // inbox_expired_total; also runs every cleanup_interval_ms), in
  // bounded chunks with appends served between them, then returns free
  // pages to the filesystem (incremental vacuum) and truncates the WAL.
  // `done` runs when the whole pass is finished.
  void Cleanup(DoneCallback done);

  void SetCommitListener(CommitListener listener);
  // Called on the loop thread after scheduled rows fell due and joined the
  // pending rows (a FetchPending made afterwards sees them). The store
  // thread sleeps until the earliest due time: a timer, not a poll.
  void SetDueListener(std::function<void()> listener);
  // Called on the loop thread with the seqs each cleanup step deleted past
  // their expires_at. Unset (the default), none are collected.
  void SetExpiryListener(std::function<void(const std::vector<uint64_t>&)> listener);

  // Reads stored rows in seq order without leasing them (the WebSocket
  // uplink sessions' catch-up, docs/websocket.md): a read-only view beside
  // the upload, which it does not disturb.
  void ReadStored(StoredReadSpec spec, std::function<void(Result<StoredRead>)> done);

  // --- the downlink (docs/downlink.md) ---------------------------------------
  // Inbox seqs are their own AUTOINCREMENT sequence, apart from the
  // journal's, never reused even after every row was deleted.

  // Stores an inbound message in the current commit group; callback (with its
  // inbox seq) after COMMIT: only then may the broker get its PUBACK. If the
  // inbox's payload bytes would exceed inbox_max_bytes, the oldest inbox rows
  // are deleted in the same transaction first (inbox_dropped_total). Errors:
  // kResourceExhausted for a payload larger than inbox_max_bytes by itself
  // (this message only), or when the database cap is reached (the group, as
  // for Append); kIoError/kInternal when the commit failed.
  void AppendInbound(InboundMessage message, InboundCallback done);
  // Inbox rows with seq > spec.after_seq in seq order, skipping expired ones.
  void ReadInbox(InboxReadSpec spec, InboxCallback done);
  // Deletes inbox rows with seq < below_seq AND received before
  // received_before_ms (delivered to every session and past retention), in
  // bounded transactions.
  void TrimInbox(uint64_t below_seq, int64_t received_before_ms, DoneCallback done);
  void LoadConsumerSessions(SessionsCallback done);
  // Upsert by name, and delete; both join the current commit group like an
  // append (callback after COMMIT), so they keep call order with each other.
  void SaveConsumerSession(ConsumerSessionRecord session, DoneCallback done);
  void DeleteConsumerSession(std::string name, DoneCallback done);

  // Loop-thread snapshot, refreshed after every operation.
  const JournalStats& stats() const;
  // True while fill_ratio >= high_water or groups wait beyond the bound:
  // the producer side stops reading sockets until it turns false.
  bool above_high_water() const;
  const JournalOptions& options() const;

  class Impl;

 private:
  explicit Journal(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// True if topic matches the MQTT filter (+ one level, # the rest).
bool TopicMatches(std::string_view filter, std::string_view topic);

}  // namespace edgespool::store
