#include "agent/client/io_thread.h"

#include <cstdio>
#include <cstdlib>
#include <future>

#include "platform/loop.h"
#include "platform/process_info.h"

namespace edgespool::client {

Result<std::shared_ptr<IoThread>> IoThread::GivenOrStart(std::shared_ptr<IoThread> given) {
  if (given) return given;
  return Start();
}

Result<std::shared_ptr<IoThread>> IoThread::Start() {
  auto loop = platform::Loop::Create();
  if (!loop.ok()) return loop.status();
  std::shared_ptr<IoThread> io(new IoThread());
  io->loop_ = std::move(loop).value();
  // Made before the thread runs the loop, so no one races on it.
  io->keepalive_ = std::make_unique<platform::AsyncHandle>(*io->loop_, [] {});
  IoThread* self = io.get();
  std::promise<void> bound;
  io->thread_ = std::thread([self, &bound] {
    platform::SetThreadName("es-producer-sdk");
    self->loop_->BindToCurrentThread();
    bound.set_value();
    self->loop_->Run();
  });
  // Callers ask loop().InLoopThread() from the moment Start returns.
  bound.get_future().wait();
  return io;
}

IoThread::~IoThread() {
  loop_->Post([this] {
    keepalive_.reset();
    loop_->Stop();
  });
  thread_.join();
  loop_->BindToCurrentThread();  // ~Loop runs the close callbacks still due
  loop_.reset();
}

void ShutDownFromOutside(platform::Loop& loop, const char* what, std::function<void()> shutdown,
                         std::promise<void>& done) {
  if (loop.InLoopThread()) {
    std::fprintf(stderr,
                 "edgespool client: %s destroyed from a callback on its own SDK thread "
                 "(see agent/client/io_thread.h)\n",
                 what);
    std::abort();
  }
  loop.Post(std::move(shutdown));
  done.get_future().wait();
}

}  // namespace edgespool::client
