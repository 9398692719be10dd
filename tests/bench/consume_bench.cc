// consume_bench: what `edgespool consume` costs beyond decoding, in-process
// on one core (no broker: the MQTT client's own rate is uplink_bench's).
//
// 1. Throughput on batch frames. A fleet's frames (--nodes, 100 records of
//    ~200-byte JSON telemetry each, zstd, as sync.mode = "batch" makes them),
//    1% of them delivered twice, interleaved across nodes in time order.
//      (a) decode only: MessagesFromFrame (sync/batch's decoder), the floor;
//      (b) decode + dedupe + order: (a) into an OrderingBuffer, each node's
//          status heartbeat after each of its frames, released in ts order.
//    Rounds alternate a and b; printed: msg/s (median), b/a. Goal: b >= 200k.
// 2. The watermark's added latency at --fleet nodes (1,000): a simulated
//    fleet on a fake clock, each node sending --rate msg/s stamped with its
//    clock, 20-40 ms of network, and a status (watermark = now - 500 ms
//    commit slack) every status.watermark_interval (1 s and 200 ms). Printed:
//    arrival-to-release p50/p99/max (what the watermark adds: without it a
//    message goes out on arrival), as a ratio of interval + slack; and the
//    real CPU the buffer spent per simulated second (its share of a core).
//
//   consume_bench [--messages N] [--nodes N] [--rounds R] [--fleet N] [--rate R]
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <queue>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "central/ordering_buffer.h"
#include "central/uplink_parse.h"
#include "sync/batch/batch_frame.h"

namespace {

using edgespool::central::Message;
using edgespool::central::OrderingBuffer;
using edgespool::central::OrderingOptions;

double CpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

struct Frame {
  std::string node;
  std::string bytes;
  int64_t last_ts;  // the node's watermark after this frame
};

std::vector<Frame> MakeFrames(size_t messages, int nodes) {
  std::vector<Frame> frames;
  std::mt19937_64 rng(1);
  const size_t kPerFrame = 100;
  size_t per_node = messages / static_cast<size_t>(nodes) / kPerFrame;
  std::vector<edgespool::batch::FrameEncoder*> enc;
  for (int n = 0; n < nodes; ++n) {
    enc.push_back(new edgespool::batch::FrameEncoder("gw-" + std::to_string(n),
                                                     edgespool::batch::Codec::kZstd, 1));
  }
  std::vector<uint64_t> seq(static_cast<size_t>(nodes), 1);
  int64_t t0 = 1765000000000;
  char payload[256];
  for (size_t f = 0; f < per_node; ++f) {
    for (int n = 0; n < nodes; ++n) {
      int64_t ts = 0;
      for (size_t r = 0; r < kPerFrame; ++r) {
        ts = t0 + static_cast<int64_t>((f * kPerFrame + r) * 2) + n % 7;
        int len = std::snprintf(payload, sizeof payload,
                                "{\"sensor\":\"temp-%d\",\"ts\":%lld,\"temp_c\":%.2f,\"hum\":%d,"
                                "\"site\":\"plant-north\",\"line\":%d,\"status\":\"ok\","
                                "\"fw\":\"2.4.1\",\"seq\":%llu,\"pad\":\"xxxxxxxxxxxxxxxxxxxx\"}",
                                static_cast<int>(r % 8), static_cast<long long>(ts),
                                20.0 + static_cast<double>(rng() % 1000) / 100,
                                static_cast<int>(rng() % 100), n % 4,
                                static_cast<unsigned long long>(seq[n]));
        enc[n]->Add(seq[n]++, ts, "sensors/temp-" + std::to_string(r % 8), "", {},
                    std::string_view(payload, static_cast<size_t>(len)));
      }
      auto bytes = enc[n]->Finish();
      if (!bytes.ok()) std::abort();
      frames.push_back({"gw-" + std::to_string(n), std::move(*bytes), ts + 1});
      if (rng() % 100 == 0) frames.push_back(frames.back());  // a redelivery
    }
  }
  for (auto* e : enc) delete e;
  return frames;
}

double DecodeOnly(const std::vector<Frame>& frames, size_t* count) {
  std::vector<Message> out;
  size_t n = 0;
  auto start = std::chrono::steady_clock::now();
  for (const Frame& f : frames) {
    out.clear();
    if (!edgespool::central::MessagesFromFrame(f.bytes, &out).ok()) std::abort();
    n += out.size();
  }
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  *count = n;
  return static_cast<double>(n) / s;
}

double DecodeDedupeOrder(const std::vector<Frame>& frames, size_t* released, size_t* dups) {
  OrderingOptions o;
  o.max_wait_ms = 30000;
  OrderingBuffer b(o);
  std::vector<Message> in, out;
  size_t n = 0, got = 0;
  int64_t now = 0;
  auto start = std::chrono::steady_clock::now();
  for (const Frame& f : frames) {
    in.clear();
    if (!edgespool::central::MessagesFromFrame(f.bytes, &in).ok()) std::abort();
    n += in.size();
    for (Message& m : in) b.Add(std::move(m), now, &out);
    b.OnStatus(f.node, true, f.last_ts, now);
    b.Advance(++now, &out);
    got += out.size();
    out.clear();
  }
  b.Flush(&out);
  got += out.size();
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  *released = got;
  *dups = b.stats().duplicates;
  return static_cast<double>(n) / s;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

void Throughput(size_t messages, int nodes, int rounds) {
  auto frames = MakeFrames(messages, nodes);
  size_t bytes = 0;
  for (const auto& f : frames) bytes += f.bytes.size();
  std::printf("1. batch frames: %zu frames (%d nodes, 100 records, 1%% redelivered), %.1f MB\n",
              frames.size(), nodes, static_cast<double>(bytes) / 1e6);
  std::vector<double> a, b;
  size_t count = 0, released = 0, dups = 0;
  for (int r = 0; r < rounds; ++r) {
    a.push_back(DecodeOnly(frames, &count));
    b.push_back(DecodeDedupeOrder(frames, &released, &dups));
  }
  double ma = Median(a), mb = Median(b);
  std::printf("   (a) decode only                 %10.0f msg/s  (median of %d)\n", ma, rounds);
  std::printf("   (b) decode + dedupe + order     %10.0f msg/s  = %.2f of (a); goal >= 200k: %s\n",
              mb, mb / ma, mb >= 200000 ? "met" : "NOT met");
  std::printf("       decoded %zu, released %zu once each, duplicates dropped %zu\n", count,
              released, dups);
}

struct Pending {
  int64_t at;  // consumer time of arrival
  bool status;
  uint32_t node;
  int64_t ts;  // message ts or watermark
  uint64_t seq;
  bool operator>(const Pending& o) const { return at > o.at; }
};

void WatermarkLatency(int fleet, int rate, int64_t interval_ms, int64_t seconds) {
  OrderingOptions o;
  o.max_wait_ms = 30000;
  OrderingBuffer b(o);
  std::mt19937_64 rng(7);
  std::vector<std::string> names;
  for (int n = 0; n < fleet; ++n) names.push_back("gw-" + std::to_string(n));
  std::priority_queue<Pending, std::vector<Pending>, std::greater<Pending>> wire;
  std::vector<int64_t> phase(static_cast<size_t>(fleet)), next_msg(static_cast<size_t>(fleet));
  std::vector<uint64_t> seq(static_cast<size_t>(fleet), 1);
  for (int n = 0; n < fleet; ++n) {
    phase[n] = static_cast<int64_t>(rng() % static_cast<uint64_t>(interval_ms));
    next_msg[n] = static_cast<int64_t>(rng() % 1000);
  }
  const int64_t kSlack = 500, kEnd = seconds * 1000;
  std::vector<int64_t> lat;
  std::vector<Message> out;
  std::unordered_map<uint64_t, int64_t> arrived;  // node << 32 | seq -> arrival
  double cpu = 0;
  int64_t msg_gap = 1000 / rate;
  for (int64_t now = 0; now < kEnd; ++now) {
    // Nodes: messages stamped now, statuses on their interval, 20-40 ms away.
    for (int n = 0; n < fleet; ++n) {
      int64_t delay = 20 + static_cast<int64_t>(rng() % 21);
      while (next_msg[n] <= now) {
        wire.push({now + delay, false, static_cast<uint32_t>(n), now, seq[n]++});
        next_msg[n] += msg_gap;
      }
      if ((now - phase[n]) % interval_ms == 0 && now >= phase[n]) {
        wire.push({now + delay + 1, true, static_cast<uint32_t>(n), now - kSlack, 0});
      }
    }
    double c0 = CpuSeconds();
    while (!wire.empty() && wire.top().at <= now) {
      Pending p = wire.top();
      wire.pop();
      if (p.status) {
        b.OnStatus(names[p.node], true, p.ts, now);
      } else {
        Message m;
        m.node = names[p.node];
        m.seq = p.seq;
        m.ts_ms = p.ts;
        m.topic = "t" + std::to_string(p.node % 16);
        m.payload = "x";
        if (now > 5000) arrived[static_cast<uint64_t>(p.node) << 32 | p.seq] = now;
        b.Add(std::move(m), now, &out);
      }
    }
    b.Advance(now, &out);
    cpu += CpuSeconds() - c0;
    for (const Message& m : out) {
      auto it = arrived.find(static_cast<uint64_t>(std::atoi(m.node.c_str() + 3)) << 32 | m.seq);
      if (it != arrived.end()) {
        lat.push_back(now - it->second);
        arrived.erase(it);
      }
    }
    out.clear();
  }
  std::sort(lat.begin(), lat.end());
  auto pct = [&](double p) {
    return lat.empty() ? 0 : lat[static_cast<size_t>(p * (lat.size() - 1))];
  };
  double base = static_cast<double>(interval_ms + kSlack);
  std::printf(
      "   interval %4lld ms: p50 %5lld ms, p99 %5lld ms, max %5lld ms  (p50 = %.2f, p99 = %.2f of "
      "interval + slack); late %llu, forced %llu; CPU %.3f s per simulated s (%.1f%% of a core) "
      "for %d msg/s + %lld statuses/s\n",
      static_cast<long long>(interval_ms), static_cast<long long>(pct(0.5)),
      static_cast<long long>(pct(0.99)), static_cast<long long>(lat.empty() ? 0 : lat.back()),
      static_cast<double>(pct(0.5)) / base, static_cast<double>(pct(0.99)) / base,
      static_cast<unsigned long long>(b.stats().late),
      static_cast<unsigned long long>(b.stats().forced), cpu / static_cast<double>(seconds),
      100 * cpu / static_cast<double>(seconds), fleet * rate,
      static_cast<long long>(fleet * 1000 / interval_ms));
}

}  // namespace

int main(int argc, char** argv) {
  size_t messages = 1000000;
  int nodes = 10, rounds = 5, fleet = 1000, rate = 10;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--messages")) messages = std::strtoull(argv[i + 1], nullptr, 10);
    if (!std::strcmp(argv[i], "--nodes")) nodes = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--rounds")) rounds = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--fleet")) fleet = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--rate")) rate = std::atoi(argv[i + 1]);
  }
  Throughput(messages, nodes, rounds);
  std::printf(
      "2. watermark at %d nodes, %d msg/s each, 20-40 ms network, 500 ms commit slack "
      "(arrival to release, fake clock, 30 simulated s)\n",
      fleet, rate);
  for (int64_t interval : {1000, 200}) WatermarkLatency(fleet, rate, interval, 30);
  return 0;
}
