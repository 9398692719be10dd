// A journal on a filesystem smaller than its cap (a tmpfs mounted by the
// test): the free-space guard turns "disk full" into journal_full while a
// WAL reserve is still free; a foreign process eating that reserve causes
// real ENOSPC, which fails groups but never loses an acked message; freeing
// space lets appends resume.
#include <dirent.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <thread>

#include "store/journal.h"
#include "tests/support/disk.h"
#include "tests/unit/store/journal_test_util.h"

namespace edgespool::store {
namespace {

using testutil::EveryPending;
using testutil::Harness;
using testutil::Msg;

using testing::FillDisk;
using testing::FreeBytes;
using testing::SetImmutable;
using testing::TmpfsMount;

std::string PayloadFor(int i) {
  return std::string(1000, static_cast<char>('a' + i % 26)) + std::to_string(i);
}

// Appends batches until one fails; records acks. Returns the first error.
Status AppendUntilError(Harness& h, int* next, std::map<uint64_t, std::string>* acked,
                        int max_batches = 2000) {
  for (int b = 0; b < max_batches; ++b) {
    std::vector<Message> batch;
    std::vector<std::string> payloads;
    for (int i = 0; i < 50; ++i, ++*next) {
      payloads.push_back(PayloadFor(*next));
      batch.push_back(Msg("disk", *next, payloads.back()));
    }
    auto out = h.AppendMany(std::move(batch));
    Status first;
    for (size_t i = 0; i < out.size(); ++i) {
      if (out[i].ok()) {
        (*acked)[out[i]->seq] = payloads[i];
      } else if (first.ok()) {
        first = out[i].status();
      }
    }
    if (!first.ok()) return first;
  }
  return Status::Internal("never failed");
}

void ExpectAllAckedPresent(Harness& h, const std::map<uint64_t, std::string>& acked) {
  h.Close();
  ASSERT_TRUE(h.Open().ok());
  h.j().ReleaseAll();
  auto f = h.Fetch(EveryPending());
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  std::map<uint64_t, std::string> got;
  for (auto& m : *f) got[m.seq] = m.message.payload;
  size_t missing = 0;
  for (const auto& [seq, payload] : acked) {
    auto it = got.find(seq);
    if (it == got.end() || it->second != payload) ++missing;
  }
  EXPECT_EQ(missing, 0u) << "of " << acked.size() << " acked messages";
}

TEST(JournalDiskTest, SmallDiskLowersTheCapAndKeepsAReserve) {
  testing::TempDir base;
  TmpfsMount mnt(base.File("mnt"), "24m");
  if (!mnt.mounted()) GTEST_SKIP() << "cannot mount tmpfs here (needs root/CAP_SYS_ADMIN)";
  JournalOptions o;
  o.path = base.File("mnt/journal.db");
  o.max_bytes = 256ull << 20;  // far more than the disk
  Harness h(o);
  ASSERT_TRUE(h.Open().ok());
  int next = 0;
  std::map<uint64_t, std::string> acked;
  Status full = AppendUntilError(h, &next, &acked);
  EXPECT_EQ(full.code(), Code::kResourceExhausted) << full.ToString();
  EXPECT_NE(full.message().find("journal_full: disk nearly full"), std::string::npos)
      << full.ToString();
  EXPECT_GT(acked.size(), 5000u);
  // The reserve is still there (free space plus the WAL file, which holds
  // part of it): cleanup, vacuum and a TRUNCATE checkpoint work, and the
  // checkpoint hands the WAL's share back.
  EXPECT_GT(FreeBytes(base.File("mnt")), 1u << 20);
  EXPECT_TRUE(h.Cleanup().ok());
  EXPECT_GT(FreeBytes(base.File("mnt")), 6u << 20);
  EXPECT_GE(h.j().stats().fill_ratio, 0.99);
  EXPECT_TRUE(h.j().above_high_water());
  // Delivering rows makes room again.
  FetchSpec spec;
  spec.max_messages = 2000;
  auto f = h.Fetch(spec);
  ASSERT_TRUE(f.ok());
  std::vector<uint64_t> seqs;
  for (auto& m : *f) {
    seqs.push_back(m.seq);
    acked.erase(m.seq);
  }
  ASSERT_TRUE(h.MarkSent(seqs).ok());
  h.j().ReleaseAll();
  auto more = h.Append(Msg("disk", next, PayloadFor(next)));
  ASSERT_TRUE(more.ok()) << more.status().ToString();
  acked[more->seq] = PayloadFor(next);
  ExpectAllAckedPresent(h, acked);
}

TEST(JournalDiskTest, RealEnospcFailsGroupsNeverAcksAndRecovers) {
  testing::TempDir base;
  TmpfsMount mnt(base.File("mnt"), "24m");
  if (!mnt.mounted()) GTEST_SKIP() << "cannot mount tmpfs here (needs root/CAP_SYS_ADMIN)";
  JournalOptions o;
  o.path = base.File("mnt/journal.db");
  o.max_bytes = 4ull << 20;  // small cap: small WAL budget, fits the disk
  Harness h(o);
  ASSERT_TRUE(h.Open().ok());
  int next = 0;
  std::map<uint64_t, std::string> acked;
  // Some acked data first.
  for (int b = 0; b < 10; ++b) {
    std::vector<Message> batch;
    std::vector<std::string> payloads;
    for (int i = 0; i < 50; ++i, ++next) {
      payloads.push_back(PayloadFor(next));
      batch.push_back(Msg("disk", next, payloads.back()));
    }
    auto out = h.AppendMany(std::move(batch));
    for (size_t i = 0; i < out.size(); ++i) {
      ASSERT_TRUE(out[i].ok()) << out[i].status().ToString();
      acked[out[i]->seq] = payloads[i];
    }
  }
  // Someone else fills the filesystem to the last byte.
  std::string filler = base.File("mnt/filler");
  FillDisk(filler);
  ASSERT_LT(FreeBytes(base.File("mnt")), 64u * 1024);
  Status err = AppendUntilError(h, &next, &acked, 200);
  EXPECT_TRUE(err.code() == Code::kResourceExhausted || err.code() == Code::kIoError)
      << err.ToString();
  // More failures do not break anything either.
  (void)AppendUntilError(h, &next, &acked, 3);
  // Space comes back: appends resume (after the periodic free-space check).
  unlink(filler.c_str());
  bool resumed = false;
  for (int i = 0; i < 40 && !resumed; ++i) {
    auto r = h.Append(Msg("disk", next, PayloadFor(next)));
    if (r.ok()) {
      acked[r->seq] = PayloadFor(next);
      resumed = true;
    }
    ++next;
    if (!resumed) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(resumed) << "appends did not resume after space was freed";
  EXPECT_TRUE(h.Cleanup().ok());
  ExpectAllAckedPresent(h, acked);
}

}  // namespace
}  // namespace edgespool::store

namespace edgespool::store {
namespace {

// A journal written by schema version 1, `rows` rows waiting for upload.
void WriteVersion1Journal(const std::string& path, int rows) {
  testutil::WriteVersion1Journal(
      path, "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < " +
                std::to_string(rows) +
                ") INSERT INTO journal(ts, topic, priority, payload, stored_at)"
                "  SELECT i, 'old', 1, printf('%.200c', 'x'), 1700000000000 FROM n;");
}

bool HasCorruptCopy(const std::string& dir) {
  bool found = false;
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d)) {
      if (std::string(e->d_name).find(".corrupt-") != std::string::npos) found = true;
    }
    closedir(d);
  }
  return found;
}

// Upgrading a journal writes (the migration). A full disk must not make a
// healthy journal and its backlog look corrupt: the open fails with a clear
// error, the file stays where it is, and a later open migrates it.
TEST(JournalDiskTest, MigrationOnAFullDiskKeepsTheJournal) {
  testing::TempDir base;
  std::string dir = base.File("mnt");
  TmpfsMount mnt(dir, "8m");
  if (!mnt.mounted()) GTEST_SKIP() << "cannot mount tmpfs here (needs root/CAP_SYS_ADMIN)";
  std::string path = dir + "/journal.db";
  WriteVersion1Journal(path, 5000);
  FillDisk(dir + "/filler");

  JournalOptions o;
  o.path = path;
  Harness full(o);
  Status s = full.Open();
  ASSERT_FALSE(s.ok()) << "the migration found room on a full disk";
  EXPECT_NE(s.message().find("migration"), std::string::npos) << s.ToString();
  EXPECT_FALSE(HasCorruptCopy(dir)) << "a healthy journal was moved aside";
  full.Close();

  ASSERT_EQ(unlink((dir + "/filler").c_str()), 0);
  Harness later(o);
  ASSERT_TRUE(later.Open().ok());
  EXPECT_EQ(later.j().stats().corrupt_files_moved, 0u);
  EXPECT_EQ(later.j().stats().pending_count, 5000u);
}

// A mark that cannot be written (the files turned immutable: writes on the
// open descriptors fail) leaves the rows pending and leased: the uplink does
// not read them again (before, it did at once: a resend loop while the disk
// was full), and the same mark succeeds once writes work again.
TEST(JournalDiskTest, FailedMarkSentKeepsTheRowsLeased) {
  testing::TempDir base;  // not a tmpfs: it takes +i but lets open files write
  JournalOptions o;
  o.path = base.File("journal.db");
  o.max_bytes = 4ull << 20;
  Harness h(o);
  ASSERT_TRUE(h.Open().ok());
  std::vector<Message> batch;
  for (int i = 0; i < 100; ++i) batch.push_back(Msg("disk", i, PayloadFor(i)));
  for (auto& r : h.AppendMany(std::move(batch))) ASSERT_TRUE(r.ok()) << r.status().ToString();
  auto f = h.Fetch(EveryPending());
  ASSERT_TRUE(f.ok());
  ASSERT_EQ(f->size(), 100u);
  std::vector<uint64_t> seqs;
  for (auto& m : *f) seqs.push_back(m.seq);
  if (!SetImmutable(o.path + "-wal", true) || !SetImmutable(o.path, true)) {
    SetImmutable(o.path + "-wal", false);
    GTEST_SKIP() << "chattr +i refused here (needs CAP_LINUX_IMMUTABLE)";
  }
  Status failed = h.MarkSent(seqs);
  EXPECT_FALSE(failed.ok()) << "a mark was written to an immutable WAL";
  auto again = h.Fetch(EveryPending());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->size(), 0u) << "rows whose mark failed were handed out again";
  EXPECT_EQ(h.j().stats().pending_count, 100u);
  ASSERT_TRUE(SetImmutable(o.path + "-wal", false));
  ASSERT_TRUE(SetImmutable(o.path, false));
  ASSERT_TRUE(h.MarkSent(seqs).ok());
  EXPECT_EQ(h.j().stats().pending_count, 0u);
  h.Close();
  ASSERT_TRUE(h.Open().ok());
  auto after = h.Fetch(EveryPending());
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->size(), 0u);
}

}  // namespace
}  // namespace edgespool::store
