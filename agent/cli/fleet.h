// `edgespool fleet`: every node's retained status from the broker, one row
// per node, worst first. Exit 2 if any node is offline or has not synced
// within --stale (for cron and monitoring checks), 0 otherwise.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "agent/cli/options.h"

namespace edgespool::agent {

extern const cli::CommandSpec kFleetCommand;

// argv starts after "fleet".
int FleetCommand(int argc, char** argv);

struct FleetRow {
  std::string node;
  bool online = false;
  int64_t last_sync_ms = 0;
  uint64_t pending = 0;
  int64_t oldest_pending_ts_ms = 0;
  double rate = 0;
  std::string uplink_state;
  std::string last_error;
  int64_t report_ts_ms = 0;
  bool stale = false;  // offline, or no sync within the threshold while pending
};

// Parses one status document (false if it is not one).
bool ParseFleetRow(const std::string& json, FleetRow* row);
// Marks stale rows and sorts worst first (offline, then stale, then oldest sync).
void RankFleet(std::vector<FleetRow>* rows, int64_t now_ms, int64_t stale_ms);
std::string RenderFleetTable(const std::vector<FleetRow>& rows, int64_t now_ms);
std::string RenderFleetJson(const std::vector<FleetRow>& rows);

}  // namespace edgespool::agent
