// server::Connection's output order over a real Unix socket: replies in
// request order, and a pushed frame (Push) after every reply that was complete
// when it was pushed, never before, without waiting for the incomplete ones.
// The loop runs on the test thread; the peer is a blocking client socket.
#include "agent/server/connection.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <string>
#include <vector>

#include "tests/support/test_env.h"

namespace edgespool::agent::server {
namespace {

namespace pr = ::edgespool::protocol;

class NullOwner : public ConnectionOwner {
 public:
  bool OnFrame(Connection&, const pr::Frame&) override { return true; }
  void OnBadStream(Connection&, const std::string&) override {}
  bool ReadingBlocked() const override { return false; }
  void OnClosing(Connection&) override {}
};

pr::Reply Answer(int64_t req) {
  pr::Reply r;
  r.req = req;
  r.ok = true;
  return r;
}

// What the client sees of each frame: the reply's req, or the pushed header.
std::string Name(std::string_view header) {
  pr::Reply r;
  std::string error;
  if (pr::ParseReply(header, &r, &error) && r.req) return "reply " + std::to_string(*r.req);
  return std::string(header);
}

class ConnectionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto loop = platform::Loop::Create();
    ASSERT_TRUE(loop.ok());
    loop_ = std::move(loop).value();
    conns_ = std::make_unique<Connections>(*loop_, owner_, Connection::Bounds{}, 1 << 16);
    conns_->Start({});
    std::string path = dir_.File("s.sock");
    auto listener = platform::Listener::ListenUnix(
        *loop_, path, 0600, 16,
        [this](std::unique_ptr<platform::Stream> s) { conn_ = &conns_->Add(std::move(s)); });
    ASSERT_TRUE(listener.ok()) << listener.status().ToString();
    listener_ = std::move(listener).value();
    client_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
    ASSERT_EQ(::connect(client_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    for (int i = 0; i < 1000 && !conn_; ++i) loop_->RunOnce();
    ASSERT_NE(conn_, nullptr);
  }

  void TearDown() override {
    if (client_ >= 0) ::close(client_);
    listener_.reset();
    conns_.reset();
    loop_->RunNoWait();
  }

  // Runs loop turns (the flush) and collects what the client receives for
  // wait_ms, or until `want` frames arrived.
  std::vector<std::string> Receive(size_t want, int wait_ms = 2000) {
    auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(wait_ms);
    while (got_.size() < want && std::chrono::steady_clock::now() < until) {
      loop_->RunNoWait();
      pollfd p{client_, POLLIN, 0};
      if (::poll(&p, 1, 10) != 1) continue;
      char buf[4096];
      ssize_t n = ::read(client_, buf, sizeof buf);
      if (n <= 0) break;
      Status st = decoder_.Feed(buf, static_cast<size_t>(n), [this](const pr::Frame& f) {
        got_.push_back(Name(f.header));
        return true;
      });
      EXPECT_TRUE(st.ok()) << st.ToString();
    }
    return got_;
  }

  void PushNamed(const std::string& name) { conn_->Push(pr::EncodeFrame(name, {})); }

  edgespool::testing::TempDir dir_;
  std::unique_ptr<platform::Loop> loop_;
  NullOwner owner_;
  std::unique_ptr<Connections> conns_;
  std::unique_ptr<platform::Listener> listener_;
  Connection* conn_ = nullptr;
  int client_ = -1;
  pr::FrameDecoder decoder_{1 << 20, 1 << 20};
  std::vector<std::string> got_;
};

TEST_F(ConnectionTest, RepliesGoOutInRequestOrder) {
  uint64_t a = conn_->PushSlot(10);
  uint64_t b = conn_->PushSlot(10);
  conn_->CompleteSlot(b, Answer(2));
  conn_->ReplyNow(Answer(3));
  EXPECT_TRUE(Receive(1, 100).empty());  // all behind request 1
  conn_->CompleteSlot(a, Answer(1));
  EXPECT_EQ(Receive(3), (std::vector<std::string>{"reply 1", "reply 2", "reply 3"}));
}

TEST_F(ConnectionTest, PushWithNoCompleteReplyWaitingGoesOutAtOnce) {
  uint64_t a = conn_->PushSlot(0);
  PushNamed("push 1");
  // Not behind request 1, whose reply was not complete when it was pushed.
  EXPECT_EQ(Receive(1), (std::vector<std::string>{"push 1"}));
  conn_->CompleteSlot(a, Answer(1));
  EXPECT_EQ(Receive(2), (std::vector<std::string>{"push 1", "reply 1"}));
}

TEST_F(ConnectionTest, PushGoesAfterEveryReplyCompleteWhenPushed) {
  uint64_t a = conn_->PushSlot(0);
  uint64_t b = conn_->PushSlot(0);
  conn_->CompleteSlot(b, Answer(2));  // complete, held behind request 1
  PushNamed("push 1");                // so the push waits behind it too
  uint64_t c = conn_->PushSlot(0);
  EXPECT_TRUE(Receive(1, 100).empty());
  conn_->CompleteSlot(a, Answer(1));
  EXPECT_EQ(Receive(3), (std::vector<std::string>{"reply 1", "reply 2", "push 1"}));
  PushNamed("push 2");  // request 3 is incomplete: not waited for
  EXPECT_EQ(Receive(4), (std::vector<std::string>{"reply 1", "reply 2", "push 1", "push 2"}));
  conn_->CompleteSlot(c, Answer(3));
  EXPECT_EQ(Receive(5),
            (std::vector<std::string>{"reply 1", "reply 2", "push 1", "push 2", "reply 3"}));
}

TEST_F(ConnectionTest, PushWaitsForTheHighestCompleteReplyNotTheLastCompleted) {
  uint64_t a = conn_->PushSlot(0);
  uint64_t b = conn_->PushSlot(0);
  uint64_t c = conn_->PushSlot(0);
  uint64_t d = conn_->PushSlot(0);
  conn_->CompleteSlot(c, Answer(3));
  conn_->CompleteSlot(b, Answer(2));  // completed last, but 3 is behind it
  PushNamed("push 1");
  EXPECT_TRUE(Receive(1, 100).empty());
  conn_->CompleteSlot(a, Answer(1));
  EXPECT_EQ(Receive(4), (std::vector<std::string>{"reply 1", "reply 2", "reply 3", "push 1"}));
  conn_->CompleteSlot(d, Answer(4));
  EXPECT_EQ(Receive(5).back(), "reply 4");
}

TEST_F(ConnectionTest, SeveralPushesKeepTheirOrder) {
  uint64_t a = conn_->PushSlot(0);
  uint64_t b = conn_->PushSlot(0);
  conn_->CompleteSlot(b, Answer(2));
  PushNamed("push 1");
  PushNamed("push 2");
  conn_->CompleteSlot(a, Answer(1));
  EXPECT_EQ(Receive(4), (std::vector<std::string>{"reply 1", "reply 2", "push 1", "push 2"}));
}

}  // namespace
}  // namespace edgespool::agent::server
