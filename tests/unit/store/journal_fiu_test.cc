// fsync failures (libfiu's fiu-run, 10% of fsync/fdatasync calls fail with
// EIO): a failing group fails as a whole, its callers get an error and never
// an ack, the journal stays consistent and keeps committing later groups,
// and failed background checkpoints are reported and retried.
//
// The test re-runs its own binary as the child under fiu-run (the
// JournalFiuChild test, inert unless EDGESPOOL_FIU_JOURNAL is set).
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>

#include "platform/loop.h"
#include "store/journal.h"
#include "tests/support/sanitizers.h"
#include "tests/support/test_env.h"

namespace edgespool::store {
namespace {

std::string PayloadFor(uint64_t i) {
  std::string p = "fiu-" + std::to_string(i) + "-";
  while (p.size() < 200) p += static_cast<char>('A' + (i + p.size()) % 26);
  return p;
}

// The child: appends 64 in flight until 20,000 outcomes or 5 s, printing
// "A <seq> <index>" per ack and "E <index> <code>" per error, then
// "C <checkpoint passes> <failed passes>".
TEST(JournalFiuChild, Run) {
  const char* path = getenv("EDGESPOOL_FIU_JOURNAL");
  if (!path) GTEST_SKIP() << "child half of JournalFiuTest";
  const char* out_path = getenv("EDGESPOOL_FIU_OUT");
  FILE* out = fopen(out_path, "w");
  ASSERT_NE(out, nullptr);
  auto loop = platform::Loop::Create();
  ASSERT_TRUE(loop.ok());
  JournalOptions o;
  o.path = path;
  o.durability = Durability::kFull;
  // A small cap keeps the WAL budget small (passes from 512 frames): the
  // checkpointer then runs many passes, and some of them fail too.
  o.max_bytes = 16u << 20;
  std::unique_ptr<Journal> j;
  for (int attempt = 0; attempt < 20 && !j; ++attempt) {  // open itself fsyncs
    auto r = Journal::Open(**loop, o);
    if (r.ok()) j = std::move(r).value();
  }
  ASSERT_TRUE(j) << "could not open under fault injection";
  uint64_t next = 0, outcomes = 0;
  const uint64_t kMax = 20000;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  std::function<void()> submit = [&] {
    uint64_t index = next++;
    Message m;
    m.topic = "fiu";
    m.ts_ms = static_cast<int64_t>(index);
    m.payload = PayloadFor(index);
    j->Append(std::move(m), [&, index](Result<AppendOutcome> r) {
      ++outcomes;
      if (r.ok()) {
        fprintf(out, "A %lu %lu\n", static_cast<unsigned long>(r->seq),
                static_cast<unsigned long>(index));
      } else {
        fprintf(out, "E %lu %s\n", static_cast<unsigned long>(index), CodeName(r.status().code()));
      }
      if (next < kMax && std::chrono::steady_clock::now() < deadline) submit();
    });
  };
  for (int i = 0; i < 64; ++i) submit();
  (*loop)->Run();
  const JournalStats& s = j->stats();
  fprintf(out, "C %lu %lu\n", static_cast<unsigned long>(s.checkpoints_total),
          static_cast<unsigned long>(s.checkpoint_failures_total));
  j.reset();
  fclose(out);
}

TEST(JournalFiuTest, FsyncFailuresFailWholeGroupsAndNeverLoseAnAck) {
  if (!testing::CommandExists("fiu-run")) GTEST_SKIP() << "fiu-run not installed (fiu-utils)";
  // Measured: the child segfaults at start when fiu's LD_PRELOAD wrappers
  // meet the sanitizer's interceptors.
  if (testing::kSanitized) GTEST_SKIP() << "fiu-run's preload library does not mix with ASan/TSan";
  testing::TempDir dir;
  std::string db = dir.File("journal.db");
  std::string out = dir.File("child.out");
  std::string self(4096, '\0');
  ssize_t n = readlink("/proc/self/exe", self.data(), self.size());
  ASSERT_GT(n, 0);
  self.resize(static_cast<size_t>(n));
  std::string cmd = "EDGESPOOL_FIU_JOURNAL=" + db + " EDGESPOOL_FIU_OUT=" + out +
                    " ASAN_OPTIONS=verify_asan_link_order=0 fiu-run -x"
                    " -c 'enable_random name=posix/io/sync/fsync,probability=0.1'"
                    " -c 'enable_random name=posix/io/sync/fdatasync,probability=0.1' " +
                    self + " --gtest_filter=JournalFiuChild.Run > " + dir.File("child.log") +
                    " 2>&1";
  int rc = system(cmd.c_str());
  ASSERT_EQ(rc, 0) << testing::ReadFile(dir.File("child.log"));

  std::map<uint64_t, uint64_t> acked;  // seq -> index
  size_t errors = 0, acks_after_error = 0;
  uint64_t checkpoints = 0, checkpoint_failures = 0;
  std::istringstream lines(testing::ReadFile(out));
  std::string kind;
  while (lines >> kind) {
    if (kind == "C") {
      lines >> checkpoints >> checkpoint_failures;
    } else if (kind == "A") {
      uint64_t seq, index;
      lines >> seq >> index;
      EXPECT_TRUE(acked.emplace(seq, index).second) << "seq " << seq << " acked twice";
      if (errors) ++acks_after_error;
    } else {
      uint64_t index;
      std::string code;
      lines >> index >> code;
      EXPECT_EQ(code, "io_error");
      ++errors;
    }
  }
  EXPECT_GT(errors, 0u) << "no fsync failure was injected";
  EXPECT_GT(acks_after_error, 0u) << "the journal did not recover after a failed group";
  EXPECT_GT(acked.size(), 100u);
  // The checkpointer kept running under the faults (its failed passes are
  // retried; the checks below see every acked row). Zero passes meant the
  // journal had dropped out of WAL mode (JournalDb::RestoreWalMode).
  EXPECT_GT(checkpoints, 0u) << testing::ReadFile(dir.File("child.log"));

  // Without faults: consistent, and every acked row is there, unchanged.
  sqlite3* h = nullptr;
  ASSERT_EQ(sqlite3_open(db.c_str(), &h), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(h, "PRAGMA integrity_check", -1, &st, nullptr);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(st, 0)), "ok");
  sqlite3_finalize(st);
  sqlite3_prepare_v2(h, "SELECT payload FROM journal WHERE seq = ?", -1, &st, nullptr);
  size_t missing = 0, wrong = 0;
  for (const auto& [seq, index] : acked) {
    sqlite3_bind_int64(st, 1, static_cast<int64_t>(seq));
    if (sqlite3_step(st) != SQLITE_ROW) {
      ++missing;
    } else if (std::string(static_cast<const char*>(sqlite3_column_blob(st, 0)),
                           static_cast<size_t>(sqlite3_column_bytes(st, 0))) != PayloadFor(index)) {
      ++wrong;
    }
    sqlite3_reset(st);
  }
  sqlite3_finalize(st);
  sqlite3_close(h);
  EXPECT_EQ(missing, 0u);
  EXPECT_EQ(wrong, 0u);
  std::printf(
      "fiu: %zu acked, %zu failed appends, %zu acks after the first failure; %llu checkpoint "
      "passes, %llu failed\n",
      acked.size(), errors, acks_after_error, static_cast<unsigned long long>(checkpoints),
      static_cast<unsigned long long>(checkpoint_failures));
}

}  // namespace
}  // namespace edgespool::store
