// big_journal_bench: the agent on a big journal (issue 19, "Big journals").
//
//   big_journal_bench [--size 2GiB] [--dir DIR] [--keep] [--reuse FILE]
//                     [--phases open,ready,evict,drain] [--drain-seconds 30]
//                     [--evict-count 1000000] [--recent]
//
// build  A journal of --size bytes made fast (tests/support/journal_builder.h:
//        the store's schema and pragmas, 200-byte messages inserted 50,000
//        rows a transaction with synchronous off, every row pending). stored_at is two hours
//        old (a backlog that built up over time; --recent: now, every row
//        inside the dedupe window). --reuse FILE skips this (the file is kept).
// open   In process, warm page cache: what each O(journal) step of the old
//        open path costs at this size (PRAGMA quick_check, the pending count
//        and sum, the dedupe scan), then Journal::Open as it is now.
// ready  The real agent binary on the file, NOTIFY_SOCKET on a socket of the
//        bench's: time from spawn to READY=1, and every EXTEND_TIMEOUT_USEC
//        seen before it; after a crash, when the background backlog count
//        arrived (edgespool_pending_messages has a value again); then the background integrity
//        check's duration (edgespool_journal_integrity_checks_total) and the agent's VmHWM.
// evict  store.max_bytes = the file's size, when_full = "drop-oldest", no
//        broker: `edgespool publish --count N` against the full journal,
//        next to the same load into an empty journal in the same run (the
//        ratio); checks the file never passed the cap and counts the drops.
// drain  A real mosquitto started here; the agent drains the big backlog for
//        --drain-seconds (message mode), next to a 200k-message backlog in
//        the same run (the ratio); VmHWM of the agent while draining.
//
// The file lives in --dir (default /var/tmp; the free space is checked
// first) and is deleted at the end unless --keep.
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "platform/files.h"
#include "platform/loop.h"
#include "store/journal.h"
#include "store/journal_db.h"
#include "store/schema.h"
#include "store/sqlite.h"
#include "tests/support/e2e.h"
#include "tests/support/http_get.h"
#include "tests/support/journal_builder.h"
#include "tests/support/test_env.h"

namespace edgespool {
namespace {

using Clock = std::chrono::steady_clock;
using namespace edgespool::testing;

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

int64_t WallMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

uint64_t ParseSize(const std::string& s) {
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  std::string unit(end);
  if (unit == "KiB") v *= 1024.0;
  if (unit == "MiB") v *= 1024.0 * 1024;
  if (unit == "GiB") v *= 1024.0 * 1024 * 1024;
  return static_cast<uint64_t>(v);
}

uint64_t FileBytes(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
}

// VmHWM / VmRSS of a process, in KiB.
int64_t ProcKb(pid_t pid, const char* field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  size_t n = std::strlen(field);
  while (std::getline(in, line)) {
    if (line.compare(0, n, field) == 0) return std::atoll(line.c_str() + n + 1);
  }
  return -1;
}

struct Options {
  uint64_t size = 2ull << 30;
  std::string dir = "/var/tmp";
  std::string reuse;
  bool keep = false;
  bool recent = false;
  std::string phases = "open,ready,evict,drain";
  int drain_seconds = 30;
  int evict_count = 1000000;
  bool Has(const char* phase) const { return phases.find(phase) != std::string::npos; }
};

// --- build ----------------------------------------------------------------------

// tests/support/journal_builder.h, timed.
int64_t BuildJournal(const std::string& path, uint64_t size, bool recent) {
  auto start = Clock::now();
  int64_t rows = testing::BuildJournal(path, size, WallMs() - (recent ? 0 : 2 * 3600 * 1000));
  if (rows >= 0) {
    std::printf("build: %lld rows, %.0f MiB in %.1f s\n", static_cast<long long>(rows),
                FileBytes(path) / 1048576.0, Seconds(start));
  }
  return rows;
}

// --- open -----------------------------------------------------------------------

double TimeQuery(store::Db& db, const char* sql, std::string* out = nullptr) {
  auto start = Clock::now();
  auto r = db.QueryText(sql);
  double t = Seconds(start);
  if (out) *out = r.ok() ? *r : r.status().ToString();
  return t;
}

void OpenPhase(const std::string& path) {
  std::printf("\n== open: the O(journal) steps, warm page cache, %.0f MiB ==\n",
              FileBytes(path) / 1048576.0);
  {
    store::Db db;
    (void)db.Open(path, SQLITE_OPEN_READONLY, store::kJournalVfs);
    (void)db.Exec("PRAGMA cache_size = -8192");
    // Twice: the first run reads the file into the page cache.
    std::string r;
    double q1 = TimeQuery(db, "PRAGMA quick_check(1)", &r);
    double q2 = TimeQuery(db, "PRAGMA quick_check(1)", &r);
    std::printf("  PRAGMA quick_check(1)                         %6.2f s (first run %.2f s): %s\n",
                q2, q1, r.c_str());
    double c = TimeQuery(db, "SELECT count(*) || ' ' || ifnull(sum(bytes), 0) FROM pending", &r);
    std::printf("  count(*), sum(bytes) FROM pending             %6.2f s (%s)\n", c, r.c_str());
    double d = TimeQuery(db, "SELECT count(*) FROM journal WHERE state = 2", &r);
    std::printf("  count(*) FROM journal WHERE state = 2         %6.2f s\n", d);
    double s =
        TimeQuery(db, "SELECT count(*) FROM (SELECT msg_id FROM journal ORDER BY seq DESC)", &r);
    std::printf("  the dedupe scan if every row is in the window %6.2f s\n", s);
  }
  platform::SystemClock::Get();
  auto loop = platform::Loop::Create();
  store::JournalOptions o;
  o.path = path;
  o.max_bytes = FileBytes(path) + (64ull << 20);
  auto start = Clock::now();
  auto j = store::Journal::Open(**loop, o);
  double t = Seconds(start);
  std::printf("  Journal::Open (this build)                    %6.2f s: %s, %llu pending\n", t,
              j.ok() ? "ok" : j.status().ToString().c_str(),
              j.ok() ? static_cast<unsigned long long>((*j)->stats().pending_count) : 0ull);
}

// --- the agent --------------------------------------------------------------------

// The supervisor's side of $NOTIFY_SOCKET: every datagram, with its arrival
// time since `start`.
class NotifySocket {
 public:
  explicit NotifySocket(std::string path) : path_(std::move(path)) {
    fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path_.c_str(), sizeof addr.sun_path - 1);
    unlink(path_.c_str());
    if (bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) std::perror("bind");
    timeval tv{0, 50000};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    thread_ = std::thread([this] { Run(); });
  }
  ~NotifySocket() {
    stop_ = true;
    thread_.join();
    close(fd_);
  }
  void Reset() {
    std::lock_guard<std::mutex> lock(mu_);
    got_.clear();
    start_ = Clock::now();
  }
  // Seconds from Reset to the first datagram containing `what`; -1: none yet.
  double When(const std::string& what) {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [t, m] : got_) {
      if (m.find(what) != std::string::npos) return t;
    }
    return -1;
  }
  std::vector<std::pair<double, std::string>> Got() {
    std::lock_guard<std::mutex> lock(mu_);
    return got_;
  }
  const std::string& path() const { return path_; }

 private:
  void Run() {
    char buf[4096];
    while (!stop_) {
      ssize_t n = recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) continue;
      std::lock_guard<std::mutex> lock(mu_);
      got_.emplace_back(Seconds(start_), std::string(buf, static_cast<size_t>(n)));
    }
  }
  std::string path_;
  int fd_ = -1;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  Clock::time_point start_ = Clock::now();
  std::vector<std::pair<double, std::string>> got_;
  std::thread thread_;
};

std::multimap<std::string, std::string> AgentSettings(const std::string& journal,
                                                      uint64_t max_bytes, uint16_t metrics_port,
                                                      const char* when_full = "reject") {
  return {{"store", "path = \"" + journal + "\""},
          {"store", "max_bytes = " + std::to_string(max_bytes)},
          {"store", std::string("when_full = \"") + when_full + "\""},
          {"metrics", "listen = \"127.0.0.1:" + std::to_string(metrics_port) + "\""},
          {"log", "level = \"info\""}};
}

double Metric(uint16_t port, const char* name) {
  return MetricValue(HttpGet(port, "/metrics"), name);
}

// One start: spawn to READY=1; with wait_check, also the background check.
void StartOnce(const std::string& journal, NotifySocket& notify, const char* what,
               bool wait_check) {
  std::printf("  %s\n", what);
  TempDir work;
  uint16_t mport = FreePort();
  // No broker: start-up alone (the uplink retries in the background).
  AgentProcess agent(work.path(), "mqtt://127.0.0.1:" + std::to_string(FreePort()),
                     AgentSettings(journal, FileBytes(journal) + (64ull << 20), mport));
  setenv("NOTIFY_SOCKET", notify.path().c_str(), 1);
  notify.Reset();
  bool started = agent.Start();
  unsetenv("NOTIFY_SOCKET");
  if (!started) {
    std::printf("  agent did not start:\n%s\n", agent.log().c_str());
    return;
  }
  auto deadline = Clock::now() + std::chrono::seconds(60);
  while (notify.When("READY=1") < 0 && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  double ready = notify.When("READY=1");
  int extends = 0;
  for (const auto& [t, m] : notify.Got()) {
    if (m.find("EXTEND_TIMEOUT_USEC") != std::string::npos && (ready < 0 || t <= ready)) ++extends;
  }
  std::printf("    spawn to READY=1: %.3f s; EXTEND_TIMEOUT_USEC before it: %d\n", ready, extends);
  for (const auto& [t, m] : notify.Got()) {
    if (m.find("EXTEND_TIMEOUT_USEC") == std::string::npos) continue;
    std::string line = m;
    for (char& c : line) c = c == '\n' ? ' ' : c;
    std::printf("      %.3f s: %s\n", t, line.c_str());
  }
  if (!wait_check) {
    // After a crash the backlog is counted in the background
    // (store/backlog_count.h): the pending gauge is NaN (no match) until then.
    auto count_start = Clock::now();
    double pending = -1;
    deadline = Clock::now() + std::chrono::seconds(120);
    while ((pending = Metric(mport, "edgespool_pending_messages")) < 0 && Clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    std::printf("    backlog counted %.2f s after READY=1: %.0f pending\n", Seconds(count_start),
                pending);
    std::printf("    agent VmHWM %lld KiB\n", static_cast<long long>(ProcKb(agent.pid(), "VmHWM")));
    agent.Stop();
    return;
  }
  // The background integrity check, after READY.
  auto check_start = Clock::now();
  deadline = Clock::now() + std::chrono::seconds(600);
  double checks = 0;
  while (Clock::now() < deadline) {
    checks = Metric(mport, "edgespool_journal_integrity_checks_total");
    if (checks >= 1) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  std::printf("    background integrity check: %s %.1f s after READY, failures %.0f\n",
              checks >= 1 ? "done" : "NOT done", Seconds(check_start) + 0.0,
              Metric(mport, "edgespool_journal_integrity_failures_total"));
  std::printf("    agent VmHWM %lld KiB, VmRSS %lld KiB (during start-up and the check)\n",
              static_cast<long long>(ProcKb(agent.pid(), "VmHWM")),
              static_cast<long long>(ProcKb(agent.pid(), "VmRSS")));
  agent.Stop();
}

void ReadyPhase(const std::string& journal, NotifySocket& notify) {
  std::printf("\n== ready: the agent binary, spawn to READY=1, %.0f MiB ==\n",
              FileBytes(journal) / 1048576.0);
  // As after a crash: no clean-close counts, the backlog is counted.
  unlink(store::JournalDb::CountsPath(journal).c_str());
  StartOnce(journal, notify, "after a crash (no clean-close counts):", false);
  StartOnce(journal, notify, "after a clean stop:", true);
}

// Runs `edgespool publish --count` against a running agent; seconds taken.
double PublishLoad(const std::string& socket, int count, const std::string& log) {
  Process p;
  const char* bin = std::getenv("EDGESPOOL_BIN");
  std::vector<std::string> argv = {bin ? bin : "edgespool",
                                   "publish",
                                   "bench/evict",
                                   "--count",
                                   std::to_string(count),
                                   "--size",
                                   "200",
                                   "--connections",
                                   "8",
                                   "--socket",
                                   socket};
  auto start = Clock::now();
  if (!p.Start(argv, log)) return -1;
  int st = p.Wait(600000);
  if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
    std::printf("  publish failed (%d): %s\n", st, ReadFile(log).c_str());
    return -1;
  }
  return Seconds(start);
}

struct EvictRun {
  double seconds = 0;
  double appended = 0, dropped = 0, rejected = 0;
  uint64_t max_file = 0;
  int64_t hwm_kb = 0;
};

EvictRun RunEvict(const std::string& journal, uint64_t cap, int count) {
  EvictRun r;
  TempDir work;
  uint16_t mport = FreePort();
  AgentProcess agent(work.path(), "mqtt://127.0.0.1:" + std::to_string(FreePort()),
                     AgentSettings(journal, cap, mport, "drop-oldest"));
  if (!agent.Start()) {
    std::printf("  agent did not start:\n%s\n", agent.log().c_str());
    return r;
  }
  double a0 = Metric(mport, "edgespool_messages_appended_total");
  double d0 = Metric(mport, "edgespool_messages_dropped_total");
  std::atomic<bool> done{false};
  std::thread watch([&] {
    while (!done) {
      r.max_file = std::max(r.max_file, FileBytes(journal));
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  });
  r.seconds = PublishLoad(agent.socket(), count, work.File("publish.log"));
  done = true;
  watch.join();
  r.max_file = std::max(r.max_file, FileBytes(journal));
  r.appended = Metric(mport, "edgespool_messages_appended_total") - a0;
  r.dropped = Metric(mport, "edgespool_messages_dropped_total") - d0;
  r.rejected = Metric(mport, "edgespool_messages_rejected_full_total");
  r.hwm_kb = ProcKb(agent.pid(), "VmHWM");
  agent.Stop();
  return r;
}

void EvictPhase(const std::string& dir, const std::string& journal, int count) {
  uint64_t cap = FileBytes(journal);
  std::printf("\n== evict: drop-oldest at a cap of %.0f MiB (the journal full), %d messages ==\n",
              cap / 1048576.0, count);
  std::string empty = dir + "/evict-baseline.db";
  EvictRun base = RunEvict(empty, cap, count);
  for (const char* suffix : {"", "-wal", "-shm", ".lock", ".counts"})
    unlink((empty + suffix).c_str());
  EvictRun full = RunEvict(journal, cap, count);
  auto print = [&](const char* what, const EvictRun& r) {
    std::printf(
        "  %-28s %7.0f msg/s  appended %.0f dropped %.0f  file max %.1f MiB (cap %.1f) %s"
        "  VmHWM %lld KiB\n",
        what, r.seconds > 0 ? r.appended / r.seconds : 0, r.appended, r.dropped,
        r.max_file / 1048576.0, cap / 1048576.0, r.max_file <= cap ? "within" : "OVER",
        static_cast<long long>(r.hwm_kb));
  };
  print("empty journal (baseline)", base);
  print("full journal, drop-oldest", full);
  if (base.seconds > 0 && full.seconds > 0) {
    std::printf("  ratio full/empty: %.2f\n",
                (full.appended / full.seconds) / (base.appended / base.seconds));
  }
}

struct DrainRun {
  double rate = 0;
  int64_t hwm_kb = 0;
};

DrainRun RunDrain(const std::string& journal, Mosquitto& broker, int seconds) {
  DrainRun r;
  TempDir work;
  uint16_t mport = FreePort();
  AgentProcess agent(work.path(), broker.url(),
                     AgentSettings(journal, FileBytes(journal) + (64ull << 20), mport));
  if (!agent.Start()) {
    std::printf("  agent did not start:\n%s\n", agent.log().c_str());
    return r;
  }
  // From the first message sent, so connecting is not counted.
  auto deadline = Clock::now() + std::chrono::seconds(30);
  while (Metric(mport, "edgespool_messages_sent_total") <= 0 && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  double s0 = Metric(mport, "edgespool_messages_sent_total");
  auto start = Clock::now();
  double pending = 1;
  while (Seconds(start) < seconds) {
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
    pending = Metric(mport, "edgespool_pending_messages");
    if (pending == 0) break;
  }
  double s1 = Metric(mport, "edgespool_messages_sent_total");
  r.rate = (s1 - s0) / Seconds(start);
  r.hwm_kb = ProcKb(agent.pid(), "VmHWM");
  agent.Stop();
  return r;
}

void DrainPhase(const std::string& dir, const std::string& journal, int seconds) {
  std::printf("\n== drain: to a real mosquitto, %d s, message mode ==\n", seconds);
  TempDir work;
  Mosquitto broker(work.path());
  if (!broker.Start()) {
    std::printf("  mosquitto did not start\n");
    return;
  }
  std::string small = dir + "/drain-baseline.db";
  BuildJournal(small, 48ull << 20, false);
  DrainRun base = RunDrain(small, broker, seconds);
  for (const char* suffix : {"", "-wal", "-shm", ".lock", ".counts"})
    unlink((small + suffix).c_str());
  DrainRun big = RunDrain(journal, broker, seconds);
  std::printf("  48 MiB backlog (baseline)  %7.0f msg/s  VmHWM %lld KiB\n", base.rate,
              static_cast<long long>(base.hwm_kb));
  std::printf("  %.0f MiB backlog           %7.0f msg/s  VmHWM %lld KiB\n",
              FileBytes(journal) / 1048576.0, big.rate, static_cast<long long>(big.hwm_kb));
  if (base.rate > 0) std::printf("  ratio big/baseline: %.2f\n", big.rate / base.rate);
}

int Main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // figures as they come, also into a file
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&] { return i + 1 < argc ? std::string(argv[++i]) : std::string(); };
    if (a == "--size")
      o.size = ParseSize(next());
    else if (a == "--dir")
      o.dir = next();
    else if (a == "--reuse")
      o.reuse = next();
    else if (a == "--keep")
      o.keep = true;
    else if (a == "--recent")
      o.recent = true;
    else if (a == "--phases")
      o.phases = next();
    else if (a == "--drain-seconds")
      o.drain_seconds = std::atoi(next().c_str());
    else if (a == "--evict-count")
      o.evict_count = std::atoi(next().c_str());
    else {
      std::fprintf(stderr,
                   "usage: big_journal_bench [--size 2GiB] [--dir DIR] [--keep] "
                   "[--reuse FILE] [--phases open,ready,evict,drain] "
                   "[--drain-seconds N] [--evict-count N] [--recent]\n");
      return 64;
    }
  }
  std::string dir = o.dir + "/edgespool-bigjournal-" + std::to_string(getpid());
  if (mkdir(dir.c_str(), 0700) != 0) {
    std::perror(dir.c_str());
    return 1;
  }
  auto free_bytes = platform::FreeDiskBytes(o.dir);
  // The journal, its WAL, the baselines, and room for the disk guard.
  uint64_t need = o.size + o.size / 4 + (512ull << 20);
  if (o.reuse.empty() && (!free_bytes.ok() || *free_bytes < need)) {
    std::fprintf(stderr, "not enough space in %s: need %llu MiB\n", o.dir.c_str(),
                 static_cast<unsigned long long>(need >> 20));
    rmdir(dir.c_str());
    return 1;
  }
  std::string journal = o.reuse.empty() ? dir + "/journal.db" : o.reuse;
  if (o.reuse.empty() && BuildJournal(journal, o.size, o.recent) < 0) return 1;
  NotifySocket notify(dir + "/notify.sock");
  if (o.Has("open")) OpenPhase(journal);
  if (o.Has("ready")) ReadyPhase(journal, notify);
  if (o.Has("evict")) EvictPhase(dir, journal, o.evict_count);
  if (o.Has("drain")) DrainPhase(dir, journal, o.drain_seconds);
  if (o.reuse.empty() && !o.keep) {
    for (const char* suffix : {"", "-wal", "-shm", ".lock", ".counts", ".check-failed"}) {
      unlink((journal + suffix).c_str());
    }
  } else {
    std::printf("\nkept %s\n", journal.c_str());
  }
  unlink((dir + "/notify.sock").c_str());
  rmdir(dir.c_str());
  return 0;
}

}  // namespace
}  // namespace edgespool

int main(int argc, char** argv) { return edgespool::Main(argc, argv); }
