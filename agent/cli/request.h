// `edgespool request` and `edgespool respond`: request/response from shell
// scripts on the gateway (docs/request-response.md), over the client SDK.
//
//   edgespool request TOPIC [MESSAGE] [--timeout 5s] [--ttl DURATION]
//       [--header k=v]... [--socket PATH]
//     Sends a request to the cloud (MESSAGE, or stdin when absent) and
//     prints the answer's payload on stdout as it is (no newline added).
//     Exit codes: 0 answered, 1 the answer is an error (handler_error; its
//     code and message on stderr), 64 usage, 65 refused (bad topic,
//     forbidden), 69 unavailable (agent or uplink down, no_handler, busy),
//     75 timeout, 70 internal error.
//
//   edgespool respond METHOD [-m METHOD]... [--jobs N] [--socket PATH] [--] CMD [ARG...]
//     Serves the methods: each call runs CMD with the call's payload on
//     stdin and EDGESPOOL_METHOD, EDGESPOOL_CALL in its environment; its
//     stdout is the answer. A non-zero exit (or a signal, or running past
//     the call's timeout, when it is killed) answers handler_error with the
//     exit status and the start of its stderr. Up to --jobs calls (default
//     4) run at once. Runs until SIGINT/SIGTERM.
//     Exit codes: 0 stopped by a signal, 64 usage, 65 a method name
//     refused, 69 agent unavailable, 70 internal error.
#pragma once

#include "agent/cli/options.h"

namespace edgespool::agent {

extern const cli::CommandSpec kRequestCommand;
extern const cli::CommandSpec kRespondCommand;

int RequestCommand(int argc, char** argv);
int RespondCommand(int argc, char** argv);

}  // namespace edgespool::agent
