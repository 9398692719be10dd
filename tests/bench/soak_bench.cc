// The soak of issue 19 from the command line (tests/support/soak.h): the
// hour of tests/integration/soak_slow_test.cc, or any other length for
// development, with the fault schedule scaled to it unless given.
//
//   soak_bench [--duration 1h] [--rate 2000] [--producers 2]
//              [--broker-restart 30s] [--agent-kill 5m] [--sample 60s]
//              [--loss 0.01] [--cap 64MiB] [--allow-no-loss]
//
// Durations: 1500ms, 90s, 2m, 1h (plain numbers are seconds). Without
// --agent-kill/--broker-restart/--sample the schedule is scaled from the
// issue's hour: a kill every duration/12, a broker restart every 30 s (or a
// quarter of a shorter run), a row every duration/60 (at least 5 s).
// Exit status 0 when lost = 0, unexpected = 0, RSS and fds flat and the
// journal within its cap; 1 otherwise; 77 when skipped (no namespace/iptables
// and no --allow-no-loss).
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "tests/support/soak.h"

namespace edgespool::bench {
namespace {

using edgespool::testing::ParseDurationMs;

int Usage(const char* argv0) {
  std::fprintf(stderr,
               "usage: %s [--duration D] [--rate N] [--producers N] [--broker-restart D] "
               "[--agent-kill D] [--sample D] [--loss P] [--cap BYTES|NMiB] [--allow-no-loss]\n",
               argv0);
  return 2;
}

int Main(int argc, char** argv) {
  int64_t duration = 3600 * 1000;
  int64_t broker = -1, kill = -1, sample = -1;
  int rate = 2000, producers = 2;
  double loss = 0.01;
  uint64_t cap = 0;
  bool allow_no_loss = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    auto dur = [&](int64_t* out) {
      *out = ParseDurationMs(value());
      return *out > 0;
    };
    bool ok = true;
    if (a == "--duration") {
      ok = dur(&duration);
    } else if (a == "--broker-restart") {
      ok = dur(&broker);
    } else if (a == "--agent-kill") {
      ok = dur(&kill);
    } else if (a == "--sample") {
      ok = dur(&sample);
    } else if (a == "--rate") {
      rate = std::atoi(value().c_str());
      ok = rate > 0;
    } else if (a == "--producers") {
      producers = std::atoi(value().c_str());
      ok = producers > 0;
    } else if (a == "--loss") {
      loss = std::atof(value().c_str());
      ok = loss >= 0 && loss < 1;
    } else if (a == "--cap") {
      std::string v = value();
      char* end = nullptr;
      cap = std::strtoull(v.c_str(), &end, 10);
      if (std::strcmp(end, "MiB") == 0)
        cap <<= 20;
      else if (std::strcmp(end, "KiB") == 0)
        cap <<= 10;
      else
        ok = *end == '\0';
      ok = ok && cap > 0;
    } else if (a == "--allow-no-loss") {
      allow_no_loss = true;
    } else {
      return Usage(argv[0]);
    }
    if (!ok) return Usage(argv[0]);
  }
  auto o = edgespool::testing::ScaledSoakOptions(duration);
  if (broker > 0) o.broker_restart_every_ms = broker;
  if (kill > 0) o.agent_kill_every_ms = kill;
  if (sample > 0) o.sample_every_ms = sample;
  o.rate = rate;
  o.producers = producers;
  o.loss = loss;
  o.require_loss = !allow_no_loss;
  if (cap > 0) o.journal_max_bytes = cap;
  auto r = edgespool::testing::RunSoak(o);
  std::printf("%s", r.Summary().c_str());
  if (r.skipped) return 77;
  return r.ok() ? 0 : 1;
}

}  // namespace
}  // namespace edgespool::bench

int main(int argc, char** argv) { return edgespool::bench::Main(argc, argv); }
