// Opening damaged journals: garbage, truncation, flipped bytes, a foreign
// file, and a directory where nothing can be created.
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <random>

#include "platform/log.h"
#include "store/journal.h"
#include "tests/unit/store/journal_test_util.h"

namespace edgespool::store {
namespace {

using testutil::Harness;
using testutil::Msg;

// Captures log lines for the duration of a test.
class LogCapture {
 public:
  explicit LogCapture(const std::string& path) : path_(path) {
    fd_ = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    platform::Logger::SetFd(fd_);
  }
  ~LogCapture() {
    platform::Logger::SetFd(-1);
    close(fd_);
  }
  std::string Text() const { return testing::ReadFile(path_); }

 private:
  std::string path_;
  int fd_;
};

std::vector<std::string> CorruptFiles(const std::string& dir) {
  std::vector<std::string> out;
  DIR* d = opendir(dir.c_str());
  while (dirent* e = d ? readdir(d) : nullptr) {
    std::string name = e->d_name;
    if (name.find(".corrupt-") != std::string::npos && name.find("-wal") == std::string::npos) {
      out.push_back(dir + "/" + name);
    }
  }
  if (d) closedir(d);
  return out;
}

// A journal with `n` rows, closed (checkpointed: the WAL is folded in).
void MakeJournal(Harness& h, int n) {
  ASSERT_TRUE(h.Open().ok());
  std::vector<Message> msgs;
  for (int i = 0; i < n; ++i) msgs.push_back(Msg("t", i, std::string(300, 'a' + i % 26)));
  for (auto& r : h.AppendMany(std::move(msgs))) ASSERT_TRUE(r.ok());
  h.Close();
}

// Opens a damaged file and checks it was moved aside, logged, counted, and
// that a fresh journal works.
void ExpectRecovered(Harness& h, const std::string& original_bytes) {
  LogCapture log(h.dir().File("log.txt"));
  Status s = h.Open();
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(h.j().stats().corrupt_files_moved, 1u);
  EXPECT_EQ(h.j().stats().pending_count, 0u);
  auto moved = CorruptFiles(h.dir().path());
  ASSERT_EQ(moved.size(), 1u);
  // Kept for a post-mortem (compared without printing megabytes on failure).
  std::string kept = testing::ReadFile(moved[0]);
  EXPECT_EQ(kept.size(), original_bytes.size());
  size_t diff = 0;
  while (diff < kept.size() && diff < original_bytes.size() && kept[diff] == original_bytes[diff]) {
    ++diff;
  }
  EXPECT_TRUE(kept == original_bytes)
      << "moved file differs from the original at byte " << diff << "\n"
      << log.Text();
  std::string text = log.Text();
  EXPECT_NE(text.find("moved aside"), std::string::npos) << text;
  EXPECT_NE(text.find(moved[0]), std::string::npos) << text;
  auto a = h.Append(Msg("t", 1, "fresh"));
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  auto f = h.Fetch();
  ASSERT_TRUE(f.ok());
  ASSERT_EQ(f->size(), 1u);
  EXPECT_EQ((*f)[0].message.payload, "fresh");
}

TEST(JournalOpenTest, GarbageFileIsMovedAsideAndAFreshJournalStarts) {
  Harness h;
  std::mt19937 rng(7);
  std::string garbage(64 * 1024, '\0');
  for (auto& c : garbage) c = static_cast<char>(rng());
  testing::WriteFile(h.options().path, garbage);
  ExpectRecovered(h, garbage);
}

TEST(JournalOpenTest, ForeignFileIsMovedAside) {
  Harness h;
  std::string text = "[node]\nid = \"not a database\"\n";
  testing::WriteFile(h.options().path, text);
  ExpectRecovered(h, text);
}

TEST(JournalOpenTest, TruncatedFileIsMovedAside) {
  Harness h;
  MakeJournal(h, 2000);
  std::string bytes = testing::ReadFile(h.options().path);
  ASSERT_GT(bytes.size(), 100000u);
  std::string truncated = bytes.substr(0, bytes.size() / 2);
  testing::WriteFile(h.options().path, truncated);
  ExpectRecovered(h, truncated);
}

TEST(JournalOpenTest, FlippedBytesInTheBTreeAreMovedAside) {
  Harness h;
  MakeJournal(h, 2000);
  std::string bytes = testing::ReadFile(h.options().path);
  // Overwrite the headers of a run of pages past the schema page.
  for (size_t page = 3; page < 40; ++page) {
    for (size_t i = 0; i < 16; ++i) bytes[page * 4096 + i] ^= 0x5a;
  }
  testing::WriteFile(h.options().path, bytes);
  ExpectRecovered(h, bytes);
}

TEST(JournalOpenTest, EmptyFileIsAFreshJournalNotCorruption) {
  Harness h;
  testing::WriteFile(h.options().path, "");
  ASSERT_TRUE(h.Open().ok());
  EXPECT_EQ(h.j().stats().corrupt_files_moved, 0u);
  EXPECT_TRUE(h.Append(Msg("t", 1, "x")).ok());
}

TEST(JournalOpenTest, ASecondJournalOnTheSameFileIsRefusedNotMovedAside) {
  Harness first;
  ASSERT_TRUE(first.Open().ok());
  ASSERT_TRUE(first.Append(Msg("t", 1, "keep me")).ok());
  JournalOptions o;
  o.path = first.options().path;
  Harness second(o);
  Status s = second.Open();
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), Code::kUnavailable) << s.ToString();
  EXPECT_NE(s.message().find("locked"), std::string::npos) << s.ToString();
  EXPECT_TRUE(CorruptFiles(first.dir().path()).empty());
  auto f = first.Fetch();
  ASSERT_TRUE(f.ok());
  ASSERT_EQ(f->size(), 1u);
  EXPECT_EQ((*f)[0].message.payload, "keep me");
}

TEST(JournalOpenTest, MissingDirectoryIsAClearError) {
  JournalOptions o;
  testing::TempDir dir;
  o.path = dir.File("no/such/dir/journal.db");
  Harness h(o);
  Status s = h.Open();
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("cannot create journal"), std::string::npos) << s.ToString();
  EXPECT_NE(s.message().find(o.path), std::string::npos) << s.ToString();
}

TEST(JournalOpenTest, ReadOnlyDirectoryIsAClearOpenError) {
  testing::TempDir base;
  std::string ro = base.File("ro");
  ASSERT_EQ(mkdir(ro.c_str(), 0755), 0);
  bool mounted = false;
  if (geteuid() == 0) {
    // Root ignores directory permissions, so use a read-only filesystem.
    mounted = mount("tmpfs", ro.c_str(), "tmpfs", MS_RDONLY, "size=1m") == 0;
    if (!mounted) GTEST_SKIP() << "cannot mount a read-only tmpfs here (need CAP_SYS_ADMIN)";
  } else {
    ASSERT_EQ(chmod(ro.c_str(), 0555), 0);
  }
  JournalOptions o;
  o.path = ro + "/journal.db";
  Harness h(o);
  Status s = h.Open();
  if (mounted) umount(ro.c_str());
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("cannot create journal " + o.path), std::string::npos) << s.ToString();
  EXPECT_NE(s.message().find("writable"), std::string::npos) << s.ToString();
}

}  // namespace
}  // namespace edgespool::store
