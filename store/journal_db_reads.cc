// JournalDb's reads and resolutions: FetchPending with leases, MarkSent,
// MarkDead, Release, Requeue, Query, ListDead, and the chunked cleanup.
// (Open, appends and the cap live in journal_db.cc; the downlink's inbox
// and sessions in journal_db_inbox.cc.)
#include <algorithm>
#include <climits>
#include <tuple>
#include <utility>

#include "store/journal_db.h"
#include "store/schema.h"

namespace edgespool::store {
namespace {

// Pages handed back per incremental-vacuum step (1 MiB of page moves).
constexpr int64_t kVacuumPagesPerStep = 256;
constexpr size_t kRecentDeleted = 65536;

}  // namespace

JournalDb::ScanCursor* JournalDb::CursorFor(const FetchSpec& spec, char kind) {
  // Bounded: a caller inventing filters cannot grow this without limit.
  if (cursors_.size() > 64) cursors_.clear();
  std::string key(1, kind);
  if (kind == 'p') key += static_cast<char>('0' + static_cast<int>(*spec.priority));
  key += spec.topic_filter;
  auto it = cursors_.find(key);
  if (it == cursors_.end()) {
    // Before every row: priorities and seqs are >= 0.
    it = cursors_.emplace(key, ScanCursor{-1, INT64_MIN, -1}).first;
  }
  return &it->second;
}

void JournalDb::LowerCursors(const Message& m, uint64_t seq) {
  auto p = static_cast<int64_t>(m.priority);
  auto s = static_cast<int64_t>(seq);
  for (auto& [key, c] : cursors_) {
    // Arrival-order cursors never pass a seq that does not exist yet.
    if (key[0] == 's') continue;
    bool by_class = key[0] == 'p';
    if (by_class && key[1] - '0' != p) continue;
    bool before = by_class
                      ? std::make_pair(m.ts_ms, s) <= std::make_pair(c.ts, c.seq)
                      : std::make_tuple(p, m.ts_ms, s) <= std::make_tuple(c.priority, c.ts, c.seq);
    if (before) c = ScanCursor{p, m.ts_ms, s - 1};
  }
}

// Picks the scan for spec (arrival order, one priority, or upload order),
// binds it to start after its cursor, and returns both.
Stmt* JournalDb::StartScan(const FetchSpec& spec, ScanCursor** cursor) {
  if (spec.min_seq > 0) {
    *cursor = CursorFor(spec, 's');
    scan_seq_.Bind(1, std::max<int64_t>((*cursor)->seq, static_cast<int64_t>(spec.min_seq) - 1));
    return &scan_seq_;
  }
  Stmt* scan = spec.priority ? &scan_prio_ : &scan_order_;
  *cursor = CursorFor(spec, spec.priority ? 'p' : 'o');
  scan->Bind(1, spec.priority ? static_cast<int64_t>(*spec.priority) : (*cursor)->priority);
  scan->Bind(2, (*cursor)->ts);
  scan->Bind(3, (*cursor)->seq);
  return scan;
}

// The scan's current row (columns as in scan_order_) into *out.
Status JournalDb::ReadScanRow(const Stmt& scan, std::string topic, StoredMessage* out) {
  out->seq = static_cast<uint64_t>(scan.Int(0));
  out->message.ts_ms = scan.Int(1);
  out->message.topic = std::move(topic);
  out->message.priority = static_cast<Priority>(scan.Int(3));
  if (!scan.IsNull(4)) out->message.expires_at_ms = scan.Int(4);
  out->message.msg_id = scan.Text(5);
  if (!DecodeHeaders(scan.Blob(6), &out->message.headers)) {
    return Status::Corruption("bad headers blob in row " + std::to_string(out->seq));
  }
  out->message.payload = scan.Blob(7);
  out->attempts = static_cast<uint32_t>(scan.Int(8));
  return Status::Ok();
}

Result<StoredRead> JournalDb::ReadStored(const StoredReadSpec& spec) {
  StoredRead out;
  Status s;
  // The head first: a row committed after it is not promised to this read
  // (one writer: reads run between transactions, so nothing commits between
  // the two statements anyway).
  if (journal_head_.Step(&s)) out.head_seq = static_cast<uint64_t>(journal_head_.Int(0));
  journal_head_.Reset();
  if (!s.ok()) return s.Annotate("read stored head");
  size_t bytes = 0;
  out.complete = true;
  stored_read_.Bind(1, static_cast<int64_t>(std::min<uint64_t>(spec.after_seq, INT64_MAX)));
  while (stored_read_.Step(&s)) {
    size_t size = static_cast<size_t>(sqlite3_column_bytes(stored_read_.raw(), 7));
    if (out.rows.size() >= spec.max_messages ||
        (!out.rows.empty() && bytes + size > spec.max_bytes)) {
      out.complete = false;
      break;
    }
    bytes += size;
    StoredMessage sm;
    s = ReadScanRow(stored_read_, stored_read_.Text(2), &sm);
    if (!s.ok()) break;
    out.rows.push_back(std::move(sm));
  }
  stored_read_.Reset();
  if (!s.ok()) return s.Annotate("read stored");
  return out;
}

Result<std::vector<StoredMessage>> JournalDb::FetchPending(const FetchSpec& spec) {
  std::vector<StoredMessage> out;
  int64_t now = clock_.WallMs();
  size_t bytes = 0;
  Status s;
  ScanCursor* cursor = nullptr;
  Stmt* scan = StartScan(spec, &cursor);
  // The cursor may pass a row that this scan will never return (leased,
  // handed out now, expired, not matching the filter), not one skipped for
  // this call only (max_seq) or left for the next call (budgets).
  bool advance = true;
  while (out.size() < spec.max_messages && scan->Step(&s)) {
    auto seq = static_cast<uint64_t>(scan->Int(0));
    ScanCursor here{scan->Int(3), scan->Int(1), static_cast<int64_t>(seq)};
    if (spec.max_seq > 0 && seq >= spec.max_seq) {
      advance = false;
      continue;
    }
    bool skip = leases_.count(seq) != 0 || (!scan->IsNull(4) && scan->Int(4) <= now);
    std::string topic;
    if (!skip) {
      topic = scan->Text(2);
      skip = !spec.topic_filter.empty() && !TopicMatches(spec.topic_filter, topic);
    }
    if (!skip) {
      size_t size = static_cast<size_t>(sqlite3_column_bytes(scan->raw(), 7));
      if (!out.empty() && bytes + size > spec.max_bytes) break;
      bytes += size;
      StoredMessage sm;
      s = ReadScanRow(*scan, std::move(topic), &sm);
      if (!s.ok()) break;
      out.push_back(std::move(sm));
    }
    if (advance) *cursor = here;
  }
  scan->Reset();
  if (!s.ok()) {
    cursors_.clear();
    return s;
  }
  for (const auto& m : out) leases_.insert(m.seq);
  return out;
}

namespace {

// Sorted runs of consecutive seqs: [first, last] each.
std::vector<std::pair<int64_t, int64_t>> Runs(std::vector<uint64_t> seqs) {
  std::sort(seqs.begin(), seqs.end());
  std::vector<std::pair<int64_t, int64_t>> runs;
  for (uint64_t seq : seqs) {
    auto v = static_cast<int64_t>(seq);
    if (!runs.empty() && v <= runs.back().second + 1) {
      runs.back().second = std::max(runs.back().second, v);
    } else {
      runs.emplace_back(v, v);
    }
  }
  return runs;
}

}  // namespace

// Each run of consecutive seqs is exact (every seq in it was asked for), so
// set statements over the range touch only the rows asked for.
Status JournalDb::MarkSent(const std::vector<uint64_t>& seqs) {
  for (uint64_t seq : seqs) leases_.erase(seq);
  auto runs = Runs(seqs);
  bool keep = options_.sent_retention_ms > 0;
  Status s = MarkSentRuns(runs, keep);
  if (!s.ok() && keep && s.code() == Code::kResourceExhausted) {
    // At the cap the sent log may have no page to grow into. Delivered rows
    // are the first to go when the journal is full (MakeRoom), so delete
    // them now instead: retention is best effort, a full journal that
    // cannot settle its uploads would be stuck.
    s = MarkSentRuns(runs, false);
  }
  if (!s.ok()) {
    // The rows stay pending on disk, and leased: released here, the uplink
    // would read and send them again at once, and a full disk made that a
    // loop (measured: 34k duplicates of 4.5k messages in 30 s). The caller
    // marks them again later; a reconnect (ReleaseAll) or a restart sends
    // them again at worst.
    for (uint64_t seq : seqs) leases_.insert(seq);
    return s.Annotate("mark sent");
  }
  return s;
}

Status JournalDb::MarkSentRuns(const std::vector<std::pair<int64_t, int64_t>>& runs, bool keep) {
  int64_t now = clock_.WallMs();
  uint64_t n = 0, bytes = 0;
  std::vector<uint64_t> deleted;
  ES_RETURN_IF_ERROR(Begin());
  Status s;
  for (const auto& [first, last] : runs) {
    sum_pending_.Bind(1, first);
    sum_pending_.Bind(2, last);
    if (sum_pending_.Step(&s)) {
      n += static_cast<uint64_t>(sum_pending_.Int(0));
      bytes += static_cast<uint64_t>(sum_pending_.Int(1));
    }
    sum_pending_.Reset();
    if (!s.ok()) break;
    if (keep) {
      log_sent_.Bind(1, first);
      log_sent_.Bind(2, last);
      log_sent_.Bind(3, now);
      s = log_sent_.Run();
      log_sent_.Reset();
      if (s.ok()) {
        unqueue_range_.Bind(1, first);
        unqueue_range_.Bind(2, last);
        s = unqueue_range_.Run();
        unqueue_range_.Reset();
      }
    } else {
      // journal_forget drops the `pending` rows with the message rows.
      delete_sent_now_.Bind(1, first);
      delete_sent_now_.Bind(2, last);
      while (delete_sent_now_.Step(&s)) {
        deleted.push_back(static_cast<uint64_t>(delete_sent_now_.Int(0)));
      }
      delete_sent_now_.Reset();
    }
    if (!s.ok()) break;
  }
  if (s.ok()) s = Commit();
  if (!s.ok()) {
    Rollback();
    return s;
  }
  for (uint64_t seq : deleted) RememberDeleted(seq, MessageState::kSent, "");
  stats_.pending_count -= n;
  stats_.pending_bytes -= bytes;
  stats_.sent_total += n;
  if (n) oldest_dirty_ = true;
  return Status::Ok();
}

Status JournalDb::MarkDead(const std::vector<std::pair<uint64_t, std::string>>& seqs_and_reasons) {
  uint64_t n = 0, bytes = 0;
  ES_RETURN_IF_ERROR(Begin());
  Status s;
  for (const auto& [seq, reason] : seqs_and_reasons) {
    leases_.erase(seq);
    unqueue_one_.Bind(1, static_cast<int64_t>(seq));
    bool was_pending = unqueue_one_.Step(&s);
    uint64_t row_bytes = was_pending ? static_cast<uint64_t>(unqueue_one_.Int(0)) : 0;
    if (was_pending) {
      while (unqueue_one_.Step(&s)) {
      }
    }
    unqueue_one_.Reset();
    if (s.ok() && was_pending) {
      mark_dead_.Bind(1, static_cast<int64_t>(seq));
      mark_dead_.BindText(2, reason);
      s = mark_dead_.Run();
      mark_dead_.Reset();
      ++n;
      bytes += row_bytes;
    }
    if (!s.ok()) break;
  }
  if (s.ok()) s = Commit();
  if (!s.ok()) {
    Rollback();
    cursors_.clear();
    return s.Annotate("mark dead");
  }
  stats_.pending_count -= n;
  stats_.pending_bytes -= bytes;
  stats_.dead_count += n;
  stats_.dead_total += n;
  if (n) oldest_dirty_ = true;
  return Status::Ok();
}

Status JournalDb::Release(const std::vector<uint64_t>& seqs, bool count_attempt) {
  for (uint64_t seq : seqs) leases_.erase(seq);
  cursors_.clear();
  if (!count_attempt || seqs.empty()) return Status::Ok();
  ES_RETURN_IF_ERROR(Begin());
  Status s;
  for (uint64_t seq : seqs) {
    count_attempt_.Bind(1, static_cast<int64_t>(seq));
    s = count_attempt_.Run();
    count_attempt_.Reset();
    if (!s.ok()) break;
  }
  if (s.ok()) s = Commit();
  if (!s.ok()) Rollback();
  return s.ok() ? s : s.Annotate("release");
}

Status JournalDb::Requeue(const std::vector<uint64_t>& seqs) {
  uint64_t n = 0, bytes = 0;
  cursors_.clear();
  ES_RETURN_IF_ERROR(Begin());
  Status s;
  for (uint64_t seq : seqs) {
    requeue_.Bind(1, static_cast<int64_t>(seq));
    bool found = requeue_.Step(&s);
    int64_t priority = found ? requeue_.Int(0) : 0, ts = found ? requeue_.Int(1) : 0,
            size = found ? requeue_.Int(2) : 0;
    if (found) {
      while (requeue_.Step(&s)) {
      }
    }
    requeue_.Reset();
    if (s.ok() && found) {
      enqueue_.Bind(1, static_cast<int64_t>(seq));
      enqueue_.Bind(2, priority);
      enqueue_.Bind(3, ts);
      enqueue_.Bind(4, size);
      s = enqueue_.Run();
      enqueue_.Reset();
      ++n;
      bytes += static_cast<uint64_t>(size);
    }
    if (!s.ok()) break;
  }
  if (s.ok()) s = Commit();
  if (!s.ok()) {
    Rollback();
    return s.Annotate("requeue");
  }
  stats_.dead_count -= n;
  stats_.pending_count += n;
  stats_.pending_bytes += bytes;
  if (n) oldest_dirty_ = true;
  return Status::Ok();
}

Result<QueryResult> JournalDb::QueryRow(uint64_t seq, bool* found) {
  QueryResult r;
  r.seq = seq;
  Status s;
  query_.Bind(1, static_cast<int64_t>(seq));
  *found = query_.Step(&s);
  if (*found) {
    // Pending iff queued; dead by the row; otherwise delivered.
    r.state = query_.Int(6)                 ? MessageState::kPending
              : query_.Int(0) == kStateDead ? MessageState::kDead
                                            : MessageState::kSent;
    r.attempts = static_cast<uint32_t>(query_.Int(1));
    r.ts_ms = query_.Int(2);
    r.topic = query_.Text(3);
    r.reason = query_.Text(4);
    r.sent_at_ms = query_.IsNull(5) ? 0 : query_.Int(5);
  }
  query_.Reset();
  if (!s.ok()) return s;
  if (*found && r.state == MessageState::kSent && stats_.scheduled_count > 0) {
    // Neither pending nor dead: sent, unless it waits in `scheduled`.
    scheduled_due_at_.Bind(1, static_cast<int64_t>(seq));
    if (scheduled_due_at_.Step(&s)) {
      r.state = MessageState::kScheduled;
      r.deliver_at_ms = scheduled_due_at_.Int(0);
    }
    scheduled_due_at_.Reset();
    if (!s.ok()) return s;
  }
  return r;
}

Result<QueryResult> JournalDb::Query(uint64_t seq) {
  bool found = false;
  auto r = QueryRow(seq, &found);
  if (!r.ok() || found) return r;
  auto it = recent_deleted_.find(seq);
  if (it != recent_deleted_.end()) r->state = it->second;
  return r;
}

Result<QueryResult> JournalDb::QueryById(const std::string& msg_id) {
  Status s;
  query_id_.BindText(1, msg_id);
  std::optional<uint64_t> seq;
  if (query_id_.Step(&s)) seq = static_cast<uint64_t>(query_id_.Int(0));
  query_id_.Reset();
  if (!s.ok()) return s;
  if (!seq) {
    if (uint64_t known = dedupe_.Find(msg_id)) seq = known;
    auto expired = recent_expired_ids_.find(msg_id);
    if (!seq && expired != recent_expired_ids_.end()) seq = expired->second;
  }
  if (!seq) return QueryResult{};
  return Query(*seq);
}

Result<std::vector<DeadLetter>> JournalDb::ListDead(size_t limit) {
  std::vector<uint64_t> seqs;
  Status s;
  list_dead_.Bind(1, static_cast<int64_t>(limit));
  while (list_dead_.Step(&s)) seqs.push_back(static_cast<uint64_t>(list_dead_.Int(0)));
  list_dead_.Reset();
  if (!s.ok()) return s;
  std::vector<DeadLetter> out;
  for (uint64_t seq : seqs) {
    row_by_seq_.Bind(1, static_cast<int64_t>(seq));
    if (row_by_seq_.Step(&s)) {
      DeadLetter d;
      d.stored.seq = seq;
      d.stored.message.ts_ms = row_by_seq_.Int(0);
      d.stored.message.topic = row_by_seq_.Text(1);
      d.stored.message.priority = static_cast<Priority>(row_by_seq_.Int(2));
      if (!row_by_seq_.IsNull(3)) d.stored.message.expires_at_ms = row_by_seq_.Int(3);
      d.stored.message.msg_id = row_by_seq_.Text(4);
      (void)DecodeHeaders(row_by_seq_.Blob(5), &d.stored.message.headers);
      d.stored.message.payload = row_by_seq_.Blob(6);
      d.stored.attempts = static_cast<uint32_t>(row_by_seq_.Int(7));
      d.reason = row_by_seq_.Text(8);
      out.push_back(std::move(d));
    }
    row_by_seq_.Reset();
    if (!s.ok()) return s;
  }
  return out;
}

void JournalDb::RememberDeleted(uint64_t seq, MessageState state, const std::string& msg_id) {
  if (recent_deleted_.insert_or_assign(seq, state).second) recent_order_.push_back(seq);
  while (recent_order_.size() > kRecentDeleted) {
    recent_deleted_.erase(recent_order_.front());
    recent_order_.pop_front();
  }
  if (state == MessageState::kExpired && !msg_id.empty()) {
    if (recent_expired_ids_.insert_or_assign(msg_id, seq).second) {
      recent_ids_order_.push_back(msg_id);
    }
    while (recent_ids_order_.size() > kRecentDeleted) {
      recent_expired_ids_.erase(recent_ids_order_.front());
      recent_ids_order_.pop_front();
    }
  }
}

// Retention is first in, first out by seq: a step deletes the oldest sent
// rows up to the first one still inside the retention period. A row sent
// late (a low-priority backlog) may so keep newer-sent rows behind it; they
// go, at the latest, when it does: retention is a minimum, and this keeps
// each step to one short range scan of a table without a time index.
Result<bool> JournalDb::CleanupStep() {
  int64_t now = clock_.WallMs();
  std::vector<uint64_t> sent;
  std::vector<ExpiredRow> expired;
  uint64_t inbox_expired = 0, inbox_expired_bytes = 0;
  ES_RETURN_IF_ERROR(Begin());
  Status s = DeleteRetainedSent(now - options_.sent_retention_ms, &sent);
  if (s.ok()) s = DeleteExpired(now, &expired);
  if (s.ok()) s = ExpireInbox(now, &inbox_expired, &inbox_expired_bytes);
  if (s.ok()) s = Commit();
  if (!s.ok()) {
    Rollback();
    return s.Annotate("cleanup");
  }
  for (uint64_t seq : sent) RememberDeleted(seq, MessageState::kSent, "");
  SettleExpired(expired);
  stats_.inbox_count -= inbox_expired;
  stats_.inbox_bytes -= inbox_expired_bytes;
  stats_.inbox_expired_total += inbox_expired;
  bool more = static_cast<int64_t>(sent.size()) == kCleanupChunk ||
              static_cast<int64_t>(expired.size()) == kCleanupChunk ||
              static_cast<int64_t>(inbox_expired) == kCleanupChunk;
  if (more) return true;
  return VacuumAndTruncate();
}

// One chunk of the oldest sent rows, up to the first still inside retention.
Status JournalDb::DeleteRetainedSent(int64_t cutoff_ms, std::vector<uint64_t>* sent) {
  Status s;
  sent_head_.Bind(1, kCleanupChunk);
  while (sent_head_.Step(&s)) {
    if (sent_head_.Int(1) > cutoff_ms) break;
    sent->push_back(static_cast<uint64_t>(sent_head_.Int(0)));
  }
  sent_head_.Reset();
  if (!s.ok() || sent->empty()) return s;
  // journal_forget drops the `sent` rows with the message rows.
  delete_sent_upto_.Bind(1, static_cast<int64_t>(sent->back()));
  s = delete_sent_upto_.Run();
  delete_sent_upto_.Reset();
  return s;
}

// One chunk of journal rows past expires_at, whatever their state.
Status JournalDb::DeleteExpired(int64_t now_ms, std::vector<ExpiredRow>* expired) {
  Status s;
  expired_scan_.Bind(1, now_ms);
  expired_scan_.Bind(2, kCleanupChunk);
  while (expired_scan_.Step(&s)) {
    MessageState state = expired_scan_.Int(4)                 ? MessageState::kPending
                         : expired_scan_.Int(5)               ? MessageState::kScheduled
                         : expired_scan_.Int(1) == kStateDead ? MessageState::kDead
                                                              : MessageState::kSent;
    expired->push_back({static_cast<uint64_t>(expired_scan_.Int(0)), state,
                        static_cast<uint64_t>(expired_scan_.Int(2)), expired_scan_.Text(3)});
  }
  expired_scan_.Reset();
  for (size_t i = 0; s.ok() && i < expired->size(); ++i) {
    delete_row_.Bind(1, static_cast<int64_t>((*expired)[i].seq));
    s = delete_row_.Run();
    delete_row_.Reset();
    // journal_forget leaves `scheduled` alone (schema.cc says why).
    if (s.ok() && (*expired)[i].state == MessageState::kScheduled) {
      unschedule_one_.Bind(1, static_cast<int64_t>((*expired)[i].seq));
      s = unschedule_one_.Run();
      unschedule_one_.Reset();
    }
  }
  return s;
}

void JournalDb::SettleExpired(const std::vector<ExpiredRow>& expired) {
  for (const auto& e : expired) {
    leases_.erase(e.seq);
    RememberDeleted(e.seq, MessageState::kExpired, e.msg_id);
    if (collect_expired_) expired_seqs_.push_back(e.seq);
    if (e.state == MessageState::kPending) {
      --stats_.pending_count;
      stats_.pending_bytes -= e.bytes;
      oldest_dirty_ = true;
    } else if (e.state == MessageState::kDead) {
      --stats_.dead_count;
    } else if (e.state == MessageState::kScheduled && stats_.scheduled_count > 0) {
      --stats_.scheduled_count;
    }
  }
  stats_.expired_total += expired.size();
}

// Rows are gone; hand their pages back to the filesystem a bounded step at
// a time, then truncate the WAL so the pair shrinks on disk. True: more
// pages to hand back next step.
Result<bool> JournalDb::VacuumAndTruncate() {
  auto free_pages = db_.QueryInt("PRAGMA freelist_count");
  if (!free_pages.ok()) return free_pages.status();
  if (*free_pages > 0) {
    std::string vacuum = "PRAGMA incremental_vacuum(" + std::to_string(kVacuumPagesPerStep) + ")";
    ES_RETURN_IF_ERROR(db_.Exec(vacuum.c_str()).Annotate("incremental vacuum"));
    if (*free_pages > kVacuumPagesPerStep) return true;
  }
  Status truncated;
  auto truncate = [&] { truncated = db_.Exec("PRAGMA wal_checkpoint(TRUNCATE)"); };
  if (checkpointer_) {
    checkpointer_->WhilePaused(truncate);
  } else {
    truncate();
  }
  ES_RETURN_IF_ERROR(truncated.Annotate("checkpoint"));
  CheckDiskSpace();
  cursors_.clear();  // see ScanCursor: bounds what a clock jump can strand
  return false;
}

}  // namespace edgespool::store
