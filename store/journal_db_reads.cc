// JournalDb's reads and resolutions: FetchPending with leases, MarkSent,
// MarkDead, Release, Requeue, Query, ListDead, and the chunked cleanup.
// (Open, appends and the cap live in journal_db.cc.)
#include <utility>

#include "store/journal_db.h"
#include "store/schema.h"

namespace edgespool::store {
namespace {

// Pages handed back per incremental-vacuum step (1 MiB of page moves).
constexpr int64_t kVacuumPagesPerStep = 256;
constexpr size_t kRecentDeleted = 65536;

MessageState StateFromDb(int64_t s) {
  switch (s) {
    case kStatePending: return MessageState::kPending;
    case kStateSent: return MessageState::kSent;
    case kStateDead: return MessageState::kDead;
    default: return MessageState::kUnknown;
  }
}

}  // namespace

Result<std::vector<StoredMessage>> JournalDb::FetchPending(const FetchSpec& spec) {
  std::vector<StoredMessage> out;
  int64_t now = clock_.WallMs();
  size_t bytes = 0;
  Status s;
  Stmt* scan = &pending_scan_;
  if (spec.min_seq > 0) {
    scan = &pending_scan_live_;
    scan->Bind(1, static_cast<int64_t>(spec.min_seq));
  } else if (spec.priority) {
    scan = &pending_scan_prio_;
    scan->Bind(1, static_cast<int64_t>(*spec.priority));
  }
  while (out.size() < spec.max_messages && scan->Step(&s)) {
    uint64_t seq = static_cast<uint64_t>(scan->Int(0));
    if (leases_.count(seq)) continue;
    if (spec.max_seq > 0 && seq >= spec.max_seq) continue;
    row_by_seq_.Bind(1, static_cast<int64_t>(seq));
    bool take = false;
    StoredMessage sm;
    if (row_by_seq_.Step(&s)) {
      bool expired = !row_by_seq_.IsNull(3) && row_by_seq_.Int(3) <= now;
      std::string topic = row_by_seq_.Text(1);
      bool class_ok = !spec.priority || row_by_seq_.Int(2) == static_cast<int64_t>(*spec.priority);
      if (!expired && class_ok &&
          (spec.topic_filter.empty() || TopicMatches(spec.topic_filter, topic))) {
        take = true;
        sm.seq = seq;
        sm.message.ts_ms = row_by_seq_.Int(0);
        sm.message.topic = std::move(topic);
        sm.message.priority = static_cast<Priority>(row_by_seq_.Int(2));
        if (!row_by_seq_.IsNull(3)) sm.message.expires_at_ms = row_by_seq_.Int(3);
        sm.message.msg_id = row_by_seq_.Text(4);
        if (!DecodeHeaders(row_by_seq_.Blob(5), &sm.message.headers)) {
          s = Status::Corruption("bad headers blob in row " + std::to_string(seq));
        }
        sm.message.payload = row_by_seq_.Blob(6);
        sm.attempts = static_cast<uint32_t>(row_by_seq_.Int(7));
      }
    }
    row_by_seq_.Reset();
    if (!s.ok()) break;
    if (!take) continue;
    if (!out.empty() && bytes + sm.message.payload.size() > spec.max_bytes) break;
    bytes += sm.message.payload.size();
    out.push_back(std::move(sm));
  }
  scan->Reset();
  if (!s.ok()) return s;
  for (const auto& m : out) leases_.insert(m.seq);
  return out;
}

Status JournalDb::MarkSent(const std::vector<uint64_t>& seqs) {
  for (uint64_t seq : seqs) leases_.erase(seq);
  bool keep = options_.sent_retention_ms > 0;
  Stmt& st = keep ? mark_sent_update_ : mark_sent_delete_;
  int64_t now = clock_.WallMs();
  uint64_t n = 0, bytes = 0;
  std::vector<uint64_t> deleted;
  ES_RETURN_IF_ERROR(Begin());
  Status s;
  for (uint64_t seq : seqs) {
    if (keep) {
      st.Bind(1, now);
      st.Bind(2, static_cast<int64_t>(seq));
    } else {
      st.Bind(1, static_cast<int64_t>(seq));
    }
    if (st.Step(&s)) {
      ++n;
      bytes += static_cast<uint64_t>(st.Int(0));
      if (!keep) deleted.push_back(seq);
      while (st.Step(&s)) {
      }
    }
    st.Reset();
    if (!s.ok()) break;
  }
  if (s.ok()) s = Commit();
  if (!s.ok()) {
    Rollback();
    return s.Annotate("mark sent");
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
    mark_dead_.BindText(1, reason);
    mark_dead_.Bind(2, static_cast<int64_t>(seq));
    if (mark_dead_.Step(&s)) {
      ++n;
      bytes += static_cast<uint64_t>(mark_dead_.Int(0));
      while (mark_dead_.Step(&s)) {
      }
    }
    mark_dead_.Reset();
    if (!s.ok()) break;
  }
  if (s.ok()) s = Commit();
  if (!s.ok()) {
    Rollback();
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
  ES_RETURN_IF_ERROR(Begin());
  Status s;
  for (uint64_t seq : seqs) {
    requeue_.Bind(1, static_cast<int64_t>(seq));
    if (requeue_.Step(&s)) {
      ++n;
      bytes += static_cast<uint64_t>(requeue_.Int(0));
      while (requeue_.Step(&s)) {
      }
    }
    requeue_.Reset();
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
    r.state = StateFromDb(query_.Int(0));
    r.attempts = static_cast<uint32_t>(query_.Int(1));
    r.ts_ms = query_.Int(2);
    r.topic = query_.Text(3);
    r.reason = query_.Text(4);
    r.sent_at_ms = query_.IsNull(5) ? 0 : query_.Int(5);
  }
  query_.Reset();
  if (!s.ok()) return s;
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
    auto known = dedupe_.find(msg_id);
    if (known != dedupe_.end()) seq = known->second.seq;
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

Result<bool> JournalDb::CleanupStep() {
  int64_t now = clock_.WallMs();
  struct Expired {
    uint64_t seq;
    int64_t state;
    uint64_t bytes;
    std::string msg_id;
  };
  std::vector<uint64_t> sent;
  std::vector<Expired> expired;
  ES_RETURN_IF_ERROR(Begin());
  Status s;
  delete_sent_.Bind(1, now - options_.sent_retention_ms);
  delete_sent_.Bind(2, kCleanupChunk);
  while (delete_sent_.Step(&s)) sent.push_back(static_cast<uint64_t>(delete_sent_.Int(0)));
  delete_sent_.Reset();
  if (s.ok()) {
    delete_expired_.Bind(1, now);
    delete_expired_.Bind(2, kCleanupChunk);
    while (delete_expired_.Step(&s)) {
      expired.push_back({static_cast<uint64_t>(delete_expired_.Int(0)), delete_expired_.Int(1),
                         static_cast<uint64_t>(delete_expired_.Int(2)), delete_expired_.Text(3)});
    }
    delete_expired_.Reset();
  }
  if (s.ok()) s = Commit();
  if (!s.ok()) {
    Rollback();
    return s.Annotate("cleanup");
  }
  for (uint64_t seq : sent) RememberDeleted(seq, MessageState::kSent, "");
  for (const auto& e : expired) {
    leases_.erase(e.seq);
    RememberDeleted(e.seq, MessageState::kExpired, e.msg_id);
    if (e.state == kStatePending) {
      --stats_.pending_count;
      stats_.pending_bytes -= e.bytes;
      oldest_dirty_ = true;
    } else if (e.state == kStateDead) {
      --stats_.dead_count;
    }
  }
  stats_.expired_total += expired.size();
  if (static_cast<int64_t>(sent.size()) == kCleanupChunk ||
      static_cast<int64_t>(expired.size()) == kCleanupChunk) {
    return true;
  }
  // Rows are gone; hand their pages back to the filesystem a bounded step at
  // a time, then truncate the WAL so the pair shrinks on disk.
  auto free_pages = db_.QueryInt("PRAGMA freelist_count");
  if (!free_pages.ok()) return free_pages.status();
  if (*free_pages > 0) {
    std::string vacuum = "PRAGMA incremental_vacuum(" + std::to_string(kVacuumPagesPerStep) + ")";
    ES_RETURN_IF_ERROR(db_.Exec(vacuum.c_str()).Annotate("incremental vacuum"));
    if (*free_pages > kVacuumPagesPerStep) return true;
  }
  ES_RETURN_IF_ERROR(db_.Exec("PRAGMA wal_checkpoint(TRUNCATE)").Annotate("checkpoint"));
  CheckDiskSpace();
  return false;
}

}  // namespace edgespool::store
