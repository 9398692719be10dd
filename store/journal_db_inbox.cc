// JournalDb's downlink: the inbox rows and consumer sessions that join a
// commit group (GroupWrite), the inbox cap, ReadInbox, TrimInbox, inbox
// expiry and the sessions table. Format and rules: schema.cc, "THE INBOX
// AND CONSUMER SESSIONS".
#include <algorithm>
#include <cstdint>
#include <utility>

#include "store/journal_db.h"
#include "store/schema.h"

namespace edgespool::store {
namespace {

// Inbox rows deleted per TrimInbox transaction: ~1-2 ms of deletes (as
// kCleanupChunk is for the journal), so one trim's transactions stay short
// for the WAL and its checkpointer.
constexpr int64_t kTrimChunk = 1024;

void BindOptionalText(Stmt& st, int i, const std::string& s) {
  if (s.empty()) {
    st.BindNull(i);
  } else {
    st.BindText(i, s);
  }
}

void BindOptionalBlob(Stmt& st, int i, const std::string& s) {
  if (s.empty()) {
    st.BindNull(i);
  } else {
    st.BindBlob(i, s);
  }
}

std::string JoinFilters(const std::vector<std::string>& filters) {
  std::string out;
  for (size_t i = 0; i < filters.size(); ++i) {
    if (i) out += '\n';
    out += filters[i];
  }
  return out;
}

std::vector<std::string> SplitFilters(const std::string& joined) {
  std::vector<std::string> out;
  if (joined.empty()) return out;
  size_t pos = 0;
  while (true) {
    size_t nl = joined.find('\n', pos);
    out.push_back(joined.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos));
    if (nl == std::string::npos) break;
    pos = nl + 1;
  }
  return out;
}

}  // namespace

Status JournalDb::PrepareInbox() {
  struct {
    Stmt* stmt;
    const char* sql;
  } const kStatements[] = {
      {&inbox_insert_,
       "INSERT INTO inbox(received_at, topic, broker_topic, expires_at, headers, "
       "response_topic, correlation, payload) VALUES(?, ?, ?, ?, ?, ?, ?, ?)"},
      // The payload is read only when asked for (the CASE is evaluated per
      // row, so a size-only read never loads overflow pages); length() comes
      // from the record header either way.
      {&inbox_read_,
       "SELECT seq, received_at, topic, broker_topic, expires_at, headers, response_topic, "
       "correlation, length(payload), CASE WHEN ?2 THEN payload END FROM inbox "
       "WHERE seq > ?1 ORDER BY seq"},
      // The cap drops oldest first: a prefix of the inbox in seq order, so
      // the delete is one range.
      {&inbox_oldest_, "SELECT seq, length(payload) FROM inbox ORDER BY seq"},
      {&inbox_drop_upto_, "DELETE FROM inbox WHERE seq <= ?1"},
      {&inbox_trim_,
       "DELETE FROM inbox WHERE seq IN (SELECT seq FROM inbox WHERE seq < ?1 AND "
       "received_at < ?2 ORDER BY seq LIMIT ?3) RETURNING length(payload)"},
      {&inbox_expire_,
       "DELETE FROM inbox WHERE seq IN (SELECT seq FROM inbox WHERE expires_at <= ?1 LIMIT ?2) "
       "RETURNING length(payload)"},
      {&session_upsert_,
       "INSERT INTO consumer_sessions(name, filters, acked, last_seen, dropped) "
       "VALUES(?1, ?2, ?3, ?4, ?5) ON CONFLICT(name) DO UPDATE SET filters = excluded.filters, "
       "acked = excluded.acked, last_seen = excluded.last_seen, dropped = excluded.dropped"},
      {&session_delete_, "DELETE FROM consumer_sessions WHERE name = ?1"},
      {&session_load_,
       "SELECT name, filters, acked, last_seen, dropped FROM consumer_sessions ORDER BY name"},
  };
  for (const auto& s : kStatements) ES_RETURN_IF_ERROR(db_.Prepare(s.sql, s.stmt));
  return Status::Ok();
}

Status JournalDb::LoadInboxState() {
  Stmt st;
  ES_RETURN_IF_ERROR(
      db_.Prepare("SELECT count(*), ifnull(sum(length(payload)), 0) FROM inbox", &st));
  Status s;
  if (st.Step(&s)) {
    stats_.inbox_count = static_cast<uint64_t>(st.Int(0));
    stats_.inbox_bytes = static_cast<uint64_t>(st.Int(1));
  }
  ES_RETURN_IF_ERROR(s);
  // The high-water mark survives deletes: sqlite_sequence, not max(seq).
  ES_RETURN_IF_ERROR(db_.Prepare("SELECT seq FROM sqlite_sequence WHERE name = 'inbox'", &st));
  if (st.Step(&s)) stats_.inbox_head_seq = static_cast<uint64_t>(st.Int(0));
  return s;
}

Status JournalDb::WriteGroupItem(AppendItem* item) {
  const GroupWrite& w = *item->write;
  item->stored = false;
  item->outcome = AppendOutcome{};
  if (w.kind == GroupWrite::Kind::kInbound) return InsertInbound(item);
  if (w.kind == GroupWrite::Kind::kSaveSession) {
    for (const auto& f : w.session.filters) {
      if (f.find('\n') != std::string::npos) {
        item->outcome = Status::InvalidArgument("session filter contains a newline");
        return Status::Ok();
      }
    }
  }
  return WriteSession(w);
}

Status JournalDb::InsertInbound(AppendItem* item) {
  const InboundMessage& m = item->write->inbound;
  uint64_t size = m.payload.size();
  if (size > options_.inbox_max_bytes) {
    item->outcome = Status::ResourceExhausted("inbox_full: a " + std::to_string(size) +
                                              "-byte message exceeds the inbox cap of " +
                                              std::to_string(options_.inbox_max_bytes) + " bytes");
    return Status::Ok();
  }
  ES_RETURN_IF_ERROR(MakeInboxRoom(size));
  std::string headers = EncodeHeaders(m.headers);
  inbox_insert_.Bind(1, m.received_ms);
  inbox_insert_.BindText(2, m.topic);
  inbox_insert_.BindText(3, m.broker_topic);
  if (m.expires_at_ms) {
    inbox_insert_.Bind(4, *m.expires_at_ms);
  } else {
    inbox_insert_.BindNull(4);
  }
  BindOptionalBlob(inbox_insert_, 5, headers);
  BindOptionalText(inbox_insert_, 6, m.response_topic);
  BindOptionalBlob(inbox_insert_, 7, m.correlation);
  // A zero-length blob must not bind as NULL (payload is NOT NULL).
  sqlite3_bind_blob(inbox_insert_.raw(), 8, m.payload.empty() ? "" : m.payload.data(),
                    static_cast<int>(m.payload.size()), SQLITE_STATIC);
  Status s = inbox_insert_.Run();
  inbox_insert_.Reset();
  ES_RETURN_IF_ERROR(s);
  uint64_t seq = static_cast<uint64_t>(sqlite3_last_insert_rowid(db_.raw()));
  item->outcome = AppendOutcome{seq, false};
  ++inbox_delta_.appended;
  inbox_delta_.added_bytes += size;
  inbox_delta_.head_seq = seq;
  return Status::Ok();
}

Status JournalDb::MakeInboxRoom(uint64_t incoming) {
  uint64_t held = stats_.inbox_bytes + inbox_delta_.added_bytes - inbox_delta_.dropped_bytes;
  if (held + incoming <= options_.inbox_max_bytes) return Status::Ok();
  uint64_t need = held + incoming - options_.inbox_max_bytes;
  uint64_t freed = 0, n = 0;
  int64_t last = 0;
  Status s;
  // Rows this group inserted are visible here too: a group larger than the
  // cap drops its own first rows (acked, then dropped: counted as such).
  while (freed < need && inbox_oldest_.Step(&s)) {
    last = inbox_oldest_.Int(0);
    freed += static_cast<uint64_t>(inbox_oldest_.Int(1));
    ++n;
  }
  inbox_oldest_.Reset();
  ES_RETURN_IF_ERROR(s);
  if (n == 0) return Status::Ok();
  inbox_drop_upto_.Bind(1, last);
  s = inbox_drop_upto_.Run();
  inbox_drop_upto_.Reset();
  ES_RETURN_IF_ERROR(s);
  inbox_delta_.dropped += n;
  inbox_delta_.dropped_bytes += freed;
  return Status::Ok();
}

Status JournalDb::WriteSession(const GroupWrite& w) {
  Stmt& st = w.kind == GroupWrite::Kind::kSaveSession ? session_upsert_ : session_delete_;
  std::string filters;
  st.BindText(1, w.session.name);
  if (w.kind == GroupWrite::Kind::kSaveSession) {
    filters = JoinFilters(w.session.filters);
    st.BindText(2, filters);
    st.Bind(3, static_cast<int64_t>(w.session.acked));
    st.Bind(4, w.session.last_seen_ms);
    st.Bind(5, static_cast<int64_t>(w.session.dropped));
  }
  Status s = st.Run();
  st.Reset();
  return s;
}

void JournalDb::SettleInbox(bool committed) {
  InboxDelta d = inbox_delta_;
  inbox_delta_ = InboxDelta{};
  if (!committed) return;
  stats_.inbox_count += d.appended;
  stats_.inbox_count -= d.dropped;
  stats_.inbox_bytes += d.added_bytes;
  stats_.inbox_bytes -= d.dropped_bytes;
  stats_.inbox_appended_total += d.appended;
  stats_.inbox_dropped_total += d.dropped;
  stats_.inbox_dropped_bytes_total += d.dropped_bytes;
  stats_.inbox_head_seq = std::max(stats_.inbox_head_seq, d.head_seq);
}

Result<std::vector<StoredInbound>> JournalDb::ReadInbox(const InboxReadSpec& spec) {
  std::vector<StoredInbound> out;
  int64_t now = clock_.WallMs();
  size_t bytes = 0;
  Status s;
  Stmt& st = inbox_read_;
  st.Bind(1, static_cast<int64_t>(spec.after_seq));
  st.Bind(2, spec.with_payload ? 1 : 0);
  while (out.size() < spec.max_messages && st.Step(&s)) {
    if (!st.IsNull(4) && st.Int(4) <= now) continue;  // expired: Cleanup deletes it
    auto size = static_cast<uint64_t>(st.Int(8));
    if (spec.with_payload) {
      if (!out.empty() && bytes + size > spec.max_bytes) break;
      bytes += size;
    }
    StoredInbound r;
    r.seq = static_cast<uint64_t>(st.Int(0));
    r.payload_bytes = size;
    InboundMessage& m = r.message;
    m.received_ms = st.Int(1);
    m.topic = st.Text(2);
    m.broker_topic = st.Text(3);
    if (!st.IsNull(4)) m.expires_at_ms = st.Int(4);
    if (!DecodeHeaders(st.Blob(5), &m.headers)) {
      s = Status::Corruption("bad headers blob in inbox row " + std::to_string(r.seq));
      break;
    }
    m.response_topic = st.Text(6);
    m.correlation = st.Blob(7);
    if (spec.with_payload) m.payload = st.Blob(9);
    out.push_back(std::move(r));
  }
  st.Reset();
  if (!s.ok()) return s.Annotate("read inbox");
  return out;
}

Status JournalDb::TrimInbox(uint64_t below_seq, int64_t received_before_ms) {
  for (;;) {
    ES_RETURN_IF_ERROR(Begin());
    uint64_t n = 0, bytes = 0;
    Status s;
    inbox_trim_.Bind(1, static_cast<int64_t>(std::min<uint64_t>(below_seq, INT64_MAX)));
    inbox_trim_.Bind(2, received_before_ms);
    inbox_trim_.Bind(3, kTrimChunk);
    while (inbox_trim_.Step(&s)) {
      ++n;
      bytes += static_cast<uint64_t>(inbox_trim_.Int(0));
    }
    inbox_trim_.Reset();
    if (s.ok()) s = Commit();
    if (!s.ok()) {
      Rollback();
      return s.Annotate("trim inbox");
    }
    stats_.inbox_count -= n;
    stats_.inbox_bytes -= bytes;
    if (static_cast<int64_t>(n) < kTrimChunk) return Status::Ok();
  }
}

Status JournalDb::ExpireInbox(int64_t now_ms, uint64_t* n, uint64_t* bytes) {
  Status s;
  inbox_expire_.Bind(1, now_ms);
  inbox_expire_.Bind(2, kCleanupChunk);
  while (inbox_expire_.Step(&s)) {
    ++*n;
    *bytes += static_cast<uint64_t>(inbox_expire_.Int(0));
  }
  inbox_expire_.Reset();
  return s;
}

Result<std::vector<ConsumerSessionRecord>> JournalDb::LoadConsumerSessions() {
  std::vector<ConsumerSessionRecord> out;
  Status s;
  while (session_load_.Step(&s)) {
    ConsumerSessionRecord r;
    r.name = session_load_.Text(0);
    r.filters = SplitFilters(session_load_.Text(1));
    r.acked = static_cast<uint64_t>(session_load_.Int(2));
    r.last_seen_ms = session_load_.Int(3);
    r.dropped = static_cast<uint64_t>(session_load_.Int(4));
    out.push_back(std::move(r));
  }
  session_load_.Reset();
  if (!s.ok()) return s.Annotate("load consumer sessions");
  return out;
}

}  // namespace edgespool::store
