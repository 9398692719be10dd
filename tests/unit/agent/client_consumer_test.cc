// The Consumer SDK's framing and flow control against a small in-test peer
// that speaks the agent's side of the consumer ops over a real Unix socket:
// what the SDK sends (subscribe, acks, unsubscribe), how it takes pushed
// messages and replies, its window bound, refusals, reconnects, the C API.
// Against the real agent: tests/integration/consumer_client_test.cc.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "agent/client/consumer.h"
#include "agent/client/edgespool_client.h"
#include "agent/protocol/frame.h"
#include "agent/protocol/message.h"
#include "agent/protocol/reply.h"
#include "agent/protocol/request.h"
#include "tests/support/test_env.h"

namespace edgespool::client {
namespace {

namespace pr = ::edgespool::protocol;

// The agent's side, blocking, one connection at a time.
class Peer {
 public:
  explicit Peer(std::string path) : path_(std::move(path)) {
    listen_fd_ = socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path_.c_str(), sizeof addr.sun_path - 1);
    EXPECT_EQ(bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    EXPECT_EQ(listen(listen_fd_, 4), 0);
  }
  ~Peer() {
    CloseConnection();
    close(listen_fd_);
  }

  void Accept() {
    CloseConnection();
    fd_ = accept(listen_fd_, nullptr, nullptr);
    ASSERT_GE(fd_, 0);
    timeval tv{5, 0};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  void CloseConnection() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }

  // The next request; nullopt on EOF or timeout.
  std::optional<pr::Request> Read() {
    std::string prefix = ReadBytes(pr::kPrefixBytes);
    if (prefix.size() != pr::kPrefixBytes) return std::nullopt;
    auto u32 = [&](int at) {
      uint32_t v = 0;
      for (int i = 0; i < 4; ++i) v = (v << 8) | static_cast<unsigned char>(prefix[at + i]);
      return v;
    };
    std::string header = ReadBytes(u32(0));
    ReadBytes(u32(4));
    pr::Request r;
    pr::RequestError e;
    EXPECT_TRUE(pr::ParseRequest(header, &r, &e)) << header << ": " << e.message;
    return r;
  }
  bool AtEof() {
    char c;
    return recv(fd_, &c, 1, 0) == 0;
  }

  void Reply(const pr::Reply& r) { Write([&](std::string* out) { pr::AppendReplyFrame(out, r); }); }
  void SubscribeOk(int64_t req, uint64_t position, bool resumed = false) {
    pr::Reply r;
    r.req = req;
    r.ok = true;
    r.session = "s";
    r.seq = position;
    r.resumed = resumed;
    Reply(r);
  }
  void Message(uint64_t seq, const std::string& payload) {
    pr::PushedMessage m;
    m.session = "s";
    m.seq = seq;
    m.topic = "down/" + std::to_string(seq);
    m.broker_topic = "edgespool/gw/down/" + std::to_string(seq);
    m.ts_ms = 1000 + static_cast<int64_t>(seq);
    m.headers = {{"k", "v"}};
    m.correlation = "\x01\x02";
    Write([&](std::string* out) { pr::AppendMessageFrame(out, m, payload); });
  }

 private:
  template <typename F>
  void Write(F&& build) {
    std::string out;
    build(&out);
    ASSERT_EQ(send(fd_, out.data(), out.size(), MSG_NOSIGNAL), static_cast<ssize_t>(out.size()));
  }
  std::string ReadBytes(size_t n) {
    std::string s(n, '\0');
    size_t got = 0;
    while (got < n) {
      ssize_t k = recv(fd_, s.data() + got, n - got, 0);
      if (k <= 0) break;
      got += static_cast<size_t>(k);
    }
    s.resize(got);
    return s;
  }

  std::string path_;
  int listen_fd_ = -1;
  int fd_ = -1;
};

class ConsumerTest : public ::testing::Test {
 protected:
  ConsumerOptions Options(std::string session = "s") {
    ConsumerOptions o;
    o.socket_path = dir_.File("agent.sock");
    o.session = std::move(session);
    o.filters = {"down/#", "config/+"};
    o.window = 3;
    o.connect_timeout_ms = 3000;
    o.backoff_initial_ms = 10;
    o.backoff_max_ms = 50;
    return o;
  }
  // Open() on a thread while the peer answers the subscribe.
  Result<std::unique_ptr<Consumer>> OpenWith(ConsumerOptions o, Consumer::Callback cb,
                                            pr::Request* subscribe, uint64_t position = 0) {
    std::optional<Result<std::unique_ptr<Consumer>>> result;
    std::thread t([&] { result.emplace(Consumer::Open(std::move(o), std::move(cb))); });
    peer_.Accept();
    auto r = peer_.Read();
    EXPECT_TRUE(r);
    if (r) {
      *subscribe = *r;
      peer_.SubscribeOk(*r->req, position);
    }
    t.join();
    return std::move(*result);
  }

  testing::TempDir dir_;
  Peer peer_{dir_.File("agent.sock")};
};

TEST_F(ConsumerTest, SubscribesReceivesInOrderAndAcks) {
  ConsumerOptions o = Options();
  o.from = ConsumerOptions::From::kSeq;
  o.from_seq = 5;
  pr::Request sub;
  auto c = OpenWith(std::move(o), {}, &sub, /*position=*/4);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(sub.op, pr::Op::kSubscribe);
  EXPECT_EQ(sub.subscribe.session, "s");
  EXPECT_EQ(sub.subscribe.filters, (std::vector<std::string>{"down/#", "config/+"}));
  EXPECT_EQ(sub.subscribe.from, pr::SubscribeFields::kSeq);
  EXPECT_EQ(sub.subscribe.from_seq, 5u);
  EXPECT_EQ(sub.subscribe.window, 3u);
  EXPECT_EQ((*c)->acked_position(), 4u);

  auto none = (*c)->Next(50);
  EXPECT_EQ(none.status().code(), Code::kTimeout);
  peer_.Message(5, "five");
  peer_.Message(7, std::string("se\0ven", 6));
  auto m5 = (*c)->Next(2000);
  ASSERT_TRUE(m5.ok()) << m5.status().ToString();
  EXPECT_EQ(m5->seq, 5u);
  EXPECT_EQ(m5->topic, "down/5");
  EXPECT_EQ(m5->broker_topic, "edgespool/gw/down/5");
  EXPECT_EQ(m5->ts_ms, 1005);
  EXPECT_EQ(m5->payload, "five");
  EXPECT_EQ(m5->correlation, "\x01\x02");
  ASSERT_EQ(m5->headers.size(), 1u);
  auto m7 = (*c)->Next(2000);
  ASSERT_TRUE(m7.ok());
  EXPECT_EQ(m7->payload, std::string("se\0ven", 6));

  // Out of order: 7 acked alone leaves the position at 5's predecessor.
  ASSERT_TRUE((*c)->Ack(7).ok());
  EXPECT_EQ((*c)->acked_position(), 4u);
  ASSERT_TRUE((*c)->Ack(5).ok());
  EXPECT_EQ((*c)->acked_position(), 7u);
  auto a7 = peer_.Read();
  ASSERT_TRUE(a7);
  EXPECT_EQ(a7->op, pr::Op::kAck);
  EXPECT_EQ(a7->ack.session, "s");
  EXPECT_EQ(a7->ack.seq, 7u);
  auto a5 = peer_.Read();
  ASSERT_TRUE(a5);
  EXPECT_EQ(a5->ack.seq, 5u);
  ASSERT_TRUE((*c)->AckUpTo(9).ok());
  auto up = peer_.Read();
  ASSERT_TRUE(up);
  EXPECT_EQ(up->ack.up_to, 9u);
  EXPECT_EQ((*c)->acked_position(), 9u);
  EXPECT_EQ((*c)->Ack(0).code(), Code::kInvalidArgument);
}

TEST_F(ConsumerTest, CloseUnsubscribesAndWaitsForTheAnswer) {
  pr::Request sub;
  auto c = OpenWith(Options(), {}, &sub);
  ASSERT_TRUE(c.ok());
  std::thread agent([&] {
    auto r = peer_.Read();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->op, pr::Op::kUnsubscribe);
    EXPECT_EQ(r->unsubscribe.session, "s");
    EXPECT_TRUE(r->unsubscribe.end);
    pr::Reply ok;
    ok.req = r->req;
    ok.ok = true;
    peer_.Reply(ok);
    EXPECT_TRUE(peer_.AtEof());
  });
  EXPECT_TRUE((*c)->Close(/*end=*/true).ok());
  agent.join();
  EXPECT_EQ((*c)->Next(10).status().code(), Code::kCancelled);
  EXPECT_EQ((*c)->Ack(1).code(), Code::kCancelled);
  EXPECT_EQ((*c)->Close().code(), Code::kCancelled);
}

// The agent promised the window; a peer that breaks it is cut off before
// the SDK buffers more, and the SDK comes back for what it had not acked.
TEST_F(ConsumerTest, MoreThanTheWindowIsAProtocolErrorAndResumes) {
  pr::Request sub;
  auto c = OpenWith(Options(/*session=*/""), {}, &sub);  // anonymous
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(sub.subscribe.from, pr::SubscribeFields::kDefault);
  for (uint64_t seq = 10; seq <= 13; ++seq) peer_.Message(seq, "x");
  EXPECT_TRUE(peer_.AtEof());
  peer_.Accept();
  auto again = peer_.Read();
  ASSERT_TRUE(again);
  EXPECT_EQ(again->op, pr::Op::kSubscribe);
  // Nothing acked: an anonymous session starts again at the first delivered.
  EXPECT_EQ(again->subscribe.from, pr::SubscribeFields::kSeq);
  EXPECT_EQ(again->subscribe.from_seq, 10u);
  peer_.SubscribeOk(*again->req, 0);
  peer_.Message(10, "x");
  auto m = (*c)->Next(2000);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->seq, 10u);
  EXPECT_GE((*c)->reconnects(), 1u);
}

TEST_F(ConsumerTest, DurableSessionResumesWithoutFromAfterADrop) {
  ConsumerOptions o = Options();
  o.from = ConsumerOptions::From::kOldest;
  pr::Request sub;
  auto c = OpenWith(std::move(o), {}, &sub);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(sub.subscribe.from, pr::SubscribeFields::kOldest);
  peer_.Message(1, "a");
  peer_.Message(2, "b");
  ASSERT_EQ((*c)->Next(2000)->seq, 1u);
  ASSERT_TRUE((*c)->Ack(1).ok());
  ASSERT_TRUE(peer_.Read());  // the ack
  peer_.CloseConnection();
  peer_.Accept();
  auto again = peer_.Read();
  ASSERT_TRUE(again);
  EXPECT_EQ(again->subscribe.from, pr::SubscribeFields::kDefault);  // the agent's position
  peer_.SubscribeOk(*again->req, 1, /*resumed=*/true);
  peer_.Message(2, "b");
  auto m = (*c)->Next(2000);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->seq, 2u);
  EXPECT_EQ((*c)->acked_position(), 1u);
}

TEST_F(ConsumerTest, RefusedSubscribeFailsOpen) {
  std::optional<Result<std::unique_ptr<Consumer>>> result;
  std::thread t([&] { result.emplace(Consumer::Open(Options())); });
  peer_.Accept();
  auto r = peer_.Read();
  ASSERT_TRUE(r);
  peer_.Reply(pr::ErrorReply(r->req, pr::ErrorCode::kBadRequest, "filters[0]: bad"));
  t.join();
  ASSERT_FALSE(result->ok());
  EXPECT_EQ(result->status().code(), Code::kInvalidArgument);
  EXPECT_NE(result->status().message().find("filters[0]: bad"), std::string::npos);
}

TEST_F(ConsumerTest, BusySessionIsRetried) {
  std::optional<Result<std::unique_ptr<Consumer>>> result;
  std::thread t([&] { result.emplace(Consumer::Open(Options())); });
  peer_.Accept();
  auto r = peer_.Read();
  ASSERT_TRUE(r);
  pr::Reply busy = pr::ErrorReply(r->req, pr::ErrorCode::kBusy, "session attached elsewhere");
  busy.retry_after_ms = 20;
  peer_.Reply(busy);
  EXPECT_TRUE(peer_.AtEof());
  peer_.Accept();
  auto again = peer_.Read();
  ASSERT_TRUE(again);
  peer_.SubscribeOk(*again->req, 0);
  t.join();
  EXPECT_TRUE(result->ok()) << result->status().ToString();
}

TEST_F(ConsumerTest, NoAgentIsUnavailable) {
  ConsumerOptions o = Options();
  o.socket_path = dir_.File("nobody.sock");
  o.connect_timeout_ms = 200;
  auto c = Consumer::Open(std::move(o));
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), Code::kUnavailable);
  o = Options();
  o.filters.clear();
  EXPECT_EQ(Consumer::Open(std::move(o)).status().code(), Code::kInvalidArgument);
}

TEST_F(ConsumerTest, CallbackRunsOnTheSdkThreadAndMayAck) {
  std::atomic<int> calls{0};
  std::thread::id caller = std::this_thread::get_id();
  std::atomic<bool> other_thread{true};
  Consumer* self = nullptr;
  std::atomic<bool> ready{false};
  pr::Request sub;
  auto c = OpenWith(
      Options(),
      [&](const ReceivedMessage& m) {
        if (std::this_thread::get_id() == caller) other_thread = false;
        while (!ready) std::this_thread::yield();
        EXPECT_TRUE(self->Ack(m.seq).ok());
        ++calls;
      },
      &sub);
  ASSERT_TRUE(c.ok());
  self = c->get();
  ready = true;
  EXPECT_EQ((*c)->Next(10).status().code(), Code::kInvalidArgument);
  for (uint64_t seq = 1; seq <= 6; ++seq) {  // twice the window: acks make room
    peer_.Message(seq, "m");
    auto ack = peer_.Read();
    ASSERT_TRUE(ack);
    EXPECT_EQ(ack->ack.seq, seq);
  }
  EXPECT_EQ(calls.load(), 6);
  EXPECT_TRUE(other_thread.load());
  EXPECT_EQ((*c)->acked_position(), 6u);
}

struct CState {
  std::atomic<int> calls{0};
  edgespool_consumer* consumer = nullptr;
  std::atomic<bool> ready{false};
  std::string topic, payload, correlation, header;
};

TEST_F(ConsumerTest, CApi) {
  CState state;
  const char* filters[] = {"down/#"};
  edgespool_consumer* c = nullptr;
  EXPECT_EQ(edgespool_consumer_open(dir_.File("agent.sock").c_str(), "s", filters, 0,
                                    EDGESPOOL_FROM_DEFAULT, nullptr, nullptr, &c),
            EDGESPOOL_ERR_INVALID_ARGUMENT);
  int rc = 1;
  std::thread t([&] {
    rc = edgespool_consumer_open(
        dir_.File("agent.sock").c_str(), "s", filters, 1, EDGESPOOL_FROM_OLDEST,
        [](const edgespool_message* m, void* user) {
          auto* s = static_cast<CState*>(user);
          while (!s->ready) std::this_thread::yield();
          s->topic = m->topic;
          s->payload.assign(static_cast<const char*>(m->payload), m->payload_len);
          s->correlation.assign(static_cast<const char*>(m->correlation), m->correlation_len);
          if (m->header_count == 1) s->header = std::string(m->header_keys[0]) + "=" + m->header_values[0];
          EXPECT_EQ(edgespool_consumer_ack(s->consumer, m->seq), EDGESPOOL_OK);
          ++s->calls;
        },
        &state, &c);
  });
  peer_.Accept();
  auto sub = peer_.Read();
  ASSERT_TRUE(sub);
  EXPECT_EQ(sub->subscribe.from, pr::SubscribeFields::kOldest);
  peer_.SubscribeOk(*sub->req, 0);
  t.join();
  ASSERT_EQ(rc, EDGESPOOL_OK);
  state.consumer = c;
  state.ready = true;
  peer_.Message(3, "three");
  auto ack = peer_.Read();
  ASSERT_TRUE(ack);
  EXPECT_EQ(ack->ack.seq, 3u);
  EXPECT_EQ(state.topic, "down/3");
  EXPECT_EQ(state.payload, "three");
  EXPECT_EQ(state.correlation, "\x01\x02");
  EXPECT_EQ(state.header, "k=v");
  EXPECT_EQ(edgespool_consumer_position(c), 3u);
  EXPECT_EQ(edgespool_consumer_ack(c, 0), EDGESPOOL_ERR_INVALID_ARGUMENT);
  std::thread agent([&] {
    auto r = peer_.Read();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->op, pr::Op::kUnsubscribe);
    pr::Reply ok;
    ok.req = r->req;
    ok.ok = true;
    peer_.Reply(ok);
  });
  EXPECT_EQ(edgespool_consumer_close(c), EDGESPOOL_OK);
  agent.join();
  EXPECT_EQ(edgespool_consumer_close(nullptr), EDGESPOOL_OK);
}

}  // namespace
}  // namespace edgespool::client
