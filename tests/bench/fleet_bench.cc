// fleet_bench: 1,000 gateways' worth of status and traffic against one
// mosquitto on this machine, and what the fleet view makes of it.
//
// The gateways are simulated in-process: each is a real sync::mqtt::Client
// (the agent's uplink client) with the agent's last will, publishing the
// agent's own status document (agent::RenderStatus, retained, QoS 1) every
// --status-ms and telemetry (200 B, QoS 1) at --traffic msg/s. Why not 1,000
// agent processes: each real agent is a process with a journal, a store
// thread and a checkpointer; the bench starts --agents real ones beside the
// simulated nodes (they show up in the fleet like the others) and prints
// their RSS, which is what 1,000 of them would need, on a 2-core machine
// shared with other work. What the fleet view sees from a simulated node is
// byte for byte what an agent sends.
//
// Measured, each over --seconds:
//   1. baseline: the nodes alone (broker CPU with no fleet view);
//   2. with the real `edgespool fleet --http --metrics` (a process), one
//      dashboard client on /events, and in this process a FleetWatcher +
//      FleetModel on a loop of its own and a bare MQTT subscriber beside it
//      (the floor: the broker's own delivery):
//        model latency      status published -> applied to a FleetModel
//        dashboard latency  status published -> row received on /events
//        floor              status published -> delivered to a bare client
//      the broker's and the fleet view's CPU (from /proc), the fleet view's
//      RSS against an idle fleet view (one that matches no node);
//   3. --kill nodes vanish at once (socket closed, no DISCONNECT): the time
//      until the dashboard shows every one of them offline (their wills).
//
// Usage: fleet_bench [--nodes 1000] [--seconds 20] [--status-ms 5000]
//                    [--traffic 1] [--agents 3] [--kill 100] [--screenshot FILE]
// --screenshot: before measuring, headless Chromium loads the dashboard (the
// test's DevTools driver), waits for every node's row and saves a picture.
#include <cJSON.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "agent/fleet/fleet_model.h"
#include "agent/fleet/fleet_watcher.h"
#include "agent/status_document.h"
#include "platform/clock.h"
#include "platform/log.h"
#include "platform/loop.h"
#include "sync/mqtt/client.h"
#include "tests/support/e2e.h"
#include "tests/support/fleet_view.h"
#include "tests/support/http_get.h"
#include "tests/support/loop_thread.h"
#include "tests/support/test_env.h"

namespace edgespool::bench {
namespace {

using namespace edgespool::testing;

int64_t WallUs() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

struct Args {
  int nodes = 1000, seconds = 20, status_ms = 5000, agents = 3, kill = 100;
  double traffic = 1;
  std::string screenshot;  // a PNG of the dashboard with every node, if chromium is here
};

// --- /proc ------------------------------------------------------------------

double CpuSeconds(pid_t pid) {
  std::string stat = ReadFile("/proc/" + std::to_string(pid) + "/stat");
  size_t close = stat.rfind(')');
  if (close == std::string::npos) return 0;
  // Fields after the command: state is field 3; utime 14 and stime 15.
  std::vector<std::string> f;
  size_t at = close + 2;
  while (at < stat.size()) {
    size_t sp = stat.find(' ', at);
    f.push_back(stat.substr(at, sp - at));
    if (sp == std::string::npos) break;
    at = sp + 1;
  }
  if (f.size() < 13) return 0;
  return (std::atof(f[11].c_str()) + std::atof(f[12].c_str())) / sysconf(_SC_CLK_TCK);
}

// VmRSS or VmHWM in KiB.
long StatusKb(pid_t pid, const char* field) {
  std::string s = ReadFile("/proc/" + std::to_string(pid) + "/status");
  size_t at = s.find(field);
  return at == std::string::npos ? 0 : std::atol(s.c_str() + at + std::strlen(field) + 1);
}

// --- latencies ----------------------------------------------------------------

// Publish times of the status documents in flight: node index -> (ts_ms of
// the document, wall µs when it was handed to the client). Written by the
// simulation's loop thread, read by the observers.
struct PublishLog {
  explicit PublishLog(int n) : ts_ms(n), at_us(n) {}
  std::vector<std::atomic<int64_t>> ts_ms, at_us;
  std::atomic<bool> measuring{false};
  // The latency of a document of node i stamped ts, if it is the last one
  // published and we are measuring; -1 otherwise.
  int64_t LatencyUs(int i, int64_t ts, int64_t now_us) const {
    if (!measuring || i < 0 || i >= static_cast<int>(ts_ms.size())) return -1;
    if (ts_ms[i].load() != ts) return -1;
    return now_us - at_us[i].load();
  }
};

int NodeIndex(const std::string& node) {
  if (node.compare(0, 4, "sim-") != 0) return -1;
  return std::atoi(node.c_str() + 4);
}

class Samples {
 public:
  void Add(int64_t us) {
    std::lock_guard<std::mutex> l(mu_);
    v_.push_back(us);
  }
  std::string Summary() {
    std::lock_guard<std::mutex> l(mu_);
    if (v_.empty()) return "no samples";
    std::sort(v_.begin(), v_.end());
    auto q = [&](double p) { return v_[std::min(v_.size() - 1, size_t(p * v_.size()))] / 1000.0; };
    char buf[160];
    std::snprintf(buf, sizeof buf, "n=%zu p50 %.2f ms  p90 %.2f ms  p99 %.2f ms  max %.2f ms",
                  v_.size(), q(0.5), q(0.9), q(0.99), v_.back() / 1000.0);
    return buf;
  }
  double P(double p) {
    std::lock_guard<std::mutex> l(mu_);
    if (v_.empty()) return 0;
    std::sort(v_.begin(), v_.end());
    return v_[std::min(v_.size() - 1, size_t(p * v_.size()))] / 1000.0;
  }

 private:
  std::mutex mu_;
  std::vector<int64_t> v_;
};

// --- the simulated nodes ----------------------------------------------------------

class SimNode : public sync::mqtt::ClientListener {
 public:
  void OnConnected(const sync::mqtt::ConnectInfo&) override { connected = true; }
  void OnDisconnected(const Status&) override { connected = false; }
  void OnPublishAcked(uint64_t, const Status& s, uint8_t) override { ++(s.ok() ? acked : failed); }
  std::unique_ptr<sync::mqtt::Client> client;
  std::string name, status_topic;
  bool connected = false;
  uint64_t acked = 0, failed = 0;
};

// Every node on one loop; a 10 ms tick publishes the telemetry and statuses
// due, spread evenly so the broker sees a steady stream, not bursts.
class Simulation {
 public:
  Simulation(platform::Loop& loop, const Args& a, const std::string& url, PublishLog* log)
      : loop_(loop), args_(a), url_(url), log_(log), tick_(loop), nodes_(a.nodes) {}

  void Start() {
    for (int i = 0; i < args_.nodes; ++i) {
      SimNode& n = nodes_[i];
      char name[32];
      std::snprintf(name, sizeof name, "sim-%05d", i);
      n.name = name;
      n.status_topic = "edgespool/" + n.name + "/status";
      sync::mqtt::ClientOptions o;
      o.url = url_;
      o.session.client_id = n.name;
      o.session.keepalive_s = 30;
      sync::mqtt::WillMessage will;
      will.topic = n.status_topic;
      will.payload = agent::RenderOffline(n.name, 0);
      o.session.will = will;
      o.backoff_initial_ms = 200;
      o.backoff_max_ms = 2000;
      n.client = std::move(sync::mqtt::Client::Create(loop_, std::move(o), &n)).value();
      n.client->Start();
    }
    started_ms_ = platform::SystemClock::Get().MonotonicMs();
    tick_.Start(10, 10, [this] { Tick(); });
  }
  int Connected() const {
    int c = 0;
    for (const auto& n : nodes_) c += n.connected ? 1 : 0;
    return c;
  }
  uint64_t Acked() const {
    uint64_t a = 0;
    for (const auto& n : nodes_) a += n.acked;
    return a;
  }
  // Closes the first k nodes' sockets without DISCONNECT: the broker
  // publishes their wills. Returns the wall µs of the deed.
  int64_t Vanish(int k) {
    for (int i = 0; i < k && i < args_.nodes; ++i) {
      nodes_[i].client.reset();
      nodes_[i].connected = false;
    }
    return WallUs();
  }
  void Stop() {
    tick_.Stop();
    for (auto& n : nodes_) n.client.reset();
  }

 private:
  void Tick() {
    int64_t ms = platform::SystemClock::Get().MonotonicMs() - started_ms_;
    // Statuses: node i is due when (ms - phase_i) crosses a multiple of status_ms.
    int64_t from = last_tick_ms_, to = ms;
    last_tick_ms_ = ms;
    for (int i = 0; i < args_.nodes; ++i) {
      SimNode& n = nodes_[i];
      if (!n.client || !n.connected) continue;
      int64_t phase = int64_t(i) * args_.status_ms / args_.nodes;
      if ((to - phase) / args_.status_ms != (from - phase) / args_.status_ms && to >= phase) {
        PublishStatus(i);
      }
    }
    // Telemetry: traffic msg/s per node, round robin over the nodes.
    credit_ += args_.traffic * args_.nodes * (to - from) / 1000.0;
    while (credit_ >= 1) {
      credit_ -= 1;
      SimNode& n = nodes_[next_traffic_++ % args_.nodes];
      if (!n.client || !n.connected || n.client->queued() > 100) continue;
      sync::mqtt::OutgoingMessage m;
      m.topic = "sim/" + n.name + "/telemetry";
      m.payload = std::string(200, 't');
      (void)n.client->Publish(std::move(m));
    }
  }

  void PublishStatus(int i) {
    SimNode& n = nodes_[i];
    agent::StatusInputs in;
    in.node = n.name;
    in.now_ms = platform::SystemClock::Get().WallMs();
    in.started_ms = in.now_ms - 3600000;
    in.uplink.state = "connected";
    in.uplink.url = url_;
    in.last_sync_ms = in.now_ms - 500;
    // One node in ten carries a backlog it drains slowly.
    if (i % 10 == 0) {
      in.journal.pending_count = 1000 + uint64_t(i);
      in.journal.pending_bytes = in.journal.pending_count * 200;
      in.journal.oldest_pending_ts_ms = in.now_ms - 60000 - i;
      in.rate_msgs_per_s = 50;
    }
    in.journal.sent_total = n.acked;
    sync::mqtt::OutgoingMessage m;
    m.topic = n.status_topic;
    m.payload = agent::RenderStatus(in);
    m.retain = true;
    log_->ts_ms[i] = in.now_ms;
    log_->at_us[i] = WallUs();
    (void)n.client->Publish(std::move(m));
  }

  platform::Loop& loop_;
  Args args_;
  std::string url_;
  PublishLog* log_;
  platform::TimerHandle tick_;
  std::vector<SimNode> nodes_;
  int64_t started_ms_ = 0, last_tick_ms_ = 0;
  double credit_ = 0;
  uint64_t next_traffic_ = 0;
};

// --- observers: the model in-process, a bare subscriber ---------------------------

class ModelLatency : public agent::fleet::FleetObserver {
 public:
  ModelLatency(const PublishLog* log, Samples* s) : log_(log), samples_(s) {}
  void OnNodeChanged(const agent::fleet::NodeView& v) override {
    int64_t us = log_->LatencyUs(NodeIndex(v.status.node), v.status.ts_ms, WallUs());
    if (us >= 0) samples_->Add(us);
  }

 private:
  const PublishLog* log_;
  Samples* samples_;
};

// Delivery alone: finds ts_ms in the payload without parsing the document.
class BareSubscriber : public sync::mqtt::ClientListener {
 public:
  BareSubscriber(const PublishLog* log, Samples* s) : log_(log), samples_(s) {}
  void OnPublishAcked(uint64_t, const Status&, uint8_t) override {}
  void OnMessage(const sync::mqtt::IncomingMessage& m) override {
    int64_t now = WallUs();
    if (m.retain) return;  // from the store at subscribe time: not a delivery to time
    std::string_view p = m.payload;
    size_t at = p.rfind("\"ts_ms\":");
    if (at == std::string_view::npos || m.topic.size() < 20) return;
    int64_t ts = std::atoll(std::string(p.substr(at + 8, 16)).c_str());
    int idx = NodeIndex(std::string(m.topic.substr(10, 9)));
    int64_t us = log_->LatencyUs(idx, ts, now);
    if (us >= 0) samples_->Add(us);
  }

 private:
  const PublishLog* log_;
  Samples* samples_;
};

// --- the dashboard client -----------------------------------------------------------

// Reads /events on a thread: update rows of sim nodes give the dashboard
// latency; rows that say offline mark the vanished nodes seen.
class SseClient {
 public:
  SseClient(uint16_t port, const PublishLog* log, Samples* s, int nodes)
      : log_(log), samples_(s), offline_seen_us_(nodes) {
    for (auto& v : offline_seen_us_) v = 0;
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return;
    std::string req = "GET /events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n";
    (void)!::write(fd_, req.data(), req.size());
    thread_ = std::thread([this] { Read(); });
  }
  ~SseClient() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    ::close(fd_);
  }
  uint64_t bytes() const { return bytes_; }
  uint64_t events() const { return events_; }
  int64_t OfflineSeenUs(int i) const { return offline_seen_us_[i]; }

 private:
  void Read() {
    std::string buf;
    char chunk[65536];
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 100) != 1) continue;
      ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
      if (n <= 0) return;
      int64_t now = WallUs();
      bytes_ += n;
      buf.append(chunk, n);
      size_t end;
      while ((end = buf.find("\n\n")) != std::string::npos) {
        std::string event = buf.substr(0, end);
        buf.erase(0, end + 2);
        OnEvent(event, now);
      }
    }
  }
  void OnEvent(const std::string& event, int64_t now) {
    size_t data = event.find("data: ");
    if (data == std::string::npos) return;
    ++events_;
    bool snapshot = event.find("event: snapshot") != std::string::npos;
    cJSON* doc = cJSON_Parse(event.c_str() + data + 6);
    const cJSON* nodes = cJSON_GetObjectItemCaseSensitive(doc, "nodes");
    const cJSON* row;
    cJSON_ArrayForEach(row, nodes) {
      const cJSON* name = cJSON_GetObjectItemCaseSensitive(row, "node");
      if (!cJSON_IsString(name)) continue;
      int idx = NodeIndex(name->valuestring);
      if (idx < 0) continue;
      const cJSON* ts = cJSON_GetObjectItemCaseSensitive(row, "ts_ms");
      if (!snapshot && cJSON_IsNumber(ts)) {
        int64_t us = log_->LatencyUs(idx, int64_t(ts->valuedouble), now);
        if (us >= 0) samples_->Add(us);
      }
      const cJSON* online = cJSON_GetObjectItemCaseSensitive(row, "online");
      if (cJSON_IsFalse(online) && offline_seen_us_[idx] == 0) offline_seen_us_[idx] = now;
    }
    cJSON_Delete(doc);
  }

  const PublishLog* log_;
  Samples* samples_;
  std::vector<std::atomic<int64_t>> offline_seen_us_;
  int fd_ = -1;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> bytes_{0}, events_{0};
};

Args Parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i];
    double v = std::atof(argv[i + 1]);
    if (k == "--screenshot") {
      a.screenshot = argv[i + 1];
      continue;
    }
    if (k == "--nodes")
      a.nodes = int(v);
    else if (k == "--seconds")
      a.seconds = int(v);
    else if (k == "--status-ms")
      a.status_ms = int(v);
    else if (k == "--traffic")
      a.traffic = v;
    else if (k == "--agents")
      a.agents = int(v);
    else if (k == "--kill")
      a.kill = int(v);
    else {
      std::fprintf(stderr, "unknown option %s\n", k.c_str());
      std::exit(64);
    }
  }
  a.kill = std::min(a.kill, a.nodes);
  return a;
}

void Sleep(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

// Runs the in-process observers on a loop of their own: a FleetWatcher and
// FleetModel timed by ModelLatency, and a bare subscriber (the floor).
class Observers {
 public:
  Observers(const PublishLog* log, Samples* model_lat, Samples* floor_lat, size_t max_nodes)
      : model_({30000, max_nodes}), model_observer_(log, model_lat), bare_(log, floor_lat) {}
  ~Observers() { Stop(); }
  void Start(const std::string& url) {
    loop_.RunOnLoop([&] {
      agent::fleet::FleetWatcherOptions o;
      o.client.url = url;
      o.client.session.client_id = "bench-model";
      watcher_ = std::move(agent::fleet::FleetWatcher::Create(loop_.loop(), std::move(o), &model_,
                                                              platform::SystemClock::Get()))
                     .value();
      watcher_->AddObserver(&model_observer_);
      watcher_->Start();
      sync::mqtt::ClientOptions b;
      b.url = url;
      b.session.client_id = "bench-bare";
      b.subscriptions.emplace_back("edgespool/+/status", 1);
      bare_client_ =
          std::move(sync::mqtt::Client::Create(loop_.loop(), std::move(b), &bare_)).value();
      bare_client_->Start();
    });
  }
  // Subscribed, with the retained documents of at least `nodes` nodes.
  bool Ready(size_t nodes) {
    return loop_.RunOnLoop([&] { return watcher_->subscribed() && model_.size() >= nodes; });
  }
  void Stop() {
    loop_.RunOnLoop([&] {
      bare_client_.reset();
      watcher_.reset();
    });
  }

 private:
  LoopThread loop_;
  agent::fleet::FleetModel model_;
  ModelLatency model_observer_;
  BareSubscriber bare_;
  std::unique_ptr<agent::fleet::FleetWatcher> watcher_;
  std::unique_ptr<sync::mqtt::Client> bare_client_;
};

// Headless Chromium (the dashboard test's DevTools driver) loads the page
// and saves a picture once every node has its row.
void TakeScreenshot(const Args& a, const FleetView& view, const std::string& dir) {
  if (!CommandExists("chromium") || !CommandExists("python3")) {
    std::printf("dashboard screenshot: skipped (chromium or python3 missing)\n");
    return;
  }
  std::string src = __FILE__;
  src.resize(src.rfind("/tests/bench/"));
  Process driver;
  auto t = std::chrono::steady_clock::now();
  driver.Start({"python3", src + "/tests/integration/fleet_dashboard_driver.py", "--url",
                "http://127.0.0.1:" + std::to_string(view.http_port()) + "/", "--min-rows",
                std::to_string(a.nodes), "--shot1", a.screenshot, "--timeout", "60"},
               dir + "/driver.log");
  int st = driver.Wait(90000);
  std::printf("dashboard screenshot %s: %s in %.1f s (browser start, load, %d rows)\n",
              a.screenshot.c_str(), st == 0 ? "taken" : "FAILED",
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count(), a.nodes);
}

// What phases 1-3 measured, for Report.
struct Figures {
  double broker_base, sim_base, rate_base, broker_fleet, view_cpu, events_per_s, kib_per_s;
  size_t fleet_json_bytes;
  long rss_view, hwm_view, rss_after, rss_idle;
  size_t exposition_bytes;
  int seen_offline;
  double offline_ms;
  long agent_rss;
};

void Report(const Args& a, const Figures& f, Samples& floor_lat, Samples& model_lat,
            Samples& sse_lat) {
  std::printf("\n%-46s %s\n", "status -> delivered to a bare client (floor)",
              floor_lat.Summary().c_str());
  std::printf("%-46s %s\n", "status -> applied to a FleetModel", model_lat.Summary().c_str());
  std::printf("%-46s %s\n", "status -> row on the dashboard's /events", sse_lat.Summary().c_str());
  std::printf("  ratios to the floor: model p50 %.2fx p99 %.2fx; dashboard p50 %.2fx p99 %.2fx\n",
              model_lat.P(0.5) / std::max(0.001, floor_lat.P(0.5)),
              model_lat.P(0.99) / std::max(0.001, floor_lat.P(0.99)),
              sse_lat.P(0.5) / std::max(0.001, floor_lat.P(0.5)),
              sse_lat.P(0.99) / std::max(0.001, floor_lat.P(0.99)));
  std::printf(
      "\nbroker CPU, nodes alone:                       %5.1f%% of a core (%.0f msg/s "
      "acked; simulation %.1f%%)\n",
      f.broker_base * 100, f.rate_base, f.sim_base * 100);
  std::printf("broker CPU, with the fleet view + 2 observers:  %5.1f%% of a core (%.2fx)\n",
              f.broker_fleet * 100, f.broker_fleet / std::max(1e-6, f.broker_base));
  std::printf("fleet view CPU (model + dashboard + exporter): %5.1f%% of a core\n",
              f.view_cpu * 100);
  std::printf(
      "dashboard stream: %.1f events/s, %.1f KiB/s; the whole fleet (/api/fleet, what a "
      "snapshot carries) %.1f KiB\n",
      f.events_per_s, f.kib_per_s, f.fleet_json_bytes / 1024.0);
  std::printf(
      "fleet view RSS: %ld KiB with %d nodes (peak %ld, %ld after the run) against %ld "
      "KiB idle: %.1f KiB per node\n",
      f.rss_view, a.nodes + a.agents, f.hwm_view, f.rss_after, f.rss_idle,
      double(f.rss_view - f.rss_idle) / (a.nodes + a.agents));
  std::printf("exposition: %.1f KiB per scrape\n", f.exposition_bytes / 1024.0);
  if (a.kill > 0) {
    std::printf("%d nodes vanished: all %d shown offline on the dashboard after %.1f ms\n", a.kill,
                f.seen_offline, f.offline_ms);
  }
  if (a.agents > 0) {
    std::printf("real agents: %.1f MiB RSS each (x1000 = %.1f GiB)\n",
                f.agent_rss / 1024.0 / a.agents, f.agent_rss / 1024.0 / a.agents * 1000 / 1024);
  }
}

int Main(int argc, char** argv) {
  Args a = Parse(argc, argv);
  platform::Logger::SetLevel(platform::LogLevel::kError);
  rlimit nofile{};
  getrlimit(RLIMIT_NOFILE, &nofile);
  nofile.rlim_cur = nofile.rlim_max;
  setrlimit(RLIMIT_NOFILE, &nofile);  // the broker inherits it
  if (nofile.rlim_cur < rlim_t(a.nodes) + 200) {
    std::fprintf(stderr, "RLIMIT_NOFILE %llu is too low for %d nodes\n",
                 (unsigned long long)nofile.rlim_cur, a.nodes);
    return 69;
  }
  std::printf(
      "fleet_bench: %d simulated nodes (status every %d ms, %.1f msg/s each), %d real "
      "agents, %d s per phase\n",
      a.nodes, a.status_ms, a.traffic, a.agents, a.seconds);
  TempDir dir;
  Mosquitto broker(dir.path());
  if (!broker.Start()) return 69;

  // Real agents, for their RSS and to show up beside the simulated nodes.
  std::vector<std::unique_ptr<TempDir>> agent_dirs;
  std::vector<std::unique_ptr<AgentProcess>> agents;
  for (int i = 0; i < a.agents; ++i) {
    agent_dirs.push_back(std::make_unique<TempDir>());
    agents.push_back(
        std::make_unique<AgentProcess>(agent_dirs.back()->path(), broker.url(),
                                       std::multimap<std::string, std::string>{
                                           {"node", "id = \"agent-" + std::to_string(i) + "\""}}));
    if (!agents.back()->Start()) return 69;
  }

  PublishLog log(a.nodes);
  LoopThread sim_loop;
  Simulation sim(sim_loop.loop(), a, broker.url(), &log);
  auto t0 = std::chrono::steady_clock::now();
  sim_loop.RunOnLoop([&] { sim.Start(); });
  while (sim_loop.RunOnLoop([&] { return sim.Connected(); }) < a.nodes &&
         std::chrono::steady_clock::now() - t0 < std::chrono::seconds(60)) {
    Sleep(100);
  }
  double connect_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  int connected = sim_loop.RunOnLoop([&] { return sim.Connected(); });
  std::printf("connected %d/%d nodes in %.2f s\n", connected, a.nodes, connect_s);
  Sleep(a.status_ms + 500);  // every node has published its first status

  // Phase 1: the nodes alone.
  double b0 = CpuSeconds(broker.pid()), s0 = CpuSeconds(getpid());
  uint64_t acked0 = sim_loop.RunOnLoop([&] { return sim.Acked(); });
  Sleep(a.seconds * 1000);
  double broker_base = (CpuSeconds(broker.pid()) - b0) / a.seconds;
  double sim_base = (CpuSeconds(getpid()) - s0) / a.seconds;
  double rate_base = (sim_loop.RunOnLoop([&] { return sim.Acked(); }) - acked0) / double(a.seconds);

  // Phase 2: the fleet view, a dashboard client, the in-process model.
  FleetView idle(dir.path() + "/idle-view", broker.url(),
                 {"--topic", "nobody/+/status", "--stale", "30s"});
  ::mkdir((dir.path() + "/idle-view").c_str(), 0700);
  ::mkdir((dir.path() + "/view").c_str(), 0700);
  FleetView view(dir.path() + "/view", broker.url(),
                 {"--stale", "30s", "--max-nodes", std::to_string(a.nodes + a.agents + 10)});
  if (!idle.Start() || !view.Start()) {
    std::fprintf(stderr, "fleet view did not start: %s\n", view.log().c_str());
    return 69;
  }
  Samples model_lat, sse_lat, floor_lat;
  Observers observers(&log, &model_lat, &floor_lat, size_t(a.nodes + a.agents + 10));
  observers.Start(broker.url());
  SseClient sse(view.http_port(), &log, &sse_lat, a.nodes);
  // Until the fleet view knows every node.
  for (int i = 0; i < 300; ++i) {
    std::string m = HttpBody(HttpGet(view.metrics_port(), "/metrics"));
    size_t at = m.find("edgespool_fleet_nodes{state=\"ok\"} ");
    if (at != std::string::npos && std::atoi(m.c_str() + at + 34) >= a.nodes) break;
    Sleep(100);
  }
  // And until the in-process observers have their retained documents, so
  // that what is timed is live traffic only.
  for (int i = 0; i < 300 && !observers.Ready(size_t(a.nodes)); ++i) Sleep(100);
  Sleep(500);
  size_t fleet_json_bytes = HttpBody(HttpGet(view.http_port(), "/api/fleet")).size();
  if (!a.screenshot.empty()) TakeScreenshot(a, view, dir.path());
  long rss_idle = StatusKb(idle.pid(), "VmRSS:"), rss_view = StatusKb(view.pid(), "VmRSS:");
  long hwm_view = StatusKb(view.pid(), "VmHWM:");
  b0 = CpuSeconds(broker.pid());
  double v0 = CpuSeconds(view.pid());
  uint64_t sse_bytes0 = sse.bytes(), sse_events0 = sse.events();
  log.measuring = true;
  Sleep(a.seconds * 1000);
  log.measuring = false;
  double broker_fleet = (CpuSeconds(broker.pid()) - b0) / a.seconds;
  double view_cpu = (CpuSeconds(view.pid()) - v0) / a.seconds;
  uint64_t sse_bytes = sse.bytes() - sse_bytes0, sse_events = sse.events() - sse_events0;
  long rss_after = StatusKb(view.pid(), "VmRSS:");
  hwm_view = std::max(hwm_view, StatusKb(view.pid(), "VmHWM:"));
  std::string metrics = HttpBody(HttpGet(view.metrics_port(), "/metrics"));

  // Phase 3: k nodes vanish.
  int64_t vanished_us = sim_loop.RunOnLoop([&] { return sim.Vanish(a.kill); });
  int seen = 0;
  for (int i = 0; i < 300 && seen < a.kill; ++i) {
    Sleep(50);
    seen = 0;
    for (int k = 0; k < a.kill; ++k) seen += sse.OfflineSeenUs(k) ? 1 : 0;
  }
  int64_t last_seen = 0;
  for (int k = 0; k < a.kill; ++k) last_seen = std::max(last_seen, sse.OfflineSeenUs(k));

  long agent_rss = 0;
  for (auto& ag : agents) agent_rss += StatusKb(ag->pid(), "VmRSS:");

  Figures f{broker_base,
            sim_base,
            rate_base,
            broker_fleet,
            view_cpu,
            sse_events / double(a.seconds),
            sse_bytes / 1024.0 / a.seconds,
            fleet_json_bytes,
            rss_view,
            hwm_view,
            rss_after,
            rss_idle,
            metrics.size(),
            seen,
            seen == a.kill ? (last_seen - vanished_us) / 1000.0 : -1.0,
            agent_rss};
  Report(a, f, floor_lat, model_lat, sse_lat);
  observers.Stop();
  sim_loop.RunOnLoop([&] { sim.Stop(); });
  view.Stop();
  idle.Stop();
  return seen == a.kill ? 0 : 1;
}

}  // namespace
}  // namespace edgespool::bench

int main(int argc, char** argv) { return edgespool::bench::Main(argc, argv); }
