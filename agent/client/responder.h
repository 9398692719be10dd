// libedgespool-client: serving methods the cloud calls on this gateway
// (docs/request-response.md, "Cloud -> gateway methods").
//
//   ResponderOptions o;
//   o.socket_path = "/run/edgespool/edgespool.sock";
//   o.methods = {"reboot", "config/get"};
//   auto r = edgespool::client::Responder::Open(o, [&](const IncomingCall& call) {
//     responder->Answer(call.call, "{\"ok\":true}");   // now, or later from any thread
//   });
//
// A call to edgespool/{node}/method/reboot reaches the handler (on the SDK
// thread, one at a time; it must not block) as an IncomingCall; the
// program answers it once with Answer() or AnswerError(), from the handler
// or later from any thread, within call.timeout_ms. The agent answers the
// caller itself with no_handler when no responder is registered (or this one
// disconnects with the call unanswered) and timeout when the answer is late.
//
// Why a class of its own and not a Consumer option: a responder has no
// session, no filters, no window and no acks (a call is answered, not
// acked, and is not stored), and a process may serve methods without
// consuming downlink messages. It shares the connection code (reconnect
// with backoff; on every connection it registers its methods again) and
// the IoThread with Producer and Consumer.
//
// Thread-safety: every method may be called from any thread; Answer never
// blocks. The destructor must not run on the SDK thread (see io_thread.h).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "agent/client/io_thread.h"
#include "platform/status.h"

namespace edgespool::client {

struct ResponderOptions {
  std::string socket_path = "/run/edgespool/edgespool.sock";
  std::vector<std::string> methods;   // 1..64 names; a call arrives on <method_topic>/NAME
  std::shared_ptr<IoThread> io;       // shared like ProducerOptions::io
  int64_t connect_timeout_ms = 5000;  // Open(): connect and register
  int64_t backoff_initial_ms = 50;
  int64_t backoff_max_ms = 2000;
};

struct IncomingCall {
  uint64_t call = 0;  // what Answer() takes
  std::string method;
  int64_t timeout_ms = 0;  // the agent answers timeout for us after this
  std::vector<std::pair<std::string, std::string>> headers;  // MQTT 5 user properties
  std::string payload;
};

class Responder {
 public:
  using Handler = std::function<void(const IncomingCall&)>;

  // Connects and registers the methods, waiting up to connect_timeout_ms:
  // Unavailable if the agent cannot be reached, InvalidArgument for a
  // refused name, ResourceExhausted past the agent's bound.
  static Result<std::unique_ptr<Responder>> Open(ResponderOptions options, Handler on_call);
  ~Responder();
  Responder(const Responder&) = delete;
  Responder& operator=(const Responder&) = delete;

  // The answer to a call: its payload goes to the caller. Queued for the SDK
  // thread; an answer the agent refuses (the call timed out meanwhile) is
  // kept in last_error().
  Status Answer(uint64_t call, std::string payload);
  // An error instead: code of [a-z0-9_] (e.g. "handler_error", or one of
  // the program's own), message for humans.
  Status AnswerError(uint64_t call, std::string code, std::string message);

  bool connected() const;
  uint64_t reconnects() const;
  Status last_error() const;

  class Impl;

 private:
  explicit Responder(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace edgespool::client
