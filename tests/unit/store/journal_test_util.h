// Helpers for journal tests: a loop plus synchronous wrappers that run the
// loop until the journal's callback has arrived.
#pragma once

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <memory>
#include <string>
#include <vector>

#include "platform/clock.h"
#include "platform/loop.h"
#include "store/journal.h"
#include "tests/support/test_env.h"

namespace edgespool::store::testutil {

inline Message Msg(std::string topic, int64_t ts, std::string payload,
                   Priority priority = Priority::kNormal, std::string id = "") {
  Message m;
  m.topic = std::move(topic);
  m.ts_ms = ts;
  m.payload = std::move(payload);
  m.priority = priority;
  m.msg_id = std::move(id);
  return m;
}

// Writes a journal as schema version 1 left it (state column, partial
// indexes), with the rows `rows_sql` inserts, for migration tests.
inline void WriteVersion1Journal(const std::string& path, const std::string& rows_sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  std::string sql =
      "PRAGMA page_size = 4096; PRAGMA auto_vacuum = INCREMENTAL; PRAGMA journal_mode = WAL;"
      "CREATE TABLE journal(seq INTEGER PRIMARY KEY AUTOINCREMENT, ts INTEGER NOT NULL,"
      "  topic TEXT NOT NULL, priority INTEGER NOT NULL, expires_at INTEGER, msg_id TEXT,"
      "  headers BLOB, payload BLOB NOT NULL, state INTEGER NOT NULL DEFAULT 0,"
      "  attempts INTEGER NOT NULL DEFAULT 0, sent_at INTEGER, reason TEXT,"
      "  stored_at INTEGER NOT NULL);"
      "CREATE INDEX journal_pending ON journal(priority, ts, seq) WHERE state = 0;"
      "CREATE INDEX journal_sent ON journal(sent_at) WHERE state = 1;"
      "CREATE INDEX journal_dead ON journal(seq) WHERE state = 2;"
      "CREATE INDEX journal_expiry ON journal(expires_at) WHERE expires_at IS NOT NULL;"
      "CREATE INDEX journal_msg_id ON journal(msg_id) WHERE msg_id IS NOT NULL;" +
      rows_sql + "PRAGMA user_version = 1;";
  char* err = nullptr;
  EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err), SQLITE_OK) << (err ? err : "");
  sqlite3_free(err);
  sqlite3_close(db);  // checkpoints: everything is in the database file
}

// Writes a journal as schema version 3 left it: version 1's tables with
// the 1 -> 2 and 2 -> 3 migrations applied as they were written, the rows
// `rows_sql` inserts into `journal` (and `pending`) already there.
inline void WriteVersion3Journal(const std::string& path, const std::string& rows_sql) {
  WriteVersion1Journal(path, "");
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  std::string sql =
      "CREATE TABLE pending(seq INTEGER PRIMARY KEY, priority INTEGER NOT NULL,"
      "  ts INTEGER NOT NULL, bytes INTEGER NOT NULL);"
      "CREATE INDEX pending_order ON pending(priority, ts);"
      "CREATE TABLE sent(seq INTEGER PRIMARY KEY, sent_at INTEGER NOT NULL);"
      "DROP INDEX journal_pending; DROP INDEX journal_sent;"
      "CREATE TRIGGER journal_forget AFTER DELETE ON journal BEGIN"
      "  DELETE FROM pending WHERE seq = old.seq; DELETE FROM sent WHERE seq = old.seq; END;" +
      rows_sql + "PRAGMA user_version = 3;";
  char* err = nullptr;
  EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err), SQLITE_OK) << (err ? err : "");
  sqlite3_free(err);
  sqlite3_close(db);
}

// Writes a journal as schema version 4 left it: version 3 plus the 3 -> 4
// migration (the inbox and the consumer sessions) as it was written.
inline void WriteVersion4Journal(const std::string& path, const std::string& rows_sql) {
  WriteVersion3Journal(path, rows_sql);
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  const char* sql =
      "CREATE TABLE inbox(seq INTEGER PRIMARY KEY AUTOINCREMENT, received_at INTEGER NOT NULL,"
      "  topic TEXT NOT NULL, broker_topic TEXT NOT NULL, expires_at INTEGER, headers BLOB,"
      "  response_topic TEXT, correlation BLOB, payload BLOB NOT NULL);"
      "CREATE INDEX inbox_expiry ON inbox(expires_at) WHERE expires_at IS NOT NULL;"
      "CREATE TABLE consumer_sessions(name TEXT PRIMARY KEY, filters TEXT NOT NULL,"
      "  acked INTEGER NOT NULL, last_seen INTEGER NOT NULL, dropped INTEGER NOT NULL);"
      "PRAGMA user_version = 4;";
  char* err = nullptr;
  EXPECT_EQ(sqlite3_exec(db, sql, nullptr, nullptr, &err), SQLITE_OK) << (err ? err : "");
  sqlite3_free(err);
  sqlite3_close(db);
}

inline InboundMessage Inbound(std::string topic, std::string payload, int64_t received_ms = 1000) {
  InboundMessage m;
  m.topic = topic;
  m.broker_topic = "edgespool/gw1/" + topic;
  m.received_ms = received_ms;
  m.payload = std::move(payload);
  return m;
}

inline std::vector<uint64_t> InboxSeqs(const std::vector<StoredInbound>& rows) {
  std::vector<uint64_t> seqs;
  for (const auto& r : rows) seqs.push_back(r.seq);
  return seqs;
}

// The seqs of fetched rows, in their order.
inline std::vector<uint64_t> Seqs(const std::vector<StoredMessage>& rows) {
  std::vector<uint64_t> seqs;
  for (const auto& m : rows) seqs.push_back(m.seq);
  return seqs;
}

// A fetch spec that leases every pending row.
inline FetchSpec EveryPending() {
  FetchSpec spec;
  spec.max_messages = 1u << 20;
  spec.max_bytes = 1u << 30;
  return spec;
}

// Runs the loop until *flag turns true (the journal keeps the loop alive
// while a callback is outstanding, so Run() returns once all have run).
inline void RunUntil(platform::Loop& loop, const bool& flag) {
  while (!flag) {
    if (!loop.RunOnce() && !flag) {
      ADD_FAILURE() << "loop ran dry before the callback arrived";
      return;
    }
  }
}

class Harness {
 public:
  explicit Harness(JournalOptions options = {}) : options_(std::move(options)) {
    auto loop = platform::Loop::Create();
    EXPECT_TRUE(loop.ok());
    loop_ = std::move(loop).value();
    if (options_.path.empty()) options_.path = dir_.File("journal.db");
  }
  ~Harness() {
    journal_.reset();
    loop_.reset();
  }

  Status Open() {
    journal_.reset();
    auto j = Journal::Open(*loop_, options_);
    if (!j.ok()) return j.status();
    journal_ = std::move(j).value();
    return Status::Ok();
  }
  void Close() { journal_.reset(); }

  Result<AppendOutcome> Append(Message m) {
    bool done = false;
    Result<AppendOutcome> out = Status::Internal("no callback");
    journal_->Append(std::move(m), [&](Result<AppendOutcome> r) {
      out = std::move(r);
      done = true;
    });
    RunUntil(*loop_, done);
    return out;
  }
  // Appends all at once (one or few groups), returns outcomes in order.
  std::vector<Result<AppendOutcome>> AppendMany(std::vector<Message> msgs) {
    std::vector<Result<AppendOutcome>> out(msgs.size(), Status::Internal("no callback"));
    size_t left = msgs.size();
    bool done = msgs.empty();
    for (size_t i = 0; i < msgs.size(); ++i) {
      journal_->Append(std::move(msgs[i]), [&, i](Result<AppendOutcome> r) {
        out[i] = std::move(r);
        if (--left == 0) done = true;
      });
    }
    RunUntil(*loop_, done);
    return out;
  }
  Result<std::vector<StoredMessage>> Fetch(FetchSpec spec = {}) {
    bool done = false;
    Result<std::vector<StoredMessage>> out = Status::Internal("no callback");
    journal_->FetchPending(std::move(spec), [&](Result<std::vector<StoredMessage>> r) {
      out = std::move(r);
      done = true;
    });
    RunUntil(*loop_, done);
    return out;
  }
  template <typename Fn>
  Status Do(Fn fn) {
    bool done = false;
    Status out = Status::Internal("no callback");
    fn([&](Status s) {
      out = std::move(s);
      done = true;
    });
    RunUntil(*loop_, done);
    return out;
  }
  Status MarkSent(std::vector<uint64_t> seqs) {
    return Do([&](Journal::DoneCallback cb) { journal_->MarkSent(seqs, cb); });
  }
  Status MarkDead(std::vector<std::pair<uint64_t, std::string>> v) {
    return Do([&](Journal::DoneCallback cb) { journal_->MarkDead(v, cb); });
  }
  Status Release(std::vector<uint64_t> seqs, bool count) {
    return Do([&](Journal::DoneCallback cb) { journal_->Release(seqs, count, cb); });
  }
  Status Requeue(std::vector<uint64_t> seqs) {
    return Do([&](Journal::DoneCallback cb) { journal_->Requeue(seqs, cb); });
  }
  Status Cleanup() {
    return Do([&](Journal::DoneCallback cb) { journal_->Cleanup(cb); });
  }
  Result<QueryResult> Query(uint64_t seq) {
    bool done = false;
    Result<QueryResult> out = Status::Internal("no callback");
    journal_->Query(seq, [&](Result<QueryResult> r) {
      out = std::move(r);
      done = true;
    });
    RunUntil(*loop_, done);
    return out;
  }
  Result<QueryResult> QueryById(std::string id) {
    bool done = false;
    Result<QueryResult> out = Status::Internal("no callback");
    journal_->QueryById(id, [&](Result<QueryResult> r) {
      out = std::move(r);
      done = true;
    });
    RunUntil(*loop_, done);
    return out;
  }
  Result<std::vector<DeadLetter>> ListDead(size_t limit = 100) {
    bool done = false;
    Result<std::vector<DeadLetter>> out = Status::Internal("no callback");
    journal_->ListDead(limit, [&](Result<std::vector<DeadLetter>> r) {
      out = std::move(r);
      done = true;
    });
    RunUntil(*loop_, done);
    return out;
  }
  // Runs the loop until fn's callback (taking a T) has arrived.
  template <typename T, typename Fn>
  T Wait(Fn fn) {
    bool done = false;
    T out = Status::Internal("no callback");
    fn([&](T r) {
      out = std::move(r);
      done = true;
    });
    RunUntil(*loop_, done);
    return out;
  }
  Result<uint64_t> AppendInbound(InboundMessage m) {
    return Wait<Result<uint64_t>>(
        [&](Journal::InboundCallback cb) { journal_->AppendInbound(std::move(m), cb); });
  }
  Result<StoredRead> ReadStored(StoredReadSpec spec) {
    return Wait<Result<StoredRead>>(
        [&](std::function<void(Result<StoredRead>)> cb) { journal_->ReadStored(spec, cb); });
  }
  Result<std::vector<StoredInbound>> ReadInbox(InboxReadSpec spec = {}) {
    return Wait<Result<std::vector<StoredInbound>>>(
        [&](Journal::InboxCallback cb) { journal_->ReadInbox(spec, cb); });
  }
  Status TrimInbox(uint64_t below_seq, int64_t received_before_ms) {
    return Do(
        [&](Journal::DoneCallback cb) { journal_->TrimInbox(below_seq, received_before_ms, cb); });
  }
  Result<std::vector<ConsumerSessionRecord>> LoadSessions() {
    return Wait<Result<std::vector<ConsumerSessionRecord>>>(
        [&](Journal::SessionsCallback cb) { journal_->LoadConsumerSessions(cb); });
  }
  Status SaveSession(ConsumerSessionRecord r) {
    return Do([&](Journal::DoneCallback cb) { journal_->SaveConsumerSession(r, cb); });
  }
  Status DeleteSession(std::string name) {
    return Do([&](Journal::DoneCallback cb) { journal_->DeleteConsumerSession(name, cb); });
  }
  // A round trip through the store thread, so stats() is fresh.
  void Sync() { (void)Release({}, false); }

  Journal& j() { return *journal_; }
  platform::Loop& loop() { return *loop_; }
  JournalOptions& options() { return options_; }
  testing::TempDir& dir() { return dir_; }

 private:
  testing::TempDir dir_;
  JournalOptions options_;
  std::unique_ptr<platform::Loop> loop_;
  std::unique_ptr<Journal> journal_;
};

}  // namespace edgespool::store::testutil
