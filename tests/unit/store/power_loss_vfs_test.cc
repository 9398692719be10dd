// The power-loss VFS itself (power_loss_vfs.h): that it loses what a disk
// may lose and keeps what was synced. journal_power_loss_test trusts it to
// bite; these tests show it does, on raw files and on plain SQLite.
#include "tests/unit/store/power_loss_vfs.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <memory>
#include <random>
#include <set>
#include <string>

#include "tests/support/test_env.h"

namespace edgespool::store::powerloss {
namespace {

constexpr const char* kVfs = "powerloss-unit";

// One file opened through the shim's sqlite3_vfs interface.
class RawFile {
 public:
  RawFile(const std::string& path, int flags) {
    sqlite3_vfs* vfs = sqlite3_vfs_find(kVfs);
    mem_.reset(new char[vfs->szOsFile]());
    file_ = reinterpret_cast<sqlite3_file*>(mem_.get());
    int out = 0;
    rc_ = vfs->xOpen(vfs, path.c_str(), file_, flags | SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                     &out);
  }
  ~RawFile() {
    if (file_->pMethods) file_->pMethods->xClose(file_);
  }
  int open_rc() const { return rc_; }
  int Write(const std::string& data, int64_t off) {
    return file_->pMethods->xWrite(file_, data.data(), static_cast<int>(data.size()), off);
  }
  int Truncate(int64_t size) { return file_->pMethods->xTruncate(file_, size); }
  int Sync() { return file_->pMethods->xSync(file_, SQLITE_SYNC_NORMAL); }

 private:
  std::unique_ptr<char[]> mem_;
  sqlite3_file* file_ = nullptr;
  int rc_ = SQLITE_ERROR;
};

bool Exists(const std::string& path) { return access(path.c_str(), F_OK) == 0; }

class PowerLossVfsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    vfs_ = PowerLossVfs::Install(kVfs, "unix");
    ASSERT_NE(vfs_, nullptr);
  }
  // The unix VFS opens a WAL-type file with its database's permissions, so
  // the raw files are named as the WAL of a database file that exists.
  std::string WalPath() {
    testing::WriteFile(dir_.File("base"), "");
    return dir_.File("base-wal");
  }
  RebootReport Reboot(CutModel model) {
    RebootReport report;
    std::string error;
    EXPECT_TRUE(vfs_->Reboot(model, rng_, &report, &error)) << error;
    return report;
  }
  // A file that exists durably: written, synced, and its directory synced
  // (a WAL-type open syncs it on the first xSync).
  void MakeDurable(const std::string& path, const std::string& content) {
    RawFile f(path, SQLITE_OPEN_WAL);
    ASSERT_EQ(f.open_rc(), SQLITE_OK);
    ASSERT_EQ(f.Write(content, 0), SQLITE_OK);
    ASSERT_EQ(f.Sync(), SQLITE_OK);
  }

  testing::TempDir dir_;
  std::unique_ptr<PowerLossVfs> vfs_;
  std::mt19937 rng_{7};
};

TEST_F(PowerLossVfsTest, DropAllKeepsExactlyWhatWasSynced) {
  std::string path = WalPath();
  MakeDurable(path, std::string(1000, 'A'));
  {
    RawFile f(path, SQLITE_OPEN_WAL);
    ASSERT_EQ(f.Write(std::string(600, 'B'), 0), SQLITE_OK);
    ASSERT_EQ(f.Write(std::string(100, 'C'), 1000), SQLITE_OK);
    ASSERT_EQ(f.Truncate(300), SQLITE_OK);
    EXPECT_EQ(testing::ReadFile(path), std::string(300, 'B'));  // before the cut: all of it
  }
  RebootReport r = Reboot({Loss::kDropAll});
  EXPECT_EQ(testing::ReadFile(path), std::string(1000, 'A'));
  EXPECT_EQ(r.unsynced_ops, 3u);
  EXPECT_EQ(r.kept_ops, 0u);
}

TEST_F(PowerLossVfsTest, APrefixSurvivesInOrder) {
  std::string path = WalPath();
  MakeDurable(path, "");
  std::set<std::string> outcomes;
  for (int i = 0; i < 40; ++i) {
    {
      RawFile f(path, SQLITE_OPEN_WAL);
      ASSERT_EQ(f.Write("1", 0), SQLITE_OK);
      ASSERT_EQ(f.Write("2", 1), SQLITE_OK);
      ASSERT_EQ(f.Write("3", 2), SQLITE_OK);
    }
    Reboot({Loss::kKeepPrefix});
    std::string got = testing::ReadFile(path);
    EXPECT_TRUE(got == "" || got == "1" || got == "12" || got == "123") << got;
    outcomes.insert(got);
    {
      RawFile f(path, SQLITE_OPEN_WAL);  // back to empty, durably
      ASSERT_EQ(f.Truncate(0), SQLITE_OK);
      ASSERT_EQ(f.Sync(), SQLITE_OK);
    }
  }
  EXPECT_EQ(outcomes.size(), 4u) << "every prefix length turns up in 40 reboots";
}

TEST_F(PowerLossVfsTest, TornWritesChangeOnlyTheWrittenRangeSectorBySector) {
  std::string path = WalPath();
  const std::string old_bytes(4096, 'o');
  MakeDurable(path, old_bytes);
  bool saw_new = false, saw_old = false, saw_garbage = false;
  for (int i = 0; i < 30; ++i) {
    {
      RawFile f(path, SQLITE_OPEN_WAL);
      ASSERT_EQ(f.Write(std::string(2000, 'n'), 100), SQLITE_OK);  // sectors 0..4, partly
    }
    Reboot({Loss::kKeepSubset, /*torn=*/true, /*garbage=*/true});
    std::string got = testing::ReadFile(path);
    ASSERT_EQ(got.size(), 4096u);
    EXPECT_EQ(got.substr(0, 100), old_bytes.substr(0, 100));
    EXPECT_EQ(got.substr(2100), old_bytes.substr(2100));
    // Within the range, each sector piece is all new, all old or garbage.
    for (int64_t s = 0; s < 2100; s += 512) {
      size_t lo = static_cast<size_t>(std::max<int64_t>(s, 100));
      size_t hi = static_cast<size_t>(std::min<int64_t>(s + 512, 2100));
      std::string piece = got.substr(lo, hi - lo);
      if (piece == std::string(piece.size(), 'n')) {
        saw_new = true;
      } else if (piece == std::string(piece.size(), 'o')) {
        saw_old = true;
      } else {
        saw_garbage = true;
      }
    }
    MakeDurable(path, old_bytes);
  }
  EXPECT_TRUE(saw_new && saw_old && saw_garbage);
}

TEST_F(PowerLossVfsTest, ANewFileVanishesUntilItsDirectoryIsSynced) {
  // The main database type: SQLite never syncs the directory for it.
  std::string db = dir_.File("db");
  {
    RawFile f(db, SQLITE_OPEN_MAIN_DB);
    ASSERT_EQ(f.Write("x", 0), SQLITE_OK);
    ASSERT_EQ(f.Sync(), SQLITE_OK);  // the data, not the entry
  }
  RebootReport r = Reboot({Loss::kDropAll});
  EXPECT_FALSE(Exists(db));
  EXPECT_EQ(r.dir_reverted, 1u);
  // A WAL's first sync also syncs the directory: both entries stay.
  std::string wal = dir_.File("db-wal");
  {
    RawFile f(db, SQLITE_OPEN_MAIN_DB);
    ASSERT_EQ(f.Write("x", 0), SQLITE_OK);
    ASSERT_EQ(f.Sync(), SQLITE_OK);
    RawFile w(wal, SQLITE_OPEN_WAL);
    ASSERT_EQ(w.Write("w", 0), SQLITE_OK);
    ASSERT_EQ(w.Sync(), SQLITE_OK);
  }
  Reboot({Loss::kDropAll});
  EXPECT_EQ(testing::ReadFile(db), "x");
  EXPECT_EQ(testing::ReadFile(wal), "w");
}

TEST_F(PowerLossVfsTest, AnUnsyncedDeleteCanBeUndone) {
  std::string path = WalPath();
  MakeDurable(path, "durable");
  sqlite3_vfs* vfs = sqlite3_vfs_find(kVfs);
  ASSERT_EQ(vfs->xDelete(vfs, path.c_str(), /*dirSync=*/0), SQLITE_OK);
  EXPECT_FALSE(Exists(path));
  Reboot({Loss::kDropAll});
  EXPECT_EQ(testing::ReadFile(path), "durable");
  ASSERT_EQ(vfs->xDelete(vfs, path.c_str(), /*dirSync=*/1), SQLITE_OK);
  Reboot({Loss::kDropAll});
  EXPECT_FALSE(Exists(path));
}

TEST_F(PowerLossVfsTest, AfterTheCutNothingReachesTheDisk) {
  std::string path = WalPath();
  MakeDurable(path, "");
  RawFile f(path, SQLITE_OPEN_WAL);
  vfs_->CutAfter(3);
  EXPECT_EQ(f.Write("a", 0), SQLITE_OK);
  EXPECT_EQ(f.Sync(), SQLITE_OK);
  EXPECT_EQ(f.Write("b", 1), SQLITE_IOERR_WRITE);  // the third call: the power is gone
  EXPECT_TRUE(vfs_->cut());
  EXPECT_EQ(f.Sync(), SQLITE_IOERR_FSYNC);
  EXPECT_EQ(f.Truncate(0), SQLITE_IOERR_TRUNCATE);
  EXPECT_EQ(testing::ReadFile(path), "a");
}

// Plain SQLite in WAL mode: synchronous = FULL keeps every commit through a
// drop-all power loss; synchronous = OFF loses every commit.
int64_t CountRows(const std::string& path) {
  sqlite3* db = nullptr;
  int64_t n = -1;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) == SQLITE_OK) {
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db, "SELECT count(*) FROM t", -1, &st, nullptr) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
      n = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
  }
  sqlite3_close(db);
  return n;
}

TEST_F(PowerLossVfsTest, SqliteFullKeepsEveryCommit) {
  std::string path = dir_.File("full.db");
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, kVfs),
            SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db,
                         "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;"
                         "CREATE TABLE t(x);",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  for (int i = 0; i < 50; ++i) {
    std::string insert = "INSERT INTO t VALUES(" + std::to_string(i) + ")";
    ASSERT_EQ(sqlite3_exec(db, insert.c_str(), nullptr, nullptr, nullptr), SQLITE_OK);
  }
  vfs_->CutNow();
  sqlite3_close(db);  // its checkpoint fails: the power is gone
  RebootReport r = Reboot({Loss::kDropAll});
  EXPECT_EQ(CountRows(path), 50);
  EXPECT_GT(r.files, 0u);
}

TEST_F(PowerLossVfsTest, SqliteOffLosesWhatWasNeverSynced) {
  std::string path = dir_.File("off.db");
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, kVfs),
            SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db,
                         "PRAGMA journal_mode = WAL; PRAGMA synchronous = OFF;"
                         "CREATE TABLE t(x); INSERT INTO t VALUES(1);",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  vfs_->CutNow();
  sqlite3_close(db);
  RebootReport r = Reboot({Loss::kDropAll});
  // The switch to WAL mode wrote the database header through a synced
  // rollback journal (synchronous was still FULL): the file stays, the
  // table and its row, only ever in the unsynced WAL, do not.
  EXPECT_EQ(CountRows(path), -1) << "no such table";
  EXPECT_FALSE(Exists(path + "-wal")) << "the WAL's directory entry was never synced";
  EXPECT_GT(r.unsynced_ops, 0u);
}

}  // namespace
}  // namespace edgespool::store::powerloss
