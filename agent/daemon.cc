#include "agent/daemon.h"

#include <signal.h>

#include <memory>

#include "agent/agent.h"
#include "agent/cli/exit_codes.h"
#include "agent/fd_limit.h"
#include "platform/log.h"
#include "platform/loop.h"

namespace edgespool::agent {

const char* Version() { return EDGESPOOL_VERSION; }

void ApplyLogSettings(const Config& config) {
  platform::LogLevel level = platform::LogLevel::kInfo;
  platform::Logger::ParseLevel(config.log.level, &level);
  platform::Logger::SetLevel(level);
  platform::Logger::SetFormat(config.log.format == "json" ? platform::LogFormat::kJson
                                                          : platform::LogFormat::kText);
}

int RunDaemon(const Config& config) {
  ApplyLogSettings(config);
  // Before the listener accepts: past the soft limit producers get EMFILE.
  RaiseFileLimitForConfig(config);
  platform::IgnoreSigpipe();
  auto loop_or = platform::Loop::Create();
  if (!loop_or.ok()) {
    ES_LOG_ERROR("cannot create event loop", {{"error", loop_or.status().ToString()}});
    return kExitSoftware;
  }
  platform::Loop& loop = **loop_or;

  ES_LOG_INFO("edgespool starting",
              {{"version", Version()},
               {"node", config.node.id},
               {"config", config.source.empty() ? "(defaults)" : config.source},
               {"digest", ConfigDigest(config)}});

  std::unique_ptr<Agent> agent;
  bool stopping = false;
  bool stopped_cleanly = false;
  auto on_signal = [&](int signum) {
    if (stopping) {
      // Second signal: stop now. Everything acknowledged is already durable
      // (acks follow COMMIT); the journal closes in its destructor.
      ES_LOG_WARN("second signal, exiting at once", {{"signal", std::to_string(signum)}});
      stopped_cleanly = true;
      loop.Stop();
      return;
    }
    stopping = true;
    ES_LOG_INFO("stopping", {{"signal", signum == SIGTERM ? "SIGTERM" : "SIGINT"}});
    if (!agent) {
      loop.Stop();
      return;
    }
    agent->Shutdown([&] {
      stopped_cleanly = true;
      loop.Stop();
    });
  };
  // SIGHUP reloads (systemd: ExecReload=/bin/kill -HUP $MAINPID). Before the
  // agent is up, and once it stops, there is nothing to reload: ignored,
  // where the default action would kill us.
  auto on_hangup = [&](int) {
    if (!agent || stopping) {
      ES_LOG_WARN("SIGHUP ignored", {{"why", stopping ? "stopping" : "starting"}});
      return;
    }
    (void)agent->Reload();
  };
  platform::SignalHandle sigterm(loop), sigint(loop), sighup(loop);
  Status st = sigterm.Start(SIGTERM, on_signal);
  if (st.ok()) st = sigint.Start(SIGINT, on_signal);
  if (st.ok()) st = sighup.Start(SIGHUP, on_hangup);
  if (!st.ok()) {
    ES_LOG_ERROR("cannot install signal handlers", {{"error", st.ToString()}});
    return kExitSoftware;
  }

  auto started = Agent::Start(loop, config);
  if (!started.ok()) {
    ES_LOG_ERROR("cannot start", {{"error", started.status().ToString()}});
    Code code = started.status().code();
    return code == Code::kInvalidArgument ? kExitConfig
           : code == Code::kIoError || code == Code::kPermissionDenied ? kExitCantCreate
                                                                        : kExitUnavailable;
  }
  agent = std::move(*started);
  ES_LOG_INFO("edgespool running", {{"node", config.node.id}});

  loop.Run();
  agent.reset();  // closes the journal: the last commit group finishes first
  ES_LOG_INFO("edgespool stopped", {{"version", Version()}, {"clean", stopped_cleanly ? "true" : "false"}});
  return kExitOk;
}

}  // namespace edgespool::agent
