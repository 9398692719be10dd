// The soak run (issue 19): producers at a steady rate into the real agent,
// the real broker (mosquitto, persistence on) restarted on a schedule, the
// agent SIGKILLed and restarted at once on another, random packet loss on the
// uplink (iptables statistic in a network namespace), a persistent subscriber
// counting as a queue checker does. Every sample_every it prints one row of
// the curve: acked, delivered, overdue (acked long ago, still not delivered),
// the agent's RSS and open fds, and the journal's size on disk against its
// cap. Shared by tests/integration/soak_slow_test.cc (the hour, label slow)
// and tests/bench/soak_bench.cc (any duration, from the command line).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace edgespool::testing {

struct SoakOptions {
  int64_t duration_ms = 3600 * 1000;
  int rate = 2000;    // messages per second, all producers together
  int producers = 2;  // client connections, each rate/producers msg/s
  int topics = 4;     // sensors/t0..
  int64_t broker_restart_every_ms = 30000;
  int64_t agent_kill_every_ms = 300000;
  int64_t sample_every_ms = 60000;
  double loss = 0.01;  // packet loss each way on the agent's uplink; 0: none
  // Without a network namespace (not root, or refused): skip, or run with
  // the agent on loopback and no loss (say so in the result).
  bool require_loss = true;
  uint64_t journal_max_bytes = 64ull << 20;  // store.max_bytes
  // An acked message still undelivered after this long counts as overdue in
  // the curve (lost so far, if it never shows up).
  int64_t overdue_after_ms = 60000;
  // After the producers stop: how long to wait for the last deliveries.
  int64_t drain_timeout_ms = 180000;
};

// One row of the curve.
struct SoakSample {
  double t_s = 0;
  uint64_t published = 0, acked = 0, delivered = 0;  // delivered: distinct ids
  uint64_t overdue = 0;
  uint64_t rss_kib = 0;                  // the agent's VmRSS (0 while it is down)
  int fds = 0;                           // entries in /proc/PID/fd (-1 while it is down)
  uint64_t db_bytes = 0, wal_bytes = 0;  // journal.db, journal.db-wal (+ -shm)
  int broker_restarts = 0, agent_kills = 0;
  std::string Row() const;
  static std::string Header();
};

struct SoakResult {
  bool skipped = false;
  std::string skip_reason;
  std::string setup_error;  // a fixture that would not start: the run failed
  bool loss_applied = false;
  uint64_t packets_dropped = 0;  // matched by the loss rules
  // Queue checker (TESTING.md).
  uint64_t published = 0, acked = 0, failed = 0, delivered = 0;
  uint64_t lost = 0, unexpected = 0, duplicated = 0, recovered = 0;
  int broker_restarts = 0, agent_kills = 0;
  std::vector<SoakSample> curve;
  uint64_t cap_bytes = 0;          // store.max_bytes
  uint64_t wal_reserve_bytes = 0;  // the WAL budget the journal keeps beside it
  uint64_t max_db_bytes = 0, max_disk_bytes = 0;
  // Flatness: last third of the run against the first (rule in soak.cc).
  uint64_t rss_first_max_kib = 0, rss_last_max_kib = 0;
  int fds_first_max = 0, fds_last_max = 0;
  bool rss_flat = false, fds_flat = false, disk_within_cap = false;
  double seconds = 0;
  // lost = 0, unexpected = 0, flat RSS and fds, disk within the cap.
  bool ok() const;
  std::string Summary() const;  // multi-line, for logs and docs/proof.md
};

// The schedule (broker restart every 30 s, agent SIGKILL every 5 min
// of an hour, a row a minute) scaled to a shorter run: the kill interval is
// duration / 12 (at least 10 s), the broker restart every 30 s or a quarter
// of the run if shorter, a row every duration / 60 (at least 5 s).
SoakOptions ScaledSoakOptions(int64_t duration_ms);

// Runs the soak in a fresh temp dir; prints the curve to stdout as it goes.
SoakResult RunSoak(const SoakOptions& options);

// "90s", "2m", "1h", "1500ms", or plain seconds; -1 if unparsable.
int64_t ParseDurationMs(const std::string& text);

}  // namespace edgespool::testing
