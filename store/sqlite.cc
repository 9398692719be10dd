#include "store/sqlite.h"

namespace edgespool::store {

Status SqliteStatus(int rc, sqlite3* db, std::string_view what) {
  if (rc == SQLITE_OK || rc == SQLITE_DONE || rc == SQLITE_ROW) return Status::Ok();
  std::string msg(what);
  msg += ": ";
  // sqlite3_errmsg describes the most recent failure on this connection,
  // which is this one as long as a connection stays on one thread.
  msg += db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  msg +=
      " (" + std::string(sqlite3_errstr(rc & 0xff)) + ", extended code " + std::to_string(rc) + ")";
  if (db) {
    const char* file = sqlite3_db_filename(db, "main");
    if (file && *file) msg += std::string(" on ") + file;
  }
  switch (rc & 0xff) {
    case SQLITE_FULL:
      return Status::ResourceExhausted(msg);
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
    case SQLITE_FORMAT:
      return Status::Corruption(msg);
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
      return Status::IoError(msg);
    case SQLITE_PERM:
    case SQLITE_READONLY:
    case SQLITE_AUTH:
      return Status::PermissionDenied(msg);
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return Status::Unavailable(msg);
    case SQLITE_NOMEM:
      return Status::ResourceExhausted(msg);
    case SQLITE_CONSTRAINT:
    case SQLITE_MISMATCH:
    case SQLITE_RANGE:
    case SQLITE_TOOBIG:
      return Status::InvalidArgument(msg);
    default:
      return Status::Internal(msg);
  }
}

Db::~Db() { Close(); }

namespace {
// SQLite counts every allocation under a process-wide mutex unless told not
// to (SQLITE_CONFIG_MEMSTATUS); nothing here reads those counters, and the
// lock/unlock pair per malloc showed as ~7% of an append-bound profile.
// Must precede sqlite3_initialize; if something initialized SQLite first,
// sqlite3_config fails harmlessly and the counters stay on.
void ConfigureSqliteOnce() {
  static const bool once = [] {
    (void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    return true;
  }();
  (void)once;
}
}  // namespace

Status Db::Open(const std::string& path, int flags, const char* vfs) {
  Close();
  ConfigureSqliteOnce();
  path_ = path;
  int rc = sqlite3_open_v2(path.c_str(), &db_, flags | SQLITE_OPEN_NOMUTEX, vfs);
  if (rc != SQLITE_OK) {
    Status s = SqliteStatus(rc, db_, "open " + path);
    Close();
    return s;
  }
  sqlite3_extended_result_codes(db_, 1);
  return Status::Ok();
}

void Db::Close() {
  if (db_) {
    // sqlite3_close_v2 defers the close until every statement is finalized,
    // so a Stmt outliving its Db by mistake is not a use-after-free.
    sqlite3_close_v2(db_);
    db_ = nullptr;
  }
}

Status Db::Exec(const char* sql) {
  char* err = nullptr;
  int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &err);
  sqlite3_free(err);
  return SqliteStatus(rc, db_, sql);
}

Result<int64_t> Db::QueryInt(const char* sql) {
  Stmt st;
  ES_RETURN_IF_ERROR(Prepare(sql, &st));
  Status s;
  if (!st.Step(&s)) {
    if (!s.ok()) return s;
    return Status::Internal(std::string("no row from ") + sql);
  }
  return st.Int(0);
}

Result<std::string> Db::QueryText(const char* sql) {
  Stmt st;
  ES_RETURN_IF_ERROR(Prepare(sql, &st));
  Status s;
  if (!st.Step(&s)) {
    if (!s.ok()) return s;
    return Status::Internal(std::string("no row from ") + sql);
  }
  return st.Text(0);
}

Status Db::Prepare(const char* sql, Stmt* stmt) {
  stmt->Finalize();
  int rc = sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt->stmt_, nullptr);
  stmt->db_ = db_;
  return SqliteStatus(rc, db_, std::string("prepare ") + sql);
}

Stmt::~Stmt() { Finalize(); }

void Stmt::Finalize() {
  if (stmt_) sqlite3_finalize(stmt_);
  stmt_ = nullptr;
}

bool Stmt::Step(Status* status) {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc != SQLITE_DONE) *status = SqliteStatus(rc, db_, sqlite3_sql(stmt_));
  return false;
}

Status Stmt::Run() {
  Status s;
  while (Step(&s)) {
  }
  sqlite3_reset(stmt_);
  return s;
}

std::string Stmt::Text(int col) const {
  const unsigned char* p = sqlite3_column_text(stmt_, col);
  int n = sqlite3_column_bytes(stmt_, col);
  return p ? std::string(reinterpret_cast<const char*>(p), n) : std::string();
}

std::string Stmt::Blob(int col) const {
  const void* p = sqlite3_column_blob(stmt_, col);
  int n = sqlite3_column_bytes(stmt_, col);
  return p ? std::string(static_cast<const char*>(p), n) : std::string();
}

}  // namespace edgespool::store
