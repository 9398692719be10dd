// End-to-end test helpers: the agent as a real process, a real subscriber on
// the central broker (mosquitto_sub, an independent MQTT implementation), and
// a queue checker that counts as Jepsen's does (TESTING.md):
//   lost       acknowledged to the producer, never delivered
//   unexpected delivered, never published
//   duplicated delivered more than once
//   recovered  not acknowledged (the agent died first) but delivered
//   reordered  per topic, delivered out of (original ts, seq) order
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "tests/support/test_env.h"

namespace edgespool::testing {

// `edgespool run` with a config written into dir; extra settings are TOML
// lines appended per section, e.g. {{"sync", "mode = \"batch\""}}. Each
// "route", "subscription", "acl" or "rate_limit" entry becomes one table of
// that array ([[route]], ...; keys separated by newlines).
class AgentProcess {
 public:
  AgentProcess(std::string dir, std::string broker_url,
               std::multimap<std::string, std::string> settings = {});
  ~AgentProcess();
  // Writes the config file again, as the constructor does (a reload test
  // then signals the agent or runs `edgespool reload`).
  void Rewrite(const std::string& broker_url,
               const std::multimap<std::string, std::string>& settings = {});
  bool Start();        // waits until the producer socket accepts
  int Stop();          // SIGTERM; returns the exit status (waitpid form), -1 on timeout
  void Kill();         // SIGKILL
  void Signal(int sig);
  std::string socket() const { return dir_ + "/es.sock"; }
  std::string journal() const { return dir_ + "/journal.db"; }
  std::string log() const;
  std::string config_path() const { return dir_ + "/agent.toml"; }
  // The agent's pid while it runs (benchmarks read its CPU time and RSS), else -1.
  pid_t pid() const { return process_.pid(); }
  // Runs the agent through a command that execs it, e.g. {"ip", "netns",
  // "exec", NAME} to put it in a network namespace.
  void SetCommandPrefix(std::vector<std::string> prefix) { prefix_ = std::move(prefix); }

 private:
  std::vector<std::string> prefix_;
  std::string dir_;
  Process process_;
  int starts_ = 0;
};

// mosquitto_sub writing "topic<TAB>hexpayload" lines; a persistent session
// (client id + clean session off) so nothing is missed across broker restarts
// when the broker has persistence.
class Subscriber {
 public:
  Subscriber(std::string dir, uint16_t port, std::string topic, std::string client_id);
  ~Subscriber();
  bool Start();  // returns once subscribed (a probe message round-trips)
  void Stop();
  struct Message {
    std::string topic;
    std::string payload;
  };
  std::vector<Message> Read() const;
  // The complete lines written since *offset (a byte offset into the output,
  // advanced past what was read): long runs read only what is new.
  std::vector<Message> ReadNew(uint64_t* offset) const;
  size_t Count() const;

 private:
  std::string dir_, topic_, client_id_;
  uint16_t port_;
  Process process_;
};

struct Delivered {
  std::string id;
  std::string topic;
  int64_t ts = 0;
  uint64_t seq = 0;  // from the batch frame or es-seq; 0 if unknown
};

class QueueChecker {
 public:
  void Published(const std::string& id, bool acked) { (acked ? acked_ : unacked_).insert(id); }
  void Deliver(const Delivered& d) { delivered_.push_back(d); }
  struct Counts {
    size_t acked = 0, delivered = 0, lost = 0, unexpected = 0, duplicated = 0, recovered = 0,
           reordered = 0;
    std::string ToString() const;
  };
  // reorder_by_ts: check per-topic order by (ts, then delivery) — only
  // meaningful when everything was pending before the drain began.
  Counts Check(bool check_order) const;
  const std::set<std::string>& acked() const { return acked_; }

 private:
  std::set<std::string> acked_, unacked_;
  std::vector<Delivered> delivered_;
};

// Telemetry payload carrying its id and ts: {"id":"...","ts":N,"temp_c":..}
std::string TelemetryPayload(const std::string& id, int64_t ts, int i);
// Parses what TelemetryPayload wrote (false if it is not one).
bool ParseTelemetry(const std::string& payload, std::string* id, int64_t* ts);
// Turns subscriber messages into deliveries: telemetry payloads directly,
// batch frames (topic ending in /batch) record by record.
std::vector<Delivered> ToDeliveries(const std::vector<Subscriber::Message>& msgs);

}  // namespace edgespool::testing
