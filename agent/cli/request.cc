#include "agent/cli/request.h"

#include <unistd.h>

#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <iostream>
#include <iterator>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "agent/cli/exit_codes.h"
#include "agent/cli/options.h"
#include "agent/client/producer.h"
#include "agent/client/responder.h"
#include "agent/protocol/request.h"
#include "platform/subprocess.h"

namespace edgespool::agent {

namespace {

namespace cl = ::edgespool::client;
namespace pr = ::edgespool::protocol;

// What a handler's stdout and stderr may grow to before the rest is dropped.
constexpr size_t kMaxAnswerBytes = 1u << 20;
constexpr size_t kMaxStderrInMessage = 512;

volatile std::sig_atomic_t g_stop = 0;
extern "C" void OnRespondStopSignal(int) { g_stop = 1; }

std::string DefaultSocket() {
  const char* env = std::getenv("EDGESPOOL_PRODUCER_SOCKET");
  return env && *env ? env : "/run/edgespool/edgespool.sock";
}

int ExitForRequest(const cl::RequestResult& r) {
  if (r.status.ok()) return kExitOk;
  if (!r.code) return r.status.code() == Code::kTimeout ? kExitTempFail : kExitUnavailable;
  switch (*r.code) {
    case pr::ErrorCode::kBadFrame:
    case pr::ErrorCode::kBadRequest:
    case pr::ErrorCode::kBadTopic:
    case pr::ErrorCode::kTooLarge:
    case pr::ErrorCode::kForbidden:
      return kExitDataErr;
    case pr::ErrorCode::kTimeout:
      return kExitTempFail;
    case pr::ErrorCode::kHandlerError:
      return kExitHandlerError;
    case pr::ErrorCode::kInternal:
      return kExitSoftware;
    default:
      return kExitUnavailable;
  }
}

std::string SocketOf(const cli::Args& args) {
  return args.Has("socket") ? args.Str("socket") : DefaultSocket();
}

int Request(const cli::Args& args) {
  const std::string& topic = args.positionals()[0];
  cl::RequestOptions options;
  options.timeout_ms = args.DurationMs("timeout", pr::kDefaultRequestTimeoutMs);
  if (args.Has("ttl")) options.ttl_ms = args.DurationMs("ttl");
  for (const std::string& h : args.All("header")) {
    size_t eq = h.find('=');
    if (eq == std::string::npos || eq == 0) {
      std::fprintf(stderr, "edgespool: --header must be key=value, not '%s'\n", h.c_str());
      return kExitUsage;
    }
    options.headers.emplace_back(h.substr(0, eq), h.substr(eq + 1));
  }
  std::string payload;
  if (args.positionals().size() > 1) {
    payload = args.positionals()[1];
  } else {
    payload.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  }
  std::string socket = SocketOf(args);
  cl::ProducerOptions po;
  po.socket_path = socket;
  auto producer = cl::Producer::Connect(po);
  if (!producer.ok()) {
    std::fprintf(stderr, "edgespool: agent at %s: %s\n", socket.c_str(),
                 producer.status().ToString().c_str());
    return kExitUnavailable;
  }
  cl::RequestResult r = (*producer)->Request(topic, std::move(payload), options).get();
  if (!r.status.ok()) {
    std::fprintf(stderr, "edgespool: request %s: %s\n", topic.c_str(), r.status.ToString().c_str());
    return ExitForRequest(r);
  }
  std::fwrite(r.payload.data(), 1, r.payload.size(), stdout);
  std::fflush(stdout);
  return kExitOk;
}

constexpr cli::OptionSpec kRequestOptions[] = {
    cli::Opt("timeout", 0, cli::ValueKind::kDuration, "DURATION",
             "How long to wait for the answer (default 5s; at most 10m).")
        .Range(1, pr::kMaxRequestTimeoutMs),
    cli::Opt("ttl", 0, cli::ValueKind::kDuration, "DURATION",
             "Let the request wait this long for the agent's uplink when it is down (default: "
             "fail at once with unavailable; requests are not stored).")
        .Range(1, pr::kMaxRequestTimeoutMs),
    cli::Opt("header", 0, cli::ValueKind::kString, "k=v",
             "A header of the request (an MQTT 5 user property).")
        .Repeatable(),
    cli::Opt("socket", 0, cli::ValueKind::kFile, "PATH",
             "The agent's socket (default: $EDGESPOOL_PRODUCER_SOCKET, then "
             "/run/edgespool/edgespool.sock)."),
};

constexpr cli::ExitCodeDoc kRequestExits[] = {
    {0, "answered: the answer is on stdout"},
    {1, "the answer is an error (handler_error): its code and message on stderr"},
    {64, "usage error"},
    {65, "refused: a bad topic, forbidden by the ACL"},
    {69, "unavailable: the agent or its uplink is down, no_handler, busy"},
    {70, "internal error"},
    {75, "timeout: no answer in time"},
};

}  // namespace

const cli::CommandSpec kRequestCommand = cli::Command(
    "request", "[options] TOPIC [MESSAGE]", "a request to the cloud; prints the answer",
    "Sends a request to the cloud on TOPIC (MESSAGE, or stdin when absent) and prints the "
    "answer's payload on stdout as it is. MQTT 5 carries a response topic and correlation "
    "data, MQTT 3.1.1 an envelope (docs/request-response.md). Requests are not stored: while "
    "the uplink is down it fails at once unless --ttl lets it wait.",
    kRequestOptions, kRequestExits, Request, 1, 2);

int RequestCommand(int argc, char** argv) { return cli::RunCommand(kRequestCommand, argc, argv); }

namespace {

// Calls handed from the SDK thread to the workers that run the command.
class CallQueue {
 public:
  void Push(cl::IncomingCall c) {
    std::lock_guard<std::mutex> lock(mu_);
    calls_.push_back(std::move(c));
    cv_.notify_one();
  }
  // False once stopped.
  bool Pop(cl::IncomingCall* out) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return stopped_ || !calls_.empty(); });
    if (calls_.empty()) return false;
    *out = std::move(calls_.front());
    calls_.pop_front();
    return true;
  }
  void Stop() {
    std::lock_guard<std::mutex> lock(mu_);
    stopped_ = true;
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<cl::IncomingCall> calls_;
  bool stopped_ = false;
};

void Serve(cl::Responder& responder, const std::vector<std::string>& command,
           const cl::IncomingCall& c) {
  auto run = platform::RunSubprocess(
      command, c.payload, c.timeout_ms, kMaxAnswerBytes,
      {{"EDGESPOOL_METHOD", c.method}, {"EDGESPOOL_CALL", std::to_string(c.call)}});
  if (!run.ok()) {
    (void)responder.AnswerError(c.call, "handler_error", run.status().ToString());
    return;
  }
  if (run->ok()) {
    (void)responder.Answer(c.call, std::move(run->out));
    return;
  }
  std::string why =
      run->timed_out ? "killed after the call's timeout of " + std::to_string(c.timeout_ms) + " ms"
      : run->signal  ? "killed by signal " + std::to_string(run->signal)
                     : "exit status " + std::to_string(run->exit_code);
  std::string err = run->err.substr(0, kMaxStderrInMessage);
  if (!err.empty() && pr::IsValidUtf8(err)) why += ": " + err;
  while (!why.empty() && (why.back() == '\n' || why.back() == '\r')) why.pop_back();
  (void)responder.AnswerError(c.call, "handler_error", why);
}

}  // namespace

namespace {

int Respond(const cli::Args& args) {
  std::vector<std::string> methods = {args.positionals()[0]};
  for (const std::string& m : args.All("method")) methods.push_back(m);
  std::vector<std::string> command(args.positionals().begin() + 1, args.positionals().end());
  int64_t jobs = args.Int("jobs", 4);
  std::string socket = SocketOf(args);
  std::signal(SIGINT, OnRespondStopSignal);
  std::signal(SIGTERM, OnRespondStopSignal);
  CallQueue queue;
  cl::ResponderOptions o;
  o.socket_path = socket;
  o.methods = methods;
  auto responder = cl::Responder::Open(o, [&queue](const cl::IncomingCall& c) { queue.Push(c); });
  if (!responder.ok()) {
    std::fprintf(stderr, "edgespool: respond at %s: %s\n", socket.c_str(),
                 responder.status().ToString().c_str());
    return responder.status().code() == Code::kInvalidArgument ? kExitDataErr : kExitUnavailable;
  }
  std::vector<std::thread> workers;
  for (int64_t i = 0; i < jobs; ++i) {
    workers.emplace_back([&] {
      cl::IncomingCall c;
      while (queue.Pop(&c)) Serve(**responder, command, c);
    });
  }
  std::fprintf(stderr, "edgespool: responding to %zu method(s)\n", methods.size());
  while (!g_stop) usleep(100000);
  queue.Stop();
  for (std::thread& t : workers) t.join();
  return kExitOk;
}

constexpr cli::OptionSpec kRespondOptions[] = {
    cli::Opt("method", 'm', cli::ValueKind::kString, "NAME",
             "Another method to serve with the same CMD (EDGESPOOL_METHOD tells them apart).")
        .Repeatable(),
    cli::Opt("jobs", 'j', cli::ValueKind::kInt, "N", "Calls run at once (default 4).")
        .Range(1, 256),
    cli::Opt("socket", 0, cli::ValueKind::kFile, "PATH",
             "The agent's socket (default: $EDGESPOOL_PRODUCER_SOCKET, then "
             "/run/edgespool/edgespool.sock)."),
};

constexpr cli::ExitCodeDoc kRespondExits[] = {
    {0, "stopped by SIGINT or SIGTERM"},
    {64, "usage error"},
    {65, "the agent refused a method name"},
    {69, "the agent is not reachable"},
    {70, "internal error"},
};

}  // namespace

const cli::CommandSpec kRespondCommand = cli::Command(
    "respond", "[options] METHOD [--] CMD [ARG...]", "serve a method the cloud calls, CMD per call",
    "Serves METHOD (and every --method): a call on edgespool/{node}/method/METHOD runs CMD "
    "with the call's payload on stdin and EDGESPOOL_METHOD, EDGESPOOL_CALL in its "
    "environment; its stdout is the answer. A non-zero exit, a signal, or running past the "
    "call's timeout (it is then killed) answers handler_error with the status and the start "
    "of its stderr. Put -- before CMD when it has options of its own. Runs until SIGINT or "
    "SIGTERM.",
    kRespondOptions, kRespondExits, Respond, 2);

int RespondCommand(int argc, char** argv) { return cli::RunCommand(kRespondCommand, argc, argv); }

}  // namespace edgespool::agent
