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
#include "platform/log.h"
#include "platform/process_info.h"

namespace edgespool::agent {

namespace {

using Clock = std::chrono::steady_clock;
namespace cl = ::edgespool::client;

using cli::Args;
using cli::ExitCodeDoc;
using cli::OptionSpec;
using cli::ValueKind;

int Usage(const char* command, const std::string& why) {
  std::fprintf(stderr, "edgespool %s: %s\n(run 'edgespool %s --help' for usage)\n", command,
               why.c_str(), command);
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
                                                std::shared_ptr<cl::IoThread> io = nullptr,
                                                const cl::DirectOptions& direct = {}) {
  cl::ProducerOptions o;
  o.socket_path = socket;
  o.window = window;
  o.io = std::move(io);
  o.connect_timeout_ms = 2000;
  o.direct = direct;
  auto p = cl::Producer::Connect(std::move(o));
  if (!p.ok()) {
    // The status names the broker's URL (without secrets) in direct mode.
    if (cl::IsBrokerUrl(socket)) {
      std::fprintf(stderr, "edgespool: direct mode: %s\n", p.status().message().c_str());
    } else {
      std::fprintf(stderr, "edgespool: agent unavailable at %s: %s\n", socket.c_str(),
                   p.status().message().c_str());
    }
  }
  return p;
}

// A failed connect: a bad URL or TLS file is the caller's mistake (65),
// an unreachable agent or broker is not (69).
int ConnectExit(const Status& st) {
  return st.code() == Code::kInvalidArgument ? kExitDataErr : kExitUnavailable;
}

struct PublishArgs {
  std::string socket;
  std::string topic;
  std::optional<std::string> message;
  std::string file;
  bool lines = false, whole_stdin = false;
  cl::PublishOptions options;
  cl::DirectOptions direct;  // --socket/--url a broker's URL: direct mode
  int64_t count = 0, rate = 0, size = 200, connections = 1;
};

// Direct mode's options: only with a broker URL, where they mean something.
int ToDirectOptions(const Args& args, PublishArgs* a) {
  static const char* const kDirectOnly[] = {
      "cafile", "cert", "key", "username", "password-file", "client-id", "insecure",
  };
  bool direct = cl::IsBrokerUrl(a->socket);
  for (const char* name : kDirectOnly) {
    if (args.Has(name) && !direct) {
      return Usage("publish", std::string("--") + name +
                                  " is for direct mode (--url mqtt://... or mqtts://...)");
    }
  }
  a->direct.ca_file = args.Str("cafile");
  a->direct.cert_file = args.Str("cert");
  a->direct.key_file = args.Str("key");
  a->direct.username = args.Str("username");
  a->direct.client_id = args.Str("client-id");
  a->direct.verify = !args.Has("insecure");
  if (args.Has("password-file")) {
    std::ifstream in(args.Str("password-file"), std::ios::binary);
    if (!in) return Usage("publish", "cannot read --password-file " + args.Str("password-file"));
    std::getline(in, a->direct.password);  // the first line, as uplink.password_file
  }
  return 0;
}

// Fills *a from the parsed options. Returns 0, else the exit code (a usage
// error reported).
int ToPublishArgs(const Args& args, PublishArgs* a) {
  const auto& pos = args.positionals();
  if (args.Has("socket") && args.Has("url")) {
    return Usage("publish", "give --socket or --url, not both");
  }
  a->socket = args.Has("url") ? args.Str("url") : args.Str("socket", DefaultSocket());
  if (args.Has("url") && !cl::IsBrokerUrl(a->socket)) {
    return Usage("publish", "--url takes mqtt://HOST[:PORT] or mqtts://HOST[:PORT]");
  }
  if (int rc = ToDirectOptions(args, a)) return rc;
  // The MQTT client logs each connect and retry (as the agent's uplink):
  // the command's own line says what became of the publish.
  if (cl::IsBrokerUrl(a->socket)) platform::Logger::SetLevel(platform::LogLevel::kError);
  size_t next = 0;
  if (args.Has("topic")) {
    a->topic = args.Str("topic");
  } else if (!pos.empty()) {
    a->topic = pos[next++];
  } else {
    return Usage("publish", "no TOPIC (give it first, or as -t TOPIC)");
  }
  if (pos.size() > next + 1) return Usage("publish", "unexpected argument '" + pos[next + 1] + "'");
  // Where the message comes from: exactly one source, or none (stdin lines).
  int sources = 0;
  if (pos.size() > next) {
    a->message = pos[next];
    ++sources;
  }
  if (args.Has("message")) {
    a->message = args.Str("message");
    ++sources;
  }
  if (args.Has("null-message")) {
    a->message = "";
    ++sources;
  }
  a->file = args.Str("file");
  sources += a->file.empty() ? 0 : 1;
  a->lines = args.Has("lines");
  a->whole_stdin = args.Has("stdin");
  sources += (a->lines ? 1 : 0) + (a->whole_stdin ? 1 : 0);
  if (sources > 1) {
    return Usage("publish", "give one message source: MESSAGE, -m, -f FILE, -s, -l or -n "
                            "(MESSAGE and --file conflict)");
  }
  if (args.Has("ts")) a->options.ts_ms = args.Int("ts");
  if (args.Has("id")) a->options.id = args.Str("id");
  (void)protocol::ParsePriority(args.Str("priority", "normal"), &a->options.priority);
  if (args.Has("ttl")) a->options.ttl_ms = args.DurationMs("ttl");
  if (args.Has("deliver-at") && args.Has("delay")) {
    return Usage("publish", "give --deliver-at or --delay, not both");
  }
  if (args.Has("deliver-at")) a->options.deliver_at_ms = args.Int("deliver-at");
  if (args.Has("delay")) a->options.delay_ms = args.DurationMs("delay");
  (void)protocol::ParseAckMode(args.Str("ack", "stored"), &a->options.ack);
  for (const std::string& h : args.All("header")) {
    size_t eq = h.find('=');
    if (eq == std::string::npos || eq == 0) {
      return Usage("publish", "option '--header': \"" + h + "\" is not KEY=VALUE");
    }
    a->options.headers.emplace_back(h.substr(0, eq), h.substr(eq + 1));
  }
  a->count = args.Int("count", 0);
  a->rate = args.Int("rate", 0);
  a->size = args.SizeBytes("size", 200);
  a->connections = args.Int("connections", 1);
  return 0;
}

void PrintResult(const cl::PublishResult& r) {
  if (!r.status.ok()) {
    std::fprintf(stderr, "edgespool: publish refused: %s\n", r.status.message().c_str());
    return;
  }
  if (r.receipt == cl::Receipt::kSent) {  // direct mode: no journal, no seq
    std::printf("sent id=%s\n", r.id.c_str());
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
  if (!a.options.id.empty()) return Usage("publish", "--id needs a single MESSAGE or --file");
  std::vector<std::future<cl::PublishResult>> pending;
  std::string line;
  uint64_t stored = 0, duplicates = 0;
  bool sent = false;  // direct mode
  int rc = kExitOk;
  auto settle = [&](std::future<cl::PublishResult>& f) {
    cl::PublishResult r = f.get();
    if (r.status.ok()) {
      sent = r.receipt == cl::Receipt::kSent;
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
  if (sent) {
    std::printf("sent %llu\n", static_cast<unsigned long long>(stored));
  } else {
    std::printf("stored %llu duplicates %llu\n", static_cast<unsigned long long>(stored),
                static_cast<unsigned long long>(duplicates));
  }
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
    auto p = ConnectTo(a.socket, window, io[static_cast<size_t>(c) % io.size()], a.direct);
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


std::string ReadAll(std::istream& in) {
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

int Publish(const Args& args) {
  PublishArgs a;
  if (int rc = ToPublishArgs(args, &a)) return rc;
  Status topic_ok = protocol::ValidateTopic(a.topic);
  if (!topic_ok.ok()) {
    std::fprintf(stderr, "edgespool: bad topic: %s\n", topic_ok.message().c_str());
    return kExitDataErr;
  }
  if (a.count > 0) return PublishLoad(a);
  bool from_stdin = a.lines || a.whole_stdin || (!a.message && a.file.empty());
  if (from_stdin && platform::IsTerminal(0)) {
    // Never a silent wait on a terminal: without a source asked for, it is
    // a usage error; with -l or -s, say what is expected.
    if (!a.lines && !a.whole_stdin) {
      return Usage("publish", "no message: give MESSAGE, -m MESSAGE, -f FILE, -n, or pipe "
                              "messages in (-l: one per line; -s: all of stdin as one)");
    }
    std::fprintf(stderr, "edgespool publish: reading %s from the terminal; end with Ctrl-D\n",
                 a.lines ? "messages, one per line," : "one message");
  }
  std::optional<std::string> payload = a.message;
  if (!a.file.empty()) {
    std::ifstream in(a.file, std::ios::binary);
    if (!in) {
      std::fprintf(stderr, "edgespool: cannot read %s\n", a.file.c_str());
      return kExitDataErr;
    }
    payload = ReadAll(in);
  }
  auto p = ConnectTo(a.socket, 256, nullptr, a.direct);
  if (!p.ok()) return ConnectExit(p.status());
  if (a.whole_stdin) payload = ReadAll(std::cin);
  if (payload) return PublishOne(**p, a, std::move(*payload));
  return PublishLines(**p, a);
}

int Query(const Args& args) {
  std::string socket = args.Str("socket", DefaultSocket()), id = args.Str("id");
  bool json = args.Has("json");
  std::optional<uint64_t> seq;
  if (!args.positionals().empty()) {
    int64_t n;
    const std::string& arg = args.positionals()[0];
    if (!ParseInt(arg, 1, protocol::kMaxReq, &n)) {
      return Usage("query", "\"" + arg + "\" is not a journal seq (a positive integer)");
    }
    seq = static_cast<uint64_t>(n);
  }
  if (seq.has_value() == !id.empty()) return Usage("query", "give a SEQ or --id ID (one of them)");
  auto p = ConnectTo(socket);  if (!p.ok()) return kExitUnavailable;
  cl::QueryInfo q = seq ? (*p)->Query(*seq).get() : (*p)->QueryById(id).get();
  if (!q.status.ok()) {
    std::fprintf(stderr, "edgespool: query failed: %s\n", q.status.message().c_str());
    return q.status.code() == Code::kInvalidArgument ? kExitDataErr : kExitUnavailable;
  }
  if (json) {
    std::string due;
    if (q.deliver_at_ms) due = ",\"deliver_at\":" + std::to_string(q.deliver_at_ms);
    std::printf("{\"seq\":%llu,\"state\":\"%s\",\"ts\":%lld,\"attempts\":%llu%s}\n",
                static_cast<unsigned long long>(q.seq), q.state.c_str(),
                static_cast<long long>(q.ts_ms), static_cast<unsigned long long>(q.attempts),
                due.c_str());
    return kExitOk;
  }
  std::printf("seq       %llu\nstate     %s\n", static_cast<unsigned long long>(q.seq),
              q.state.c_str());
  if (q.state != "unknown") {
    std::printf("topic     %s\nts        %lld\nattempts  %llu\n", q.topic.c_str(),
                static_cast<long long>(q.ts_ms), static_cast<unsigned long long>(q.attempts));
    if (q.sent_at_ms) std::printf("sent_at   %lld\n", static_cast<long long>(q.sent_at_ms));
    if (q.deliver_at_ms) {
      std::printf("deliver_at %lld\n", static_cast<long long>(q.deliver_at_ms));
    }
    if (!q.reason.empty()) std::printf("reason    %s\n", q.reason.c_str());
  }
  return kExitOk;
}

int AgentStatus(const Args& args) {
  std::string socket = args.Str("socket", DefaultSocket());
  bool json = args.Has("json");
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

constexpr OptionSpec kSocketOption =
    cli::Opt("socket", 0, ValueKind::kFile, "PATH",
             "The agent's socket (default: $EDGESPOOL_PRODUCER_SOCKET, then "
             "/run/edgespool/edgespool.sock).");
constexpr OptionSpec kJsonOption = cli::Flag("json", 0, "Print JSON.");

constexpr OptionSpec kPublishOptions[] = {
    cli::Opt("topic", 't', ValueKind::kString, "TOPIC", "The topic, instead of the first argument."),
    cli::Opt("message", 'm', ValueKind::kString, "MESSAGE", "The message, instead of the second argument."),
    cli::Opt("file", 'f', ValueKind::kFile, "FILE", "Send the content of FILE as one message."),
    cli::Flag("lines", 'l',
              "Send each line of stdin as a message (what happens anyway when no message is "
              "given and stdin is not a terminal)."),
    cli::Flag("stdin", 's', "Send all of stdin as one message."),
    cli::Flag("null-message", 'n', "Send an empty message."),
    cli::Opt("id", 0, ValueKind::kString, "ID",
             "Idempotency id: a publish whose id the agent has seen within store.dedupe_window "
             "is answered as a duplicate (default: generated)."),
    cli::Opt("ts", 0, ValueKind::kInt, "MS",
             "The message's original time, ms since the epoch (default: when the agent "
             "receives it).")
        .Range(0, protocol::kMaxTsMs),
    cli::Opt("priority", 0, ValueKind::kChoice, "PRIORITY", "Upload priority (default normal).")
        .Choices("high|normal|low"),
    cli::Opt("ttl", 0, ValueKind::kDuration, "DURATION",
             "Expire the message if not uploaded within DURATION (10m, 1h; default: its "
             "route's ttl, else never).")
        .Range(1, protocol::kMaxTtlMs),
    cli::Opt("deliver-at", 0, ValueKind::kInt, "MS",
             "Scheduled delivery: store now, upload not before this time, ms since the epoch "
             "(in the past: at once). Acked as stored.")
        .Range(0, protocol::kMaxTsMs),
    cli::Opt("delay", 0, ValueKind::kDuration, "DURATION",
             "Scheduled delivery: store now, upload not before DURATION from now (30s, 1h).")
        .Range(0, protocol::kMaxTtlMs),
    cli::Opt("header", 0, ValueKind::kString, "KEY=VALUE",
             "A header, sent upstream as an MQTT 5 user property. A 'traceparent' header must "
             "be a W3C traceparent (00-TRACEID-PARENTID-FLAGS).")
        .Repeatable(),
    cli::Opt("ack", 0, ValueKind::kChoice, "WHEN",
             "Wait until the message is stored (the default), delivered (the broker "
             "acknowledged it), or not at all (none).")
        .Choices("stored|delivered|none"),
    cli::Opt("count", 0, ValueKind::kInt, "N",
             "Load generator: publish N messages of --size bytes and print the throughput and "
             "the ack latency percentiles.")
        .Range(1, INT64_MAX),
    cli::Opt("rate", 0, ValueKind::kInt, "MSGS",
             "Load generator: offer MSGS messages per second (default: as fast as acked).")
        .Range(0, INT64_MAX),
    cli::Opt("size", 0, ValueKind::kSize, "SIZE", "Load generator: payload size (default 200).")
        .Range(0, 64 << 20),
    cli::Opt("connections", 0, ValueKind::kInt, "N",
             "Load generator: connections to spread the messages over (default 1).")
        .Range(1, 100000),
    cli::Opt("socket", 0, ValueKind::kFile, "PATH|URL",
             "The agent's socket (default: $EDGESPOOL_PRODUCER_SOCKET, then "
             "/run/edgespool/edgespool.sock); an mqtt:// or mqtts:// URL there is direct mode, "
             "as with --url."),
    cli::Opt("url", 0, ValueKind::kString, "URL",
             "Direct mode: publish to the broker at mqtt://HOST[:1883] or mqtts://HOST[:8883] "
             "with no agent (QoS 1; prints \"sent id=ID\" on its PUBACK; nothing is stored, "
             "see docs/direct-mode.md)."),
    cli::Opt("cafile", 0, ValueKind::kFile, "FILE",
             "Direct mode, mqtts://: the CA bundle (PEM) to verify the broker with (default: "
             "the system's)."),
    cli::Opt("cert", 0, ValueKind::kFile, "FILE",
             "Direct mode, mqtts://: client certificate (PEM)."),
    cli::Opt("key", 0, ValueKind::kFile, "FILE", "Direct mode, mqtts://: its private key (PEM)."),
    cli::Flag("insecure", 0, "Direct mode, mqtts://: do not verify the broker's certificate."),
    cli::Opt("username", 0, ValueKind::kString, "NAME", "Direct mode: MQTT user name."),
    cli::Opt("password-file", 0, ValueKind::kFile, "FILE",
             "Direct mode: the MQTT password, the first line of FILE."),
    cli::Opt("client-id", 0, ValueKind::kString, "ID",
             "Direct mode: MQTT client id (default: es-direct- and random hex)."),
};

constexpr ExitCodeDoc kPublishExits[] = {
    {0, "stored (or delivered, with --ack delivered); direct mode: sent (the broker's PUBACK)"},
    {64, "usage error"},
    {65, "the agent refused the message (bad topic, too large, forbidden), or FILE cannot be "
         "read"},
    {69, "the agent (direct mode: the broker) is not reachable, busy, full or rate limiting; or "
         "not delivered"},
    {70, "internal error in the agent"},
};

constexpr ExitCodeDoc kQueryExits[] = {
    {0, "the message's state was printed (including unknown)"},
    {64, "usage error"},
    {65, "the agent refused the query"},
    {69, "the agent is not reachable"},
};

constexpr ExitCodeDoc kStatusExits[] = {
    {0, "the status was printed"},
    {64, "usage error"},
    {69, "the agent is not reachable"},
};

constexpr OptionSpec kQueryOptions[] = {
    cli::Opt("id", 0, ValueKind::kString, "ID", "Look the message up by its idempotency id."),
    kJsonOption,
    kSocketOption,
};

constexpr OptionSpec kStatusOptions[] = {kJsonOption, kSocketOption};

}  // namespace

const cli::CommandSpec kPublishCommand = cli::Command(
    "publish", "[options] TOPIC [MESSAGE]", "hand messages to the agent",
    "Hands a message to the agent and waits until it is durable in the journal (the agent's "
    "acknowledgement): from MESSAGE or -m, -f FILE, all of stdin (-s), nothing (-n), or one "
    "message per line of stdin (-l, and the default when stdin is not a terminal). Prints "
    "\"stored seq=N id=ID uplink=STATE\".\n\n"
    "Given a broker's URL (--url, or an mqtt:// or mqtts:// --socket or "
    "$EDGESPOOL_PRODUCER_SOCKET) it is direct mode: the message goes to that broker with no "
    "agent, as the agent's message mode sends it, and \"sent id=ID\" is printed on its PUBACK. "
    "Nothing is stored: with the broker down it fails (69) instead of waiting.\n\n"
    "With --count it is a load generator instead: N messages of --size bytes at --rate over "
    "--connections, then the throughput and the ack latency p50, p99 and max.",
    kPublishOptions, kPublishExits, Publish, 0, 2);

const cli::CommandSpec kQueryCommand = cli::Command(
    "query", "[--json] SEQ | --id ID", "what became of a message",
    "Prints a message's state: pending, scheduled (with deliver_at, when it falls due), sent, "
    "dead (with the reason), expired, or unknown "
    "(never stored, or deleted after store.sent_retention).",
    kQueryOptions, kQueryExits, Query, 0, 1);

const cli::CommandSpec kStatusCommand = cli::Command(
    "status", "[--json]", "the agent's status",
    "Prints the agent's status document (the same as the retained status topic), flattened "
    "to one key per line, or as it is with --json.",
    kStatusOptions, kStatusExits, AgentStatus, 0, 0);

int PublishCommand(int argc, char** argv) { return cli::RunCommand(kPublishCommand, argc, argv); }
int QueryCommand(int argc, char** argv) { return cli::RunCommand(kQueryCommand, argc, argv); }
int StatusCommand(int argc, char** argv) { return cli::RunCommand(kStatusCommand, argc, argv); }

}  // namespace edgespool::agent
