// JournalDb's scheduled delivery: rows stored with a deliver_at in the future
// wait in `scheduled` and move to `pending` when due. Format and the reasons
// for a table of their own: schema.cc, "SCHEDULED DELIVERY".
#include <algorithm>
#include <climits>

#include "store/journal_db.h"
#include "store/schema.h"

namespace edgespool::store {

Status JournalDb::PrepareSchedule() {
  struct {
    Stmt* stmt;
    const char* sql;
  } const kStatements[] = {
      // The row was just enqueued with the rest of its group (InsertRows):
      // copy its queue entry with the due time, then take it off the queue.
      {&schedule_,
       "INSERT INTO scheduled(seq, due_at, priority, ts, bytes) "
       "SELECT seq, ?2, priority, ts, bytes FROM pending WHERE seq = ?1"},
      // Due rows keep their original (priority, ts): they join the upload
      // order where their timestamp puts them.
      {&promote_,
       "INSERT INTO pending(seq, priority, ts, bytes) "
       "SELECT seq, priority, ts, bytes FROM scheduled WHERE due_at <= ?1 "
       "RETURNING ts, bytes"},
      {&unschedule_due_, "DELETE FROM scheduled WHERE due_at <= ?1"},
      {&unschedule_one_, "DELETE FROM scheduled WHERE seq = ?1"},
      {&next_due_, "SELECT min(due_at) FROM scheduled"},
      {&scheduled_sum_, "SELECT count(*) FROM scheduled"},
      {&scheduled_due_at_, "SELECT due_at FROM scheduled WHERE seq = ?1"},
  };
  for (const auto& s : kStatements) ES_RETURN_IF_ERROR(db_.Prepare(s.sql, s.stmt));
  return Status::Ok();
}

Status JournalDb::LoadScheduleState() {
  Status s;
  if (scheduled_sum_.Step(&s))
    stats_.scheduled_count = static_cast<uint64_t>(scheduled_sum_.Int(0));
  scheduled_sum_.Reset();
  ES_RETURN_IF_ERROR(s);
  next_due_ms_ = INT64_MAX;
  if (next_due_.Step(&s) && !next_due_.IsNull(0)) next_due_ms_ = next_due_.Int(0);
  next_due_.Reset();
  return s;
}

Status JournalDb::ScheduleRow(uint64_t seq, int64_t due_ms) {
  schedule_.Bind(1, static_cast<int64_t>(seq));
  schedule_.Bind(2, due_ms);
  Status s = schedule_.Run();
  schedule_.Reset();
  if (!s.ok()) return s;
  unqueue_one_.Bind(1, static_cast<int64_t>(seq));
  while (unqueue_one_.Step(&s)) {
  }
  unqueue_one_.Reset();
  return s;
}

Result<size_t> JournalDb::PromoteDue(int64_t now_ms) {
  if (next_due_ms_ > now_ms) return size_t{0};
  ES_RETURN_IF_ERROR(Begin());
  size_t n = 0;
  uint64_t bytes = 0;
  int64_t min_ts = INT64_MAX;
  Status s;
  promote_.Bind(1, now_ms);
  while (promote_.Step(&s)) {
    ++n;
    min_ts = std::min(min_ts, promote_.Int(0));
    bytes += static_cast<uint64_t>(promote_.Int(1));
  }
  promote_.Reset();
  if (s.ok()) {
    unschedule_due_.Bind(1, now_ms);
    s = unschedule_due_.Run();
    unschedule_due_.Reset();
  }
  if (s.ok()) s = Commit();
  if (!s.ok()) {
    Rollback();
    return s.Annotate("promoting scheduled rows");
  }
  if (n > 0) {
    // Their (priority, ts) may lie behind any scan cursor: scans start over
    // (leased rows are still skipped by the lease set).
    cursors_.clear();
    if (counting_) {
      oldest_dirty_ = true;  // the backlog's oldest is not known here
    } else if (stats_.pending_count == 0 || min_ts < stats_.oldest_pending_ts_ms) {
      stats_.oldest_pending_ts_ms = min_ts;
    }
    stats_.pending_count += n;
    stats_.pending_bytes += bytes;
    stats_.scheduled_count -= std::min<uint64_t>(n, stats_.scheduled_count);
  }
  next_due_ms_ = INT64_MAX;
  if (next_due_.Step(&s) && !next_due_.IsNull(0)) next_due_ms_ = next_due_.Int(0);
  next_due_.Reset();
  if (!s.ok()) return s;
  return n;
}

}  // namespace edgespool::store
