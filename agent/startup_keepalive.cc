#include "agent/startup_keepalive.h"

#include <utility>

#include "platform/log.h"
#include "platform/process_info.h"

namespace edgespool::agent {

StartupKeepalive::StartupKeepalive(const std::string& socket_path, Timing timing)
    : notifier_(socket_path, 0), timing_(timing) {
  if (!notifier_.enabled()) return;
  thread_ = std::thread([this] {
    platform::SetThreadName("es-startup");
    ThreadMain();
  });
}

StartupKeepalive::~StartupKeepalive() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void StartupKeepalive::Step(const std::string& name) {
  ES_LOG_INFO("start-up step that may take long", {{"step", name}});
  {
    std::lock_guard<std::mutex> lock(mu_);
    step_ = name;
    step_new_ = true;
  }
  cv_.notify_all();
}

uint64_t StartupKeepalive::sent() const {
  std::lock_guard<std::mutex> lock(mu_);
  return sent_;
}

void StartupKeepalive::ThreadMain() {
  std::unique_lock<std::mutex> lock(mu_);
  // Quiet at first: a quick start sends nothing but READY=1.
  cv_.wait_for(lock, timing_.quiet, [this] { return stop_ || step_new_; });
  while (!stop_) {
    step_new_ = false;
    std::string step = step_;
    lock.unlock();
    Send(step);
    lock.lock();
    cv_.wait_for(lock, timing_.period, [this] { return stop_ || step_new_; });
  }
}

void StartupKeepalive::Send(const std::string& step) {
  std::string msg = "EXTEND_TIMEOUT_USEC=" + std::to_string(timing_.extend.count()) +
                    "\nSTATUS=starting: " + (step.empty() ? "opening the journal" : step);
  ::edgespool::Status s = notifier_.Notify(msg);
  std::lock_guard<std::mutex> lock(mu_);
  if (s.ok()) ++sent_;
}

}  // namespace edgespool::agent
