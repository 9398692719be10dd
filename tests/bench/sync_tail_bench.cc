// sync_tail_bench: what serving fresh commits from memory saves, measured in
// one run against reading every row back from the journal.
//
// Live traffic at a steady offered rate (appends in small groups every
// millisecond, as producers would make them) through a real journal
// (durability normal) and the sync worker into an uplink port that acks
// every publish on the next loop turn: no network, so what differs is the
// worker's and the journal's own work. Prints, per mode, the end-to-end rate,
// CPU microseconds per message (the whole process: loop + store thread) and
// how many rows were read back; then the ratios.
//
// Usage: sync_tail_bench [messages=200000] [per_ms=100]
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "platform/log.h"
#include "platform/loop.h"
#include "store/journal.h"
#include "sync/sync_worker.h"
#include "tests/support/test_env.h"

namespace edgespool::bench {
namespace {

// Acks everything published, once per loop turn.
class InstantUplink : public sync::UplinkPort {
 public:
  explicit InstantUplink(platform::Loop& loop) : check_(loop) {
    check_.Start([this] { AnswerAll(); });
  }
  void SetListener(Listener l) override { listener_ = std::move(l); }
  bool connected() const override { return true; }
  size_t window_free() const override {
    return pending_.size() < 1000 ? 1000 - pending_.size() : 0;
  }
  uint32_t max_packet_size() const override { return 0; }
  bool properties_supported() const override { return true; }
  uint64_t Publish(sync::OutboundPublish p) override {
    wire_ += p.payload.size() + p.topic.size();
    pending_.push_back(++next_);
    return next_;
  }
  uint64_t wire_bytes() const override { return wire_; }
  void Connect() {
    if (listener_.on_connected) listener_.on_connected();
  }

 private:
  void AnswerAll() {
    std::vector<uint64_t> done;
    done.swap(pending_);
    for (uint64_t t : done) listener_.on_publish_result(t, sync::PublishResult{});
    if (!done.empty() && listener_.on_writable) listener_.on_writable();
  }
  platform::CheckHandle check_;
  Listener listener_;
  std::vector<uint64_t> pending_;
  uint64_t next_ = 0, wire_ = 0;
};

double CpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

struct Figures {
  double msgs_per_s = 0;
  double cpu_us_per_msg = 0;
  uint64_t read_back = 0;
  uint64_t from_memory = 0;
};

Figures Run(bool from_memory, int messages, int per_ms) {
  testing::TempDir dir;
  auto loop = std::move(platform::Loop::Create().value());
  store::JournalOptions jo;
  jo.path = dir.File("journal.db");
  jo.durability = store::Durability::kNormal;
  jo.max_bytes = 1ull << 30;
  auto journal = std::move(store::Journal::Open(*loop, jo).value());
  InstantUplink uplink(*loop);
  sync::SyncOptions so;
  so.serve_from_memory = from_memory;
  sync::SyncWorker worker(*loop, *journal, uplink, so, platform::SystemClock::Get());
  worker.Start();
  uplink.Connect();

  std::string payload(200, 'x');
  int appended = 0;
  platform::TimerHandle producer(*loop);
  producer.Start(1, 1, [&] {
    for (int i = 0; i < per_ms && appended < messages; ++i, ++appended) {
      store::Message m;
      m.topic = "sensors/t" + std::to_string(appended % 4);
      m.ts_ms = 1732300000000 + appended;
      m.payload = payload;
      journal->Append(std::move(m), [](Result<store::AppendOutcome> r) {
        if (!r.ok()) std::fprintf(stderr, "append: %s\n", r.status().ToString().c_str());
      });
    }
    if (appended >= messages) producer.Stop();
  });
  auto t0 = std::chrono::steady_clock::now();
  double cpu0 = CpuSeconds();
  platform::TimerHandle watch(*loop);
  auto deadline = t0 + std::chrono::seconds(120);
  watch.Start(5, 5, [&] {
    bool done =
        worker.stats().messages_sent_total >= static_cast<uint64_t>(messages) && worker.idle();
    if (done || std::chrono::steady_clock::now() > deadline) loop->Stop();
  });
  loop->Run();
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  Figures f;
  uint64_t sent = worker.stats().messages_sent_total;
  f.msgs_per_s = static_cast<double>(sent) / secs;
  f.cpu_us_per_msg = (CpuSeconds() - cpu0) * 1e6 / static_cast<double>(std::max<uint64_t>(1, sent));
  f.read_back = worker.stats().fetched_messages_total;
  f.from_memory = worker.stats().tail_messages_total;
  if (sent < static_cast<uint64_t>(messages)) {
    std::fprintf(stderr, "only %llu of %d sent within 120 s\n",
                 static_cast<unsigned long long>(sent), messages);
  }
  return f;
}

int Main(int argc, char** argv) {
  int messages = argc > 1 ? std::atoi(argv[1]) : 200000;
  int per_ms = argc > 2 ? std::atoi(argv[2]) : 100;
  platform::Logger::SetLevel(platform::LogLevel::kWarn);
  std::printf("sync_tail_bench: %d messages of 200 B offered at %d per ms\n", messages, per_ms);
  // Alternate, twice each, so drift in the machine's load hits both modes.
  Figures mem{}, read{};
  for (int round = 0; round < 2; ++round) {
    Figures r = Run(false, messages, per_ms);
    Figures m = Run(true, messages, per_ms);
    std::printf("  round %d  read back: %.0f msg/s, %.2f us CPU/msg (%llu read back)\n", round + 1,
                r.msgs_per_s, r.cpu_us_per_msg, static_cast<unsigned long long>(r.read_back));
    std::printf(
        "  round %d  from memory: %.0f msg/s, %.2f us CPU/msg (%llu from memory, %llu read back)\n",
        round + 1, m.msgs_per_s, m.cpu_us_per_msg, static_cast<unsigned long long>(m.from_memory),
        static_cast<unsigned long long>(m.read_back));
    mem.msgs_per_s += m.msgs_per_s / 2;
    mem.cpu_us_per_msg += m.cpu_us_per_msg / 2;
    read.msgs_per_s += r.msgs_per_s / 2;
    read.cpu_us_per_msg += r.cpu_us_per_msg / 2;
  }
  std::printf("from memory vs read back: rate %.2fx, CPU per message %.2fx\n",
              mem.msgs_per_s / read.msgs_per_s, mem.cpu_us_per_msg / read.cpu_us_per_msg);
  return 0;
}

}  // namespace
}  // namespace edgespool::bench

int main(int argc, char** argv) { return edgespool::bench::Main(argc, argv); }
