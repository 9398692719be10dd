// The producer-side subcommands of `edgespool`, over the client SDK:
//
//   edgespool publish TOPIC [MESSAGE]   message from the argument, --file, or
//                                       one per line from stdin
//       --ts MS --id ID --priority high|normal|low --ttl MS --header k=v
//       --ack stored|delivered|none
//       --count N --rate R --size B --connections C   load generator: prints
//                                       throughput and ack latency p50/p99/max
//   edgespool query SEQ | --id ID [--json]
//   edgespool status [--json]
//
// Every command takes --socket PATH (default: $EDGESPOOL_PRODUCER_SOCKET, else
// /run/edgespool/edgespool.sock). argv starts after the subcommand name.
// Exit codes: 0 ok, 64 usage, 65 bad data (refused message), 69 agent
// unavailable (or busy / full / rate limited), 70 internal error in the agent.
#pragma once

namespace edgespool::agent {

int PublishCommand(int argc, char** argv);
int QueryCommand(int argc, char** argv);
int StatusCommand(int argc, char** argv);

}  // namespace edgespool::agent
