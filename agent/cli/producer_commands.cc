#include "agent/cli/producer_commands.h"

#include <cjson/cJSON.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "agent/cli/exit_codes.h"
#include "agent/client/producer.h"
#include "agent/protocol/request.h"
#include "platform/process_info.h"

namespace edgespool::agent {

namespace {

using Clock = std::chrono::steady_clock;
namespace cl = ::edgespool::client;

constexpr const char* kPublishUsage =
    "usage: edgespool publish TOPIC [MESSAGE] [--file PATH] [--ts MS] [--id ID] "
    "[--priority high|normal|low] [--ttl MS] [--header k=v] [--ack stored|delivered|none] "
    "[--count N --rate R --size B --connections C] [--socket PATH]";
constexpr const char* kQueryUsage = "usage: edgespool query SEQ|--id ID [--json] [--socket PATH]";
constexpr const char* kStatusUsage = "usage: edgespool status [--json] [--socket PATH]";

int Usage(const char* usage, const std::string& why = "") {
  if (!why.empty()) std::fprintf(stderr, "edgespool: %s\n", why.c_str());
  std::fprintf(stderr, "%s\n", usage);
  return kExitUsage;
}

std::string DefaultSocket() {
  const char* env = std::getenv("EDGESPOOL_PRODUCER_SOCKET");
  return env && *env ? env : "/run/edgespool/edgespool.sock";
}

bool ParseInt(const std::string& s, int64_t lo, int64_t hi, int64_t* out) {
  if (s.empty()) return false;
  char* end = nullptr;
  errno = 0;
  long long v = std::strtoll(s.c_str(), &end, 10);
  if (errno != 0 || *end != '\0' || v < lo || v > hi) return false;
  *out = v;
  return true;
}

// Exit code for a refused or failed request.
int ExitFor(const Status& st, const std::optional<protocol::ErrorCode>& code) {
  if (st.ok()) return kExitOk;
  if (!code) return kExitUnavailable;
  switch (*code) {
    case protocol::ErrorCode::kBadFrame:
    case protocol::ErrorCode::kBadRequest:
    case protocol::ErrorCode::kBadTopic:
    case protocol::ErrorCode::kTooLarge:
    case protocol::ErrorCode::kForbidden:
      return kExitDataErr;
    case protocol::ErrorCode::kRateLimited:
    case protocol::ErrorCode::kBusy:
    case protocol::ErrorCode::kJournalFull:
    case protocol::ErrorCode::kUnavailable:
    case protocol::ErrorCode::kNoHandler:
      return kExitUnavailable;
    case protocol::ErrorCode::kTimeout:
      return kExitTempFail;
    case protocol::ErrorCode::kHandlerError:
      return kExitHandlerError;
    case protocol::ErrorCode::kInternal:
      return kExitSoftware;
  }
  return kExitSoftware;
}

Result<std::unique_ptr<cl::Producer>> ConnectTo(const std::string& socket, size_t window = 256,
                                                std::shared_ptr<cl::IoThread> io = nullptr) {
  cl::ProducerOptions o;
  o.socket_path = socket;
  o.window = window;
  o.io = std::move(io);
  o.connect_timeout_ms = 2000;
  auto p = cl::Producer::Connect(std::move(o));
  if (!p.ok()) {
    std::fprintf(stderr, "edgespool: agent unavailable at %s: %s\n", socket.c_str(),
                 p.status().message().c_str());
  }
  return p;
}

struct PublishArgs {
  std::string socket = DefaultSocket();
  std::string topic;
  std::optional<std::string> message;
  std::string file;
  cl::PublishOptions options;
  int64_t count = 0, rate = 0, size = 200, connections = 1;
};

// Returns 0 when parsed, else the exit code.
int ParsePublishArgs(int argc, char** argv, PublishArgs* a) {
  std::vector<std::string> positional;
  for (int i = 0; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&](std::string* out) {
      if (i + 1 >= argc) return false;
      *out = argv[++i];
      return true;
    };
    std::string v;
    int64_t n;
    if (arg.rfind("--", 0) != 0 || arg == "--") {
      positional.push_back(arg);
      continue;
    }
    if (!value(&v)) return Usage(kPublishUsage, arg + " needs a value");
    if (arg == "--socket") {
      a->socket = v;
    } else if (arg == "--file") {
      a->file = v;
    } else if (arg == "--ts" && ParseInt(v, 0, protocol::kMaxTsMs, &n)) {
      a->options.ts_ms = n;
    } else if (arg == "--id") {
      a->options.id = v;
    } else if (arg == "--priority" && protocol::ParsePriority(v, &a->options.priority)) {
    } else if (arg == "--ttl" && ParseInt(v, 1, protocol::kMaxTtlMs, &n)) {
      a->options.ttl_ms = n;
    } else if (arg == "--ack" && protocol::ParseAckMode(v, &a->options.ack)) {
    } else if (arg == "--header" && v.find('=') != std::string::npos && v.find('=') > 0) {
      a->options.headers.emplace_back(v.substr(0, v.find('=')), v.substr(v.find('=') + 1));
    } else if (arg == "--count" && ParseInt(v, 1, INT64_MAX, &n)) {
      a->count = n;
    } else if (arg == "--rate" && ParseInt(v, 0, INT64_MAX, &n)) {
      a->rate = n;
    } else if (arg == "--size" && ParseInt(v, 0, 64 << 20, &n)) {
      a->size = n;
    } else if (arg == "--connections" && ParseInt(v, 1, 100000, &n)) {
      a->connections = n;
    } else {
      return Usage(kPublishUsage, "bad option " + arg + " " + v);
    }
  }
  if (positional.empty() || positional.size() > 2) return Usage(kPublishUsage);
  a->topic = positional[0];
  if (positional.size() == 2) a->message = positional[1];
  if (a->message && !a->file.empty()) return Usage(kPublishUsage, "MESSAGE and --file conflict");
  return 0;
}

void PrintResult(const cl::PublishResult& r) {
  if (!r.status.ok()) {
    std::fprintf(stderr, "edgespool: publish refused: %s\n", r.status.message().c_str());
    return;
  }
  std::printf("%s seq=%llu id=%s uplink=%s\n", r.duplicate ? "duplicate" : "stored",
              static_cast<unsigned long long>(r.seq), r.id.c_str(),
              r.uplink_connected ? "connected" : "disconnected");
}

int PublishOne(cl::Producer& p, const PublishArgs& a, std::string payload) {
  cl::PublishOptions o = a.options;
  std::promise<cl::PublishResult> delivered;
  auto delivered_f = delivered.get_future();
  bool wait_delivery = o.ack == protocol::AckMode::kDelivered;
  if (wait_delivery) {
    o.on_delivered = [&delivered](const cl::PublishResult& r) { delivered.set_value(r); };
  }
  cl::PublishResult r = p.Publish(a.topic, std::move(payload), std::move(o)).get();
  PrintResult(r);
  if (!r.status.ok() || !wait_delivery) return ExitFor(r.status, r.code);
  cl::PublishResult d = delivered_f.get();
  if (!d.status.ok()) {
    std::fprintf(stderr, "edgespool: not delivered: %s\n", d.status.message().c_str());
    return kExitUnavailable;
  }
  std::printf("delivered seq=%llu\n", static_cast<unsigned long long>(d.seq));
  return kExitOk;
}

// One publish per stdin line, pipelined; the first failure decides the exit.
int PublishLines(cl::Producer& p, const PublishArgs& a) {
  if (!a.options.id.empty()) return Usage(kPublishUsage, "--id needs a single MESSAGE or --file");
  std::vector<std::future<cl::PublishResult>> pending;
  std::string line;
  uint64_t stored = 0, duplicates = 0;
  int rc = kExitOk;
  auto settle = [&](std::future<cl::PublishResult>& f) {
    cl::PublishResult r = f.get();
    if (r.status.ok()) {
      ++(r.duplicate ? duplicates : stored);
    } else if (rc == kExitOk) {
      PrintResult(r);
      rc = ExitFor(r.status, r.code);
    }
  };
  while (std::getline(std::cin, line)) {
    pending.push_back(p.Publish(a.topic, line, a.options));
    if (pending.size() >= 1024) {
      for (auto& f : pending) settle(f);
      pending.clear();
    }
  }
  for (auto& f : pending) settle(f);
  std::printf("stored %llu duplicates %llu\n", static_cast<unsigned long long>(stored),
              static_cast<unsigned long long>(duplicates));
  return rc;
}

// Messages per second one pacing thread offers (see PublishLoad).
constexpr int64_t kPacedPerThread = 50000;

struct LoadStats {
  std::mutex mu;
  std::vector<double> latencies_ms;
  uint64_t errors = 0;
  std::string first_error;
  std::atomic<uint64_t> done{0};
};

double Percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  size_t i = static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  std::nth_element(v.begin(), v.begin() + static_cast<long>(i), v.end());
  return v[i];
}

// Publishes `count` messages round-robin over `producers`, at `rate` msg/s
// (0: as fast as the windows allow).
void LoadWorker(std::vector<cl::Producer*> producers, const PublishArgs& a, int64_t count,
                double rate, const std::string& payload, LoadStats& stats) {
  auto start = Clock::now();
  for (int64_t i = 0; i < count; ++i) {
    if (rate > 0) {
      std::this_thread::sleep_until(
          start + std::chrono::duration_cast<Clock::duration>(
                      std::chrono::duration<double>(static_cast<double>(i) / rate)));
    }
    auto sent = Clock::now();
    cl::PublishOptions o = a.options;
    o.id.clear();
    cl::Producer& p = *producers[static_cast<size_t>(i) % producers.size()];
    p.Publish(a.topic, payload, std::move(o), [sent, &stats](cl::PublishResult r) {
      double ms = std::chrono::duration<double, std::milli>(Clock::now() - sent).count();
      std::lock_guard<std::mutex> lock(stats.mu);
      if (r.status.ok()) {
        stats.latencies_ms.push_back(ms);
      } else if (stats.errors++ == 0) {
        stats.first_error = r.status.message();
      }
      stats.done.fetch_add(1);
    });
  }
}

// The connections share one SDK thread per core: with a thread each, one
// commit's acks woke 64 threads (64 connections at 20,000 msg/s).
bool StartIoThreads(int64_t connections, std::vector<std::shared_ptr<cl::IoThread>>* io) {
  io->resize(static_cast<size_t>(
      std::min<int64_t>(connections, std::max(1u, std::thread::hardware_concurrency()))));
  for (auto& t : *io) {
    auto started = cl::IoThread::Start();
    if (!started.ok()) {
      std::fprintf(stderr, "edgespool: %s\n", started.status().ToString().c_str());
      return false;
    }
    t = std::move(started).value();
  }
  return true;
}

bool ConnectProducers(const PublishArgs& a, const std::vector<std::shared_ptr<cl::IoThread>>& io,
                      std::vector<std::unique_ptr<cl::Producer>>* producers) {
  for (int64_t c = 0; c < a.connections; ++c) {
    // A deeper window than a single publish needs. While one commit group
    // is written the next fills, so a connection's groups hold about half
    // its window: 2048 gives groups of ~1000 rows, where bare SQLite inserts
    // level off (TESTING.md). Measured with one connection and durability
    // full (producer_bench): 52-59% of bare with 1024, 67-77% with 2048.
    // A single connection gets 4096: with two groups in flight the store
    // thread waited while the agent read the next thousand requests
    // (CLI, 1M messages, 3 paired runs: normal 148-167k -> 187-211k msg/s,
    // full 126-137k -> 176-186k). With 8 or 64 connections 4096 was no
    // better (their groups overlap anyway) and holds more in flight.
    size_t window = std::max<size_t>(2048, 4096 / static_cast<size_t>(a.connections));
    auto p = ConnectTo(a.socket, window, io[static_cast<size_t>(c) % io.size()]);
    if (!p.ok()) return false;
    producers->push_back(std::move(p).value());
  }
  return true;
}

// Flat out, one thread per connection keeps every window full. At a set
// rate one thread paces up to kPacedPerThread msg/s over its share of the
// connections: a thread per connection only added sleeping threads that
// each woke for every message (with 64 connections at 20,000 msg/s, 128
// threads on 2 cores, half of them pacers), and the agent's acks waited
// for them to be scheduled.
std::vector<std::thread> StartLoadWorkers(const PublishArgs& a,
                                          const std::vector<std::unique_ptr<cl::Producer>>& producers,
                                          const std::string& payload, LoadStats& stats) {
  int64_t workers = a.connections;
  if (a.rate > 0) workers = std::min(a.connections, 1 + a.rate / kPacedPerThread);
  std::vector<std::thread> threads;
  for (int64_t w = 0; w < workers; ++w) {
    std::vector<cl::Producer*> mine;
    for (int64_t c = w; c < a.connections; c += workers) mine.push_back(producers[c].get());
    int64_t n = a.count / workers + (w < a.count % workers ? 1 : 0);
    double rate = a.rate > 0 ? static_cast<double>(a.rate) / static_cast<double>(workers) : 0;
    threads.emplace_back(LoadWorker, std::move(mine), std::cref(a), n, rate, std::cref(payload),
                         std::ref(stats));
  }
  return threads;
}

// On a terminal, a progress line every 250 ms until every message is acked.
void ShowLoadProgress(const PublishArgs& a, const LoadStats& stats, Clock::time_point start) {
  while (stats.done.load() < static_cast<uint64_t>(a.count)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
    double s = std::chrono::duration<double>(Clock::now() - start).count();
    std::fprintf(stderr, "\r%llu/%lld acked, %.0f msg/s   ",
                 static_cast<unsigned long long>(stats.done.load()),
                 static_cast<long long>(a.count), static_cast<double>(stats.done.load()) / s);
  }
}

int ReportLoad(const PublishArgs& a, LoadStats& stats, size_t payload_bytes, double secs) {
  std::lock_guard<std::mutex> lock(stats.mu);
  auto& l = stats.latencies_ms;
  double max = l.empty() ? 0 : *std::max_element(l.begin(), l.end());
  double p50 = Percentile(l, 0.50), p99 = Percentile(l, 0.99);
  std::printf(
      "published %zu of %lld messages (%zu B) over %lld connection(s) in %.3f s: "
      "%.0f msg/s; ack latency p50 %.3f ms p99 %.3f ms max %.3f ms; errors %llu\n",
      l.size(), static_cast<long long>(a.count), payload_bytes,
      static_cast<long long>(a.connections), secs, static_cast<double>(l.size()) / secs, p50, p99,
      max, static_cast<unsigned long long>(stats.errors));
  if (stats.errors > 0) {
    std::fprintf(stderr, "edgespool: first error: %s\n", stats.first_error.c_str());
    return kExitUnavailable;
  }
  return kExitOk;
}

int PublishLoad(const PublishArgs& a) {
  // Before the producers: a producer closed with requests outstanding
  // (Drain timed out) fails them through callbacks that record here.
  LoadStats stats;
  stats.latencies_ms.reserve(static_cast<size_t>(a.count));
  std::vector<std::shared_ptr<cl::IoThread>> io;
  if (!StartIoThreads(a.connections, &io)) return kExitUnavailable;
  std::vector<std::unique_ptr<cl::Producer>> producers;
  if (!ConnectProducers(a, io, &producers)) return kExitUnavailable;
  std::string payload(static_cast<size_t>(a.size), 'x');
  for (size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<char>('a' + i % 26);
  bool tty = platform::IsTerminal(2);
  auto start = Clock::now();
  std::vector<std::thread> threads = StartLoadWorkers(a, producers, payload, stats);
  if (tty) ShowLoadProgress(a, stats, start);
  for (auto& t : threads) t.join();
  for (auto& p : producers) p->Drain(600000);
  double secs = std::chrono::duration<double>(Clock::now() - start).count();
  if (tty) std::fprintf(stderr, "\n");
  return ReportLoad(a, stats, payload.size(), secs);
}

// Common flags of query/status: --socket PATH and --json.
bool TakeCommonFlag(int argc, char** argv, int* i, std::string* socket, bool* json) {
  std::string arg = argv[*i];
  if (arg == "--json") {
    *json = true;
    return true;
  }
  if (arg == "--socket" && *i + 1 < argc) {
    *socket = argv[++*i];
    return true;
  }
  return false;
}

void PrintFlat(const cJSON* item, const std::string& prefix) {
  for (const cJSON* c = item->child; c != nullptr; c = c->next) {
    std::string key = prefix.empty() ? std::string(c->string ? c->string : "?")
                                     : prefix + "." + (c->string ? c->string : "?");
    if (cJSON_IsObject(c)) {
      PrintFlat(c, key);
      continue;
    }
    std::string value;
    if (cJSON_IsString(c)) {
      value = c->valuestring;
    } else {
      char* text = cJSON_PrintUnformatted(c);
      value = text ? text : "";
      cJSON_free(text);
    }
    std::printf("%-28s %s\n", key.c_str(), value.c_str());
  }
}

}  // namespace

int PublishCommand(int argc, char** argv) {
  PublishArgs a;
  if (int rc = ParsePublishArgs(argc, argv, &a)) return rc;
  Status topic_ok = protocol::ValidateTopic(a.topic);
  if (!topic_ok.ok()) {
    std::fprintf(stderr, "edgespool: bad topic: %s\n", topic_ok.message().c_str());
    return kExitDataErr;
  }
  if (a.count > 0) return PublishLoad(a);
  std::optional<std::string> payload = a.message;
  if (!a.file.empty()) {
    std::ifstream in(a.file, std::ios::binary);
    if (!in) {
      std::fprintf(stderr, "edgespool: cannot read %s\n", a.file.c_str());
      return kExitDataErr;
    }
    std::stringstream ss;
    ss << in.rdbuf();
    payload = ss.str();
  }
  auto p = ConnectTo(a.socket);
  if (!p.ok()) return kExitUnavailable;
  if (payload) return PublishOne(**p, a, std::move(*payload));
  return PublishLines(**p, a);
}

int QueryCommand(int argc, char** argv) {
  std::string socket = DefaultSocket(), id;
  bool json = false;
  std::optional<uint64_t> seq;
  for (int i = 0; i < argc; ++i) {
    std::string arg = argv[i];
    int64_t n;
    if (TakeCommonFlag(argc, argv, &i, &socket, &json)) continue;
    if (arg == "--id" && i + 1 < argc) {
      id = argv[++i];
    } else if (!seq && ParseInt(arg, 1, protocol::kMaxReq, &n)) {
      seq = static_cast<uint64_t>(n);
    } else {
      return Usage(kQueryUsage, "unexpected argument " + arg);
    }
  }
  if (seq.has_value() == !id.empty()) return Usage(kQueryUsage);
  auto p = ConnectTo(socket);
  if (!p.ok()) return kExitUnavailable;
  cl::QueryInfo q = seq ? (*p)->Query(*seq).get() : (*p)->QueryById(id).get();
  if (!q.status.ok()) {
    std::fprintf(stderr, "edgespool: query failed: %s\n", q.status.message().c_str());
    return q.status.code() == Code::kInvalidArgument ? kExitDataErr : kExitUnavailable;
  }
  if (json) {
    std::printf("{\"seq\":%llu,\"state\":\"%s\",\"ts\":%lld,\"attempts\":%llu}\n",
                static_cast<unsigned long long>(q.seq), q.state.c_str(),
                static_cast<long long>(q.ts_ms), static_cast<unsigned long long>(q.attempts));
    return kExitOk;
  }
  std::printf("seq       %llu\nstate     %s\n", static_cast<unsigned long long>(q.seq),
              q.state.c_str());
  if (q.state != "unknown") {
    std::printf("topic     %s\nts        %lld\nattempts  %llu\n", q.topic.c_str(),
                static_cast<long long>(q.ts_ms), static_cast<unsigned long long>(q.attempts));
    if (q.sent_at_ms) std::printf("sent_at   %lld\n", static_cast<long long>(q.sent_at_ms));
    if (!q.reason.empty()) std::printf("reason    %s\n", q.reason.c_str());
  }
  return kExitOk;
}

int StatusCommand(int argc, char** argv) {
  std::string socket = DefaultSocket();
  bool json = false;
  for (int i = 0; i < argc; ++i) {
    if (!TakeCommonFlag(argc, argv, &i, &socket, &json)) {
      return Usage(kStatusUsage, std::string("unexpected argument ") + argv[i]);
    }
  }
  auto p = ConnectTo(socket);
  if (!p.ok()) return kExitUnavailable;
  Result<std::string> doc = (*p)->GetStatus().get();
  if (!doc.ok()) {
    std::fprintf(stderr, "edgespool: status failed: %s\n", doc.status().message().c_str());
    return kExitUnavailable;
  }
  if (json) {
    std::printf("%s\n", doc->c_str());
    return kExitOk;
  }
  cJSON* root = cJSON_ParseWithLength(doc->data(), doc->size());
  if (!root || !cJSON_IsObject(root)) {
    cJSON_Delete(root);
    std::printf("%s\n", doc->c_str());
    return kExitOk;
  }
  PrintFlat(root, "");
  cJSON_Delete(root);
  return kExitOk;
}

}  // namespace edgespool::agent
