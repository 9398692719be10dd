#include "agent/cli/subscribe.h"

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "agent/cli/exit_codes.h"
#include "agent/cli/options.h"
#include "agent/client/consumer.h"
#include "agent/protocol/json_writer.h"
#include "agent/protocol/message.h"
#include "agent/protocol/request.h"

namespace edgespool::agent {

namespace {

namespace cl = ::edgespool::client;
namespace pr = ::edgespool::protocol;

// How often Next() wakes to look at the signal flag.
constexpr int64_t kPollMs = 200;

volatile std::sig_atomic_t g_stop = 0;
extern "C" void OnStopSignal(int) { g_stop = 1; }

struct Args {
  cl::ConsumerOptions options;
  bool json = false;
  int64_t count = 0;  // 0: until a signal
};

bool ParseCount(const std::string& s, int64_t lo, int64_t hi, int64_t* out) {
  if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos || s.size() > 16) {
    return false;
  }
  int64_t v = std::strtoll(s.c_str(), nullptr, 10);
  if (v < lo || v > hi) return false;
  *out = v;
  return true;
}

bool ParseFrom(const std::string& v, cl::ConsumerOptions* o) {
  int64_t seq;
  if (v == "new") {
    o->from = cl::ConsumerOptions::From::kNew;
  } else if (v == "oldest") {
    o->from = cl::ConsumerOptions::From::kOldest;
  } else if (ParseCount(v, 0, pr::kMaxReq, &seq)) {
    o->from = cl::ConsumerOptions::From::kSeq;
    o->from_seq = static_cast<uint64_t>(seq);
  } else {
    return false;
  }
  return true;
}

// Fills *a from the parsed options; false with a message in *error.
bool ToArgs(const cli::Args& args, Args* a, std::string* error) {
  const char* env = std::getenv("EDGESPOOL_PRODUCER_SOCKET");
  if (env && *env) a->options.socket_path = env;
  if (args.Has("socket")) a->options.socket_path = args.Str("socket");
  a->options.session = args.Str("session");
  if (args.Has("from") && !ParseFrom(args.Str("from"), &a->options)) {
    *error = "--from must be new, oldest or an inbox seq";
    return false;
  }
  if (args.Has("window")) a->options.window = static_cast<uint32_t>(args.Int("window"));
  a->count = args.Int("count", 0);
  a->json = args.Has("json");
  a->options.filters = args.All("topic");
  for (const std::string& f : args.positionals()) a->options.filters.push_back(f);
  if (a->options.filters.empty()) *error = "subscribe needs at least one FILTER (or -t FILTER)";
  return error->empty();
}

void PrintJson(const cl::ReceivedMessage& m) {
  pr::JsonObjectWriter w;
  w.Uint("seq", m.seq).Str("topic", m.topic);
  if (!m.broker_topic.empty()) w.Str("broker_topic", m.broker_topic);
  w.Int("ts", m.ts_ms);
  pr::JsonObjectWriter h;
  for (const auto& [k, v] : m.headers) h.Str(k, v);
  w.Raw("headers", std::move(h).Finish());
  if (!m.response_topic.empty()) w.Str("response_topic", m.response_topic);
  if (!m.correlation.empty()) w.Str("correlation", pr::HexEncode(m.correlation));
  if (pr::IsValidUtf8(m.payload)) {
    w.Str("payload", m.payload);
  } else {
    w.Str("payload_hex", pr::HexEncode(m.payload));
  }
  std::string line = std::move(w).Finish();
  line.push_back('\n');
  std::fwrite(line.data(), 1, line.size(), stdout);
}

void Print(const cl::ReceivedMessage& m, bool json) {
  if (json) {
    PrintJson(m);
  } else {
    std::fwrite(m.topic.data(), 1, m.topic.size(), stdout);
    std::fputc(' ', stdout);
    std::fwrite(m.payload.data(), 1, m.payload.size(), stdout);
    std::fputc('\n', stdout);
  }
  std::fflush(stdout);  // a pipe reader sees each message when it is acked
}

int ExitForOpen(const Status& st) {
  switch (st.code()) {
    case Code::kInvalidArgument: return kExitDataErr;
    case Code::kUnavailable:
    case Code::kResourceExhausted: return kExitUnavailable;
    default: return kExitSoftware;
  }
}


int Subscribe(const cli::Args& args) {
  Args a;
  std::string error;
  if (!ToArgs(args, &a, &error)) {
    std::fprintf(stderr, "edgespool subscribe: %s\n(run 'edgespool subscribe --help' for usage)\n",
                 error.c_str());
    return kExitUsage;
  }
  std::signal(SIGINT, OnStopSignal);
  std::signal(SIGTERM, OnStopSignal);
  std::string socket = a.options.socket_path;
  auto consumer = cl::Consumer::Open(std::move(a.options));
  if (!consumer.ok()) {
    std::fprintf(stderr, "edgespool: subscribe at %s: %s\n", socket.c_str(),
                 consumer.status().ToString().c_str());
    return ExitForOpen(consumer.status());
  }
  int64_t printed = 0;
  int rc = kExitOk;
  while (!g_stop && (a.count == 0 || printed < a.count)) {
    auto m = (*consumer)->Next(kPollMs);
    if (!m.ok()) {
      if (m.status().code() == Code::kTimeout) continue;
      std::fprintf(stderr, "edgespool: %s\n", m.status().ToString().c_str());
      rc = ExitForOpen(m.status());
      break;
    }
    Print(*m, a.json);
    (void)(*consumer)->Ack(m->seq);  // fails only once closed
    ++printed;
  }
  (void)(*consumer)->Close();  // detach; the agent keeps a durable position
  return rc;
}

constexpr cli::OptionSpec kSubscribeOptions[] = {
    cli::Opt("topic", 't', cli::ValueKind::kString, "FILTER",
             "A filter over local topics, as the arguments (mosquitto_sub's -t).")
        .Repeatable(),
    cli::Opt("session", 0, cli::ValueKind::kString, "NAME",
             "A durable session: the agent keeps its position across disconnects and restarts "
             "(default: anonymous, ending with the connection)."),
    cli::Opt("from", 0, cli::ValueKind::kString, "new|oldest|SEQ",
             "Where a new session starts: new messages (the default), the oldest in the inbox, "
             "or an inbox seq."),
    cli::Opt("window", 0, cli::ValueKind::kInt, "N",
             "Messages delivered and not yet acked (default: downlink.window).")
        .Range(1, pr::kMaxWindow),
    cli::Opt("count", 'C', cli::ValueKind::kInt, "N", "Exit after N messages (mosquitto_sub's -C).")
        .Range(1, pr::kMaxReq),
    cli::Flag("json", 0,
              "One JSON object per message: seq, topic, broker_topic, ts, headers, payload "
              "(payload_hex if not UTF-8), response_topic, correlation."),
    cli::Opt("socket", 0, cli::ValueKind::kFile, "PATH",
             "The agent's socket (default: $EDGESPOOL_PRODUCER_SOCKET, then "
             "/run/edgespool/edgespool.sock)."),
};

constexpr cli::ExitCodeDoc kSubscribeExits[] = {
    {0, "--count messages printed, or stopped by SIGINT or SIGTERM"},
    {64, "usage error"},
    {65, "the agent refused the subscription (a bad filter or session name)"},
    {69, "the agent is not reachable, or the session is attached to another connection"},
    {70, "internal error"},
};

}  // namespace

const cli::CommandSpec kSubscribeCommand = cli::Command(
    "subscribe", "[options] FILTER...", "print downlink messages",
    "Prints the downlink's messages whose local topic matches a FILTER as they arrive, "
    "\"topic payload\" per line as mosquitto_sub -v prints (--json: one object per line), "
    "and acks each once printed. Ends after --count messages or on SIGINT or SIGTERM, "
    "detaching the session.",
    kSubscribeOptions, kSubscribeExits, Subscribe);

int SubscribeCommand(int argc, char** argv) {
  return cli::RunCommand(kSubscribeCommand, argc, argv);
}

}  // namespace edgespool::agent
