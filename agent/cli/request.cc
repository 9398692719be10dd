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
#include "agent/client/producer.h"
#include "agent/client/responder.h"
#include "agent/config/units.h"
#include "agent/protocol/request.h"
#include "platform/subprocess.h"

namespace edgespool::agent {

namespace {

namespace cl = ::edgespool::client;
namespace pr = ::edgespool::protocol;

constexpr const char* kRequestUsage =
    "usage: edgespool request TOPIC [MESSAGE] [--timeout 5s] [--ttl DURATION]\n"
    "                         [--header k=v]... [--socket PATH]\n"
    "Sends a request to the cloud (MESSAGE, or stdin) and prints the answer.\n"
    "Exit codes: 0 answered, 1 error answer, 64 usage, 65 refused, 69 unavailable\n"
    "(agent or uplink down, no_handler, busy), 75 timeout, 70 internal error.";

constexpr const char* kRespondUsage =
    "usage: edgespool respond METHOD... [--jobs N] [--socket PATH] -- CMD [ARG...]\n"
    "Runs CMD per call: payload on stdin, answer on stdout; a non-zero exit answers\n"
    "handler_error. Runs until SIGINT/SIGTERM.\n"
    "Exit codes: 0 stopped, 64 usage, 65 method refused, 69 agent unavailable,\n"
    "70 internal error.";

// What a handler's stdout and stderr may grow to before the rest is dropped.
constexpr size_t kMaxAnswerBytes = 1u << 20;
constexpr size_t kMaxStderrInMessage = 512;

volatile std::sig_atomic_t g_stop = 0;
extern "C" void OnRespondStopSignal(int) { g_stop = 1; }

std::string DefaultSocket() {
  const char* env = std::getenv("EDGESPOOL_PRODUCER_SOCKET");
  return env && *env ? env : "/run/edgespool/edgespool.sock";
}

bool IsHelp(int argc, char** argv) {
  return argc >= 1 && (std::string(argv[0]) == "--help" || std::string(argv[0]) == "-h");
}

int Usage(const std::string& error, const char* usage) {
  std::fprintf(stderr, "edgespool: %s\n%s\n", error.c_str(), usage);
  return kExitUsage;
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

struct RequestArgs {
  std::string socket = DefaultSocket();
  std::string topic;
  std::optional<std::string> message;
  cl::RequestOptions options;
};

bool ParseRequestArgs(int argc, char** argv, RequestArgs* a, std::string* error) {
  std::vector<std::string> positional;
  for (int i = 0; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.rfind("--", 0) != 0) {
      positional.push_back(arg);
      continue;
    }
    if (i + 1 >= argc) {
      *error = arg + " needs a value";
      return false;
    }
    std::string v = argv[++i], why;
    int64_t ms = 0;
    if (arg == "--socket") {
      a->socket = v;
    } else if (arg == "--timeout" || arg == "--ttl") {
      if (!ParseDurationMs(v, &ms, &why) || ms < 1 || ms > pr::kMaxRequestTimeoutMs) {
        *error = arg + " must be a duration of 1ms..10m, e.g. 5s";
        return false;
      }
      (arg == "--timeout" ? a->options.timeout_ms : a->options.ttl_ms.emplace()) = ms;
    } else if (arg == "--header") {
      size_t eq = v.find('=');
      if (eq == std::string::npos || eq == 0) {
        *error = "--header must be key=value";
        return false;
      }
      a->options.headers.emplace_back(v.substr(0, eq), v.substr(eq + 1));
    } else {
      *error = "unknown option " + arg;
      return false;
    }
  }
  if (positional.empty() || positional.size() > 2) {
    *error = "request needs TOPIC and at most one MESSAGE";
    return false;
  }
  a->topic = positional[0];
  if (positional.size() == 2) a->message = positional[1];
  return true;
}

}  // namespace

int RequestCommand(int argc, char** argv) {
  if (IsHelp(argc, argv)) {
    std::puts(kRequestUsage);
    return kExitOk;
  }
  RequestArgs a;
  std::string error;
  if (!ParseRequestArgs(argc, argv, &a, &error)) return Usage(error, kRequestUsage);
  std::string payload;
  if (a.message) {
    payload = *a.message;
  } else {
    payload.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  }
  cl::ProducerOptions po;
  po.socket_path = a.socket;
  auto producer = cl::Producer::Connect(po);
  if (!producer.ok()) {
    std::fprintf(stderr, "edgespool: agent at %s: %s\n", a.socket.c_str(),
                 producer.status().ToString().c_str());
    return kExitUnavailable;
  }
  cl::RequestResult r = (*producer)->Request(a.topic, std::move(payload), a.options).get();
  if (!r.status.ok()) {
    std::fprintf(stderr, "edgespool: request %s: %s\n", a.topic.c_str(),
                 r.status.ToString().c_str());
    return ExitForRequest(r);
  }
  std::fwrite(r.payload.data(), 1, r.payload.size(), stdout);
  std::fflush(stdout);
  return kExitOk;
}

namespace {

struct RespondArgs {
  std::string socket = DefaultSocket();
  std::vector<std::string> methods;
  std::vector<std::string> command;
  int64_t jobs = 4;
};

bool ParseRespondArgs(int argc, char** argv, RespondArgs* a, std::string* error) {
  int i = 0;
  for (; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--") {
      ++i;
      break;
    }
    if (arg.rfind("--", 0) != 0) {
      a->methods.push_back(arg);
      continue;
    }
    if (i + 1 >= argc) {
      *error = arg + " needs a value";
      return false;
    }
    std::string v = argv[++i];
    if (arg == "--socket") {
      a->socket = v;
    } else if (arg == "--jobs") {
      char* end = nullptr;
      a->jobs = std::strtoll(v.c_str(), &end, 10);
      if (v.empty() || *end != '\0' || a->jobs < 1 || a->jobs > 256) {
        *error = "--jobs must be 1..256";
        return false;
      }
    } else {
      *error = "unknown option " + arg;
      return false;
    }
  }
  for (; i < argc; ++i) a->command.push_back(argv[i]);
  if (a->methods.empty()) *error = "respond needs at least one METHOD";
  if (a->command.empty()) *error = "respond needs -- CMD [ARG...] after the methods";
  return error->empty();
}

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

int RespondCommand(int argc, char** argv) {
  if (IsHelp(argc, argv)) {
    std::puts(kRespondUsage);
    return kExitOk;
  }
  RespondArgs a;
  std::string error;
  if (!ParseRespondArgs(argc, argv, &a, &error)) return Usage(error, kRespondUsage);
  std::signal(SIGINT, OnRespondStopSignal);
  std::signal(SIGTERM, OnRespondStopSignal);
  CallQueue queue;
  cl::ResponderOptions o;
  o.socket_path = a.socket;
  o.methods = a.methods;
  auto responder = cl::Responder::Open(o, [&queue](const cl::IncomingCall& c) { queue.Push(c); });
  if (!responder.ok()) {
    std::fprintf(stderr, "edgespool: respond at %s: %s\n", a.socket.c_str(),
                 responder.status().ToString().c_str());
    return responder.status().code() == Code::kInvalidArgument ? kExitDataErr : kExitUnavailable;
  }
  std::vector<std::thread> workers;
  for (int64_t i = 0; i < a.jobs; ++i) {
    workers.emplace_back([&] {
      cl::IncomingCall c;
      while (queue.Pop(&c)) Serve(**responder, a.command, c);
    });
  }
  std::fprintf(stderr, "edgespool: responding to %zu method(s)\n", a.methods.size());
  while (!g_stop) usleep(100000);
  queue.Stop();
  for (std::thread& t : workers) t.join();
  return kExitOk;
}

}  // namespace edgespool::agent
