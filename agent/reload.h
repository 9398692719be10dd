// Reloading the configuration (SIGHUP, `systemctl reload`, `edgespool
// reload`): the decision, apart from the agent that applies it.
//
// A reload reads the file the agent started with (and the environment
// again), and then, in this order:
//   1. refuses if the new configuration does not load (every problem,
//      "file:line: key: reason", is in the outcome);
//   2. refuses if it changes a key that needs a restart (schema.cc marks
//      the live ones; store.path, producer.socket, ... are not);
//   3. otherwise applies the live changes (agent.cc, Agent::Impl::Reload).
// A refused reload changes nothing: the running configuration, its digest
// and every component stay as they were. The outcome is logged, counted
// (edgespool_config_reloads_total{result}), and answered to `edgespool
// reload` as JSON:
//
//   {"outcome":"reloaded"|"unchanged"|"refused","message":"..",
//    "changed":["route[1].priority",..],"restart":["store.path",..],
//    "problems":["config.toml:3: uplink.url: ..",..],
//    "source":"/etc/edgespool/config.toml","config_digest":".."}
#pragma once

#include <string>
#include <vector>

#include "agent/config/config.h"

namespace edgespool::agent {

struct ReloadPlan {
  enum class Verdict { kApply, kUnchanged, kRefuseInvalid, kRefuseRestart };
  Verdict verdict = Verdict::kUnchanged;
  std::vector<std::string> live;      // keys that change and are applied
  std::vector<std::string> restart;   // keys that change and need a restart
  std::vector<std::string> problems;  // why the new configuration does not load
  bool refused() const {
    return verdict == Verdict::kRefuseInvalid || verdict == Verdict::kRefuseRestart;
  }
};

// Decides steps 1 and 2 above.
ReloadPlan PlanReload(const Config& running, const LoadResult& next);

// The outcome of a reload, as logged and answered (format at the top).
struct ReloadOutcome {
  bool ok = false;       // applied (or nothing to apply); false: refused
  bool changed = false;  // ok: something was applied
  std::string message;   // one line: what changed, or why it was refused
  std::string json;
};

// The outcome of a plan; `extra_live` names changes found outside the
// configuration (the contents of TLS and password files), `failure` a
// refusal found while preparing to apply (a TLS file that does not load).
ReloadOutcome DescribeReload(const ReloadPlan& plan, const std::vector<std::string>& extra_live,
                             const std::string& failure, const std::string& source,
                             const std::string& digest);

}  // namespace edgespool::agent
