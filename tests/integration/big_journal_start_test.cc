// Start-up on a journal too big for the full check at open (issue 19, "Big
// journals"; the 2 GiB figures come from tests/bench/big_journal_bench.cc):
// READY=1 does not wait for the integrity check, the background check still
// finds a corrupt page and reports it (log, metric, mark), and the next start
// runs the full check as a slow step, with EXTEND_TIMEOUT_USEC sent to the
// supervisor before READY=1, and moves the corrupt file aside.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "store/integrity_check.h"
#include "store/journal_db.h"
#include "tests/support/e2e.h"
#include "tests/support/http_get.h"
#include "tests/support/journal_builder.h"

namespace edgespool {
namespace {

using namespace edgespool::testing;
using Clock = std::chrono::steady_clock;

int64_t WallMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The supervisor's side of $NOTIFY_SOCKET.
class NotifySocket {
 public:
  explicit NotifySocket(const std::string& path) {
    fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    bound_ = bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    timeval tv{0, 100000};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  ~NotifySocket() { close(fd_); }
  bool bound() const { return bound_; }
  // Datagrams, in order, until one contains `until` or the time is up.
  std::vector<std::string> ReadUntil(const std::string& until, int timeout_ms) {
    std::vector<std::string> got;
    auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
    while (Clock::now() < deadline) {
      char buf[4096];
      ssize_t n = recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) continue;
      got.emplace_back(buf, static_cast<size_t>(n));
      if (got.back().find(until) != std::string::npos) break;
    }
    return got;
  }

 private:
  int fd_ = -1;
  bool bound_ = false;
};

std::string Join(const std::vector<std::string>& v) {
  std::string all;
  for (const auto& s : v) all += s + " | ";
  return all;
}

// Overwrites the cell pointer array of a leaf page of `journal` a quarter of
// the way into the table: every read of that page fails with SQLITE_CORRUPT, while the
// open path (which reads `pending`, the indexes and the newest rows only)
// never touches it.
bool CorruptLeaf(const std::string& path) {
  int64_t page = 0;
  {
    store::Db db;
    if (!db.Open(path, SQLITE_OPEN_READONLY).ok()) return false;
    auto n =
        db.QueryInt("SELECT count(*) FROM dbstat WHERE name = 'journal' AND pagetype = 'leaf'");
    if (!n.ok() || *n < 100) return false;
    std::string sql =
        "SELECT pageno FROM dbstat WHERE name = 'journal' AND pagetype = 'leaf' "
        "ORDER BY path LIMIT 1 OFFSET " +
        std::to_string(*n / 4);
    auto p = db.QueryInt(sql.c_str());
    if (!p.ok()) return false;
    page = *p;
  }
  int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  // Page header of a leaf: 8 bytes, then 2-byte cell offsets. 0xFFF0 points
  // past the end of a 4096-byte page.
  unsigned char bad[64];
  for (size_t i = 0; i < sizeof bad; i += 2) {
    bad[i] = 0xFF;
    bad[i + 1] = 0xF0;
  }
  off_t at = static_cast<off_t>((page - 1) * store::kPageSize + 8);
  bool ok = pwrite(fd, bad, sizeof bad, at) == static_cast<ssize_t>(sizeof bad);
  close(fd);
  return ok;
}

// One journal just past the size that still gets the full check at open,
// built once (the slow part) and copied by each test.
class BigJournalStartTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    built_dir_ = new TempDir();
    built_ = built_dir_->File("built.db");
    uint64_t size = store::JournalDb::kFullCheckMaxBytes + (8ull << 20);
    rows_ = BuildJournal(built_, size, WallMs() - 2 * 3600 * 1000);
  }
  static void TearDownTestSuite() {
    delete built_dir_;
    built_dir_ = nullptr;
  }
  // A copy of the built journal in dir.
  static std::string CopyJournal(const TempDir& dir) {
    std::string journal = dir.File("big.db");
    EXPECT_GT(rows_, 0);
    std::filesystem::copy_file(built_, journal);
    return journal;
  }
  static inline TempDir* built_dir_ = nullptr;
  static inline std::string built_;
  static inline int64_t rows_ = 0;
};

TEST_F(BigJournalStartTest, ReadyDoesNotWaitForTheCheckWhichStillFindsCorruption) {
  TempDir dir;
  std::string journal = CopyJournal(dir);
  ASSERT_TRUE(CorruptLeaf(journal));

  NotifySocket notify(dir.File("notify.sock"));
  ASSERT_TRUE(notify.bound());
  uint16_t mport = FreePort();
  AgentProcess agent(dir.path(), "mqtt://127.0.0.1:" + std::to_string(FreePort()),
                     {{"store", "path = \"" + journal + "\""},
                      {"store", "max_bytes = \"256MiB\""},
                      {"metrics", "listen = \"127.0.0.1:" + std::to_string(mport) + "\""}});
  setenv("NOTIFY_SOCKET", dir.File("notify.sock").c_str(), 1);
  bool started = agent.Start();
  unsetenv("NOTIFY_SOCKET");
  ASSERT_TRUE(started) << agent.log();
  auto got = notify.ReadUntil("READY=1", 10000);
  ASSERT_NE(Join(got).find("READY=1"), std::string::npos) << Join(got);

  // Ready, with the check not run yet (it starts a second after open): the
  // old start-up ran quick_check first and moved this file aside.
  std::string m = HttpGet(mport, "/metrics");
  EXPECT_EQ(MetricValue(m, "edgespool_journal_integrity_checks_total"), 0) << m;
  EXPECT_EQ(MetricValue(m, "edgespool_journal_integrity_failures_total"), 0) << m;
  EXPECT_EQ(MetricValue(m, "edgespool_journal_corrupt_files_total"), 0) << m;
  EXPECT_GT(MetricValue(m, "edgespool_pending_messages"), 100000) << m;

  // Then the background check finds the page.
  auto deadline = Clock::now() + std::chrono::seconds(20);
  double failures = 0;
  while (Clock::now() < deadline && failures < 1) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    failures =
        MetricValue(HttpGet(mport, "/metrics"), "edgespool_journal_integrity_failures_total");
  }
  ASSERT_EQ(failures, 1) << agent.log();
  EXPECT_NE(agent.log().find("found by the background integrity check"), std::string::npos)
      << agent.log();
  std::string marker = store::IntegrityCheck::MarkerPath(journal);
  EXPECT_TRUE(std::filesystem::exists(marker));
  int st = agent.Stop();
  ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << st << "\n" << agent.log();

  // The next start checks fully first, a slow step systemd is told about,
  // and moves the corrupt file aside.
  setenv("NOTIFY_SOCKET", dir.File("notify.sock").c_str(), 1);
  started = agent.Start();
  unsetenv("NOTIFY_SOCKET");
  ASSERT_TRUE(started) << agent.log();
  got = notify.ReadUntil("READY=1", 10000);
  std::string all = Join(got);
  size_t extend = all.find("EXTEND_TIMEOUT_USEC=");
  size_t ready = all.find("READY=1");
  ASSERT_NE(extend, std::string::npos) << all;
  ASSERT_NE(ready, std::string::npos) << all;
  EXPECT_LT(extend, ready) << all;
  EXPECT_NE(all.find("STATUS=starting: full integrity check"), std::string::npos) << all;
  m = HttpGet(mport, "/metrics");
  EXPECT_EQ(MetricValue(m, "edgespool_journal_corrupt_files_total"), 1) << m;
  EXPECT_FALSE(std::filesystem::exists(marker));
  bool moved = false;
  for (const auto& e : std::filesystem::directory_iterator(dir.path())) {
    if (e.path().filename().string().rfind("big.db.corrupt-", 0) == 0) moved = true;
  }
  EXPECT_TRUE(moved);
  st = agent.Stop();
  ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << st << "\n" << agent.log();
}

// A journal that is intact but big: READY=1 with no slow step announced
// after a clean stop (the counts come from the clean-close file), and the
// background check passes.
TEST_F(BigJournalStartTest, CleanRestartOfABigJournalIsQuickAndPassesTheCheck) {
  TempDir dir;
  std::string journal = CopyJournal(dir);

  NotifySocket notify(dir.File("notify.sock"));
  uint16_t mport = FreePort();
  AgentProcess agent(dir.path(), "mqtt://127.0.0.1:" + std::to_string(FreePort()),
                     {{"store", "path = \"" + journal + "\""},
                      {"metrics", "listen = \"127.0.0.1:" + std::to_string(mport) + "\""}});
  // First start: nothing says how big the backlog is, it is counted.
  setenv("NOTIFY_SOCKET", dir.File("notify.sock").c_str(), 1);
  ASSERT_TRUE(agent.Start()) << agent.log();
  std::string first = Join(notify.ReadUntil("READY=1", 10000));
  EXPECT_NE(first.find("STATUS=starting: counting the backlog"), std::string::npos) << first;
  double pending = MetricValue(HttpGet(mport, "/metrics"), "edgespool_pending_messages");
  EXPECT_GT(pending, 100000);
  auto deadline = Clock::now() + std::chrono::seconds(30);
  double checks = 0;
  while (Clock::now() < deadline && checks < 1) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    checks = MetricValue(HttpGet(mport, "/metrics"), "edgespool_journal_integrity_checks_total");
  }
  EXPECT_EQ(checks, 1) << agent.log();
  EXPECT_EQ(MetricValue(HttpGet(mport, "/metrics"), "edgespool_journal_integrity_failures_total"),
            0);
  ASSERT_EQ(agent.Stop(), 0) << agent.log();
  EXPECT_TRUE(std::filesystem::exists(store::JournalDb::CountsPath(journal)));

  // Second start: the counts from the clean close, no slow step.
  ASSERT_TRUE(agent.Start()) << agent.log();
  unsetenv("NOTIFY_SOCKET");
  std::string second = Join(notify.ReadUntil("READY=1", 10000));
  EXPECT_NE(second.find("READY=1"), std::string::npos) << second;
  EXPECT_EQ(second.find("EXTEND_TIMEOUT_USEC="), std::string::npos) << second;
  EXPECT_EQ(MetricValue(HttpGet(mport, "/metrics"), "edgespool_pending_messages"), pending);
  // Consumed at open: a crash from here on leaves no stale counts behind.
  EXPECT_FALSE(std::filesystem::exists(store::JournalDb::CountsPath(journal)));
  ASSERT_EQ(agent.Stop(), 0) << agent.log();
}

}  // namespace
}  // namespace edgespool
