// The event loop and its long-lived handles: RAII owners of libuv handles.
//
// Ownership (libuv's close protocol): each wrapper owns a heap uv_*_t. Its
// destructor clears the handle's `data` and calls uv_close with a callback
// that frees the memory, so a handle's memory always outlives its close
// callback, and a late callback that finds data == nullptr returns at once.
// Handles must be destroyed before their Loop; ~Loop runs the loop until every
// close callback has run and then requires uv_loop_close() == 0.
//
// Thread-safety: everything here is loop-thread-only except Loop::Post and
// AsyncHandle::Send, which any thread may call.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "platform/status.h"

struct uv_loop_s;
struct uv_timer_s;
struct uv_async_s;
struct uv_signal_s;
struct uv_check_s;

namespace edgespool::platform {

// Turns a negative libuv error code into a Status ("connect: ECONNREFUSED ...").
Status UvStatus(int uv_error, const char* what);

class AsyncHandle;

class Loop {
 public:
  static Result<std::unique_ptr<Loop>> Create();
  ~Loop();
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;

  // Runs until Stop() or until no active handle is left.
  void Run();
  // One iteration, blocking for I/O if there is nothing ready. Returns false
  // when no active handles remain.
  bool RunOnce();
  void RunNoWait();
  void Stop();

  // Any thread: runs fn on the loop thread on a later turn. Safe to call
  // until the Loop is destroyed; functions still queued then are dropped.
  void Post(std::function<void()> fn);
  // Loop thread: destroys obj on a later turn (deferred deletion), so an
  // object can be released from inside one of its own callbacks.
  template <typename T>
  void DeferDelete(std::unique_ptr<T> obj) {
    std::shared_ptr<T> holder(std::move(obj));
    Post([holder]() mutable { holder.reset(); });
  }

  bool InLoopThread() const { return std::this_thread::get_id() == thread_id_; }
  // Rebinds the loop to the calling thread (when a loop is created on one
  // thread and run on another).
  void BindToCurrentThread() { thread_id_ = std::this_thread::get_id(); }
  // The loop's cached monotonic time in ms (updated once per iteration).
  uint64_t NowMs() const;
  void UpdateTime();

  // A read buffer shared by every stream on this loop: libuv delivers reads
  // one at a time on the loop thread, so 10,000 idle connections cost no
  // buffer memory each.
  char* read_buffer() { return read_buffer_.get(); }
  static constexpr size_t kReadBufferSize = 64 * 1024;

  uv_loop_s* raw() { return loop_; }

 private:
  Loop() = default;
  void DrainPosted();

  uv_loop_s* loop_ = nullptr;
  std::thread::id thread_id_;
  std::unique_ptr<char[]> read_buffer_;
  std::unique_ptr<AsyncHandle> post_async_;
  std::mutex post_mu_;
  std::vector<std::function<void()>> posted_;
};

// A one-shot or repeating timer.
class TimerHandle {
 public:
  explicit TimerHandle(Loop& loop);
  ~TimerHandle();
  TimerHandle(const TimerHandle&) = delete;
  TimerHandle& operator=(const TimerHandle&) = delete;
  // Restarts the timer if it was running. repeat_ms == 0: one shot.
  void Start(uint64_t timeout_ms, uint64_t repeat_ms, std::function<void()> on_fire);
  void Stop();
  bool active() const;
  // Unreferenced timers do not keep the loop alive on their own.
  void Unref();

 private:
  static void OnFire(uv_timer_s* t) noexcept;
  uv_timer_s* handle_;
  std::function<void()> on_fire_;
};

// Wakes the loop from another thread. Several Send()s may coalesce into one
// callback: the callback must drain whatever queue it guards.
class AsyncHandle {
 public:
  AsyncHandle(Loop& loop, std::function<void()> on_wake);
  ~AsyncHandle();
  AsyncHandle(const AsyncHandle&) = delete;
  AsyncHandle& operator=(const AsyncHandle&) = delete;
  void Send();  // any thread
  void Unref();

 private:
  static void OnWake(uv_async_s* a) noexcept;
  uv_async_s* handle_;
  std::function<void()> on_wake_;
};

// Delivers a signal on the loop thread.
class SignalHandle {
 public:
  explicit SignalHandle(Loop& loop);
  ~SignalHandle();
  SignalHandle(const SignalHandle&) = delete;
  SignalHandle& operator=(const SignalHandle&) = delete;
  Status Start(int signum, std::function<void(int)> on_signal);
  void Stop();
  void Unref();

 private:
  static void OnSignal(uv_signal_s* s, int signum) noexcept;
  uv_signal_s* handle_;
  std::function<void(int)> on_signal_;
};

// Runs once per loop iteration, right after I/O callbacks: where coalesced
// writes are flushed (one write per turn however many publishes were queued).
class CheckHandle {
 public:
  explicit CheckHandle(Loop& loop);
  ~CheckHandle();
  CheckHandle(const CheckHandle&) = delete;
  CheckHandle& operator=(const CheckHandle&) = delete;
  void Start(std::function<void()> on_check);
  void Stop();

 private:
  static void OnCheck(uv_check_s* c) noexcept;
  uv_check_s* handle_;
  std::function<void()> on_check_;
};

// Ignores SIGPIPE process-wide: a peer that hangs up must surface as EPIPE on
// the write, never kill the agent.
void IgnoreSigpipe();

}  // namespace edgespool::platform
