#include "tests/support/soak.h"

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <mutex>
#include <sstream>
#include <thread>

#include "agent/client/producer.h"
#include "store/schema.h"
#include "tests/support/e2e.h"
#include "tests/support/netns.h"
#include "tests/support/test_env.h"

namespace edgespool::testing {

namespace {

using Clock = std::chrono::steady_clock;

int64_t MsSince(Clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
}

// The queue checker of e2e.h keeps every id as a string in std::sets: fine
// for 200k messages, ~1 GiB for the hour's 7.2M. The soak's ids are
// "soak-N" with N dense from 0, so a byte of state per id does the same
// counting (TESTING.md's definitions) in ~6 bytes a message.
class SoakLedger {
 public:
  enum State : uint8_t { kUnpublished = 0, kInFlight, kAcked, kFailed };

  explicit SoakLedger(Clock::time_point start) : start_(start) {}

  // The next id, marked in flight before it is published (so a delivery can
  // never precede it and count as unexpected).
  uint64_t Next() {
    std::lock_guard<std::mutex> lock(mu_);
    state_.push_back(kInFlight);
    seen_.push_back(0);
    ack_ms_.push_back(0);
    return state_.size() - 1;
  }
  void Done(uint64_t n, bool ok) {
    std::lock_guard<std::mutex> lock(mu_);
    state_[n] = ok ? kAcked : kFailed;
    ack_ms_[n] = static_cast<uint32_t>(MsSince(start_));
  }
  void Deliver(const std::string& id) {
    std::lock_guard<std::mutex> lock(mu_);
    uint64_t n = 0;
    if (!ParseId(id, &n) || n >= state_.size()) {
      ++unexpected_;
      return;
    }
    if (seen_[n] == 0) ++distinct_;
    if (seen_[n] < 255) ++seen_[n];
    ++deliveries_;
  }

  struct Snapshot {
    uint64_t published = 0, acked = 0, failed = 0, in_flight = 0, delivered = 0;
    uint64_t lost = 0, overdue = 0, unexpected = 0, duplicated = 0, recovered = 0;
  };
  // lost: acked and not delivered (final only); overdue: of those, acked
  // more than overdue_ms ago.
  Snapshot Count(int64_t overdue_ms) const {
    std::lock_guard<std::mutex> lock(mu_);
    Snapshot s;
    s.published = state_.size();
    s.delivered = distinct_;
    s.unexpected = unexpected_;
    s.duplicated = deliveries_ - distinct_;
    int64_t now = MsSince(start_);
    for (size_t n = 0; n < state_.size(); ++n) {
      switch (state_[n]) {
        case kAcked:
          ++s.acked;
          if (seen_[n] == 0) {
            ++s.lost;
            if (now - static_cast<int64_t>(ack_ms_[n]) > overdue_ms) ++s.overdue;
          }
          break;
        case kFailed:
          ++s.failed;
          if (seen_[n] != 0) ++s.recovered;
          break;
        case kInFlight:
          ++s.in_flight;
          if (seen_[n] != 0) ++s.recovered;
          break;
        default:
          break;
      }
    }
    return s;
  }

  static std::string Id(uint64_t n) { return "soak-" + std::to_string(n); }

 private:
  static bool ParseId(const std::string& id, uint64_t* n) {
    if (id.compare(0, 5, "soak-") != 0 || id.size() == 5) return false;
    char* end = nullptr;
    *n = std::strtoull(id.c_str() + 5, &end, 10);
    return *end == '\0';
  }

  Clock::time_point start_;
  mutable std::mutex mu_;
  std::vector<uint8_t> state_, seen_;
  std::vector<uint32_t> ack_ms_;  // ms from the start when the reply came
  uint64_t distinct_ = 0, deliveries_ = 0, unexpected_ = 0;
};

// One producer connection publishing at `rate` msg/s on its own thread,
// catching up after the agent was away (the SDK queues and resends).
class PacedProducer {
 public:
  PacedProducer(std::string socket, int rate, int index, int topics, SoakLedger* ledger)
      : socket_(std::move(socket)), rate_(rate), index_(index), topics_(topics), ledger_(ledger) {}
  ~PacedProducer() { Stop(); }

  bool Start() {
    client::ProducerOptions o;
    o.socket_path = socket_;
    o.window = 512;
    o.connect_timeout_ms = 20000;
    o.backoff_max_ms = 500;  // the agent is back within a second or two
    auto p = client::Producer::Connect(o);
    if (!p.ok()) {
      error_ = p.status().ToString();
      return false;
    }
    producer_ = std::move(*p);
    thread_ = std::thread([this] { Run(); });
    return true;
  }
  // Stops publishing and waits (bounded) for every reply.
  void Stop() {
    if (!thread_.joinable()) return;
    stop_ = true;
    thread_.join();
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, std::chrono::seconds(60), [&] { return outstanding_ == 0; });
    lock.unlock();
    producer_.reset();
  }
  const std::string& error() const { return error_; }

 private:
  void Run() {
    auto start = Clock::now();
    uint64_t sent = 0;
    while (!stop_) {
      uint64_t due = static_cast<uint64_t>(MsSince(start)) * static_cast<uint64_t>(rate_) / 1000;
      while (sent < due && !stop_) {
        uint64_t n = ledger_->Next();
        client::PublishOptions po;
        po.id = SoakLedger::Id(n);
        po.ts_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
        {
          std::lock_guard<std::mutex> lock(mu_);
          ++outstanding_;
        }
        int i = static_cast<int>(n % 1000003);
        producer_->Publish("sensors/t" + std::to_string((index_ + i) % topics_),
                           TelemetryPayload(po.id, *po.ts_ms, i), po,
                           [this, n](client::PublishResult r) {
                             ledger_->Done(n, r.status.ok());
                             std::lock_guard<std::mutex> lock(mu_);
                             if (--outstanding_ == 0) cv_.notify_all();
                           });
        ++sent;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }

  std::string socket_;
  int rate_, index_, topics_;
  SoakLedger* ledger_;
  std::unique_ptr<client::Producer> producer_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  uint64_t outstanding_ = 0;
  std::string error_;
};

uint64_t FileBytes(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
}

uint64_t VmRssKib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.compare(0, 6, "VmRSS:") == 0) return std::strtoull(line.c_str() + 6, nullptr, 10);
  }
  return 0;
}

int FdCount(pid_t pid) {
  DIR* d = ::opendir(("/proc/" + std::to_string(pid) + "/fd").c_str());
  if (!d) return -1;
  int n = 0;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] != '.') ++n;
  }
  ::closedir(d);
  return n;
}

}  // namespace

std::string SoakSample::Header() {
  return "    t_s   published       acked   delivered lost_sf  rss_kib  fds   db_kib  wal_kib"
         "  brk_rst  agt_kill";
}

std::string SoakSample::Row() const {
  char buf[256];
  std::snprintf(buf, sizeof buf,
                "%7.0f %11" PRIu64 " %11" PRIu64 " %11" PRIu64 " %8" PRIu64 " %8" PRIu64
                " %4d %8" PRIu64 " %8" PRIu64 " %8d %9d",
                t_s, published, acked, delivered, overdue, rss_kib, fds, db_bytes >> 10,
                wal_bytes >> 10, broker_restarts, agent_kills);
  return buf;
}

bool SoakResult::ok() const {
  return !skipped && setup_error.empty() && lost == 0 && unexpected == 0 && rss_flat && fds_flat &&
         disk_within_cap && acked > 0;
}

std::string SoakResult::Summary() const {
  std::ostringstream o;
  if (skipped) {
    o << "soak skipped: " << skip_reason << "\n";
    return o.str();
  }
  if (!setup_error.empty()) o << "soak setup error: " << setup_error << "\n";
  char buf[512];
  std::snprintf(
      buf, sizeof buf,
      "soak %.0f s: published=%" PRIu64 " acked=%" PRIu64 " failed=%" PRIu64 " delivered=%" PRIu64
      " lost=%" PRIu64 " unexpected=%" PRIu64 " duplicated=%" PRIu64 " recovered=%" PRIu64 "\n",
      seconds, published, acked, failed, delivered, lost, unexpected, duplicated, recovered);
  o << buf;
  std::snprintf(buf, sizeof buf,
                "faults: broker restarts=%d agent SIGKILLs=%d packet loss=%s (packets dropped "
                "%" PRIu64 ")\n",
                broker_restarts, agent_kills, loss_applied ? "on" : "OFF", packets_dropped);
  o << buf;
  std::snprintf(buf, sizeof buf,
                "RSS KiB first-third max %" PRIu64 ", last-third max %" PRIu64
                ": %s\n"
                "fds first-third max %d, last-third max %d: %s\n"
                "disk: journal.db max %" PRIu64 " KiB (cap %" PRIu64
                " KiB), db+wal+shm max "
                "%" PRIu64 " KiB (cap + WAL reserve %" PRIu64 " KiB): %s\n",
                rss_first_max_kib, rss_last_max_kib, rss_flat ? "flat" : "GROWING", fds_first_max,
                fds_last_max, fds_flat ? "flat" : "GROWING", max_db_bytes >> 10, cap_bytes >> 10,
                max_disk_bytes >> 10, (cap_bytes + wal_reserve_bytes) >> 10,
                disk_within_cap ? "within" : "OVER");
  o << buf << "verdict: " << (ok() ? "PASS" : "FAIL") << "\n";
  return o.str();
}

int64_t ParseDurationMs(const std::string& text) {
  if (text.empty()) return -1;
  char* end = nullptr;
  double v = std::strtod(text.c_str(), &end);
  std::string unit(end);
  double scale = 0;
  if (unit.empty() || unit == "s") {
    scale = 1000;
  } else if (unit == "ms") {
    scale = 1;
  } else if (unit == "m" || unit == "min") {
    scale = 60000;
  } else if (unit == "h") {
    scale = 3600000;
  }
  if (scale == 0 || end == text.c_str() || v < 0) return -1;
  return static_cast<int64_t>(v * scale);
}

SoakOptions ScaledSoakOptions(int64_t duration_ms) {
  SoakOptions o;
  o.duration_ms = duration_ms;
  o.agent_kill_every_ms = std::max<int64_t>(10000, duration_ms / 12);
  o.broker_restart_every_ms = std::min<int64_t>(30000, std::max<int64_t>(5000, duration_ms / 4));
  o.sample_every_ms = std::max<int64_t>(5000, duration_ms / 60);
  return o;
}

SoakResult RunSoak(const SoakOptions& opt) {
  SoakResult res;
  TempDir dir;
  res.cap_bytes = opt.journal_max_bytes;
  res.wal_reserve_bytes =
      static_cast<uint64_t>(store::WalBudgetFor(opt.journal_max_bytes).reserve_bytes);

  // The uplink through a veth pair into a namespace holding the agent, with
  // the loss rules on the namespace's side: the host's rules stay untouched
  // and go with the namespace.
  std::unique_ptr<NetNs> ns;
  std::string why_no_loss;
  if (opt.loss > 0) {
    if (!IsRoot()) {
      why_no_loss = "packet loss needs root (a network namespace and iptables)";
    } else {
      ns = std::make_unique<NetNs>();
      if (!ns->ok()) {
        why_no_loss = "this environment refuses network namespaces or veth pairs";
        ns.reset();
      } else {
        char p[32];
        std::snprintf(p, sizeof p, "%.4f", opt.loss);
        bool in = ns->In("iptables -A INPUT -i " + ns->dev() +
                         " -m statistic --mode random --probability " + p + " -j DROP");
        bool out = ns->In("iptables -A OUTPUT -o " + ns->dev() +
                          " -m statistic --mode random --probability " + p + " -j DROP");
        if (!in || !out) {
          why_no_loss = "iptables (statistic match) refused in the namespace";
          ns.reset();
        }
      }
    }
    if (!why_no_loss.empty() && opt.require_loss) {
      res.skipped = true;
      res.skip_reason = why_no_loss;
      return res;
    }
    if (!why_no_loss.empty()) std::printf("soak: NO packet loss: %s\n", why_no_loss.c_str());
  }
  res.loss_applied = ns != nullptr;

  MosquittoOptions mo;
  mo.persistence = true;  // the checker's persistent session survives restarts
  uint16_t ns_port = FreePort();
  if (ns) mo.extra_config = "listener " + std::to_string(ns_port) + " " + ns->host_ip() + "\n";
  Mosquitto broker(dir.path(), mo);
  if (!broker.Start()) {
    res.setup_error = "mosquitto would not start: " + broker.log();
    return res;
  }
  Subscriber sub(dir.path(), broker.port(), "sensors/#", "soak-checker");
  if (!sub.Start()) {
    res.setup_error = "mosquitto_sub would not subscribe";
    return res;
  }
  std::string url = ns ? "mqtt://" + ns->host_ip() + ":" + std::to_string(ns_port) : broker.url();
  char cap[64];
  std::snprintf(cap, sizeof cap, "max_bytes = \"%" PRIu64 "KiB\"", opt.journal_max_bytes >> 10);
  auto agent = std::make_unique<AgentProcess>(
      dir.path(), url, std::multimap<std::string, std::string>{{"store", cap}});
  if (ns) agent->SetCommandPrefix(ns->prefix());
  if (!agent->Start()) {
    res.setup_error = "the agent would not start: " + agent->log();
    return res;
  }

  auto start = Clock::now();
  SoakLedger ledger(start);
  std::vector<std::unique_ptr<PacedProducer>> producers;
  for (int k = 0; k < opt.producers; ++k) {
    producers.push_back(std::make_unique<PacedProducer>(agent->socket(), opt.rate / opt.producers,
                                                        k, opt.topics, &ledger));
    if (!producers.back()->Start()) {
      res.setup_error = "producer: " + producers.back()->error();
      return res;
    }
  }

  // Fine-grained (1 s) series for the flatness rule and the disk maximum;
  // the printed curve is every sample_every.
  struct Point {
    double t_s;
    uint64_t rss_kib;
    int fds;
  };
  std::vector<Point> points;
  uint64_t sub_offset = 0;
  auto ingest = [&] {
    for (const auto& d : ToDeliveries(sub.ReadNew(&sub_offset))) ledger.Deliver(d.id);
  };
  // count: also the ledger's figures (a scan of every id so far: the 1 s
  // points skip it).
  auto sample = [&](bool count = true) {
    SoakSample s;
    s.t_s = MsSince(start) / 1000.0;
    if (count) {
      auto c = ledger.Count(opt.overdue_after_ms);
      s.published = c.published;
      s.acked = c.acked;
      s.delivered = c.delivered;
      s.overdue = c.overdue;
    }
    pid_t pid = agent->pid();
    s.rss_kib = pid > 0 ? VmRssKib(pid) : 0;
    s.fds = pid > 0 ? FdCount(pid) : -1;
    s.db_bytes = FileBytes(agent->journal());
    s.wal_bytes = FileBytes(agent->journal() + "-wal") + FileBytes(agent->journal() + "-shm");
    s.broker_restarts = res.broker_restarts;
    s.agent_kills = res.agent_kills;
    res.max_db_bytes = std::max(res.max_db_bytes, s.db_bytes);
    res.max_disk_bytes = std::max(res.max_disk_bytes, s.db_bytes + s.wal_bytes);
    return s;
  };

  std::printf(
      "soak: %d msg/s over %d producers for %.0f s; broker restart every %.0f s, agent "
      "SIGKILL every %.0f s, packet loss %s; journal cap %" PRIu64 " KiB\n%s\n",
      opt.rate, opt.producers, opt.duration_ms / 1000.0, opt.broker_restart_every_ms / 1000.0,
      opt.agent_kill_every_ms / 1000.0,
      ns ? (std::to_string(opt.loss * 100).substr(0, 4) + "%").c_str() : "none",
      opt.journal_max_bytes >> 10, SoakSample::Header().c_str());
  std::fflush(stdout);

  int64_t next_broker = opt.broker_restart_every_ms;
  int64_t next_kill = opt.agent_kill_every_ms;
  int64_t next_sample = opt.sample_every_ms;
  int64_t next_point = 1000;
  while (MsSince(start) < opt.duration_ms) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    ingest();
    int64_t now = MsSince(start);
    // Samples before faults: a row due at a kill shows the agent that ran,
    // not the one starting up.
    if (now >= next_point) {
      next_point += 1000;
      auto s = sample(/*count=*/false);
      if (s.rss_kib > 0) points.push_back({s.t_s, s.rss_kib, s.fds});
    }
    if (now >= next_sample) {
      next_sample += opt.sample_every_ms;
      auto s = sample();
      res.curve.push_back(s);
      std::printf("%s\n", s.Row().c_str());
      std::fflush(stdout);
    }
    if (now >= next_broker) {
      next_broker += opt.broker_restart_every_ms;
      broker.Stop();  // SIGTERM: mosquitto saves the checker's session
      ++res.broker_restarts;
      if (!broker.Start()) {
        res.setup_error = "mosquitto would not restart: " + broker.log();
        break;
      }
    }
    if (now >= next_kill) {
      next_kill += opt.agent_kill_every_ms;
      agent->Kill();
      ++res.agent_kills;
      if (!agent->Start()) {
        res.setup_error = "the agent would not restart: " + agent->log();
        break;
      }
    }
  }
  for (auto& p : producers) p->Stop();

  // The last deliveries: until every acked id arrived, or the timeout.
  auto drain_start = Clock::now();
  while (res.setup_error.empty() && MsSince(drain_start) < opt.drain_timeout_ms) {
    ingest();
    if (ledger.Count(0).lost == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // late duplicates
  ingest();
  auto last = sample();
  res.curve.push_back(last);
  std::printf("%s  (end, after %.1f s drain)\n", last.Row().c_str(), MsSince(drain_start) / 1000.0);
  if (ns) res.packets_dropped = ns->RulePackets("INPUT") + ns->RulePackets("OUTPUT");
  agent->Stop();
  agent.reset();  // before the namespace goes

  auto c = ledger.Count(0);
  res.published = c.published;
  res.acked = c.acked;
  res.failed = c.failed + c.in_flight;
  res.delivered = c.delivered;
  res.lost = c.lost;
  res.unexpected = c.unexpected;
  res.duplicated = c.duplicated;
  res.recovered = c.recovered;
  res.seconds = MsSince(start) / 1000.0;

  // Flat: the largest RSS (fd count) in the last third of the run is at most
  // 1.2x the largest in the first third, plus 4 MiB (4 fds) of slack for
  // allocator and connection noise. The agent restarts every kill interval,
  // so each third holds several whole lives of it: a leak that grows within
  // a life shows as each third's maximum growing with the load carried.
  double span = opt.duration_ms / 1000.0;
  for (const auto& p : points) {
    if (p.t_s < span / 3) {
      res.rss_first_max_kib = std::max(res.rss_first_max_kib, p.rss_kib);
      res.fds_first_max = std::max(res.fds_first_max, p.fds);
    } else if (p.t_s >= 2 * span / 3) {
      res.rss_last_max_kib = std::max(res.rss_last_max_kib, p.rss_kib);
      res.fds_last_max = std::max(res.fds_last_max, p.fds);
    }
  }
  res.rss_flat =
      res.rss_first_max_kib > 0 && res.rss_last_max_kib <= res.rss_first_max_kib * 6 / 5 + 4096;
  res.fds_flat = res.fds_first_max > 0 && res.fds_last_max <= res.fds_first_max * 6 / 5 + 4;
  // Disk: the database file within store.max_bytes, and with its WAL and
  // shared-memory index within the cap plus the WAL budget the journal
  // keeps free for them (store/schema.cc WalBudgetFor).
  res.disk_within_cap = res.max_db_bytes <= res.cap_bytes &&
                        res.max_disk_bytes <= res.cap_bytes + res.wal_reserve_bytes;
  return res;
}

}  // namespace edgespool::testing
