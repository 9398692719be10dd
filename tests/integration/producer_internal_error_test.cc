// The `internal` error code, triggered for real: journal commits fail because
// fsync/fdatasync fail (libfiu's fiu-run, 20% of calls return EIO). A
// producer whose publish fell in a failed group gets
// {"ok":false,"code":"internal"} with the journal's reason, keeps its
// connection, and later publishes are stored again; no publish that was
// answered "stored" is missing from the journal afterwards.
//
// The test re-runs its own binary as the child under fiu-run (the
// ProducerFiuChild test, inert unless EDGESPOOL_FIU_PRODUCER_DIR is set).
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <sstream>
#include <string>

#include "tests/integration/producer_test_util.h"
#include "tests/support/sanitizers.h"

namespace edgespool::testing {
namespace {

// The child: one connection, one publish at a time (so each is its own
// commit group), until 400 replies or 10 s. Prints "S <seq> <i>" per stored
// reply and "I <i> <message>" per internal error, "X <i> <code>" otherwise.
TEST(ProducerFiuChild, Run) {
  const char* dir = getenv("EDGESPOOL_FIU_PRODUCER_DIR");
  if (!dir) GTEST_SKIP() << "child half of ProducerInternalErrorTest";
  FILE* out = fopen((std::string(dir) + "/child.out").c_str(), "w");
  ASSERT_NE(out, nullptr);
  HarnessOptions o;
  o.journal.durability = store::Durability::kFull;
  std::unique_ptr<ServerHarness> h;
  for (int attempt = 0; attempt < 20 && !h; ++attempt) {  // opening fsyncs too
    auto candidate = std::make_unique<ServerHarness>(dir, o);
    if (candidate->Start().ok()) h = std::move(candidate);
  }
  ASSERT_TRUE(h) << "could not start under fault injection";
  RawClient c;
  ASSERT_TRUE(c.Connect(h->socket_path()));
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  for (int i = 0; i < 400 && std::chrono::steady_clock::now() < deadline; ++i) {
    std::string id = "fiu-" + std::to_string(i);
    ASSERT_TRUE(c.SendFrame(PublishHeader(i, "fiu/t", ",\"id\":\"" + id + "\""), "p" + id));
    protocol::Reply r;
    ASSERT_TRUE(c.ReadReply(&r)) << "no reply to publish " << i;
    ASSERT_EQ(r.req, i);
    if (r.ok) {
      fprintf(out, "S %llu %d\n", static_cast<unsigned long long>(*r.seq), i);
    } else if (r.code == protocol::ErrorCode::kInternal) {
      fprintf(out, "I %d %s\n", i, r.message.c_str());
    } else {
      fprintf(out, "X %d %s\n", i, protocol::ErrorCodeName(*r.code));
    }
  }
  c.Close();
  h.reset();
  fclose(out);
}

TEST(ProducerInternalErrorTest, CommitFailureAnswersInternalAndKeepsTheConnection) {
  if (!CommandExists("fiu-run")) GTEST_SKIP() << "fiu-run not installed (fiu-utils)";
  // As in journal_fiu_test: fiu's LD_PRELOAD wrappers and the sanitizers'
  // interceptors do not mix (the child crashes at start).
  if (kSanitized) GTEST_SKIP() << "fiu-run's preload library does not mix with ASan/TSan";
  TempDir dir;
  std::string self(4096, '\0');
  ssize_t n = readlink("/proc/self/exe", self.data(), self.size());
  ASSERT_GT(n, 0);
  self.resize(static_cast<size_t>(n));
  std::string cmd = "EDGESPOOL_FIU_PRODUCER_DIR=" + dir.path() +
                    " fiu-run -x"
                    " -c 'enable_random name=posix/io/sync/fsync,probability=0.2'"
                    " -c 'enable_random name=posix/io/sync/fdatasync,probability=0.2' " +
                    self + " --gtest_filter=ProducerFiuChild.Run > " + dir.File("child.log") +
                    " 2>&1";
  int rc = system(cmd.c_str());
  ASSERT_EQ(rc, 0) << ReadFile(dir.File("child.log"));

  std::map<uint64_t, int> stored;  // seq -> publish index
  size_t internal = 0, stored_after_internal = 0, other = 0;
  std::string first_message;
  std::istringstream lines(ReadFile(dir.File("child.out")));
  std::string kind;
  while (lines >> kind) {
    if (kind == "S") {
      uint64_t seq;
      int i;
      lines >> seq >> i;
      EXPECT_TRUE(stored.emplace(seq, i).second) << "seq " << seq << " stored twice";
      if (internal > 0) ++stored_after_internal;
    } else if (kind == "I") {
      int i;
      lines >> i;
      std::string message;
      std::getline(lines, message);
      if (first_message.empty()) first_message = message;
      ++internal;
    } else {
      std::string rest;
      std::getline(lines, rest);
      ADD_FAILURE() << "unexpected reply: " << kind << rest;
      ++other;
    }
  }
  EXPECT_GT(internal, 0u) << "no commit failed: was the fault injected?";
  EXPECT_GT(stored_after_internal, 0u) << "the connection or the journal did not recover";
  // The journal's reason travels to the producer ("... fsync ..." / I/O).
  EXPECT_FALSE(first_message.empty());

  // Every publish answered "stored" is in the journal, with its id.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(dir.File("journal.db").c_str(), &db), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT msg_id FROM journal WHERE seq = ?", -1, &st, nullptr),
            SQLITE_OK);
  size_t missing = 0;
  for (const auto& [seq, i] : stored) {
    sqlite3_bind_int64(st, 1, static_cast<int64_t>(seq));
    if (sqlite3_step(st) != SQLITE_ROW ||
        reinterpret_cast<const char*>(sqlite3_column_text(st, 0)) != "fiu-" + std::to_string(i)) {
      ++missing;
    }
    sqlite3_reset(st);
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  EXPECT_EQ(missing, 0u);
  std::printf("fiu: %zu stored, %zu internal (first: %s), %zu stored after the first\n",
              stored.size(), internal, first_message.c_str(), stored_after_internal);
}

}  // namespace
}  // namespace edgespool::testing
