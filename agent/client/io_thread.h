// The SDK's I/O thread: runs the event loop on which Producers read their
// replies, reconnect and write what callers could not.
//
// By default each Producer starts its own. Producers given the same
// IoThread (ProducerOptions::io) share one: a process with many
// connections then wakes one thread per batch of replies instead of one
// per connection (64 connections at 20,000 msg/s: see agent/cli_producer.cc).
// Callbacks of every Producer on it run on that one thread, one at a time.
//
//   auto io = edgespool::client::IoThread::Start();
//   ProducerOptions o;
//   o.io = *io;  // each Producer keeps it alive while it exists
//
// A Producer on a shared IoThread must not be destroyed from a callback
// (that thread would wait for itself): destroy it from another thread.
#pragma once

#include <functional>
#include <future>
#include <memory>
#include <thread>

#include "platform/status.h"

namespace edgespool::platform {
class Loop;
class AsyncHandle;
}  // namespace edgespool::platform

namespace edgespool::client {

class IoThread {
 public:
  static Result<std::shared_ptr<IoThread>> Start();
  // `given` when set (a shared thread), else a new one of the caller's own:
  // what ProducerOptions::io and ConsumerOptions::io mean.
  static Result<std::shared_ptr<IoThread>> GivenOrStart(std::shared_ptr<IoThread> given);
  // Stops the loop and joins the thread (the last Producer using it is gone).
  ~IoThread();
  IoThread(const IoThread&) = delete;
  IoThread& operator=(const IoThread&) = delete;

  // The SDK's: handles on it are made and used on this thread only.
  platform::Loop& loop() { return *loop_; }

 private:
  IoThread() = default;
  std::unique_ptr<platform::Loop> loop_;
  std::unique_ptr<platform::AsyncHandle> keepalive_;  // the loop runs with no Producer on it
  std::thread thread_;
};

// For the destructors of the SDK's objects (Producer, Consumer, Responder):
// runs `shutdown` on the SDK thread and waits until it has fulfilled `done`.
// Called on that thread itself (from a callback), it would wait for itself:
// it aborts instead, naming `what` ("a Producer").
void ShutDownFromOutside(platform::Loop& loop, const char* what, std::function<void()> shutdown,
                         std::promise<void>& done);

}  // namespace edgespool::client
