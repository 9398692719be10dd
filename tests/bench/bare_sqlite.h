// The limit the journal benchmarks compare against: a bare loop of prepared
// INSERTs, 1000 rows per transaction, on the journal's own schema, indexes
// and pragmas (ConfigureConnection, MigrateSchema), with SQLite's automatic
// checkpoint, doing the same work per row as the journal: each
// transaction also adds its rows to the upload queue (`pending`) with one
// INSERT ... SELECT, as a commit group does. Shared by journal_bench and
// producer_bench so that both print ratios to the same thing.
#pragma once

#include <chrono>
#include <cstdio>
#include <string>

#include "store/journal.h"
#include "store/schema.h"
#include "store/sqlite.h"

namespace edgespool::bench {

// Rows per second. with_ids: every row carries a msg_id (as SDK publishes
// do), which the journal indexes. rows_per_txn: 1000 is the limit; smaller
// shows what SQLite itself does at a journal commit group's size.
inline double BareInsertRate(const std::string& path, store::Durability durability, int rows,
                             bool with_ids = false, int rows_per_txn = 1000) {
  using Clock = std::chrono::steady_clock;
  store::Db db;  // opened first: process-wide SQLite settings as the agent has them
  store::JournalOptions o;
  o.path = path;
  o.durability = durability;
  o.max_bytes = 4ull << 30;
  if (!db.Open(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE).ok() ||
      !store::ConfigureConnection(db, o).ok() || !store::MigrateSchema(db).ok()) {
    std::fprintf(stderr, "bare: cannot open %s\n", path.c_str());
    return 0;
  }
  store::Stmt insert;
  if (!db.Prepare("INSERT INTO journal(ts, topic, priority, expires_at, msg_id, headers, payload, "
                  "stored_at) VALUES(?, ?, ?, NULL, ?, NULL, ?, ?)",
                  &insert)
           .ok()) {
    return 0;
  }
  store::Stmt enqueue;
  if (!db.Prepare("INSERT INTO pending(seq, priority, ts, bytes) SELECT seq, priority, ts, "
                  "length(payload) FROM journal WHERE seq > ?1",
                  &enqueue)
           .ok()) {
    return 0;
  }
  std::string payload(200, 'p');
  int64_t last_seq = 0;
  auto start = Clock::now();
  for (int i = 0; i < rows;) {
    (void)db.Exec("BEGIN");
    for (int k = 0; k < rows_per_txn && i < rows; ++k, ++i) {
      std::string topic = "sensors/t" + std::to_string(i % 16);
      std::string id = "bare-" + std::to_string(i);
      insert.Bind(1, 1700000000000 + i);
      insert.BindText(2, topic);
      insert.Bind(3, 1);
      if (with_ids) {
        insert.BindText(4, id);
      } else {
        insert.BindNull(4);
      }
      insert.BindBlob(5, payload);
      insert.Bind(6, 1700000000000 + i);
      Status s = insert.Run();
      insert.Reset();
      if (!s.ok()) {
        std::fprintf(stderr, "bare insert: %s\n", s.ToString().c_str());
        return 0;
      }
    }
    enqueue.Bind(1, last_seq);
    Status s = enqueue.Run();
    enqueue.Reset();
    if (!s.ok()) {
      std::fprintf(stderr, "bare enqueue: %s\n", s.ToString().c_str());
      return 0;
    }
    last_seq = sqlite3_last_insert_rowid(db.raw());
    (void)db.Exec("COMMIT");
  }
  return rows / std::chrono::duration<double>(Clock::now() - start).count();
}

}  // namespace edgespool::bench
