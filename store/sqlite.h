// Thin RAII over the SQLite C API, and the one place SQLite result codes
// become Status (extended codes kept in the message: "disk I/O error
// (SQLITE_IOERR_FSYNC, 1034) on journal.db").
//
// Thread-safety: none. A Db and its Stmts belong to one thread (the store
// thread); SQLite is built threadsafe, but we never share a connection.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "platform/status.h"

namespace edgespool::store {

// Maps an SQLite (extended) result code to a Status. SQLITE_FULL becomes
// kResourceExhausted, corruption codes kCorruption, I/O codes kIoError.
Status SqliteStatus(int rc, sqlite3* db, std::string_view what);

class Stmt;

class Db {
 public:
  Db() = default;
  ~Db();
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  // flags: SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE etc.; vfs: nullptr
  // for the default.
  Status Open(const std::string& path, int flags, const char* vfs = nullptr);
  void Close();
  // Runs one or more statements that return nothing we need.
  Status Exec(const char* sql);
  // Runs a statement returning a single integer (PRAGMA page_count, ...).
  Result<int64_t> QueryInt(const char* sql);
  Result<std::string> QueryText(const char* sql);
  Status Prepare(const char* sql, Stmt* stmt);

  sqlite3* raw() const { return db_; }
  const std::string& path() const { return path_; }
  bool in_transaction() const { return db_ && !sqlite3_get_autocommit(db_); }

 private:
  sqlite3* db_ = nullptr;
  std::string path_;
};

// A prepared statement, reset (bindings cleared) by Reset() or before reuse.
class Stmt {
 public:
  Stmt() = default;
  ~Stmt();
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  void Bind(int i, int64_t v) { sqlite3_bind_int64(stmt_, i, v); }
  void BindNull(int i) { sqlite3_bind_null(stmt_, i); }
  // The bytes must stay alive until Reset() (SQLITE_STATIC: no copy).
  void BindText(int i, std::string_view s) {
    sqlite3_bind_text(stmt_, i, s.data(), static_cast<int>(s.size()), SQLITE_STATIC);
  }
  void BindBlob(int i, std::string_view s) {
    sqlite3_bind_blob(stmt_, i, s.data(), static_cast<int>(s.size()), SQLITE_STATIC);
  }
  // Returns true for a row, false when done; errors land in *status.
  bool Step(Status* status);
  // Steps to completion (statements without rows of interest).
  Status Run();
  void Reset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }

  int64_t Int(int col) const { return sqlite3_column_int64(stmt_, col); }
  bool IsNull(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }
  std::string Text(int col) const;
  std::string Blob(int col) const;

  void Finalize();
  sqlite3_stmt* raw() const { return stmt_; }

 private:
  friend class Db;
  sqlite3_stmt* stmt_ = nullptr;
  sqlite3* db_ = nullptr;
};

}  // namespace edgespool::store
