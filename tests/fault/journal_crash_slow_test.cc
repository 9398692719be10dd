// Crash safety, slow run: 50 SIGKILL rounds per durability level on one
// growing journal file.
#include "tests/support/test_env.h"
#include "tests/unit/store/journal_crash_util.h"

namespace edgespool::store {
namespace {

TEST(JournalCrashSlowTest, FiftyRoundsFull) {
  testing::TempDir dir;
  crashtest::RunCrashRounds(dir.File("journal.db"), Durability::kFull, 50, 42);
}

TEST(JournalCrashSlowTest, FiftyRoundsNormal) {
  testing::TempDir dir;
  crashtest::RunCrashRounds(dir.File("journal.db"), Durability::kNormal, 50, 43);
}

}  // namespace
}  // namespace edgespool::store
