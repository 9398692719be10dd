// The producer-side subcommands of `edgespool`, over the client SDK:
//
//   edgespool publish [options] TOPIC [MESSAGE]    (or -t TOPIC -m MESSAGE)
//       the message from the argument, -m, -f FILE, -s (all of stdin), -n
//       (empty), or -l one per line of stdin (also the default when stdin is
//       not a terminal); --ts --id --priority --ttl DURATION --header k=v
//       --ack stored|delivered|none
//       --count N --rate R --size B --connections C   load generator: prints
//                                       throughput and ack latency p50/p99/max
//   edgespool query SEQ | --id ID [--json]
//   edgespool status [--json]
//
// Every command takes --socket PATH (default: $EDGESPOOL_PRODUCER_SOCKET, else
// /run/edgespool/edgespool.sock). Options and exit codes are in the command
// specs (producer_commands.cc); argv of the *Command functions starts after
// the subcommand name.
#pragma once

#include "agent/cli/options.h"

namespace edgespool::agent {

extern const cli::CommandSpec kPublishCommand;
extern const cli::CommandSpec kQueryCommand;
extern const cli::CommandSpec kStatusCommand;

int PublishCommand(int argc, char** argv);
int QueryCommand(int argc, char** argv);
int StatusCommand(int argc, char** argv);

}  // namespace edgespool::agent
