// Power loss, slow run: 1,000 rounds per durability level on one journal
// file each (the default run, 200 and 60 rounds, is
// tests/unit/store/journal_power_loss_test.cc).
#include "tests/unit/store/journal_power_loss_util.h"

namespace edgespool::store {
namespace {

TEST(JournalPowerLossSlowTest, ThousandRoundsFull) {
  powertest::PowerLossRounds run(Durability::kFull, 424242);
  const powertest::Totals& t = run.Run(1000);
  run.Print("full");
  powertest::ExpectOpensEveryTime(t);
  EXPECT_EQ(t.lost, 0u);
  powertest::ExpectTheDiskBit(t);
}

TEST(JournalPowerLossSlowTest, ThousandRoundsNormal) {
  powertest::PowerLossRounds run(Durability::kNormal, 434343);
  const powertest::Totals& t = run.Run(1000);
  run.Print("normal");
  powertest::ExpectOpensEveryTime(t);
  powertest::ExpectTheDiskBit(t);
}

}  // namespace
}  // namespace edgespool::store
