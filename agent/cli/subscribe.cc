#include "agent/cli/subscribe.h"

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "agent/cli/exit_codes.h"
#include "agent/client/consumer.h"
#include "agent/protocol/json_writer.h"
#include "agent/protocol/message.h"
#include "agent/protocol/request.h"

namespace edgespool::agent {

namespace {

namespace cl = ::edgespool::client;
namespace pr = ::edgespool::protocol;

constexpr const char* kUsage =
    "usage: edgespool subscribe FILTER... [--session NAME] [--from new|oldest|SEQ]\n"
    "                           [--window N] [--json] [--count N] [--socket PATH]\n"
    "Prints 'topic payload' per message (--json: one object per line), acking each\n"
    "once printed; ends after --count messages or on SIGINT.\n"
    "Exit codes: 0 ok, 64 usage, 65 subscribe refused, 69 agent unavailable or\n"
    "session busy, 70 internal error.";

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

// An option's value, or an error message in *error.
bool ParseOption(const std::string& arg, const std::string& v, Args* a, std::string* error) {
  int64_t n = 0;
  if (arg == "--session") {
    a->options.session = v;
  } else if (arg == "--socket") {
    a->options.socket_path = v;
  } else if (arg == "--from") {
    if (!ParseFrom(v, &a->options)) *error = "--from must be new, oldest or an inbox seq";
  } else if (arg == "--window") {
    if (!ParseCount(v, 1, pr::kMaxWindow, &n)) *error = "--window must be 1..10000";
    a->options.window = static_cast<uint32_t>(n);
  } else if (arg == "--count") {
    if (!ParseCount(v, 1, pr::kMaxReq, &n)) *error = "--count must be a positive integer";
    a->count = n;
  } else {
    *error = "unknown option " + arg;
  }
  return error->empty();
}

bool ParseArgs(int argc, char** argv, Args* a, std::string* error) {
  const char* env = std::getenv("EDGESPOOL_PRODUCER_SOCKET");
  if (env && *env) a->options.socket_path = env;
  for (int i = 0; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--json") {
      a->json = true;
    } else if (arg.rfind("--", 0) == 0) {
      if (i + 1 >= argc) {
        *error = arg + " needs a value";
        return false;
      }
      if (!ParseOption(arg, argv[++i], a, error)) return false;
    } else {
      a->options.filters.push_back(arg);
    }
  }
  if (a->options.filters.empty()) *error = "subscribe needs at least one FILTER";
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

}  // namespace

int SubscribeCommand(int argc, char** argv) {
  Args a;
  std::string error;
  if (argc >= 1 && (std::string(argv[0]) == "--help" || std::string(argv[0]) == "-h")) {
    std::puts(kUsage);
    return kExitOk;
  }
  if (!ParseArgs(argc, argv, &a, &error)) {
    std::fprintf(stderr, "edgespool: %s\n%s\n", error.c_str(), kUsage);
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

}  // namespace edgespool::agent
