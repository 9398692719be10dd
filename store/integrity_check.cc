#include "store/integrity_check.h"

#include <algorithm>
#include <chrono>
#include <utility>
#include <vector>

#include "platform/clock.h"
#include "platform/files.h"
#include "platform/log.h"
#include "platform/process_info.h"
#include "store/schema.h"

namespace edgespool::store {
namespace {

// Every b-tree of schema version 5, each as (first step, next steps, key
// columns). Tables are walked by rowid with every column read; indexes with
// covering queries INDEXED BY them (the table is not touched), partial ones
// under their own WHERE. A table added by a later schema version belongs
// here too.
struct Tree {
  const char* name;
  const char* first;  // ?1: LIMIT
  const char* next;   // ?1..?keys: the last key of the step before; ?keys+1: LIMIT
  int keys;
};

#define ES_TABLE(t)                                                              \
  Tree {                                                                         \
    t, "SELECT rowid, * FROM " t " ORDER BY rowid LIMIT ?1",                     \
        "SELECT rowid, * FROM " t " WHERE rowid > ?1 ORDER BY rowid LIMIT ?2", 1 \
  }

const Tree kTrees[] = {
    ES_TABLE("sqlite_schema"),
    ES_TABLE("sqlite_sequence"),
    ES_TABLE("journal"),
    ES_TABLE("pending"),
    ES_TABLE("sent"),
    ES_TABLE("scheduled"),
    ES_TABLE("inbox"),
    ES_TABLE("consumer_sessions"),
    {"pending_order",
     "SELECT priority, ts, seq FROM pending INDEXED BY pending_order "
     "ORDER BY priority, ts, seq LIMIT ?1",
     "SELECT priority, ts, seq FROM pending INDEXED BY pending_order "
     "WHERE (priority, ts, seq) > (?1, ?2, ?3) ORDER BY priority, ts, seq LIMIT ?4",
     3},
    {"journal_msg_id",
     "SELECT msg_id, seq FROM journal INDEXED BY journal_msg_id WHERE msg_id IS NOT NULL "
     "ORDER BY msg_id, seq LIMIT ?1",
     "SELECT msg_id, seq FROM journal INDEXED BY journal_msg_id WHERE msg_id IS NOT NULL "
     "AND (msg_id, seq) > (?1, ?2) ORDER BY msg_id, seq LIMIT ?3",
     2},
    {"journal_expiry",
     "SELECT expires_at, seq FROM journal INDEXED BY journal_expiry "
     "WHERE expires_at IS NOT NULL ORDER BY expires_at, seq LIMIT ?1",
     "SELECT expires_at, seq FROM journal INDEXED BY journal_expiry "
     "WHERE expires_at IS NOT NULL AND (expires_at, seq) > (?1, ?2) "
     "ORDER BY expires_at, seq LIMIT ?3",
     2},
    {"journal_dead",
     "SELECT seq FROM journal INDEXED BY journal_dead WHERE state = 2 ORDER BY seq LIMIT ?1",
     "SELECT seq FROM journal INDEXED BY journal_dead WHERE state = 2 AND seq > ?1 "
     "ORDER BY seq LIMIT ?2",
     1},
    {"scheduled_due",
     "SELECT due_at, seq FROM scheduled INDEXED BY scheduled_due ORDER BY due_at, seq LIMIT ?1",
     "SELECT due_at, seq FROM scheduled INDEXED BY scheduled_due WHERE (due_at, seq) > (?1, ?2) "
     "ORDER BY due_at, seq LIMIT ?3",
     2},
    {"inbox_expiry",
     "SELECT expires_at, seq FROM inbox INDEXED BY inbox_expiry "
     "WHERE expires_at IS NOT NULL ORDER BY expires_at, seq LIMIT ?1",
     "SELECT expires_at, seq FROM inbox INDEXED BY inbox_expiry "
     "WHERE expires_at IS NOT NULL AND (expires_at, seq) > (?1, ?2) "
     "ORDER BY expires_at, seq LIMIT ?3",
     2},
    // Its primary key's automatic index.
    {"consumer_sessions(name)", "SELECT name FROM consumer_sessions ORDER BY name LIMIT ?1",
     "SELECT name FROM consumer_sessions WHERE name > ?1 ORDER BY name LIMIT ?2", 1},
};
#undef ES_TABLE

int64_t NowNs() { return platform::SystemClock::Get().MonotonicNs(); }

// A key column of the last row of a step: integer or text (the schema has
// no other key types).
struct Key {
  bool is_int = true;
  int64_t i = 0;
  std::string s;
};

}  // namespace

Result<std::unique_ptr<IntegrityCheck>> IntegrityCheck::Start(const JournalOptions& options,
                                                              int64_t delay_ms) {
  std::unique_ptr<IntegrityCheck> c(new IntegrityCheck(options.path));
  ES_RETURN_IF_ERROR(c->db_.Open(options.path, SQLITE_OPEN_READWRITE, kJournalVfs));
  ES_RETURN_IF_ERROR(
      SqliteStatus(sqlite3_busy_timeout(c->db_.raw(), 1000), c->db_.raw(), "busy_timeout"));
  // query_only: this connection never writes. cell_size_check: SQLite
  // verifies every cell's extent as it loads a page (off by default for
  // speed), which is what makes a walk a check. A small cache: the walk
  // reads each page once.
  ES_RETURN_IF_ERROR(c->db_.Exec(
      "PRAGMA query_only = ON; PRAGMA cell_size_check = ON; PRAGMA cache_size = -1024"));
  c->thread_ = std::thread([p = c.get(), delay_ms] {
    platform::SetThreadName("es-check");
    p->ThreadMain(delay_ms);
  });
  return c;
}

IntegrityCheck::~IntegrityCheck() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool IntegrityCheck::Sleep(int64_t ms) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, std::chrono::milliseconds(ms), [this] { return stop_; });
  return !stop_;
}

void IntegrityCheck::ThreadMain(int64_t delay_ms) {
  if (!Sleep(delay_ms)) return;
  int64_t start = NowNs();
  for (const Tree& t : kTrees) {
    Status s = Walk(t.name, t.first, t.next, t.keys);
    if (s.code() == Code::kCancelled) return;
    if (s.code() == Code::kCorruption) {
      Fail(t.name, s);
      return;
    }
    if (!s.ok()) {
      // Not the file's fault (an I/O error, memory): no verdict this time.
      ES_LOG_WARN("journal integrity check abandoned",
                  {{"path", path_}, {"tree", t.name}, {"reason", s.ToString()}});
      return;
    }
  }
  passes_.fetch_add(1);
  ES_LOG_INFO("journal integrity check passed",
              {{"path", path_}, {"seconds", std::to_string((NowNs() - start) / 1000000000)}});
}

Status IntegrityCheck::Walk(const char* name, const char* first_sql, const char* next_sql,
                            int keys) {
  Stmt first, next;
  Status s = db_.Prepare(first_sql, &first);
  if (s.ok()) s = db_.Prepare(next_sql, &next);
  if (!s.ok()) return s;
  std::vector<Key> last(static_cast<size_t>(keys));
  bool started = false;
  while (true) {
    int64_t step_start = NowNs();
    Stmt& st = started ? next : first;
    int limit_param = started ? keys + 1 : 1;
    if (started) {
      for (int k = 0; k < keys; ++k) {
        const Key& key = last[static_cast<size_t>(k)];
        if (key.is_int) {
          st.Bind(k + 1, key.i);
        } else {
          st.BindText(k + 1, key.s);
        }
      }
    }
    st.Bind(limit_param, kStepRows);
    int rows = 0;
    int cols = sqlite3_column_count(st.raw());
    while (st.Step(&s)) {
      ++rows;
      // Every column, blobs and text in full: an overflow chain is followed
      // only when the value is read.
      for (int c = 0; c < cols; ++c) {
        int type = sqlite3_column_type(st.raw(), c);
        if (type == SQLITE_BLOB) (void)sqlite3_column_blob(st.raw(), c);
        if (type == SQLITE_TEXT) (void)sqlite3_column_text(st.raw(), c);
        (void)sqlite3_column_bytes(st.raw(), c);
      }
      for (int k = 0; k < keys; ++k) {
        Key& key = last[static_cast<size_t>(k)];
        key.is_int = sqlite3_column_type(st.raw(), k) == SQLITE_INTEGER;
        if (key.is_int) {
          key.i = st.Int(k);
        } else {
          key.s = st.Text(k);
        }
      }
    }
    st.Reset();
    if (!s.ok()) return s.Annotate(std::string("walking ") + name);
    started = true;
    if (rows < kStepRows) return Status::Ok();
    // Half duty: as long asleep as the step took.
    int64_t took_ms = (NowNs() - step_start) / 1000000;
    if (!Sleep(std::max<int64_t>(1, took_ms))) return Status::Cancelled("stopping");
  }
}

void IntegrityCheck::Fail(const std::string& tree, const Status& s) {
  failures_.fetch_add(1);
  std::string marker = MarkerPath(path_);
  Status w = platform::WriteFileAtomic(marker, s.ToString() + "\n");
  ES_LOG_ERROR(
      "journal corrupt: found by the background integrity check; the next start "
      "runs the full check and moves the file aside if it fails",
      {{"path", path_},
       {"tree", tree},
       {"reason", s.ToString()},
       {"marker", w.ok() ? marker : "cannot write " + marker + ": " + w.ToString()}});
}

}  // namespace edgespool::store
