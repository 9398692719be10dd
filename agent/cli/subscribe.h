// `edgespool subscribe`: print the downlink's messages as they arrive, over
// the client SDK's Consumer (agent/client/consumer.h).
//
//   edgespool subscribe [-t FILTER]... FILTER... [--session NAME]
//       [--from new|oldest|SEQ] [--window N] [--json] [-C|--count N] [--socket PATH]
//
// One line per message, acked once printed: `topic payload` as
// `mosquitto_sub -v` prints, or with --json an object per line:
//   {"seq":42,"topic":"down/cmd","broker_topic":"..","ts":1733300000000,
//    "headers":{"k":"v"},"payload":"..."}
// with "payload_hex" instead of "payload" when the payload is not UTF-8, and
// "response_topic"/"correlation" (hex) when the message has them.
// Ends after --count messages or on SIGINT/SIGTERM (detaching the session).
// Exit codes: 0 ok, 64 usage, 65 subscribe refused (bad filter or session
// name), 69 agent unavailable or the session attached elsewhere (busy),
// 70 internal error.
#pragma once

#include "agent/cli/options.h"

namespace edgespool::agent {

extern const cli::CommandSpec kSubscribeCommand;

int SubscribeCommand(int argc, char** argv);

}  // namespace edgespool::agent
