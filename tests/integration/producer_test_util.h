// Helpers for the producer server tests: a server harness (loop + real
// Journal + ProducerServer on their own thread, as in the daemon) and a raw
// blocking socket client that speaks frames byte for byte.
#pragma once

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <future>
#include <memory>
#include <string>
#include <thread>

#include "agent/server/producer_server.h"
#include "agent/protocol/frame.h"
#include "agent/protocol/reply.h"
#include "agent/protocol/request.h"
#include "platform/loop.h"
#include "store/journal.h"
#include "tests/support/test_env.h"

namespace edgespool::testing {

struct HarnessOptions {
  store::JournalOptions journal;
  agent::ProducerServerOptions server;
  agent::ProducerServerHooks hooks;
};

// Runs Loop + Journal + ProducerServer on a thread of their own; tests reach
// them through Call(), which runs a function on that thread and waits.
class ServerHarness {
 public:
  ServerHarness(const std::string& dir, HarnessOptions options) : options_(std::move(options)) {
    platform::IgnoreSigpipe();  // as the daemon does
    if (options_.journal.path.empty()) options_.journal.path = dir + "/journal.db";
    if (options_.server.socket_path == "/run/edgespool/edgespool.sock") {
      options_.server.socket_path = dir + "/producer.sock";
    }
  }
  ~ServerHarness() { Stop(); }

  Status Start() {
    auto ready_p = std::make_shared<std::promise<Status>>();
    auto f = ready_p->get_future();
    thread_ = std::thread([this, ready_p] {
      std::promise<Status>& ready = *ready_p;
      auto loop = platform::Loop::Create();
      if (!loop.ok()) return ready.set_value(loop.status());
      loop_ = std::move(loop).value();
      auto j = store::Journal::Open(*loop_, options_.journal);
      if (!j.ok()) return ready.set_value(j.status());
      journal_ = std::move(j).value();
      auto s = agent::ProducerServer::Start(*loop_, *journal_, options_.server, options_.hooks);
      if (!s.ok()) return ready.set_value(s.status());
      server_ = std::move(s).value();
      ready.set_value(Status::Ok());
      loop_->Run();
      server_.reset();
      journal_.reset();
      // loop_ itself goes in Stop(), after the join: Stop() may be posting
      // to it right now (the loop can run out of work before it is told to
      // stop).
    });
    Status st = f.get();
    if (!st.ok()) {
      thread_.join();
      journal_.reset();
      loop_.reset();
    }
    return st;
  }

  // Stops the server (closing every connection), then the journal.
  void Stop() {
    if (!thread_.joinable()) return;
    loop_->Post([this] {
      server_.reset();
      journal_.reset();
      loop_->Stop();
    });
    thread_.join();
    loop_->BindToCurrentThread();
    loop_.reset();
  }

  template <typename F>
  auto Call(F fn) -> decltype(fn()) {
    auto p = std::make_shared<std::promise<decltype(fn())>>();
    auto f = p->get_future();
    loop_->Post([p, &fn] { p->set_value(fn()); });
    return f.get();
  }

  // Runs fn(journal) on the loop thread and waits for it to return.
  template <typename F>
  void WithJournal(F fn) {
    Call([&] {
      fn(*journal_);
      return 0;
    });
  }

  agent::ProducerServerStats Stats() {
    return Call([this] { return server_->stats(); });
  }
  store::JournalStats JournalStats() {
    return Call([this] { return journal_->stats(); });
  }
  Result<store::QueryResult> QueryById(const std::string& id) {
    auto p = std::make_shared<std::promise<Result<store::QueryResult>>>();
    auto f = p->get_future();
    loop_->Post([this, p, id] {
      journal_->QueryById(id, [p](Result<store::QueryResult> r) { p->set_value(std::move(r)); });
    });
    return f.get();
  }
  void NotifyDelivery(uint64_t seq, store::MessageState state, const std::string& reason) {
    Call([&] {
      server_->NotifyDelivery(seq, state, reason);
      return 0;
    });
  }
  const std::string& socket_path() const { return options_.server.socket_path; }
  // For handles made on the loop thread (inside Call/WithJournal).
  platform::Loop& loop() { return *loop_; }

 private:
  HarnessOptions options_;
  std::thread thread_;
  std::unique_ptr<platform::Loop> loop_;
  std::unique_ptr<store::Journal> journal_;
  std::unique_ptr<agent::ProducerServer> server_;
};

// A blocking Unix-socket client that reads and writes raw frames.
class RawClient {
 public:
  RawClient() = default;
  ~RawClient() { Close(); }
  RawClient(RawClient&& o) noexcept : fd_(o.fd_), buf_(std::move(o.buf_)) { o.fd_ = -1; }

  bool Connect(const std::string& path) {
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
    return fd_ >= 0 && ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  }
  void Close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  void ShutdownWrite() { ::shutdown(fd_, SHUT_WR); }
  int fd() const { return fd_; }

  bool Send(std::string_view bytes) {
    while (!bytes.empty()) {
      ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      bytes.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }
  bool SendFrame(const std::string& header, const std::string& body = "") {
    return Send(protocol::EncodeFrame(header, body));
  }

  // One frame, or false on EOF / timeout.
  bool ReadFrame(std::string* header, std::string* body, int timeout_ms = 10000) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (true) {
      if (buf_.size() >= 8) {
        auto u32 = [this](size_t i) {
          const auto* p = reinterpret_cast<const unsigned char*>(buf_.data() + i);
          return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
        };
        size_t hl = u32(0), bl = u32(4);
        if (buf_.size() >= 8 + hl + bl) {
          *header = buf_.substr(8, hl);
          if (body) *body = buf_.substr(8 + hl, bl);
          buf_.erase(0, 8 + hl + bl);
          return true;
        }
      }
      int left = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                      deadline - std::chrono::steady_clock::now())
                                      .count());
      if (left <= 0) return false;
      pollfd pfd{fd_, POLLIN, 0};
      if (::poll(&pfd, 1, left) <= 0) return false;
      char tmp[65536];
      ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
      if (n <= 0) return false;
      buf_.append(tmp, static_cast<size_t>(n));
    }
  }
  bool ReadReply(protocol::Reply* reply, std::string* body = nullptr, int timeout_ms = 10000) {
    std::string header, error;
    if (!ReadFrame(&header, body, timeout_ms)) return false;
    bool ok = protocol::ParseReply(header, reply, &error);
    EXPECT_TRUE(ok) << header;
    return ok;
  }
  // True when the peer closed (EOF or reset) within timeout_ms, with no
  // further frame in between.
  bool ClosedByPeer(int timeout_ms = 5000) {
    pollfd pfd{fd_, POLLIN, 0};
    if (::poll(&pfd, 1, timeout_ms) <= 0) return false;
    char c;
    return ::recv(fd_, &c, 1, 0) <= 0;
  }

 private:
  int fd_ = -1;
  std::string buf_;
};

inline std::string PublishHeader(int64_t req, const std::string& topic,
                                 const std::string& extra = "") {
  return "{\"op\":\"publish\",\"req\":" + std::to_string(req) + ",\"topic\":\"" + topic + "\"" +
         extra + "}";
}

}  // namespace edgespool::testing
