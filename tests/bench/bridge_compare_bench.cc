// bridge_compare_bench: edgespool against the store-and-forward setup most
// gateways run today — an edge mosquitto with persistence, bridged
// (`topic # out 1`) to a central mosquitto — in one run, on one machine, with
// the same producer load (200-byte JSON telemetry, unique id + original ts)
// and the same checker (a libmosquitto subscriber on the central broker with
// a persistent session, counting as Jepsen's queue checker does; see
// TESTING.md and tests/support/e2e.h).
//
// Each scenario runs three times: edgespool in message mode, edgespool in
// batch mode, and the bridge. Every run gets a fresh temp dir, central
// broker and subscriber session, so runs cannot leak into each other.
//
//   1 live        uplink up: ingest rate, end-to-end rate, ack p50/p99,
//                 CPU s per million messages (edge process, central broker)
//   2 outage      central down, N published, central up: drain time/rate,
//                 edge peak RSS (VmHWM), disk bytes per message
//   3 crash-bl    SIGKILL the edge at a random point while a backlog is
//                 published during an outage; restart; central up (rounds)
//   4 crash-dr    SIGKILL the edge mid-drain; restart
//   5 flaps       central restarted every 2 s under live traffic
//   6 slow        uplink through a 1 Mbit/s proxy: msg/s and wire B/msg
//
// Usage: bridge_compare_bench [--quick] [--out RESULTS.md] [--seed N]
//                             [--only 216] [--skip-bridge] [--kinds mbr] [--outage-n N]
// (--only: these scenarios, in this order)
// Exit status 1 when edgespool lost (or invented) a message in any scenario,
// or a scenario could not run for edgespool; speed is printed, not asserted.
#include <arpa/inet.h>
#include <mosquitto.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "agent/client/producer.h"
#include "sync/batch/batch_frame.h"
#include "tests/support/e2e.h"
#include "tests/support/tcp_proxy.h"
#include "tests/support/test_env.h"

namespace edgespool::bench {
namespace {

using Clock = std::chrono::steady_clock;
using testing::AgentProcess;
using testing::Delivered;
using testing::Mosquitto;
using testing::MosquittoOptions;
using testing::QueueChecker;
using testing::TempDir;

constexpr size_t kPayloadBytes = 200;
constexpr int kTopics = 4;
constexpr size_t kMaxOutstanding = 1000;  // producer window, both sides

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }
void SleepMs(int64_t ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

bool WaitUntil(const std::function<bool()>& pred, int64_t timeout_ms, int64_t step_ms = 20) {
  auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  while (!pred()) {
    if (Clock::now() > deadline) return false;
    SleepMs(step_ms);
  }
  return true;
}

// --- /proc readings ----------------------------------------------------------

double ProcCpuSeconds(pid_t pid) {
  if (pid <= 0) return 0;
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto paren = stat.rfind(')');
  if (paren == std::string::npos) return 0;
  std::istringstream fields(stat.substr(paren + 2));
  std::string f;
  unsigned long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && fields >> f; ++i) {
    if (i == 14) utime = std::stoull(f);
    if (i == 15) stime = std::stoull(f);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// A "VmHWM:" / "VmRSS:" line of /proc/<pid>/status, in KiB (0 if gone).
int64_t ProcStatusKiB(pid_t pid, const char* key) {
  if (pid <= 0) return 0;
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key, 0) == 0) return std::atoll(line.c_str() + std::strlen(key));
  }
  return 0;
}

int64_t FileBytes(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? static_cast<int64_t>(st.st_size) : 0;
}

// 200-byte telemetry: TelemetryPayload (id + original ts first) padded with a
// "note" field so both sides carry exactly the same bytes.
std::string Payload(const std::string& id, int64_t ts, int i) {
  std::string p = testing::TelemetryPayload(id, ts, i);
  p.pop_back();  // '}'
  const std::string field = ",\"note\":\"";
  size_t pad = kPayloadBytes > p.size() + field.size() + 2 ? kPayloadBytes - p.size() - field.size() - 2 : 0;
  p += field + std::string(pad, 'x') + "\"}";
  return p;
}

std::string Topic(int i) { return "sensors/t" + std::to_string(i % kTopics); }

// --- the checker's subscriber (libmosquitto, persistent session) ------------

class CheckerSub {
 public:
  CheckerSub(uint16_t port, std::string client_id) : port_(port), client_id_(std::move(client_id)) {}
  ~CheckerSub() { Stop(); }

  bool Start() {
    mosq_ = mosquitto_new(client_id_.c_str(), /*clean_session=*/false, this);
    if (!mosq_) return false;
    mosquitto_reconnect_delay_set(mosq_, 1, 1, false);
    mosquitto_connect_callback_set(mosq_, [](mosquitto* m, void*, int rc) {
      if (rc == 0) mosquitto_subscribe(m, nullptr, "#", 1);
    });
    mosquitto_subscribe_callback_set(mosq_, [](mosquitto*, void* self, int, int, const int*) {
      static_cast<CheckerSub*>(self)->subscribed_ = true;
    });
    mosquitto_message_callback_set(mosq_, [](mosquitto*, void* self, const mosquitto_message* m) {
      static_cast<CheckerSub*>(self)->OnMessage(m);
    });
    if (mosquitto_connect(mosq_, "127.0.0.1", port_, 30) != MOSQ_ERR_SUCCESS) return false;
    if (mosquitto_loop_start(mosq_) != MOSQ_ERR_SUCCESS) return false;
    return WaitUntil([&] { return subscribed_.load(); }, 10000);
  }
  void Stop() {
    if (!mosq_) return;
    mosquitto_disconnect(mosq_);
    mosquitto_loop_stop(mosq_, true);
    mosquitto_destroy(mosq_);
    mosq_ = nullptr;
  }
  size_t unique() const { return unique_.load(); }
  std::vector<Delivered> Take() {
    std::lock_guard<std::mutex> lock(mu_);
    return std::move(delivered_);
  }

 private:
  void OnMessage(const mosquitto_message* m) {
    std::string topic(m->topic);
    std::string payload(static_cast<const char*>(m->payload), static_cast<size_t>(m->payloadlen));
    std::vector<Delivered> ds;
    if (topic.size() >= 6 && topic.compare(topic.size() - 6, 6, "/batch") == 0) {
      auto frame = batch::DecodeFrame(payload);
      if (!frame.ok()) return;
      for (const auto& r : frame->records) {
        Delivered d;
        if (!testing::ParseTelemetry(r.payload, &d.id, &d.ts)) d.id = "undecodable:" + r.payload;
        d.topic = r.topic;
        d.seq = r.seq;
        ds.push_back(std::move(d));
      }
    } else {
      Delivered d;
      if (!testing::ParseTelemetry(payload, &d.id, &d.ts)) return;  // status topic etc.
      d.topic = topic;
      ds.push_back(std::move(d));
    }
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& d : ds) {
      if (ids_.insert(d.id).second) unique_.fetch_add(1);
      delivered_.push_back(std::move(d));
    }
  }

  uint16_t port_;
  std::string client_id_;
  mosquitto* mosq_ = nullptr;
  std::atomic<bool> subscribed_{false};
  std::atomic<size_t> unique_{0};
  std::mutex mu_;
  std::unordered_set<std::string> ids_;
  std::vector<Delivered> delivered_;
};

// --- producers ---------------------------------------------------------------

// What a producer learnt: which ids were acknowledged, and ack latencies.
struct AckLog {
  std::mutex mu;
  std::vector<std::string> acked, failed;
  std::vector<double> latency_ms;
  std::atomic<size_t> outstanding{0};
  void Done(std::string id, bool ok, Clock::time_point sent) {
    double ms = Seconds(Clock::now() - sent) * 1000;
    std::lock_guard<std::mutex> lock(mu);
    (ok ? acked : failed).push_back(std::move(id));
    if (ok) latency_ms.push_back(ms);
    outstanding.fetch_sub(1);
  }
};

class Publisher {
 public:
  virtual ~Publisher() = default;
  virtual bool Connect() = 0;
  // Blocks while kMaxOutstanding are unanswered (backpressure, bounded by
  // timeout). false: gave up.
  virtual bool Publish(const std::string& topic, const std::string& payload, const std::string& id,
                       int64_t ts) = 0;
  // Waits until everything is answered; false on timeout.
  bool WaitAll(int64_t timeout_ms) {
    return WaitUntil([&] { return log.outstanding.load() == 0; }, timeout_ms, 5);
  }
  AckLog log;
};

class EdgespoolPublisher : public Publisher {
 public:
  explicit EdgespoolPublisher(std::string socket) : socket_(std::move(socket)) {}
  bool Connect() override {
    client::ProducerOptions o;
    o.socket_path = socket_;
    o.window = kMaxOutstanding;  // as many on the wire as libmosquitto's in-flight limit
    o.max_queued = kMaxOutstanding;
    o.backoff_initial_ms = 20;
    o.backoff_max_ms = 200;
    auto p = client::Producer::Connect(o);
    if (!p.ok()) {
      std::fprintf(stderr, "producer connect: %s\n", p.status().ToString().c_str());
      return false;
    }
    producer_ = std::move(*p);
    return true;
  }
  bool Publish(const std::string& topic, const std::string& payload, const std::string& id,
               int64_t ts) override {
    client::PublishOptions o;
    o.id = id;
    o.ts_ms = ts;
    log.outstanding.fetch_add(1);
    auto sent = Clock::now();
    producer_->Publish(topic, payload, o, [this, id, sent](client::PublishResult r) {
      log.Done(id, r.status.ok(), sent);
    });
    return true;
  }
  ~EdgespoolPublisher() override { producer_.reset(); }

 private:
  std::string socket_;
  std::unique_ptr<client::Producer> producer_;
};

// libmosquitto QoS 1 to the edge mosquitto; an ack is its PUBACK.
class MosquittoPublisher : public Publisher {
 public:
  MosquittoPublisher(uint16_t port, std::string client_id)
      : port_(port), client_id_(std::move(client_id)) {}
  ~MosquittoPublisher() override {
    if (!mosq_) return;
    mosquitto_disconnect(mosq_);
    mosquitto_loop_stop(mosq_, true);
    mosquitto_destroy(mosq_);
    // Never answered: failed (the edge died or never acknowledged).
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [mid, e] : pending_) log.failed.push_back(e.first);
  }
  bool Connect() override {
    mosq_ = mosquitto_new(client_id_.c_str(), true, this);
    if (!mosq_) return false;
    mosquitto_max_inflight_messages_set(mosq_, kMaxOutstanding);
    mosquitto_reconnect_delay_set(mosq_, 1, 1, false);
    mosquitto_connect_callback_set(mosq_, [](mosquitto*, void* self, int rc) {
      if (rc == 0) static_cast<MosquittoPublisher*>(self)->connected_ = true;
    });
    mosquitto_publish_callback_set(mosq_, [](mosquitto*, void* self, int mid) {
      static_cast<MosquittoPublisher*>(self)->OnPuback(mid);
    });
    if (mosquitto_connect(mosq_, "127.0.0.1", port_, 30) != MOSQ_ERR_SUCCESS) return false;
    if (mosquitto_loop_start(mosq_) != MOSQ_ERR_SUCCESS) return false;
    return WaitUntil([&] { return connected_.load(); }, 10000);
  }
  bool Publish(const std::string& topic, const std::string& payload, const std::string& id,
               int64_t) override {
    if (!WaitUntil([&] { return log.outstanding.load() < kMaxOutstanding; }, 60000, 1)) return false;
    log.outstanding.fetch_add(1);
    std::lock_guard<std::mutex> lock(mu_);
    int mid = 0;
    int rc = mosquitto_publish(mosq_, &mid, topic.c_str(), static_cast<int>(payload.size()),
                               payload.data(), 1, false);
    if (rc != MOSQ_ERR_SUCCESS && rc != MOSQ_ERR_NO_CONN) {
      log.outstanding.fetch_sub(1);
      log.failed.push_back(id);
      return true;
    }
    pending_[mid] = {id, Clock::now()};
    return true;
  }

 private:
  void OnPuback(int mid) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = pending_.find(mid);
    if (it == pending_.end()) return;
    auto e = std::move(it->second);
    pending_.erase(it);
    log.Done(std::move(e.first), true, e.second);
  }

  uint16_t port_;
  std::string client_id_;
  mosquitto* mosq_ = nullptr;
  std::atomic<bool> connected_{false};
  std::mutex mu_;
  std::unordered_map<int, std::pair<std::string, Clock::time_point>> pending_;
};

// --- the edge under test ---------------------------------------------------

enum class Kind { kMessage = 0, kBatch = 1, kBridge = 2 };
const char* KindName(Kind k) {
  switch (k) {
    case Kind::kMessage: return "edgespool message";
    case Kind::kBatch: return "edgespool batch";
    case Kind::kBridge: return "mosquitto bridge";
  }
  return "?";
}

// One run's world: temp dir, central broker, checker, and the edge (agent or
// bridged mosquitto) pointed at `uplink_port` (the central broker, or a proxy
// in front of it).
class World {
 public:
  explicit World(Kind kind) : kind_(kind) {
    ::mkdir((dir_.path() + "/central").c_str(), 0700);
    ::mkdir((dir_.path() + "/edge").c_str(), 0700);
    MosquittoOptions o;
    o.persistence = true;  // the checker's persistent session survives restarts
    central_ = std::make_unique<Mosquitto>(dir_.path() + "/central", o);
  }
  ~World() {
    publisher_.reset();
    sub_.reset();
    if (agent_) agent_->Kill();
  }
  bool StartCentral() {
    if (!central_->Start()) {
      std::fprintf(stderr, "central broker: %s\n", central_->log().c_str());
      return false;
    }
    return true;
  }
  void StopCentral() { central_->Stop(); }
  bool StartChecker() {
    sub_ = std::make_unique<CheckerSub>(central_->port(), "checker");
    return sub_->Start();
  }
  // The edge's uplink goes to `uplink_port` (0: the central broker).
  bool StartEdge(uint16_t uplink_port = 0) {
    if (uplink_port == 0) uplink_port = central_->port();
    if (kind_ == Kind::kBridge) {
      MosquittoOptions o;
      o.persistence = true;
      o.extra_config = "connection central\naddress 127.0.0.1:" + std::to_string(uplink_port) +
                       "\ntopic # out 1\ncleansession false\nclientid edge-bridge\n"
                       "restart_timeout 1\n";
      edge_broker_ = std::make_unique<Mosquitto>(dir_.path() + "/edge", o);
      return RestartEdge();
    }
    std::multimap<std::string, std::string> s = {
        {"store", "max_bytes = 2147483648"},
    };
    if (kind_ == Kind::kBatch) s.insert({"sync", "mode = \"batch\""});
    agent_ = std::make_unique<AgentProcess>(dir_.path() + "/edge",
                                            "mqtt://127.0.0.1:" + std::to_string(uplink_port), s);
    return RestartEdge();
  }
  bool RestartEdge() {
    bool ok = agent_ ? agent_->Start() : edge_broker_->Start();
    if (!ok) {
      std::fprintf(stderr, "edge did not start: %s\n",
                   agent_ ? agent_->log().c_str() : edge_broker_->log().c_str());
    }
    return ok;
  }
  void KillEdge() {
    if (agent_) {
      agent_->Kill();
    } else {
      edge_broker_->Kill();
    }
  }
  pid_t edge_pid() const { return agent_ ? agent_->pid() : edge_broker_->pid(); }
  pid_t central_pid() const { return central_->pid(); }
  uint16_t central_port() const { return central_->port(); }
  // Bytes the edge holds on disk for its backlog. mosquitto keeps its queue
  // in memory and writes a snapshot only at autosave/exit: ask for one
  // (SIGUSR1) and wait until its size settles.
  int64_t EdgeDiskBytes() {
    if (agent_) {
      return FileBytes(agent_->journal()) + FileBytes(agent_->journal() + "-wal");
    }
    std::string db = dir_.path() + "/edge/mosquitto.db";
    ::kill(edge_broker_->pid(), SIGUSR1);
    int64_t last = -1;
    WaitUntil(
        [&] {
          int64_t now = FileBytes(db);
          bool stable = now > 0 && now == last;
          last = now;
          return stable;
        },
        30000, 500);
    return last;
  }
  // A libmosquitto producer straight to the central broker: no edge at all.
  Publisher* NewDirectPublisher(const std::string& name) {
    publisher_ = std::make_unique<MosquittoPublisher>(central_->port(), name);
    if (!publisher_->Connect()) publisher_.reset();
    return publisher_.get();
  }
  Publisher* NewPublisher(const std::string& name) {
    publisher_.reset();
    if (agent_) {
      publisher_ = std::make_unique<EdgespoolPublisher>(agent_->socket());
    } else {
      publisher_ = std::make_unique<MosquittoPublisher>(edge_broker_->port(), name);
    }
    if (!publisher_->Connect()) publisher_.reset();
    return publisher_.get();
  }
  // Publishes ids prefix0..prefix(n-1); records each in the checker once
  // answered. Bounded by timeout_ms overall.
  struct PublishStats {
    size_t published = 0;
    double seconds = 0;  // first publish to last answer
  };
  PublishStats PublishN(int n, const std::string& prefix, int64_t rate_per_s = 0,
                        int64_t timeout_ms = 600000) {
    PublishStats st;
    auto start = Clock::now();
    auto deadline = start + std::chrono::milliseconds(timeout_ms);
    for (int i = 0; i < n && Clock::now() < deadline; ++i) {
      if (rate_per_s > 0) {
        auto due = start + std::chrono::microseconds(static_cast<int64_t>(i) * 1000000 / rate_per_s);
        std::this_thread::sleep_until(due);
      }
      std::string id = prefix + std::to_string(i);
      int64_t ts = base_ts_ + next_ts_++;
      if (!publisher_->Publish(Topic(i), Payload(id, ts, i), id, ts)) break;
      published_ids_.push_back(id);
      ++st.published;
    }
    publisher_->WaitAll(std::max<int64_t>(
        1000, std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count()));
    st.seconds = Seconds(Clock::now() - start);
    return st;
  }
  // Folds the current publisher's acks into the checker; ids never answered
  // count as unacknowledged.
  void RecordAcks() {
    if (!publisher_) return;
    std::unordered_set<std::string> acked;
    {
      std::lock_guard<std::mutex> lock(publisher_->log.mu);
      acked.insert(publisher_->log.acked.begin(), publisher_->log.acked.end());
      latencies_.insert(latencies_.end(), publisher_->log.latency_ms.begin(),
                        publisher_->log.latency_ms.end());
      publisher_->log.acked.clear();
      publisher_->log.latency_ms.clear();
    }
    for (const auto& id : published_ids_) {
      checker_.Published(id, acked.count(id) > 0);
      if (acked.count(id)) ++acked_total_;
    }
    published_ids_.clear();
  }
  // Waits until `target` distinct ids arrived, or nothing new arrived for
  // stall_ms (after at least min_ms), or max_ms passed. Returns seconds.
  double WaitDelivered(size_t target, int64_t stall_ms, int64_t min_ms, int64_t max_ms) {
    auto start = Clock::now();
    size_t last = sub_->unique();
    auto last_change = start;
    auto last_print = start;
    for (;;) {
      size_t now = sub_->unique();
      auto t = Clock::now();
      if (now >= target) break;
      if (t - last_print > std::chrono::seconds(5)) {
        last_print = t;
        std::printf("    ... %zu of %zu delivered after %.0f s\n", now, target, Seconds(t - start));
        std::fflush(stdout);
      }
      if (now != last) {
        last = now;
        last_change = t;
      }
      if (t - start > std::chrono::milliseconds(max_ms)) break;
      if (t - start > std::chrono::milliseconds(min_ms) &&
          t - last_change > std::chrono::milliseconds(stall_ms)) {
        break;
      }
      SleepMs(10);
    }
    return Seconds(Clock::now() - start);
  }
  // When edgespool fell short, the agent's own account of it (copied out of
  // the temp dir, which goes with the World) is the start of a bug report.
  void KeepAgentLog(const std::string& tag) {
    if (!agent_) return;
    std::string dest = "/tmp/bridge_compare-" + tag + "-agent.log";
    testing::WriteFile(dest, agent_->log());
    std::fprintf(stderr, "  agent log kept in %s\n", dest.c_str());
  }
  QueueChecker::Counts Check(bool order) {
    SleepMs(300);  // late duplicates
    for (auto& d : sub_->Take()) checker_.Deliver(d);
    return checker_.Check(order);
  }
  size_t delivered_unique() const { return sub_->unique(); }
  size_t acked_total() const { return acked_total_; }
  std::vector<double>& latencies() { return latencies_; }
  Kind kind() const { return kind_; }

 private:
  Kind kind_;
  TempDir dir_;
  std::unique_ptr<Mosquitto> central_;
  std::unique_ptr<Mosquitto> edge_broker_;
  std::unique_ptr<AgentProcess> agent_;
  std::unique_ptr<CheckerSub> sub_;
  std::unique_ptr<Publisher> publisher_;
  QueueChecker checker_;
  std::vector<std::string> published_ids_;
  std::vector<double> latencies_;
  size_t acked_total_ = 0;
  int64_t base_ts_ = 1732300000000;
  int64_t next_ts_ = 0;
};

// --- results -----------------------------------------------------------------

struct Sizes {
  int live_n;
  int outage_n;
  int crash_n;
  int crash_rounds;
  int drain_crash_n;
  int flap_seconds;
  int flap_rate;
  int slow_seconds;
  int slow_backlog;
};

// rows[scenario metric][kind] = text
class Table {
 public:
  void Set(const std::string& row, Kind k, const std::string& value) {
    if (!rows_.count(row)) order_.push_back(row);
    rows_[row][static_cast<int>(k)] = value;
  }
  std::string Markdown() const {
    std::ostringstream out;
    out << "| scenario / figure | edgespool message | edgespool batch | mosquitto bridge |\n";
    out << "|---|---:|---:|---:|\n";
    for (const auto& r : order_) {
      out << "| " << r;
      for (int k = 0; k < 3; ++k) {
        auto it = rows_.at(r).find(k);
        out << " | " << (it == rows_.at(r).end() ? "—" : it->second);
      }
      out << " |\n";
    }
    return out.str();
  }

 private:
  std::vector<std::string> order_;
  std::map<std::string, std::map<int, std::string>> rows_;
};

std::string Fmt(const char* fmt, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, fmt, v);
  return buf;
}
std::string Num(double v) {
  if (v >= 100) return Fmt("%.0f", v);
  if (v >= 10) return Fmt("%.1f", v);
  return Fmt("%.2f", v);
}
double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())));
  return v[i];
}

struct Harness {
  Sizes sz;
  Table table;
  bool edgespool_failed = false;
  std::vector<std::string> notes;
  std::mt19937 rng;
  std::map<int, double> ingest_rate;  // per kind, from scenario 1

  void Fail(Kind k, const std::string& what) {
    std::fprintf(stderr, "!! %s: %s\n", KindName(k), what.c_str());
    notes.push_back(std::string(KindName(k)) + ": " + what);
    if (k != Kind::kBridge) edgespool_failed = true;
  }
  // lost/unexpected for edgespool fail the run.
  void Judge(Kind k, const std::string& scenario, const QueueChecker::Counts& c, World* w = nullptr) {
    std::printf("  [%s] %s: %s\n", KindName(k), scenario.c_str(), c.ToString().c_str());
    std::fflush(stdout);
    if (k != Kind::kBridge && (c.lost > 0 || c.unexpected > 0)) {
      if (w) w->KeepAgentLog(std::to_string(static_cast<int>(k)) + "-" + scenario.substr(0, 1));
      Fail(k, scenario + ": lost " + std::to_string(c.lost) + ", unexpected " +
                  std::to_string(c.unexpected));
    }
  }

  // The ceiling for scenario 1 (issue 6's "(a)"): the same producer load
  // published QoS 1 by libmosquitto straight to the central broker,
  // delivered to the same checker. Measured once per run, before the first
  // kind, so every kind's end-to-end rate has a same-run baseline.
  double direct_rate = 0;
  void MeasureDirect() {
    World w(Kind::kBridge);
    if (!w.StartCentral() || !w.StartChecker() || !w.NewDirectPublisher("direct-pub")) {
      notes.push_back("direct libmosquitto baseline: setup failed");
      return;
    }
    auto t0 = Clock::now();
    w.PublishN(sz.live_n, "direct-");
    w.RecordAcks();
    w.WaitDelivered(static_cast<size_t>(sz.live_n), 5000, 5000, 120000);
    double secs = Seconds(Clock::now() - t0);
    auto c = w.Check(true);
    direct_rate = static_cast<double>(c.delivered) / secs;
    std::printf("  [direct] libmosquitto QoS 1 straight to the central broker: %.0f msg/s end to end\n",
                direct_rate);
  }

  void Live(Kind k) {
    if (direct_rate == 0) MeasureDirect();
    World w(k);
    if (!w.StartCentral() || !w.StartChecker() || !w.StartEdge()) return Fail(k, "live: setup");
    if (!w.NewPublisher("live-pub")) return Fail(k, "live: producer connect");
    double edge_cpu0 = ProcCpuSeconds(w.edge_pid()), central_cpu0 = ProcCpuSeconds(w.central_pid());
    auto t0 = Clock::now();
    auto st = w.PublishN(sz.live_n, "live-");
    w.RecordAcks();
    w.WaitDelivered(static_cast<size_t>(sz.live_n), 5000, 5000, 120000);
    double e2e = Seconds(Clock::now() - t0);
    double edge_cpu = ProcCpuSeconds(w.edge_pid()) - edge_cpu0;
    double central_cpu = ProcCpuSeconds(w.central_pid()) - central_cpu0;
    auto c = w.Check(true);
    Judge(k, "1 live", c, &w);
    double per_m = 1e6 / std::max<double>(1, static_cast<double>(st.published));
    ingest_rate[static_cast<int>(k)] = static_cast<double>(w.acked_total()) / st.seconds;
    table.Set("1 live: acknowledged ingest, msg/s", k, Num(static_cast<double>(w.acked_total()) / st.seconds));
    table.Set("1 live: end-to-end, msg/s", k, Num(static_cast<double>(c.delivered) / e2e));
    if (direct_rate > 0) {
      table.Set("1 live: end-to-end / libmosquitto direct to the central broker (" +
                    Num(direct_rate) + " msg/s)", k,
                Num(static_cast<double>(c.delivered) / e2e / direct_rate) + "x");
    }
    table.Set("1 live: ack latency p50 / p99, ms", k,
              Num(Percentile(w.latencies(), 0.5)) + " / " + Num(Percentile(w.latencies(), 0.99)));
    table.Set("1 live: CPU s per 1M msgs, edge (agent or edge mosquitto)", k, Num(edge_cpu * per_m));
    table.Set("1 live: CPU s per 1M msgs, central broker", k, Num(central_cpu * per_m));
    table.Set("1 live: lost / duplicated / reordered", k,
              std::to_string(c.lost) + " / " + std::to_string(c.duplicated) + " / " +
                  std::to_string(c.reordered));
  }

  void Outage(Kind k) {
    World w(k);
    if (!w.StartCentral() || !w.StartChecker()) return Fail(k, "outage: setup");
    w.StopCentral();
    if (!w.StartEdge() || !w.NewPublisher("outage-pub")) return Fail(k, "outage: edge");
    auto st = w.PublishN(sz.outage_n, "out-");
    w.RecordAcks();
    std::printf("  [%s] outage: %zu published in %.1f s\n", KindName(k), st.published, st.seconds);
    int64_t disk = w.EdgeDiskBytes();
    int64_t rss_backlog = ProcStatusKiB(w.edge_pid(), "VmRSS:");
    // Peak during drain: sample VmRSS, and VmHWM at the end covers both.
    std::atomic<bool> sampling{true};
    std::atomic<int64_t> rss_peak{rss_backlog};
    pid_t pid = w.edge_pid();
    std::thread sampler([&] {
      while (sampling) {
        rss_peak = std::max<int64_t>(rss_peak, ProcStatusKiB(pid, "VmRSS:"));
        SleepMs(50);
      }
    });
    if (!w.StartCentral()) {
      sampling = false;
      sampler.join();
      return Fail(k, "outage: central restart");
    }
    double drain = w.WaitDelivered(w.acked_total(), 45000, 30000, 900000);
    sampling = false;
    sampler.join();
    int64_t hwm = ProcStatusKiB(pid, "VmHWM:");
    auto c = w.Check(true);
    Judge(k, "2 outage+drain", c, &w);
    size_t n = std::max<size_t>(1, c.acked);
    table.Set("2 outage: backlog, messages", k, std::to_string(c.acked));
    table.Set("2 outage: time to drain, s", k, Num(drain));
    table.Set("2 outage: drain rate, msg/s", k, Num(static_cast<double>(std::min(c.delivered, c.acked)) / drain));
    table.Set("2 outage: edge peak RSS (VmHWM), MiB", k,
              Num(static_cast<double>(std::max(hwm, rss_peak.load())) / 1024.0));
    table.Set("2 outage: disk bytes per message", k,
              disk > 0 ? Num(static_cast<double>(disk) / static_cast<double>(n)) : "n/a");
    table.Set("2 outage: lost / duplicated / reordered", k,
              std::to_string(c.lost) + " / " + std::to_string(c.duplicated) + " / " +
                  std::to_string(c.reordered));
  }

  void CrashBacklog(Kind k) {
    QueueChecker::Counts total;
    int rounds_ok = 0;
    for (int r = 0; r < sz.crash_rounds; ++r) {
      World w(k);
      if (!w.StartCentral() || !w.StartChecker()) return Fail(k, "crash-backlog: setup");
      w.StopCentral();
      if (!w.StartEdge() || !w.NewPublisher("crash-pub")) return Fail(k, "crash-backlog: edge");
      double rate = ingest_rate.count(static_cast<int>(k)) ? ingest_rate[static_cast<int>(k)] : 20000;
      double expected_ms = 1000.0 * sz.crash_n / std::max(1000.0, rate);
      int64_t kill_ms = static_cast<int64_t>(
          std::uniform_real_distribution<double>(0.1, 0.9)(rng) * expected_ms);
      std::atomic<bool> killed{false};
      std::thread killer([&] {
        SleepMs(kill_ms);
        w.KillEdge();
        killed = true;
        SleepMs(100);
        w.RestartEdge();
      });
      auto st = w.PublishN(sz.crash_n, "r" + std::to_string(r) + "-", 0, 120000);
      killer.join();
      w.RecordAcks();
      if (!w.StartCentral()) return Fail(k, "crash-backlog: central restart");
      w.WaitDelivered(st.published, 8000, 10000, 300000);
      auto c = w.Check(false);
      std::printf("  [%s] crash-backlog round %d, SIGKILL at %lld ms:", KindName(k), r + 1,
                  static_cast<long long>(kill_ms));
      Judge(k, "3 crash during backlog", c, &w);
      total.acked += c.acked;
      total.lost += c.lost;
      total.unexpected += c.unexpected;
      total.duplicated += c.duplicated;
      total.recovered += c.recovered;
      ++rounds_ok;
    }
    table.Set("3 crash in backlog (" + std::to_string(sz.crash_rounds) + " rounds): acked", k,
              std::to_string(total.acked));
    table.Set("3 crash in backlog: lost / duplicated / recovered", k,
              std::to_string(total.lost) + " / " + std::to_string(total.duplicated) + " / " +
                  std::to_string(total.recovered));
  }

  void CrashDrain(Kind k) {
    World w(k);
    if (!w.StartCentral() || !w.StartChecker()) return Fail(k, "crash-drain: setup");
    w.StopCentral();
    if (!w.StartEdge() || !w.NewPublisher("drain-pub")) return Fail(k, "crash-drain: edge");
    auto st = w.PublishN(sz.drain_crash_n, "d-");
    w.RecordAcks();
    if (!w.StartCentral()) return Fail(k, "crash-drain: central restart");
    size_t third = w.acked_total() / 3;
    bool mid = WaitUntil([&] { return w.delivered_unique() >= third; }, 120000, 2);
    size_t at_kill = w.delivered_unique();
    w.KillEdge();
    SleepMs(100);
    if (!w.RestartEdge()) return Fail(k, "crash-drain: edge restart");
    w.WaitDelivered(st.published, 8000, 10000, 300000);
    auto c = w.Check(false);
    std::printf("  [%s] crash-drain: SIGKILL after %zu of %zu delivered%s\n", KindName(k), at_kill,
                w.acked_total(), mid ? "" : " (drain never reached a third)");
    Judge(k, "4 crash during drain", c, &w);
    table.Set("4 crash in drain: acked", k, std::to_string(c.acked));
    table.Set("4 crash in drain: lost / duplicated", k,
              std::to_string(c.lost) + " / " + std::to_string(c.duplicated));
  }

  void Flaps(Kind k) {
    World w(k);
    if (!w.StartCentral() || !w.StartChecker() || !w.StartEdge()) return Fail(k, "flaps: setup");
    if (!w.NewPublisher("flap-pub")) return Fail(k, "flaps: producer");
    std::atomic<bool> running{true};
    int restarts = 0;
    std::thread flapper([&] {
      while (running) {
        SleepMs(2000);
        if (!running) break;
        w.StopCentral();
        w.StartCentral();
        ++restarts;
      }
    });
    int n = sz.flap_seconds * sz.flap_rate;
    auto st = w.PublishN(n, "f-", sz.flap_rate, (sz.flap_seconds + 60) * 1000LL);
    running = false;
    flapper.join();
    w.RecordAcks();
    w.WaitDelivered(st.published, 8000, 10000, 120000);
    auto c = w.Check(true);
    std::printf("  [%s] flaps: %d central restarts\n", KindName(k), restarts);
    Judge(k, "5 broker flaps", c, &w);
    table.Set("5 flaps (" + std::to_string(sz.flap_seconds) + " s, " + std::to_string(sz.flap_rate) +
                  " msg/s, restart every 2 s): acked",
              k, std::to_string(c.acked));
    table.Set("5 flaps: lost / duplicated / reordered", k,
              std::to_string(c.lost) + " / " + std::to_string(c.duplicated) + " / " +
                  std::to_string(c.reordered));
  }

  void Slow(Kind k) {
    World w(k);
    if (!w.StartCentral() || !w.StartChecker()) return Fail(k, "slow: setup");
    testing::TcpProxy proxy(w.central_port(), testing::FreePort());
    proxy.SetRate(125000);  // 1 Mbit/s each way
    // The backlog builds while the link is down (connects refused), then the
    // link comes up: rate = delivered / time, over the whole backlog or the
    // window, whichever ends first. Batch mode moves ~10x more per second,
    // so it gets a 10x backlog to keep the link busy for the window.
    if (!w.StartEdge(proxy.port()) || !w.NewPublisher("slow-pub")) return Fail(k, "slow: setup");
    int backlog = sz.slow_backlog * (k == Kind::kBatch ? 10 : 1);
    w.PublishN(backlog, "s-");
    w.RecordAcks();
    if (!proxy.Start()) return Fail(k, "slow: proxy");
    // The clock starts when the edge reconnects: its reconnect delay is
    // scenario 5's business, not the link's.
    if (!WaitUntil([&] { return proxy.connections() > 0; }, 60000, 5)) {
      return Fail(k, "slow: the edge never connected through the proxy");
    }
    auto t0 = Clock::now();
    w.WaitDelivered(w.acked_total(), sz.slow_seconds * 1000LL, sz.slow_seconds * 1000LL,
                    sz.slow_seconds * 1000LL);
    double secs = Seconds(Clock::now() - t0);
    size_t d1 = w.delivered_unique();
    int64_t bytes = proxy.upstream_bytes();
    double msgs = static_cast<double>(d1);
    std::printf("  [%s] slow link: %.0f of %zu messages in %.1f s, %lld upstream bytes\n",
                KindName(k), msgs, w.acked_total(), secs, static_cast<long long>(bytes));
    table.Set("6 slow link 1 Mbit/s: delivered msg/s", k, Num(msgs / secs));
    table.Set("6 slow link: wire bytes per message (edge→central)", k,
              msgs > 0 ? Num(static_cast<double>(bytes) / msgs) : "n/a");
  }
};

std::string MachineDescription() {
  std::ostringstream out;
  utsname u{};
  uname(&u);
  std::string cpu = "unknown CPU";
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      cpu = line.substr(line.find(':') + 2);
      break;
    }
  }
  long mem_kib = 0;
  std::ifstream mi("/proc/meminfo");
  while (std::getline(mi, line)) {
    if (line.rfind("MemTotal:", 0) == 0) mem_kib = std::atol(line.c_str() + 9);
  }
  char date[64];
  std::time_t now = std::time(nullptr);
  std::strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", std::gmtime(&now));
  std::string loadavg;
  std::ifstream la("/proc/loadavg");
  std::getline(la, loadavg);
  int major = 0, minor = 0, rev = 0;
  mosquitto_lib_version(&major, &minor, &rev);
  out << "- date: " << date << "\n- machine: " << cpu << ", " << sysconf(_SC_NPROCESSORS_ONLN)
      << " CPUs, " << mem_kib / 1024 << " MiB RAM; " << u.sysname << " " << u.release << " "
      << u.machine << "\n- load average at the end (/proc/loadavg; the machine is shared): "
      << loadavg << "\n- peer: mosquitto (libmosquitto " << major << "." << minor << "." << rev
      << "), edge broker `persistence true` + bridge `topic # out 1`, `cleansession false`,"
         " `restart_timeout 1`; producers QoS 1 via libmosquitto\n"
      << "- edgespool: `store.durability = \"normal\"`, `store.max_bytes = 2 GiB` (a 1M backlog "
         "outgrows the 256 MiB default), defaults otherwise (batch: "
         "`sync.mode = \"batch\"`); producers via the C++ client library\n";
  return out.str();
}

int Main(int argc, char** argv) {
  bool quick = false, skip_bridge = false;
  std::string out_path, only, kinds_arg = "mbr";
  int outage_n = 0;
  unsigned seed = static_cast<unsigned>(std::time(nullptr));
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--quick") {
      quick = true;
    } else if (a == "--skip-bridge") {
      skip_bridge = true;
    } else if (a == "--kinds" && i + 1 < argc) {
      kinds_arg = argv[++i];
    } else if (a == "--outage-n" && i + 1 < argc) {
      outage_n = std::atoi(argv[++i]);
    } else if (a == "--out" && i + 1 < argc) {
      out_path = argv[++i];
    } else if (a == "--seed" && i + 1 < argc) {
      seed = static_cast<unsigned>(std::stoul(argv[++i]));
    } else if (a == "--only" && i + 1 < argc) {
      only = argv[++i];
    } else {
      std::fprintf(stderr,
                   "usage: bridge_compare_bench [--quick] [--out FILE.md] [--seed N] "
                   "[--only 216] [--skip-bridge] [--kinds mbr] [--outage-n N]\n");
      return 64;
    }
  }
  signal(SIGPIPE, SIG_IGN);
  mosquitto_lib_init();
  Harness h;
  h.rng.seed(seed);
  h.sz = quick ? Sizes{10000, 20000, 5000, 2, 10000, 8, 1000, 4, 5000}
               : Sizes{200000, 1000000, 200000, 5, 200000, 60, 2000, 20, 30000};
  std::printf("bridge_compare_bench %s, seed %u\n", quick ? "--quick" : "(full)", seed);
  if (outage_n > 0) h.sz.outage_n = outage_n;
  // --kinds mbr: edgespool message, edgespool batch, mosquitto bridge.
  std::vector<Kind> kinds;
  if (kinds_arg.find('m') != std::string::npos) kinds.push_back(Kind::kMessage);
  if (kinds_arg.find('b') != std::string::npos) kinds.push_back(Kind::kBatch);
  if (kinds_arg.find('r') != std::string::npos && !skip_bridge) kinds.push_back(Kind::kBridge);
  struct Scenario {
    int n;
    const char* name;
    void (Harness::*run)(Kind);
  };
  const Scenario scenarios[] = {{1, "live throughput", &Harness::Live},
                                {2, "outage and drain", &Harness::Outage},
                                {3, "crash during backlog", &Harness::CrashBacklog},
                                {4, "crash during drain", &Harness::CrashDrain},
                                {5, "broker flaps", &Harness::Flaps},
                                {6, "slow link", &Harness::Slow}};
  auto total_start = Clock::now();
  // The table so far; written after every scenario so a long full run that
  // is stopped still leaves what it measured.
  auto render = [&](const std::string& progress) {
    std::ostringstream md;
    md << "# edgespool vs the mosquitto bridge: " << (quick ? "quick run" : "full run") << progress
       << "\n\n"
       << MachineDescription() << "- sizes: live " << h.sz.live_n << " msgs; outage backlog "
       << h.sz.outage_n << "; crash during backlog " << h.sz.crash_rounds << " rounds x "
       << h.sz.crash_n << "; crash during drain " << h.sz.drain_crash_n << "; flaps "
       << h.sz.flap_seconds << " s at " << h.sz.flap_rate << " msg/s; slow link backlog "
       << h.sz.slow_backlog << " (batch x10), window " << h.sz.slow_seconds
       << " s; 200-byte payloads; seed " << seed << "\n"
       << "- produced by `platform/bench.sh" << (quick ? " --quick" : "") << "` (tests/bench/"
       << "bridge_compare_bench.cc) in " << Num(Seconds(Clock::now() - total_start))
       << " s; every figure below is from this run\n\n"
       << h.table.Markdown();
    if (!h.notes.empty()) {
      md << "\nNotes:\n";
      for (const auto& note : h.notes) md << "- " << note << "\n";
    }
    md << "\nedgespool lost or invented acknowledged messages: "
       << (h.edgespool_failed ? "**YES (FAIL)**" : "none") << "\n";
    return md.str();
  };
  // --only 216 runs scenarios 2, 1, 6 in that order.
  std::vector<const Scenario*> plan;
  if (only.empty()) {
    for (const auto& sc : scenarios) plan.push_back(&sc);
  } else {
    for (char c : only) {
      for (const auto& sc : scenarios) {
        if (c == '0' + sc.n) plan.push_back(&sc);
      }
    }
  }
  for (const Scenario* scp : plan) {
    const Scenario& sc = *scp;
    for (Kind k : kinds) {
      auto t = Clock::now();
      std::printf("== %d %s: %s\n", sc.n, sc.name, KindName(k));
      std::fflush(stdout);
      (h.*sc.run)(k);
      std::printf("   (%.1f s)\n", Seconds(Clock::now() - t));
      std::fflush(stdout);
    }
    if (!out_path.empty()) {
      testing::WriteFile(out_path, render(" (partial: stopped after scenario " + std::to_string(sc.n) + ")"));
    }
  }
  std::string md = render("");
  std::printf("\n%s", md.c_str());
  if (!out_path.empty()) testing::WriteFile(out_path, md);
  mosquitto_lib_cleanup();
  return h.edgespool_failed ? 1 : 0;
}

}  // namespace
}  // namespace edgespool::bench

int main(int argc, char** argv) { return edgespool::bench::Main(argc, argv); }
