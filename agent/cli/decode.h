// `edgespool decode`: prints batch frames as JSON lines, one per message.
#pragma once

#include <string>

#include "agent/cli/options.h"
#include "sync/batch/batch_frame.h"

namespace edgespool::agent {

extern const cli::CommandSpec kDecodeCommand;

// argv starts after "decode".
int DecodeCommand(int argc, char** argv);

// One JSON object per record: node, seq, ts, topic, id, headers, and the
// payload as "payload" (valid UTF-8) or "payload_b64".
std::string RecordJson(const std::string& node, const batch::Record& r);

}  // namespace edgespool::agent
