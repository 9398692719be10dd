// `edgespool consume`: the fleet's uplink as one ordered stream of JSON
// lines (central/consumer.h; docs/central.md).
#pragma once

#include <string>

#include "agent/cli/options.h"
#include "central/message.h"

namespace edgespool::agent {

extern const cli::CommandSpec kConsumeCommand;

// argv starts after "consume".
int ConsumeCommand(int argc, char** argv);

// One output line (no newline): node, seq, id, topic, ts, headers (and
// headers_hex for values that are not UTF-8), payload (or payload_hex when
// not UTF-8), late.
std::string ConsumedJson(const central::Message& m);

}  // namespace edgespool::agent
