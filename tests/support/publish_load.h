// A steady producer load from a thread, for tests that land a fault or a
// reload in the middle of it (agent_reload_test, uplink_failover_test,
// rabbitmq_cluster_interop_test). Each message is a TelemetryPayload with a
// unique id, recorded into a QueueChecker afterwards.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <future>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "agent/client/producer.h"
#include "tests/support/e2e_fixture.h"

namespace edgespool::testing {

// Publishes `count` telemetry messages ("<prefix><i>") from a thread, `chunk`
// at a time, each chunk waited for (10 s at most) before the next, with a
// pause between chunks: a steady load that a reload lands in the middle of.
class Load {
 public:
  struct Sent {
    std::string id;
    int index;
    bool acked;
    std::optional<client::ErrorCode> code;
  };

  Load(client::Producer& producer, std::string prefix, int count,
       std::function<std::string(int)> topic_of, int chunk = 100, int pause_ms = 5)
      : producer_(producer),
        prefix_(std::move(prefix)),
        count_(count),
        topic_of_(std::move(topic_of)),
        chunk_(chunk),
        pause_ms_(pause_ms) {}
  ~Load() { Join(); }

  void Start() {
    thread_ = std::thread([this] { Run(); });
  }
  void Join() {
    if (thread_.joinable()) thread_.join();
  }
  // Messages answered so far (acked or refused).
  int answered() const { return answered_.load(); }
  bool WaitAnswered(int n, int timeout_ms) {
    return WaitUntil([&] { return answered_.load() >= n || done_.load(); }, timeout_ms) &&
           answered_.load() >= n;
  }
  std::vector<Sent> results() {
    std::lock_guard<std::mutex> lock(mu_);
    return results_;
  }
  void Record(QueueChecker* checker) {
    for (const Sent& s : results()) checker->Published(s.id, s.acked);
  }

 private:
  void Run() {
    for (int start = 0; start < count_; start += chunk_) {
      std::vector<std::pair<int, std::future<client::PublishResult>>> futures;
      for (int i = start; i < std::min(count_, start + chunk_); ++i) {
        client::PublishOptions o;
        o.id = prefix_ + std::to_string(i);
        o.ts_ms = 1733000000000 + i;
        futures.emplace_back(
            i, producer_.Publish(topic_of_(i), TelemetryPayload(o.id, *o.ts_ms, i), o));
      }
      for (auto& [i, f] : futures) {
        Sent s{prefix_ + std::to_string(i), i, false, std::nullopt};
        if (f.wait_for(std::chrono::seconds(10)) == std::future_status::ready) {
          client::PublishResult r = f.get();
          s.acked = r.status.ok();
          s.code = r.code;
        }
        std::lock_guard<std::mutex> lock(mu_);
        results_.push_back(s);
      }
      answered_ = std::min(count_, start + chunk_);
      std::this_thread::sleep_for(std::chrono::milliseconds(pause_ms_));
    }
    done_ = true;
  }

  client::Producer& producer_;
  std::string prefix_;
  int count_;
  std::function<std::string(int)> topic_of_;
  int chunk_, pause_ms_;
  std::thread thread_;
  std::atomic<int> answered_{0};
  std::atomic<bool> done_{false};
  std::mutex mu_;
  std::vector<Sent> results_;
};

}  // namespace edgespool::testing
