// encrypt_bench: batch-mode throughput with message-level encryption on vs
// off, in one run (docs/encryption.md; goal: on >= 0.8x off).
//
// Each round runs both configurations, alternating which goes first: a
// fresh real mosquitto and a real agent (sync.mode = "batch", durability
// normal, one [[route]] with or without encrypt = "aes-256-gcm"), one SDK
// producer publishing N telemetry messages (~200 B JSON) flat out with 1024
// in flight. The clock runs from the first publish until the broker has
// acknowledged the last message (its query state is "sent"): producer ->
// journal (sealed before the append when on) -> batch frames -> PUBACK.
// Also printed: the agent's CPU per message and the batch bytes on the wire
// per message (a broker-side subscriber, started after the timed part, sums
// the frames of 2000 more): ciphertext does not compress, so encrypted
// batches are larger.
//
// Usage: encrypt_bench [messages=100000] [rounds=4]
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "agent/client/producer.h"
#include "agent/encryption.h"
#include "sync/batch/batch_frame.h"
#include "tests/support/e2e.h"
#include "tests/support/test_env.h"

namespace edgespool::bench {
namespace {

using Clock = std::chrono::steady_clock;
using testing::AgentProcess;
using testing::Mosquitto;
using testing::TempDir;

// utime + stime of a process, seconds.
double CpuSeconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t close = s.rfind(')');
  if (close == std::string::npos) return 0;
  std::vector<std::string> fields;
  size_t pos = close + 2;
  while (pos < s.size()) {
    size_t sp = s.find(' ', pos);
    fields.push_back(s.substr(pos, sp - pos));
    if (sp == std::string::npos) break;
    pos = sp + 1;
  }
  if (fields.size() < 13) return 0;
  return static_cast<double>(std::stoull(fields[11]) + std::stoull(fields[12])) /
         static_cast<double>(sysconf(_SC_CLK_TCK));
}

struct Result {
  double msg_per_s = 0;
  double cpu_us_per_msg = 0;
  double wire_bytes_per_msg = 0;
  double stored_s = 0;  // until the last publish was acked as stored
  bool ok = false;
};

Result RunOnce(bool encrypt, int n) {
  Result res;
  TempDir dir;
  Mosquitto broker(dir.path());
  if (!broker.Start()) {
    std::fprintf(stderr, "mosquitto: %s\n", broker.log().c_str());
    return res;
  }
  std::string keys = dir.File("keys");
  testing::WriteFile(keys, "k1 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n");
  ::chmod(keys.c_str(), 0600);
  std::multimap<std::string, std::string> settings = {
      {"sync", "mode = \"batch\""},
      {"encryption", "key_file = \"" + keys + "\""},
      {"route",
       std::string("match = \"#\"\nencrypt = \"") + (encrypt ? "aes-256-gcm" : "none") + "\""},
  };
  AgentProcess agent(dir.path(), broker.url(), settings);
  if (!agent.Start()) {
    std::fprintf(stderr, "agent: %s\n", agent.log().c_str());
    return res;
  }
  client::ProducerOptions o;
  o.socket_path = agent.socket();
  o.window = 1024;
  o.max_queued = 4096;
  auto p = client::Producer::Connect(o);
  if (!p.ok()) return res;
  std::atomic<int> failed{0}, acked{0};
  double cpu0 = CpuSeconds(agent.pid());
  auto t0 = Clock::now();
  for (int i = 0; i < n; ++i) {
    client::PublishOptions po;
    po.id = "b" + std::to_string(i);
    po.ts_ms = 1732300000000 + i;
    (*p)->Publish("sensors/t" + std::to_string(i % 16),
                  testing::TelemetryPayload(po.id, *po.ts_ms, i), po,
                  [&failed, &acked](client::PublishResult r) {
                    if (!r.status.ok()) failed.fetch_add(1);
                    acked.fetch_add(1);
                  });
  }
  while (acked.load() < n) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  res.stored_s = std::chrono::duration<double>(Clock::now() - t0).count();
  std::string last = "b" + std::to_string(n - 1);
  auto deadline = Clock::now() + std::chrono::seconds(120);
  while ((*p)->QueryById(last).get().state != "sent") {
    if (Clock::now() > deadline) {
      std::fprintf(stderr, "timed out waiting for %s\n", last.c_str());
      return res;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  double cpu = CpuSeconds(agent.pid()) - cpu0;
  // The wire bytes, measured apart from the timed part (a subscriber writing
  // every frame out would compete for the same two cores): 2000 more
  // messages, at the same batch sizes.
  testing::Subscriber sub(dir.path(), broker.port(), "edgespool/+/batch", "bench-sub");
  if (!sub.Start()) return res;
  const int extra = 2000;
  for (int i = n; i < n + extra; ++i) {
    client::PublishOptions po;
    po.id = "b" + std::to_string(i);
    po.ts_ms = 1732300000000 + i;
    (*p)->Publish("sensors/t" + std::to_string(i % 16),
                  testing::TelemetryPayload(po.id, *po.ts_ms, i), po, [](client::PublishResult) {});
  }
  std::string extra_last = "b" + std::to_string(n + extra - 1);
  while ((*p)->QueryById(extra_last).get().state != "sent") {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  // Every frame reached the subscriber? Sum the bytes of what arrived.
  size_t wire = 0, records = 0;
  for (int tries = 0; tries < 200 && records < extra; ++tries) {
    wire = 0;
    records = 0;
    for (const auto& m : sub.Read()) {
      wire += m.payload.size();
      auto f = batch::DecodeFrame(m.payload);
      if (f.ok()) records += f->records.size();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  res.ok = failed.load() == 0;
  res.msg_per_s = n / secs;
  res.cpu_us_per_msg = cpu * 1e6 / n;
  res.wire_bytes_per_msg = records ? static_cast<double>(wire) / records : 0;
  p->reset();
  agent.Stop();
  return res;
}

// The sealing step alone (agent/encryption.h), per message, on this thread.
double SealMicros(int n) {
  TempDir dir;
  std::string keys = dir.File("keys");
  testing::WriteFile(keys, "k1 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n");
  ::chmod(keys.c_str(), 0600);
  auto sealer = agent::MessageSealer::Open(keys, dir.File("nonce"), "node-1");
  if (!sealer.ok()) return -1;
  store::Message m;
  m.topic = "sensors/t1";
  m.msg_id = "b1";
  m.ts_ms = 1732300000000;
  std::string payload = testing::TelemetryPayload("b1", m.ts_ms, 1);
  auto t0 = Clock::now();
  for (int i = 0; i < n; ++i) {
    m.payload = payload;
    m.headers.clear();
    if (!(*sealer)->Seal(m).ok()) return -1;
  }
  return std::chrono::duration<double, std::micro>(Clock::now() - t0).count() / n;
}

}  // namespace
}  // namespace edgespool::bench

int main(int argc, char** argv) {
  using namespace edgespool::bench;
  int n = argc > 1 ? std::atoi(argv[1]) : 100000;
  int rounds = argc > 2 ? std::atoi(argv[2]) : 4;
  std::printf("encrypt_bench: batch mode, %d messages of ~200 B per run, %d rounds\n", n, rounds);
  std::printf("%-6s %-4s %12s %14s %16s %12s\n", "round", "enc", "msg/s", "agent CPU us/msg",
              "wire B/msg", "stored msg/s");
  std::printf("sealing alone (MessageSealer::Seal, ~200 B payload): %.2f us per message\n",
              SealMicros(200000));
  std::vector<double> ratios, cpu_ratios;
  for (int r = 0; r < rounds; ++r) {
    Result off, on;
    for (int k = 0; k < 2; ++k) {
      bool enc = (k == 0) == (r % 2 == 1);  // alternate which goes first
      Result x = RunOnce(enc, n);
      std::printf("%-6d %-4s %12.0f %14.2f %16.1f %12.0f%s\n", r + 1, enc ? "on" : "off",
                  x.msg_per_s, x.cpu_us_per_msg, x.wire_bytes_per_msg,
                  x.stored_s > 0 ? n / x.stored_s : 0, x.ok ? "" : "  (FAILED)");
      std::fflush(stdout);
      (enc ? on : off) = x;
    }
    if (off.ok && on.ok) {
      ratios.push_back(on.msg_per_s / off.msg_per_s);
      cpu_ratios.push_back(off.cpu_us_per_msg / on.cpu_us_per_msg);
    }
    std::printf("round %d: encrypted / plain throughput = %.2fx (CPU per message %.2fx)\n", r + 1,
                on.msg_per_s / off.msg_per_s, on.cpu_us_per_msg / off.cpu_us_per_msg);
  }
  if (ratios.empty()) return 1;
  // The machine is shared: a round's wall-clock ratio moves with whatever
  // else runs. The median over rounds, and the agent's own CPU per message
  // (the rate it reaches when CPU-bound), are the figures to read.
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
  };
  double m = median(ratios), c = median(cpu_ratios);
  std::printf(
      "throughput on/off: median %.2fx over %zu rounds (range %.2f-%.2fx); "
      "by the agent's CPU per message: median %.2fx (goal >= 0.8x)\n",
      m, ratios.size(), *std::min_element(ratios.begin(), ratios.end()),
      *std::max_element(ratios.begin(), ratios.end()), c);
  return 0;
}
