// Power loss, default run: 200 rounds at store.durability = "full" (not one
// acknowledged message may be lost) and 60 at "normal" (what is lost is
// reported: the documented trade-off; the journal must open every time).
// The 1,000-round runs: tests/fault/journal_power_loss_slow_test.cc. The
// harness: journal_power_loss_util.h; the disk model: power_loss_vfs.h.
#include "tests/unit/store/journal_power_loss_util.h"
#include "tests/unit/store/journal_test_util.h"

namespace edgespool::store {
namespace {

TEST(JournalPowerLossTest, FullLosesNoAcknowledgedMessage) {
  powertest::PowerLossRounds run(Durability::kFull, 20261207);
  const powertest::Totals& t = run.Run(200);
  run.Print("full");
  powertest::ExpectOpensEveryTime(t);
  EXPECT_EQ(t.lost, 0u);
  powertest::ExpectTheDiskBit(t);
}

TEST(JournalPowerLossTest, NormalOpensEveryTimeAndReportsWhatIsLost) {
  powertest::PowerLossRounds run(Durability::kNormal, 1207);
  const powertest::Totals& t = run.Run(60);
  run.Print("normal");
  powertest::ExpectOpensEveryTime(t);
  // Not a requirement of the journal: a check that the harness bites. At
  // "normal" a commit is acknowledged before the WAL is synced, so a power
  // cut loses the last groups; a harness that saw no loss here would not
  // see one at "full" either.
  EXPECT_GT(t.lost, 0u);
  powertest::ExpectTheDiskBit(t);
}

// The moments the random rounds rarely hit: the close deletes the WAL
// (an unlink the directory does not make durable), the restart creates a new
// one, and its first sync makes the directory durable. Deterministic but
// for the checkpointer thread's timing; each k uses the next disk model.
TEST(JournalPowerLossTest, CleanShutdownAndRestartSurviveACutBeforeEveryCall) {
  const powerloss::CutModel kModels[] = {
      {powerloss::Loss::kDropAll, false, false},
      {powerloss::Loss::kKeepPrefix, false, false},
      {powerloss::Loss::kKeepPrefix, true, false},
      {powerloss::Loss::kKeepSubset, true, true},
  };
  platform::Logger::SetLevel(platform::LogLevel::kOff);
  uint64_t k = 1, dir_changes = 0;
  for (bool cut = true; cut; ++k) {
    testing::TempDir dir;
    auto vfs = powerloss::PowerLossVfs::Install(kJournalVfs, kJournalVfs);
    ASSERT_NE(vfs, nullptr);
    JournalOptions o;
    o.path = dir.File("journal.db");
    uint64_t acked = 0;
    {
      testutil::Harness h(o);
      ASSERT_TRUE(h.Open().ok());
      auto append = [&] {
        std::vector<Message> group;
        for (int i = 0; i < 50; ++i) group.push_back(testutil::Msg("t", i, std::string(200, 'x')));
        for (const auto& r : h.AppendMany(std::move(group))) acked += r.ok();
      };
      for (int g = 0; g < 5; ++g) append();
      vfs->CutAfter(k);
      h.Close();
      if (!vfs->cut()) {
        Status opened = h.Open();
        if (opened.ok()) append();
        EXPECT_TRUE(opened.ok() || vfs->cut()) << opened.ToString();
        h.Close();
      }
    }
    cut = vfs->cut();
    std::string call = vfs->cut_call();
    powerloss::RebootReport report;
    std::string error;
    std::mt19937 rng(static_cast<uint32_t>(k));
    ASSERT_TRUE(vfs->Reboot(kModels[k % 4], rng, &report, &error)) << error;
    dir_changes += report.dir_changes;
    ASSERT_EQ(powertest::IntegrityCheck(o.path), "ok")
        << "cut before call " << k << " (" << call << ")";
    testutil::Harness again(o);
    ASSERT_TRUE(again.Open().ok());
    again.Sync();
    EXPECT_EQ(again.j().stats().corrupt_files_moved, 0u);
    // Acked rows all; a group whose commit failed may be there too (its
    // frames reached the disk, its sync did not happen): recovered.
    EXPECT_GE(again.j().stats().pending_count, acked)
        << "cut before call " << k << " (" << call << ")";
    EXPECT_LE(again.j().stats().pending_count, acked + 50);
  }
  platform::Logger::SetLevel(platform::LogLevel::kInfo);
  std::printf("clean shutdown, restart, one commit: a cut before each of %" PRIu64
              " calls; %" PRIu64 " unsynced directory changes met\n",
              k - 2, dir_changes);
  EXPECT_GT(dir_changes, 0u);
}

}  // namespace
}  // namespace edgespool::store
