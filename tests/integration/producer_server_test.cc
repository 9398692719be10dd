// The producer server over a real Unix socket with a real Journal: every op,
// every error code, ordering, pipelining, half-close, and one bad producer
// among a hundred good ones.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <future>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/producer_test_util.h"

namespace edgespool::testing {
namespace {

using protocol::ErrorCode;
using protocol::Reply;

class ProducerServerTest : public ::testing::Test {
 protected:
  void StartServer(HarnessOptions o = {}) {
    if (!o.hooks.uplink_connected) o.hooks.uplink_connected = [this] { return uplink_.load(); };
    harness_ = std::make_unique<ServerHarness>(dir_.path(), std::move(o));
    ASSERT_TRUE(harness_->Start().ok());
  }
  RawClient Client() {
    RawClient c;
    EXPECT_TRUE(c.Connect(harness_->socket_path()));
    return c;
  }
  Reply Roundtrip(RawClient& c, const std::string& header, const std::string& body = "",
                  std::string* reply_body = nullptr) {
    EXPECT_TRUE(c.SendFrame(header, body));
    Reply r;
    EXPECT_TRUE(c.ReadReply(&r, reply_body)) << header;
    return r;
  }

  // Resolves the lease of one row as the sync worker would: sent, or dead
  // with a reason when `dead_reason` is set.
  void Resolve(uint64_t seq, const char* dead_reason = nullptr) {
    std::promise<void> done;
    auto f = done.get_future();
    harness_->WithJournal([&](store::Journal& j) {
      j.FetchPending(store::FetchSpec{}, [&](Result<std::vector<store::StoredMessage>> r) {
        ASSERT_TRUE(r.ok());
        auto finish = [&done](Status st) {
          EXPECT_TRUE(st.ok()) << st.ToString();
          done.set_value();
        };
        if (dead_reason) {
          j.MarkDead({{seq, dead_reason}}, finish);
        } else {
          j.MarkSent({seq}, finish);
        }
      });
    });
    f.wait();
  }

  TempDir dir_;
  std::atomic<bool> uplink_{false};
  std::unique_ptr<ServerHarness> harness_;
};

TEST_F(ProducerServerTest, PublishStoredThenQueryBySeqAndId) {
  StartServer();
  RawClient c = Client();
  Reply r = Roundtrip(c, PublishHeader(1, "sensors/t1", ",\"id\":\"m-1\",\"ts\":1732300000123"),
                      "21.5");
  ASSERT_TRUE(r.ok) << r.message;
  EXPECT_EQ(r.req, 1);
  EXPECT_EQ(r.status, "stored");
  ASSERT_TRUE(r.seq);
  EXPECT_EQ(r.uplink, "disconnected");
  uint64_t seq = *r.seq;

  uplink_ = true;
  Reply dup = Roundtrip(c, PublishHeader(2, "sensors/t1", ",\"id\":\"m-1\""), "21.5");
  EXPECT_TRUE(dup.ok);
  EXPECT_EQ(dup.status, "duplicate");
  EXPECT_EQ(dup.seq, seq);
  EXPECT_EQ(dup.uplink, "connected");

  Reply q = Roundtrip(c, "{\"op\":\"query\",\"req\":3,\"seq\":" + std::to_string(seq) + "}");
  EXPECT_TRUE(q.ok);
  EXPECT_EQ(q.req, 3);
  EXPECT_EQ(q.state, "pending");
  EXPECT_EQ(q.topic, "sensors/t1");
  EXPECT_EQ(q.ts_ms, 1732300000123);

  Reply qi = Roundtrip(c, R"({"op":"query","req":4,"id":"m-1"})");
  EXPECT_EQ(qi.seq, seq);
  EXPECT_EQ(qi.state, "pending");
  Reply unknown = Roundtrip(c, R"({"op":"query","req":5,"seq":999999})");
  EXPECT_TRUE(unknown.ok);
  EXPECT_EQ(unknown.state, "unknown");
  EXPECT_EQ(Roundtrip(c, R"({"op":"query","req":6,"id":"nope"})").state, "unknown");
}

// Publishes may be held back a moment to share a commit (append_linger_ms);
// a query sent right behind them, without waiting for their acks, must still
// see them, as the journal's call order promises. Several publishers keep
// the linger on (it switches itself off for a lone one-at-a-time producer).
TEST_F(ProducerServerTest, QueryPipelinedBehindHeldPublishesSeesThem) {
  HarnessOptions o;
  o.server.append_linger_ms = 50;  // long enough that a held publish would be missed
  StartServer(std::move(o));
  std::vector<RawClient> others;
  for (int i = 0; i < 3; ++i) others.push_back(Client());
  for (int round = 0; round < 5; ++round) {
    for (auto& other : others) {
      ASSERT_TRUE(other.SendFrame(PublishHeader(round, "held/o"), "o"));
    }
    RawClient c = Client();
    std::string id = "held-" + std::to_string(round);
    std::string bytes = protocol::EncodeFrame(PublishHeader(1, "held/t", ",\"id\":\"" + id + "\""),
                                              "x") +
                        protocol::EncodeFrame("{\"op\":\"query\",\"req\":2,\"id\":\"" + id + "\"}", "");
    ASSERT_TRUE(c.Send(bytes));  // one write: the query arrives with the publish
    Reply stored, query;
    ASSERT_TRUE(c.ReadReply(&stored));
    ASSERT_TRUE(c.ReadReply(&query));
    ASSERT_TRUE(stored.ok) << stored.message;
    EXPECT_EQ(query.req, 2);
    EXPECT_EQ(query.state, "pending") << "round " << round;
    EXPECT_EQ(query.seq, stored.seq);
    for (auto& other : others) {
      Reply r;
      ASSERT_TRUE(other.ReadReply(&r));
      EXPECT_TRUE(r.ok);
    }
  }
}

TEST_F(ProducerServerTest, DefaultTimestampIsReceiptTime) {
  StartServer();
  RawClient c = Client();
  int64_t before = platform::SystemClock::Get().WallMs();
  Reply r = Roundtrip(c, PublishHeader(1, "a/b", ",\"id\":\"ts-default\""), "x");
  int64_t after = platform::SystemClock::Get().WallMs();
  ASSERT_TRUE(r.ok);
  auto q = harness_->QueryById("ts-default");
  ASSERT_TRUE(q.ok());
  EXPECT_GE(q->ts_ms, before);
  EXPECT_LE(q->ts_ms, after);
}

TEST_F(ProducerServerTest, PingAndStatus) {
  HarnessOptions o;
  o.hooks.status_json = [] { return std::string(R"({"node":"gw-1","pending":0})"); };
  StartServer(std::move(o));
  RawClient c = Client();
  Reply p = Roundtrip(c, R"({"op":"ping","req":3})");
  EXPECT_TRUE(p.ok);
  EXPECT_EQ(p.req, 3);
  std::string body;
  Reply s = Roundtrip(c, R"({"op":"status","req":4})", "", &body);
  EXPECT_TRUE(s.ok);
  EXPECT_EQ(body, R"({"node":"gw-1","pending":0})");
}

TEST_F(ProducerServerTest, DefaultStatusDocumentWithoutHook) {
  StartServer();
  RawClient c = Client();
  std::string body;
  Reply s = Roundtrip(c, R"({"op":"status","req":1})", "", &body);
  EXPECT_TRUE(s.ok);
  EXPECT_NE(body.find("\"pending_count\""), std::string::npos) << body;
}

TEST_F(ProducerServerTest, BadRequestAndBadTopicKeepTheConnection) {
  StartServer();
  RawClient c = Client();
  Reply a = Roundtrip(c, R"({"op":"publish","req":1,"topic":"a","priority":"urgent"})", "x");
  EXPECT_FALSE(a.ok);
  EXPECT_EQ(a.code, ErrorCode::kBadRequest);
  EXPECT_EQ(a.req, 1);
  Reply b = Roundtrip(c, PublishHeader(2, "a/+/b"), "x");
  EXPECT_EQ(b.code, ErrorCode::kBadTopic);
  Reply d = Roundtrip(c, R"({"op":"fly","req":3})");
  EXPECT_EQ(d.code, ErrorCode::kBadRequest);
  EXPECT_TRUE(Roundtrip(c, R"({"op":"ping","req":4})").ok);
}

TEST_F(ProducerServerTest, TooLargeSkipsBodyAndContinues) {
  HarnessOptions o;
  o.server.max_message_bytes = 1000;
  StartServer(std::move(o));
  RawClient c = Client();
  Reply r = Roundtrip(c, PublishHeader(1, "big"), std::string(3000, 'b'));
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.code, ErrorCode::kTooLarge);
  EXPECT_EQ(r.limit, 1000u);
  Reply ok = Roundtrip(c, PublishHeader(2, "small"), std::string(1000, 's'));
  EXPECT_TRUE(ok.ok) << ok.message;
}

TEST_F(ProducerServerTest, BadFrameClosesOnlyThatConnection) {
  HarnessOptions o;
  o.server.max_message_bytes = 1000;
  StartServer(std::move(o));
  RawClient good = Client();
  RawClient bad = Client();
  // Body over 4x the limit: bad frame.
  std::string prefix = protocol::EncodeFrame("{}", "").substr(0, 4) + std::string("\x00\x00\x10\x00", 4);
  ASSERT_TRUE(bad.Send(prefix + "{}"));
  Reply r;
  ASSERT_TRUE(bad.ReadReply(&r));
  EXPECT_EQ(r.code, ErrorCode::kBadFrame);
  EXPECT_TRUE(bad.ClosedByPeer());
  // Unparseable header: bad frame, closed.
  RawClient bad2 = Client();
  ASSERT_TRUE(bad2.SendFrame("this is not json"));
  ASSERT_TRUE(bad2.ReadReply(&r));
  EXPECT_EQ(r.code, ErrorCode::kBadFrame);
  EXPECT_TRUE(bad2.ClosedByPeer());
  EXPECT_TRUE(Roundtrip(good, PublishHeader(1, "still/fine"), "x").ok);
  EXPECT_EQ(harness_->Stats().bad_frames, 2u);
}

TEST_F(ProducerServerTest, ForbiddenByAcl) {
  HarnessOptions o;
  agent::AclEntry mine;
  mine.uid = static_cast<uint32_t>(::getuid());
  mine.publish = {"allowed/#"};
  agent::AclEntry other;
  other.uid = static_cast<uint32_t>(::getuid()) + 1;
  other.publish = {"#"};
  o.server.acl = {mine, other};
  StartServer(std::move(o));
  RawClient c = Client();
  EXPECT_TRUE(Roundtrip(c, PublishHeader(1, "allowed/x"), "x").ok);
  Reply r = Roundtrip(c, PublishHeader(2, "denied/x"), "x");
  EXPECT_EQ(r.code, ErrorCode::kForbidden);
  EXPECT_EQ(r.req, 2);
  EXPECT_TRUE(Roundtrip(c, PublishHeader(3, "allowed/y"), "x").ok);
}

TEST_F(ProducerServerTest, RateLimitedWithRetryAfter) {
  HarnessOptions o;
  agent::RateLimitRule rule;
  rule.uid = static_cast<uint32_t>(::getuid());
  rule.messages_per_second = 2;
  rule.burst = 2;
  o.server.rate_limits = {rule};
  StartServer(std::move(o));
  RawClient c = Client();
  EXPECT_TRUE(Roundtrip(c, PublishHeader(1, "r"), "x").ok);
  EXPECT_TRUE(Roundtrip(c, PublishHeader(2, "r"), "x").ok);
  Reply r = Roundtrip(c, PublishHeader(3, "r"), "x");
  EXPECT_EQ(r.code, ErrorCode::kRateLimited);
  ASSERT_TRUE(r.retry_after_ms);
  EXPECT_GT(*r.retry_after_ms, 0);
  EXPECT_LE(*r.retry_after_ms, 500);
  std::this_thread::sleep_for(std::chrono::milliseconds(*r.retry_after_ms + 20));
  EXPECT_TRUE(Roundtrip(c, PublishHeader(4, "r"), "x").ok);
}

TEST_F(ProducerServerTest, BusyPastMaxConnections) {
  HarnessOptions o;
  o.server.max_connections = 2;
  StartServer(std::move(o));
  RawClient a = Client(), b = Client();
  EXPECT_TRUE(Roundtrip(a, R"({"op":"ping","req":1})").ok);
  EXPECT_TRUE(Roundtrip(b, R"({"op":"ping","req":1})").ok);
  RawClient c = Client();
  Reply r;
  ASSERT_TRUE(c.ReadReply(&r));
  EXPECT_EQ(r.code, ErrorCode::kBusy);
  EXPECT_FALSE(r.req);
  EXPECT_TRUE(r.retry_after_ms);
  EXPECT_TRUE(c.ClosedByPeer());
  // The existing ones are untouched; a slot freed is usable again.
  EXPECT_TRUE(Roundtrip(a, R"({"op":"ping","req":2})").ok);
  b.Close();
  for (int i = 0; i < 100 && harness_->Stats().connections > 1; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  RawClient d = Client();
  EXPECT_TRUE(Roundtrip(d, R"({"op":"ping","req":1})").ok);
  EXPECT_EQ(harness_->Stats().connections_refused, 1u);
}

TEST_F(ProducerServerTest, BusyWhenDeliveryWaitersAreFull) {
  HarnessOptions o;
  o.server.max_delivery_waiters = 0;
  StartServer(std::move(o));
  RawClient c = Client();
  Reply r = Roundtrip(c, PublishHeader(1, "d", ",\"ack\":\"delivered\""), "x");
  EXPECT_EQ(r.code, ErrorCode::kBusy);
  EXPECT_TRUE(r.retry_after_ms);
}

TEST_F(ProducerServerTest, JournalFullWithRetryAfter) {
  HarnessOptions o;
  o.journal.max_bytes = 256 * 1024;
  o.journal.when_full = store::WhenFull::kReject;
  o.journal.durability = store::Durability::kNormal;
  StartServer(std::move(o));
  RawClient c = Client();
  std::string payload(16 * 1024, 'f');
  Reply r;
  int stored = 0;
  for (int i = 1; i <= 200; ++i) {
    r = Roundtrip(c, PublishHeader(i, "fill"), payload);
    if (!r.ok) break;
    ++stored;
  }
  EXPECT_GT(stored, 0);
  ASSERT_FALSE(r.ok) << "journal never filled";
  EXPECT_EQ(r.code, ErrorCode::kJournalFull) << r.message;
  EXPECT_TRUE(r.retry_after_ms);
  EXPECT_TRUE(Roundtrip(c, R"({"op":"ping","req":999})").ok);
}

TEST_F(ProducerServerTest, PipelinedRepliesComeInRequestOrder) {
  StartServer();
  RawClient c = Client();
  std::string batch;
  for (int i = 1; i <= 300; ++i) {
    std::string h = i % 3 == 0 ? "{\"op\":\"ping\",\"req\":" + std::to_string(i) + "}"
                   : i % 7 == 0 ? PublishHeader(i, "bad/#")
                                : PublishHeader(i, "p/" + std::to_string(i % 5));
    protocol::AppendFrame(&batch, h, "payload");
  }
  ASSERT_TRUE(c.Send(batch));
  uint64_t last_seq = 0;
  for (int i = 1; i <= 300; ++i) {
    Reply r;
    ASSERT_TRUE(c.ReadReply(&r));
    ASSERT_EQ(r.req, i);
    if (i % 3 != 0 && i % 7 != 0) {
      ASSERT_TRUE(r.ok);
      EXPECT_GT(*r.seq, last_seq);
      last_seq = *r.seq;
    }
  }
}

TEST_F(ProducerServerTest, AckNoneSendsNothingButStores) {
  StartServer();
  RawClient c = Client();
  ASSERT_TRUE(c.SendFrame(PublishHeader(1, "quiet", ",\"ack\":\"none\",\"id\":\"q1\""), "x"));
  ASSERT_TRUE(c.SendFrame(PublishHeader(2, "quiet/#", ",\"ack\":\"none\""), "x"));
  Reply r = Roundtrip(c, R"({"op":"ping","req":3})");
  EXPECT_EQ(r.req, 3) << "ack:none must produce no reply";
  for (int i = 0; i < 100; ++i) {
    auto q = harness_->QueryById("q1");
    if (q.ok() && q->state == store::MessageState::kPending) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  FAIL() << "ack:none publish never stored";
}

TEST_F(ProducerServerTest, AckDeliveredSendsSecondReply) {
  StartServer();
  RawClient c = Client();
  Reply stored = Roundtrip(c, PublishHeader(1, "dl", ",\"ack\":\"delivered\""), "x");
  ASSERT_TRUE(stored.ok);
  Reply dead = Roundtrip(c, PublishHeader(2, "dl", ",\"ack\":\"delivered\""), "y");
  ASSERT_TRUE(dead.ok);
  EXPECT_EQ(harness_->Stats().delivery_waiters, 2u);
  harness_->NotifyDelivery(*stored.seq, store::MessageState::kSent, "");
  harness_->NotifyDelivery(*dead.seq, store::MessageState::kDead, "rejected by broker");
  harness_->NotifyDelivery(123456, store::MessageState::kSent, "");  // nobody waits
  Reply d1, d2;
  ASSERT_TRUE(c.ReadReply(&d1));
  EXPECT_TRUE(d1.ok);
  EXPECT_EQ(d1.req, 1);
  EXPECT_EQ(d1.status, "delivered");
  EXPECT_EQ(d1.seq, stored.seq);
  ASSERT_TRUE(c.ReadReply(&d2));
  EXPECT_FALSE(d2.ok);
  EXPECT_EQ(d2.status, "dead");
  EXPECT_EQ(d2.reason, "rejected by broker");
  EXPECT_EQ(harness_->Stats().delivery_waiters, 0u);

  // A waiter is dropped when its connection closes.
  ASSERT_TRUE(Roundtrip(c, PublishHeader(3, "dl", ",\"ack\":\"delivered\""), "z").ok);
  EXPECT_EQ(harness_->Stats().delivery_waiters, 1u);
  c.Close();
  for (int i = 0; i < 200 && harness_->Stats().delivery_waiters > 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(harness_->Stats().delivery_waiters, 0u);
}

// Issue 4: a duplicate publish asking for ack:"delivered" gets its second
// reply too: with the original's when that is still pending, at once when
// the original was delivered (or went dead) before the duplicate came.
TEST_F(ProducerServerTest, DuplicateWithAckDeliveredGetsItsSecondReply) {
  StartServer();
  RawClient a = Client();
  RawClient b = Client();
  const std::string p1 = ",\"id\":\"p1\",\"ack\":\"delivered\"";
  Reply s1 = Roundtrip(a, PublishHeader(1, "dd", p1), "x");
  ASSERT_TRUE(s1.ok);
  EXPECT_EQ(s1.status, "stored");
  Reply d1 = Roundtrip(b, PublishHeader(7, "dd", p1), "x");
  EXPECT_EQ(d1.status, "duplicate");
  EXPECT_EQ(d1.seq, s1.seq);
  Reply early;
  EXPECT_FALSE(b.ReadReply(&early, nullptr, 300)) << "delivered before the original was";
  EXPECT_EQ(harness_->Stats().delivery_waiters, 2u);

  Resolve(*s1.seq);
  harness_->NotifyDelivery(*s1.seq, store::MessageState::kSent, "");
  Reply a2, b2;
  ASSERT_TRUE(a.ReadReply(&a2));
  ASSERT_TRUE(b.ReadReply(&b2));
  EXPECT_EQ(a2.status, "delivered");
  EXPECT_EQ(a2.req, 1);
  EXPECT_EQ(b2.status, "delivered");
  EXPECT_EQ(b2.req, 7);

  // The original is long delivered: the duplicate hears so at once.
  Reply d2 = Roundtrip(b, PublishHeader(8, "dd", p1), "x");
  EXPECT_EQ(d2.status, "duplicate");
  Reply b3;
  ASSERT_TRUE(b.ReadReply(&b3, nullptr, 5000)) << "no delivered reply for a late duplicate";
  EXPECT_TRUE(b3.ok);
  EXPECT_EQ(b3.status, "delivered");
  EXPECT_EQ(b3.req, 8);
  EXPECT_EQ(b3.seq, s1.seq);

  // A dead original: the duplicate gets "dead" and the reason.
  Reply s3 = Roundtrip(a, PublishHeader(2, "dd", ",\"id\":\"p2\""), "y");
  ASSERT_TRUE(s3.ok);
  Resolve(*s3.seq, "rejected by broker");
  Reply d3 = Roundtrip(b, PublishHeader(9, "dd", ",\"id\":\"p2\",\"ack\":\"delivered\""), "y");
  EXPECT_EQ(d3.status, "duplicate");
  Reply b4;
  ASSERT_TRUE(b.ReadReply(&b4, nullptr, 5000));
  EXPECT_FALSE(b4.ok);
  EXPECT_EQ(b4.req, 9);
  EXPECT_EQ(b4.status, "dead");
  EXPECT_EQ(b4.reason, "rejected by broker");
  EXPECT_EQ(harness_->Stats().delivery_waiters, 0u);
}

TEST_F(ProducerServerTest, HalfCloseStillGetsEveryReply) {
  StartServer();
  RawClient c = Client();
  std::string batch;
  for (int i = 1; i <= 50; ++i) protocol::AppendFrame(&batch, PublishHeader(i, "hc"), "x");
  ASSERT_TRUE(c.Send(batch));
  c.ShutdownWrite();
  for (int i = 1; i <= 50; ++i) {
    Reply r;
    ASSERT_TRUE(c.ReadReply(&r)) << i;
    EXPECT_EQ(r.req, i);
    EXPECT_TRUE(r.ok);
  }
  EXPECT_TRUE(c.ClosedByPeer());
}

// One producer sends garbage while 100 others publish: the others lose
// nothing (every publish acked, every id in the journal).
TEST_F(ProducerServerTest, GarbageOnOneConnectionLosesNothingElsewhere) {
  StartServer();
  constexpr int kConns = 100, kPerConn = 50;
  std::atomic<int> acked{0};
  std::atomic<bool> stop_garbage{false};
  std::thread garbage([&] {
    std::mt19937 rng(7);
    int rounds = 0;
    while (!stop_garbage && rounds++ < 2000) {
      RawClient g;
      if (!g.Connect(harness_->socket_path())) continue;
      std::string junk(1 + rng() % 200, '\0');
      for (char& ch : junk) ch = static_cast<char>(rng());
      g.Send(junk);
      Reply r;
      g.ReadReply(&r, nullptr, 200);
    }
  });
  std::vector<std::thread> producers;
  for (int t = 0; t < 4; ++t) {
    producers.emplace_back([&, t] {
      std::vector<RawClient> conns(kConns / 4);
      for (auto& c : conns) ASSERT_TRUE(c.Connect(harness_->socket_path()));
      for (int i = 0; i < kPerConn; ++i) {
        for (size_t k = 0; k < conns.size(); ++k) {
          std::string id = "g-" + std::to_string(t) + "-" + std::to_string(k) + "-" +
                           std::to_string(i);
          ASSERT_TRUE(conns[k].SendFrame(PublishHeader(i, "good/" + std::to_string(k),
                                                       ",\"id\":\"" + id + "\""),
                                         id));
        }
        for (auto& c : conns) {
          Reply r;
          ASSERT_TRUE(c.ReadReply(&r));
          ASSERT_TRUE(r.ok) << r.message;
          ASSERT_EQ(r.req, i);
          acked++;
        }
      }
    });
  }
  for (auto& t : producers) t.join();
  stop_garbage = true;
  garbage.join();
  EXPECT_EQ(acked.load(), kConns * kPerConn);
  for (int t = 0; t < 4; ++t) {
    for (int k = 0; k < kConns / 4; ++k) {
      for (int i = 0; i < kPerConn; i += 7) {
        std::string id = "g-" + std::to_string(t) + "-" + std::to_string(k) + "-" +
                         std::to_string(i);
        auto q = harness_->QueryById(id);
        ASSERT_TRUE(q.ok());
        ASSERT_EQ(q->state, store::MessageState::kPending) << id;
      }
    }
  }
  EXPECT_EQ(harness_->JournalStats().pending_count, static_cast<uint64_t>(kConns * kPerConn));
  EXPECT_GT(harness_->Stats().bad_frames, 0u);
}

TEST_F(ProducerServerTest, ListensOnInheritedFdAndReplacesStaleSocket) {
  // A stale socket file from a "crash" is replaced.
  std::string path = dir_.File("sub/dir/stale.sock");
  {
    HarnessOptions o;
    o.server.socket_path = path;
    o.server.socket_mode = 0600;
    StartServer(std::move(o));
    RawClient c = Client();
    EXPECT_TRUE(Roundtrip(c, R"({"op":"ping","req":1})").ok);
    struct stat st;
    ASSERT_EQ(::stat(path.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    harness_.reset();
  }
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  ::unlink(path.c_str());
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ::close(fd);  // leaves a stale socket file behind
  {
    HarnessOptions o;
    o.server.socket_path = path;
    StartServer(std::move(o));
    RawClient c = Client();
    EXPECT_TRUE(Roundtrip(c, R"({"op":"ping","req":1})").ok);
    harness_.reset();
  }
  // systemd-style: an already listening fd.
  int lfd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  std::string lpath = dir_.File("inherited.sock");
  std::strncpy(addr.sun_path, lpath.c_str(), sizeof(addr.sun_path) - 1);
  ASSERT_EQ(::bind(lfd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(lfd, 16), 0);
  HarnessOptions o;
  o.server.inherited_fd = lfd;
  o.server.socket_path = lpath;
  StartServer(std::move(o));
  RawClient c = Client();
  EXPECT_TRUE(Roundtrip(c, R"({"op":"ping","req":1})").ok);
}

}  // namespace
}  // namespace edgespool::testing
