// Agent: the composition root behind `edgespool run`. Owns, in dependency
// order, the journal, the uplink, the sync worker, the producer server, the
// status reporting and the systemd integration, all on one loop.
//
// Shutdown (first SIGTERM/SIGINT): stop accepting producers, let requests
// already received reach their commit and reply, stop leasing rows, wait up
// to uplink.shutdown_timeout for in-flight PUBACKs, publish the offline
// status, disconnect, close the journal. A second signal stops the loop at
// once: nothing acknowledged is lost, because an ack is only sent after COMMIT.
//
// Reload (SIGHUP, `edgespool reload`): see Reload() and agent/reload.h.
//
// Loop-thread-only.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "agent/config/config.h"
#include "agent/reload.h"
#include "platform/loop.h"
#include "platform/status.h"

namespace edgespool::agent {

class Agent {
 public:
  static Result<std::unique_ptr<Agent>> Start(platform::Loop& loop, const Config& config);
  ~Agent();

  // Begins the graceful stop; done runs on the loop when it is complete.
  void Shutdown(std::function<void()> done);
  // The status document (JSON), as served on every channel.
  std::string StatusJson();
  // Reloads the configuration file the agent started with (agent/reload.h):
  // applies what can change live, or refuses and keeps running as it was.
  // SIGHUP and the socket's `reload` op both come here.
  ReloadOutcome Reload();

  class Impl;

 private:
  explicit Agent(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace edgespool::agent
