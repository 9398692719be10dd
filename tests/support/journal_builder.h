// A big journal made fast, for the start-up tests and big_journal_bench: the
// store's own schema and pragmas (ConfigureConnection, MigrateSchema), then
// plain INSERTs of 200-byte messages, 50,000 rows a transaction with
// synchronous off, every row pending (a backlog nobody drained), the WAL
// checkpointed into the file at the end. Header-only: the test-support
// library links only platform/.
#pragma once

#include <chrono>
#include <cstdio>
#include <string>

#include "store/journal.h"
#include "store/schema.h"
#include "store/sqlite.h"

namespace edgespool::testing {

// Writes rows until the file reaches `bytes`; returns the rows written, or -1.
// stored_at_ms: every row's arrival time (two hours ago is a backlog built
// up over time; now puts every row inside the dedupe window).
inline int64_t BuildJournal(const std::string& path, uint64_t bytes, int64_t stored_at_ms) {
  store::Db db;
  store::JournalOptions o;
  o.path = path;
  o.durability = store::Durability::kNormal;
  o.max_bytes = bytes + (256ull << 20);
  if (!db.Open(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, store::kJournalVfs).ok() ||
      !store::ConfigureConnection(db, o).ok() || !store::MigrateSchema(db).ok() ||
      !db.Exec("PRAGMA synchronous = OFF; PRAGMA cache_size = -65536").ok()) {
    std::fprintf(stderr, "build: cannot open %s\n", path.c_str());
    return -1;
  }
  store::Stmt insert, enqueue;
  if (!db.Prepare("INSERT INTO journal(ts, topic, priority, payload, stored_at) "
                  "VALUES(?, ?, 1, ?, ?)",
                  &insert)
           .ok() ||
      !db.Prepare("INSERT INTO pending(seq, priority, ts, bytes) SELECT seq, priority, ts, "
                  "length(payload) FROM journal WHERE seq BETWEEN ?1 AND ?2",
                  &enqueue)
           .ok()) {
    return -1;
  }
  std::string payload(200, 'p');
  int64_t rows = 0;
  const int kRowsPerTxn = 50000;
  while (true) {
    auto pages = db.QueryInt("PRAGMA page_count");
    if (!pages.ok() || static_cast<uint64_t>(*pages) * store::kPageSize >= bytes) break;
    if (!db.Exec("BEGIN").ok()) return -1;
    int64_t first = rows + 1;
    for (int k = 0; k < kRowsPerTxn; ++k, ++rows) {
      // Vary the payload a little so pages are not all alike.
      std::snprintf(payload.data(), payload.size(), "{\"n\":%lld,\"v\":%d}",
                    static_cast<long long>(rows), static_cast<int>(rows % 977));
      std::string topic = "sensors/t" + std::to_string(rows % 16);
      insert.Bind(1, stored_at_ms + rows / 100);
      insert.BindText(2, topic);
      insert.BindBlob(3, payload);
      insert.Bind(4, stored_at_ms);
      Status s = insert.Run();
      insert.Reset();
      if (!s.ok()) {
        std::fprintf(stderr, "build: %s\n", s.ToString().c_str());
        return -1;
      }
    }
    enqueue.Bind(1, first);
    enqueue.Bind(2, rows);
    Status s = enqueue.Run();
    enqueue.Reset();
    if (!s.ok() || !db.Exec("COMMIT").ok()) {
      std::fprintf(stderr, "build: %s\n", s.ToString().c_str());
      return -1;
    }
  }
  if (!db.Exec("PRAGMA wal_checkpoint(TRUNCATE)").ok()) return -1;
  return rows;
}

}  // namespace edgespool::testing
