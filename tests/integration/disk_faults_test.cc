// The journal's disk fills up or stops taking writes, under a running agent
// (a real process) with producers, a real mosquitto and a persistent
// mosquitto_sub counted by the queue checker (TESTING.md):
//  - a tiny tmpfs that the journal fills: producers get journal_full with
//    retry_after_ms and retry the same ids; the agent neither crashes nor
//    spins while full; draining to the broker makes room; every message ends
//    up acked once and delivered (lost 0, unexpected 0);
//  - a foreign file eats the last free byte (real ENOSPC on the WAL and on
//    checkpoints): still journal_full, never "internal", the backlog still
//    drains, and deleting the file lets producers in again;
//  - a journal directory that is read-only at start (a tmpfs remounted ro):
//    exit 73 (EX_CANTCREAT) with an error naming the path, new or existing
//    journal alike;
//  - a journal that becomes unwritable while running (chattr +i: a remount
//    read-only is refused while the file is open for writing): refusals with
//    a clear error, no lost ack, what is stored still drains, and writes
//    resume once the attribute is gone.
// Each needs root (mount, chattr) and skips with a message otherwise.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <deque>
#include <fstream>
#include <future>
#include <sstream>
#include <thread>

#include "tests/support/disk.h"
#include "tests/support/e2e_fixture.h"

namespace edgespool {
namespace {

using namespace edgespool::testing;
using Clock = std::chrono::steady_clock;

// Telemetry of about 1 KiB: ParseTelemetry reads the id and ts before the pad.
std::string BigPayload(const std::string& id, int i) {
  std::string p = TelemetryPayload(id, 1732300000000 + i, i);
  p.pop_back();  // the closing brace
  return p + ",\"pad\":\"" + std::string(900, static_cast<char>('a' + i % 26)) + "\"}";
}

// User + system CPU seconds of a process so far (/proc/PID/stat fields 14, 15).
double CpuSeconds(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  auto close = s.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream in(s.substr(close + 2));
  std::string field;
  unsigned long long utime = 0, stime = 0;  // NOLINT(runtime/int)
  for (int i = 3; i <= 15 && in >> field; ++i) {
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// What producers saw; shared between the publishing thread and the test.
struct LoadStats {
  std::atomic<int> acked{0}, full{0}, other{0}, rounds_all_refused{0};
  std::atomic<int64_t> min_retry_ms{INT64_MAX}, max_retry_ms{0};
  std::atomic<int64_t> other_retry_ms{0};  // the largest retry_after_ms of other refusals
  std::mutex mu;
  std::map<std::string, int> other_codes;  // code or message -> count
  std::string first_full_message, first_other_message;
};

class DiskFaultsTest : public AgentE2ETest {
 protected:
  // A tmpfs of `size` for the journal at dir_/jmnt. Skips when refused.
  bool MountJournal(const std::string& size) {
    mnt_ = std::make_unique<TmpfsMount>(dir_.File("jmnt"), size);
    return mnt_->mounted();
  }
  std::string JournalPath() const { return dir_.File("jmnt/journal.db"); }
  std::multimap<std::string, std::string> JournalSettings(const std::string& max_bytes) {
    return {{"store", "path = \"" + JournalPath() + "\""},
            {"store", "max_bytes = \"" + max_bytes + "\""}};
  }

  // Publishes ids prefix0..prefix(n-1) in windows of `window`, each id until
  // it is acked: a journal_full answer puts it back in the queue and the
  // producer waits retry_after_ms, as a well-behaved producer does. Any
  // other refusal is counted (a test fails on it). Bounded by deadline.
  void PublishAll(client::Producer& p, const std::string& prefix, int n, int window,
                  Clock::time_point deadline, LoadStats* st) {
    std::deque<int> todo;
    for (int i = 0; i < n; ++i) todo.push_back(i);
    while (!todo.empty() && Clock::now() < deadline) {
      std::vector<std::pair<int, std::future<client::PublishResult>>> inflight;
      for (int k = 0; k < window && !todo.empty(); ++k) {
        int i = todo.front();
        todo.pop_front();
        client::PublishOptions o;
        o.id = prefix + std::to_string(i);
        inflight.emplace_back(
            i, p.Publish("sensors/disk" + std::to_string(i % 4), BigPayload(o.id, i), o));
      }
      int64_t wait_ms = 0;
      int refused = 0;
      for (auto& [i, fut] : inflight) {
        client::PublishResult r = fut.get();
        std::string id = prefix + std::to_string(i);
        if (r.status.ok()) {
          checker_.Published(id, true);
          ++st->acked;
          continue;
        }
        ++refused;
        todo.push_back(i);  // retried with the same id
        std::lock_guard<std::mutex> lock(st->mu);
        if (r.code == protocol::ErrorCode::kJournalFull) {
          if (st->full++ == 0) st->first_full_message = r.status.message();
          st->min_retry_ms = std::min<int64_t>(st->min_retry_ms, r.retry_after_ms);
          st->max_retry_ms = std::max<int64_t>(st->max_retry_ms, r.retry_after_ms);
          wait_ms = std::max(wait_ms, r.retry_after_ms);
        } else {
          if (st->other++ == 0) st->first_other_message = r.status.ToString();
          ++st->other_codes[r.code ? protocol::ErrorCodeName(*r.code) : r.status.ToString()];
          st->other_retry_ms = std::max<int64_t>(st->other_retry_ms, r.retry_after_ms);
          wait_ms = std::max<int64_t>(wait_ms, r.retry_after_ms > 0 ? r.retry_after_ms : 200);
        }
      }
      if (refused == static_cast<int>(inflight.size())) ++st->rounds_all_refused;
      if (wait_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(wait_ms));
    }
  }

  // The agent's CPU use (fraction of one core) over `ms`.
  double CpuShare(int ms) {
    double a = CpuSeconds(agent_->pid());
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    return (CpuSeconds(agent_->pid()) - a) / (ms / 1000.0);
  }

  static void Report(const char* scenario, const LoadStats& st, const QueueChecker::Counts& c) {
    std::printf(
        "%s: acked %d, journal_full answers %d (retry_after_ms %lld..%lld), other refusals "
        "%d; %s\n",
        scenario, st.acked.load(), st.full.load(),
        static_cast<long long>(st.full ? st.min_retry_ms.load() : 0),     // NOLINT
        static_cast<long long>(st.max_retry_ms.load()), st.other.load(),  // NOLINT
        c.ToString().c_str());
  }

  std::unique_ptr<TmpfsMount> mnt_;
};

#define SKIP_UNLESS_MOUNTED(size)                                                     \
  if (!MountJournal(size))                                                            \
  GTEST_SKIP() << "cannot mount a tmpfs here (needs root / CAP_SYS_ADMIN): the disk " \
                  "fault tests did not run"

// The journal fills the filesystem while the broker is away: journal_full
// with retry_after_ms; the broker's return drains the backlog, sent rows
// are evicted to make room, and the producers' retries get in.
TEST_F(DiskFaultsTest, FullDiskRefusesWithRetryAfterAndDrainMakesRoom) {
  SKIP_UNLESS_MOUNTED("12m");
  StartBroker();
  StartSubscriber("sensors/#");
  broker_->Stop();
  // A cap above the disk's size: the disk, not the cap, is the limit.
  StartAgent(JournalSettings("16MiB"));
  auto p = Connect();
  ASSERT_TRUE(p);
  const int n = 15000;  // ~15 MB of payload: about twice what fits
  LoadStats st;
  auto load = std::async(std::launch::async, [&] {
    PublishAll(*p, "full-", n, 256, Clock::now() + std::chrono::seconds(150), &st);
  });
  ASSERT_TRUE(
      WaitUntil([&] { return st.full.load() > 0 && st.rounds_all_refused.load() >= 2; }, 60000))
      << "never full; acked " << st.acked.load() << "\n"
      << agent_->log();
  int acked_when_full = st.acked.load();
  // Full, with producers retrying: the agent waits, it does not spin.
  double cpu = CpuShare(3000);
  EXPECT_LT(cpu, 0.5) << "agent CPU while full";
  EXPECT_TRUE(agent_->pid() > 0) << agent_->log();
  ASSERT_TRUE(broker_->Start());
  load.get();
  EXPECT_EQ(st.acked.load(), n) << "not every message got in after the drain\n" << agent_->log();
  EXPECT_EQ(st.other.load(), 0) << st.first_other_message;
  EXPECT_GT(st.min_retry_ms.load(), 0);
  EXPECT_NE(st.first_full_message.find("disk nearly full"), std::string::npos)
      << st.first_full_message;
  auto c = WaitAndCheck(n, /*order=*/false, 120000);
  std::printf(
      "full disk: %d of %d acked before the broker came back; agent CPU while full "
      "%.1f%% of a core\n",
      acked_when_full, n, cpu * 100);
  Report("full disk, drain makes room", st, c);
  EXPECT_EQ(c.lost, 0u);
  EXPECT_EQ(c.unexpected, 0u);
  std::string log = agent_->log();
  EXPECT_NE(log.find("journal cap lowered: disk nearly full"), std::string::npos) << log;
  EXPECT_EQ(WEXITSTATUS(agent_->Stop()), 0) << agent_->log();
}

// Someone else takes the last byte (real ENOSPC inside SQLite: WAL appends,
// checkpoints). Producers still get journal_full, not "internal"; the agent
// keeps uploading what it has; removing the file lets producers in again.
TEST_F(DiskFaultsTest, ForeignFillerCausesRealEnospcClassifiedAsFullAndRecovers) {
  SKIP_UNLESS_MOUNTED("12m");
  StartBroker();
  StartSubscriber("sensors/#");
  broker_->Stop();
  StartAgent(JournalSettings("16MiB"));
  auto p = Connect();
  ASSERT_TRUE(p);
  LoadStats st;
  PublishAll(*p, "pre-", 1500, 256, Clock::now() + std::chrono::seconds(60), &st);
  ASSERT_EQ(st.acked.load(), 1500) << agent_->log();
  std::string filler = dir_.File("jmnt/filler");
  uint64_t eaten = FillDisk(filler);
  ASSERT_LT(FreeBytes(dir_.File("jmnt")), 16u * 1024);
  LoadStats st2;
  auto load = std::async(std::launch::async, [&] {
    PublishAll(*p, "post-", 3000, 256, Clock::now() + std::chrono::seconds(150), &st2);
  });
  ASSERT_TRUE(WaitUntil([&] { return st2.rounds_all_refused.load() >= 2; }, 30000))
      << "appends never refused on a full disk; acked " << st2.acked.load();
  int acked_full = st2.acked.load();
  double cpu_full = CpuShare(2000);
  // The broker comes back while the disk is still full: the backlog drains
  // (marking rows sent needs writes too, which may fail: then they are sent
  // again later, never lost).
  ASSERT_TRUE(broker_->Start());
  bool drained_while_full = WaitUntil(
      [&] {
        std::set<std::string> ids;
        for (const auto& d : ToDeliveries(sub_->Read())) ids.insert(d.id);
        return ids.size() >= 1500u;
      },
      30000);
  double cpu_full_online = CpuShare(2000);
  unlink(filler.c_str());
  load.get();
  auto c = WaitAndCheck(1500 + 3000, /*order=*/false, 120000);
  std::printf(
      "foreign filler: %llu bytes eaten, %d acked after it; backlog drained while full: "
      "%s; agent CPU while full %.1f%% (offline) / %.1f%% (online) of a core\n",
      static_cast<unsigned long long>(eaten), acked_full,  // NOLINT
      drained_while_full ? "yes" : "no", cpu_full * 100, cpu_full_online * 100);
  Report("foreign filler (real ENOSPC)", st2, c);
  EXPECT_TRUE(drained_while_full) << agent_->log();
  EXPECT_LT(cpu_full, 0.5);
  EXPECT_LT(cpu_full_online, 0.5);
  EXPECT_EQ(st2.acked.load(), 3000) << agent_->log();
  EXPECT_GT(st2.full.load(), 0);
  EXPECT_EQ(st2.other.load(), 0) << "refusals other than journal_full: " << st2.first_other_message;
  EXPECT_EQ(c.lost, 0u);
  EXPECT_EQ(c.unexpected, 0u);
  // Acked rows whose "sent" mark could not be written stay leased and are
  // marked again later; they used to be uploaded again at once, in a loop
  // for as long as the disk stayed full (505 to 34,255 duplicates here).
  EXPECT_LE(c.duplicated, 45u);
  std::printf(
      "marks failed while full and were retried: %s\n",
      agent_->log().find("sync: marking sent works again") != std::string::npos ? "yes" : "no");
  EXPECT_EQ(WEXITSTATUS(agent_->Stop()), 0) << agent_->log();
}

// Read-only at start, a new journal and an existing one: exit 73 with the
// path in the error.
TEST_F(DiskFaultsTest, ReadOnlyJournalDirectoryExits73AtStart) {
  SKIP_UNLESS_MOUNTED("8m");
  StartBroker();
  StartSubscriber("sensors/#");
  broker_->Stop();  // what is published below stays pending in the journal
  if (!mnt_->Remount("ro")) GTEST_SKIP() << "tmpfs remount,ro refused here";
  agent_ = std::make_unique<AgentProcess>(dir_.path(), broker_->url(), JournalSettings("4MiB"));
  EXPECT_FALSE(agent_->Start());
  int status = agent_->Stop();
  ASSERT_TRUE(WIFEXITED(status)) << status << "\n" << agent_->log();
  EXPECT_EQ(WEXITSTATUS(status), 73) << agent_->log();
  std::string log = agent_->log();
  EXPECT_NE(log.find("cannot start"), std::string::npos) << log;
  EXPECT_NE(log.find(JournalPath()), std::string::npos) << log;
  EXPECT_NE(log.find("Read-only file system"), std::string::npos) << log;
  std::printf("read-only, new journal: exit %d\n", WEXITSTATUS(status));

  // Now with a journal that exists (and a backlog): still 73, not a
  // journal opened read-only that would accept producers it cannot keep.
  ASSERT_TRUE(mnt_->Remount("rw"));
  StartAgent(JournalSettings("4MiB"));
  auto p = Connect();
  ASSERT_TRUE(p);
  LoadStats st;
  PublishAll(*p, "ro-", 200, 100, Clock::now() + std::chrono::seconds(30), &st);
  ASSERT_EQ(st.acked.load(), 200);
  p.reset();
  ASSERT_EQ(WEXITSTATUS(agent_->Stop()), 0) << agent_->log();
  ASSERT_TRUE(mnt_->Remount("ro")) << "remount ro refused with no writer";
  ASSERT_EQ(::truncate(dir_.File("agent.log").c_str(), 0), 0);
  EXPECT_FALSE(agent_->Start());
  status = agent_->Stop();
  ASSERT_TRUE(WIFEXITED(status)) << status << "\n" << agent_->log();
  EXPECT_EQ(WEXITSTATUS(status), 73) << agent_->log();
  log = agent_->log();
  EXPECT_NE(log.find(JournalPath()), std::string::npos) << log;
  std::printf("read-only, existing journal: exit %d\n", WEXITSTATUS(status));
  // Writable again: the journal and its 200 messages are all there.
  ASSERT_TRUE(mnt_->Remount("rw"));
  ASSERT_TRUE(broker_->Start());
  ASSERT_TRUE(agent_->Start()) << agent_->log();
  auto c = WaitAndCheck(200, /*order=*/false);
  EXPECT_EQ(c.lost, 0u);
  EXPECT_EQ(c.unexpected, 0u);
  // Not a disk fault, but the other reason `run` cannot have the journal
  // (its --help tells the two apart): a second agent on it gets 69.
  TempDir other;
  AgentProcess second(other.path(), broker_->url(), JournalSettings("4MiB"));
  EXPECT_FALSE(second.Start());
  status = second.Stop();
  ASSERT_TRUE(WIFEXITED(status)) << status << "\n" << second.log();
  EXPECT_EQ(WEXITSTATUS(status), 69) << second.log();
  EXPECT_NE(second.log().find("locked by another process"), std::string::npos) << second.log();
  EXPECT_EQ(WEXITSTATUS(agent_->Stop()), 0) << agent_->log();
}

// The journal's files turn immutable under the running agent (writes on the
// open descriptors fail with EPERM): producers are refused with a clear
// error, nothing acked is lost, what is stored still drains, and appends
// resume once the files are writable again.
TEST_F(DiskFaultsTest, JournalBecomingUnwritableWhileRunningLosesNoAck) {
  // On the temp dir's own disk, not a tmpfs: tmpfs takes +i but lets open
  // files write (tests/support/disk.h).
  ASSERT_EQ(mkdir(dir_.File("jmnt").c_str(), 0755), 0);
  StartBroker();
  StartSubscriber("sensors/#");
  broker_->Stop();
  StartAgent(JournalSettings("8MiB"));
  auto p = Connect();
  ASSERT_TRUE(p);
  LoadStats st;
  PublishAll(*p, "rw-", 1000, 200, Clock::now() + std::chrono::seconds(60), &st);
  ASSERT_EQ(st.acked.load(), 1000);
  std::vector<std::string> files = {JournalPath(), JournalPath() + "-wal", dir_.File("jmnt")};
  for (const auto& f : files) {
    if (!SetImmutable(f, true)) {
      for (const auto& g : files) SetImmutable(g, false);
      GTEST_SKIP() << "chattr +i refused on " << f << " (needs CAP_LINUX_IMMUTABLE)";
    }
  }
  LoadStats st2;
  auto load = std::async(std::launch::async, [&] {
    PublishAll(*p, "ro-", 1000, 200, Clock::now() + std::chrono::seconds(120), &st2);
  });
  bool refused = WaitUntil([&] { return st2.rounds_all_refused.load() >= 2; }, 30000);
  double cpu = CpuShare(2000);
  ASSERT_TRUE(broker_->Start());
  // What was acked before drains while the files stay read-only.
  bool drained = WaitUntil(
      [&] {
        std::set<std::string> ids;
        for (const auto& d : ToDeliveries(sub_->Read())) ids.insert(d.id);
        return ids.size() >= 1000u;
      },
      30000);
  std::string first_refusal;
  {
    std::lock_guard<std::mutex> lock(st2.mu);
    first_refusal =
        st2.first_other_message.empty() ? st2.first_full_message : st2.first_other_message;
  }
  for (const auto& f : files) SetImmutable(f, false);
  load.get();
  auto c = WaitAndCheck(2000, /*order=*/false, 120000);
  std::printf(
      "unwritable while running: refused %s, first refusal: %s; drained while "
      "unwritable: %s; agent CPU %.1f%% of a core\n",
      refused ? "yes" : "no", first_refusal.c_str(), drained ? "yes" : "no", cpu * 100);
  Report("journal unwritable while running", st2, c);
  EXPECT_TRUE(refused) << agent_->log();
  EXPECT_TRUE(drained) << agent_->log();
  EXPECT_LT(cpu, 0.5);
  EXPECT_EQ(st2.acked.load(), 1000) << agent_->log();
  EXPECT_EQ(c.lost, 0u);
  EXPECT_EQ(c.unexpected, 0u);
  // The producer's answer: internal, with the journal's reason and path and
  // a retry_after_ms; the agent logs the first failure once.
  EXPECT_NE(first_refusal.find("journal write failed"), std::string::npos) << first_refusal;
  EXPECT_NE(first_refusal.find(JournalPath()), std::string::npos) << first_refusal;
  EXPECT_GT(st2.other_retry_ms.load(), 0);
  std::string log = agent_->log();
  EXPECT_NE(log.find("journal commit failed"), std::string::npos) << log;
  EXPECT_NE(log.find("journal accepts appends again"), std::string::npos) << log;
  EXPECT_EQ(WEXITSTATUS(agent_->Stop()), 0) << agent_->log();
}

}  // namespace
}  // namespace edgespool
