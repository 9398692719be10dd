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
// payload as "payload" (valid UTF-8) or "payload_b64". A record still
// sealed (docs/encryption.md) adds "encrypted": {"key_id", "nonce"} (its
// payload is the ciphertext and tag), and "error" when decrypt_error says
// why it was not opened.
std::string RecordJson(const std::string& node, const batch::Record& r,
                       const std::string& decrypt_error = "");

}  // namespace edgespool::agent
