// A platform::Loop running on a thread of its own, for tests and benchmarks
// that drive loop-thread-only objects from an ordinary blocking thread:
// RunOnLoop(fn) runs fn on the loop thread and waits for its result. Create
// and destroy everything the loop owns through RunOnLoop; the destructor
// stops the loop and requires uv_loop_close() == 0 (platform/loop.h).
#pragma once

#include <future>
#include <memory>
#include <thread>
#include <utility>

#include "platform/loop.h"

namespace edgespool::testing {

class LoopThread {
 public:
  LoopThread() {
    loop_ = std::move(platform::Loop::Create()).value();
    // An armed timer keeps Run() from returning while nothing else is active.
    keepalive_ = std::make_unique<platform::TimerHandle>(*loop_);
    keepalive_->Start(1u << 30, 0, [] {});
    thread_ = std::thread([this] {
      loop_->BindToCurrentThread();
      loop_->Run();
    });
  }
  ~LoopThread() {
    RunOnLoop([this] {
      keepalive_.reset();
      loop_->Stop();
    });
    thread_.join();
    loop_->BindToCurrentThread();
    loop_.reset();  // runs remaining close callbacks, requires uv_loop_close == 0
  }
  LoopThread(const LoopThread&) = delete;
  LoopThread& operator=(const LoopThread&) = delete;

  platform::Loop& loop() { return *loop_; }

  template <typename F>
  auto RunOnLoop(F fn) -> decltype(fn()) {
    std::packaged_task<decltype(fn())()> task(std::move(fn));
    auto fut = task.get_future();
    loop_->Post([&task] { task(); });
    return fut.get();
  }

 private:
  std::unique_ptr<platform::Loop> loop_;
  std::unique_ptr<platform::TimerHandle> keepalive_;
  std::thread thread_;
};

}  // namespace edgespool::testing
