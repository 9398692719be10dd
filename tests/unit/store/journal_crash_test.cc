// Crash safety, default run: 5 SIGKILL rounds per durability level (the
// 50-round version is tests/fault/journal_crash_slow_test.cc).
#include "tests/support/test_env.h"
#include "tests/unit/store/journal_crash_util.h"

namespace edgespool::store {
namespace {

TEST(JournalCrashTest, EveryAckedAppendSurvivesSigkillFull) {
  testing::TempDir dir;
  crashtest::RunCrashRounds(dir.File("journal.db"), Durability::kFull, 5, 1234);
}

TEST(JournalCrashTest, EveryAckedAppendSurvivesSigkillNormal) {
  testing::TempDir dir;
  crashtest::RunCrashRounds(dir.File("journal.db"), Durability::kNormal, 5, 5678);
}

}  // namespace
}  // namespace edgespool::store
