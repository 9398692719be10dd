// The client SDK against a real server and journal: futures and callbacks,
// many threads, Producers sharing one IoThread, query/status/ping,
// ack:"delivered", connection refusal, and reconnect with re-send: restart the server under a
// publishing client and every publish is acked, and stored exactly once.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <future>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "agent/client/edgespool_client.h"
#include "agent/client/producer.h"
#include "tests/integration/producer_test_util.h"

namespace edgespool::testing {
namespace {

using client::Producer;
using client::ProducerOptions;
using client::PublishOptions;
using client::PublishResult;

class ProducerClientTest : public ::testing::Test {
 protected:
  void StartServer(HarnessOptions o = {}) {
    o.journal.path = dir_.File("journal.db");
    o.server.socket_path = dir_.File("producer.sock");
    if (o.journal.durability == store::Durability::kFull) {
      o.journal.durability = store::Durability::kNormal;
    }
    harness_ = std::make_unique<ServerHarness>(dir_.path(), std::move(o));
    ASSERT_TRUE(harness_->Start().ok());
  }
  std::unique_ptr<Producer> Connect(ProducerOptions o = {}) {
    o.socket_path = dir_.File("producer.sock");
    auto p = Producer::Connect(std::move(o));
    EXPECT_TRUE(p.ok()) << p.status().ToString();
    return p.ok() ? std::move(p).value() : nullptr;
  }

  TempDir dir_;
  std::unique_ptr<ServerHarness> harness_;
};

TEST_F(ProducerClientTest, PublishQueryStatusPing) {
  StartServer();
  auto p = Connect();
  ASSERT_TRUE(p);
  PublishOptions o;
  o.id = "c-1";
  o.ts_ms = 1700000000000;
  o.priority = client::Priority::kHigh;
  o.headers = {{"unit", "C"}};
  PublishResult r = p->Publish("sensors/t", "21.5", o).get();
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_GT(r.seq, 0u);
  EXPECT_FALSE(r.duplicate);
  EXPECT_EQ(r.id, "c-1");
  PublishResult dup = p->Publish("sensors/t", "21.5", o).get();
  EXPECT_TRUE(dup.status.ok());
  EXPECT_TRUE(dup.duplicate);
  EXPECT_EQ(dup.seq, r.seq);

  client::QueryInfo q = p->Query(r.seq).get();
  ASSERT_TRUE(q.status.ok());
  EXPECT_EQ(q.state, "pending");
  EXPECT_EQ(q.topic, "sensors/t");
  EXPECT_EQ(q.ts_ms, 1700000000000);
  EXPECT_EQ(p->QueryById("c-1").get().seq, r.seq);
  EXPECT_EQ(p->QueryById("missing").get().state, "unknown");
  EXPECT_TRUE(p->Ping().get().ok());
  auto status = p->GetStatus().get();
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(status->front(), '{');

  PublishResult bad = p->Publish("bad/#", "x").get();
  EXPECT_FALSE(bad.status.ok());
  EXPECT_EQ(bad.code, client::ErrorCode::kBadTopic);
}

TEST_F(ProducerClientTest, GeneratedIdsAreUnique) {
  StartServer();
  auto p = Connect();
  ASSERT_TRUE(p);
  std::set<std::string> ids;
  for (int i = 0; i < 50; ++i) ids.insert(p->Publish("t", "x").get().id);
  EXPECT_EQ(ids.size(), 50u);
  EXPECT_EQ(harness_->JournalStats().pending_count, 50u);
}

// Generated ids sort by time across producers (the journal's id index then
// takes each commit group at one place, not one per producer).
TEST_F(ProducerClientTest, GeneratedIdsSortByTimeAcrossProducers) {
  StartServer();
  auto p = Connect();
  auto q = Connect();
  ASSERT_TRUE(p && q);
  auto later = [] { std::this_thread::sleep_for(std::chrono::milliseconds(3)); };
  std::string a = p->Publish("t", "x").get().id;
  later();
  std::string b = q->Publish("t", "x").get().id;
  later();
  std::string c = p->Publish("t", "x").get().id;
  EXPECT_LT(a, b);
  EXPECT_LT(b, c);
}

TEST_F(ProducerClientTest, ManyThreadsPublishConcurrently) {
  StartServer();
  ProducerOptions po;
  po.window = 64;
  po.max_queued = 500;  // exercises the blocking path
  auto p = Connect(po);
  ASSERT_TRUE(p);
  constexpr int kThreads = 4, kEach = 2000;
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kEach; ++i) {
        p->Publish("load/t", "payload", {}, [&](PublishResult r) {
          if (r.status.ok()) ok++;
        });
      }
    });
  }
  for (auto& t : threads) t.join();
  ASSERT_TRUE(p->Drain(30000));
  EXPECT_EQ(ok.load(), kThreads * kEach);
  EXPECT_EQ(harness_->JournalStats().pending_count, static_cast<uint64_t>(kThreads * kEach));
}

// Callers write their own requests to the socket when nothing is ahead of
// them, and the SDK thread writes the rest (window full, socket full): the
// two must never reorder or interleave bytes. Four threads, a window of 16,
// every 40th payload bigger than the socket buffer (a partial write whose
// rest the SDK thread finishes), every 9th with ack:"none": each thread's
// stored publishes get increasing seqs in its own order, every payload is
// stored intact, and callbacks run on the SDK thread, never the caller's.
TEST_F(ProducerClientTest, DirectAndLoopWritesKeepOrderAndBytes) {
  StartServer();
  ProducerOptions po;
  po.window = 16;
  auto p = Connect(po);
  ASSERT_TRUE(p);
  constexpr int kThreads = 4, kEach = 200;
  auto payload_of = [](int t, int i) {
    std::string head = "t" + std::to_string(t) + "-" + std::to_string(i) + "|";
    size_t size = i % 40 == 0 ? (256u << 10) : 100 + static_cast<size_t>(i % 200);
    return head + std::string(size, static_cast<char>('a' + (t * 7 + i) % 26));
  };
  std::vector<std::vector<uint64_t>> seqs(kThreads, std::vector<uint64_t>(kEach, 0));
  std::atomic<int> ok{0}, failed{0}, on_caller_thread{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::thread::id me = std::this_thread::get_id();
      for (int i = 0; i < kEach; ++i) {
        PublishOptions o;
        o.id = "t" + std::to_string(t) + "-" + std::to_string(i);
        if (i % 9 == 4) o.ack = client::AckMode::kNone;
        p->Publish("order/t", payload_of(t, i), o, [&, t, i, me](PublishResult r) {
          if (std::this_thread::get_id() == me) on_caller_thread++;
          if (!r.status.ok()) {
            failed++;
            return;
          }
          ok++;
          seqs[t][i] = r.seq;  // each slot written once, read after Drain
        });
      }
    });
  }
  for (auto& t : threads) t.join();
  ASSERT_TRUE(p->Drain(30000));
  EXPECT_EQ(ok.load(), kThreads * kEach);
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(on_caller_thread.load(), 0);
  for (int t = 0; t < kThreads; ++t) {
    uint64_t last = 0;
    for (int i = 0; i < kEach; ++i) {
      if (i % 9 == 4) continue;  // ack:"none" reports no seq
      EXPECT_GT(seqs[t][i], last) << "thread " << t << " publish " << i;
      last = seqs[t][i];
    }
  }
  std::promise<Result<std::vector<store::StoredMessage>>> fetched;
  harness_->WithJournal([&](store::Journal& j) {
    store::FetchSpec spec;
    spec.max_messages = kThreads * kEach + 10;
    spec.max_bytes = 64u << 20;
    j.FetchPending(spec, [&](Result<std::vector<store::StoredMessage>> r) {
      fetched.set_value(std::move(r));
    });
  });
  auto rows = fetched.get_future().get();
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  ASSERT_EQ(rows->size(), static_cast<size_t>(kThreads * kEach));
  std::set<std::string> seen;
  for (const store::StoredMessage& m : *rows) {
    const std::string& id = m.message.msg_id;
    int t = 0, i = 0;
    ASSERT_EQ(std::sscanf(id.c_str(), "t%d-%d", &t, &i), 2) << id;
    EXPECT_TRUE(m.message.payload == payload_of(t, i)) << "payload of " << id << " differs";
    seen.insert(id);
  }
  EXPECT_EQ(seen.size(), static_cast<size_t>(kThreads * kEach));
}

TEST_F(ProducerClientTest, AckDeliveredCallsBack) {
  StartServer();
  auto p = Connect();
  ASSERT_TRUE(p);
  std::promise<PublishResult> delivered;
  PublishOptions o;
  o.ack = client::AckMode::kDelivered;
  o.on_delivered = [&](const PublishResult& r) { delivered.set_value(r); };
  PublishResult r = p->Publish("d/t", "x", o).get();
  ASSERT_TRUE(r.status.ok());
  harness_->NotifyDelivery(r.seq, store::MessageState::kSent, "");
  auto f = delivered.get_future();
  ASSERT_EQ(f.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  PublishResult d = f.get();
  EXPECT_TRUE(d.status.ok());
  EXPECT_EQ(d.delivery, "delivered");
  EXPECT_EQ(d.seq, r.seq);
}

TEST_F(ProducerClientTest, ConnectFailsFastWhenNoAgent) {
  ProducerOptions o;
  o.socket_path = dir_.File("nobody.sock");
  o.connect_timeout_ms = 300;
  auto start = std::chrono::steady_clock::now();
  auto p = Producer::Connect(o);
  EXPECT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), Code::kUnavailable);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3));
}

TEST_F(ProducerClientTest, RefusedConnectionRetriesUntilThereIsRoom) {
  HarnessOptions o;
  o.server.max_connections = 1;
  StartServer(std::move(o));
  auto first = Connect();
  ASSERT_TRUE(first);
  ASSERT_TRUE(first->Ping().get().ok());
  auto second = Connect();  // accepted by the kernel, refused with busy
  ASSERT_TRUE(second);
  auto f = second->Publish("wait/t", "x");
  EXPECT_EQ(f.wait_for(std::chrono::milliseconds(300)), std::future_status::timeout);
  first.reset();
  ASSERT_EQ(f.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  EXPECT_TRUE(f.get().status.ok());
  EXPECT_GE(harness_->Stats().connections_refused, 1u);
}

// Restart the server (and journal) under a publishing client: every publish
// is acked once, and the journal holds each exactly once.
TEST_F(ProducerClientTest, ReconnectResendsAndJournalHoldsEachOnce) {
  StartServer();
  ProducerOptions po;
  po.backoff_initial_ms = 20;
  po.backoff_max_ms = 200;
  auto p = Connect(po);
  ASSERT_TRUE(p);
  constexpr int kTotal = 6000;
  std::atomic<int> acked{0}, failed{0}, duplicates{0};
  std::thread publisher([&] {
    for (int i = 0; i < kTotal; ++i) {
      PublishOptions o;
      o.id = "rc-" + std::to_string(i);
      p->Publish("rc/t", std::to_string(i), o, [&](PublishResult r) {
        if (r.status.ok()) {
          acked++;
          if (r.duplicate) duplicates++;
        } else {
          failed++;
        }
      });
      if (i % 100 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  });
  for (int restart = 0; restart < 2; ++restart) {
    while (acked.load() < (restart + 1) * kTotal / 3) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    harness_->Stop();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    StartServer();
  }
  publisher.join();
  ASSERT_TRUE(p->Drain(30000));
  EXPECT_EQ(acked.load(), kTotal);
  EXPECT_EQ(failed.load(), 0);
  EXPECT_GE(p->reconnects(), 2u);
  EXPECT_EQ(harness_->JournalStats().pending_count, static_cast<uint64_t>(kTotal))
      << "duplicates reported: " << duplicates.load();
  for (int i = 0; i < kTotal; i += 97) {
    auto q = harness_->QueryById("rc-" + std::to_string(i));
    ASSERT_TRUE(q.ok());
    EXPECT_EQ(q->state, store::MessageState::kPending);
  }
  std::printf("reconnect test: %d acked, %d reported duplicate after re-send, %llu reconnects\n",
              acked.load(), duplicates.load(), static_cast<unsigned long long>(p->reconnects()));
}

// Producers sharing one IoThread: one thread runs every callback, a
// Producer that cannot connect leaves the others alone, closing some does
// not stop the rest, they reconnect after a restart, and the thread ends
// with the last of them.
TEST_F(ProducerClientTest, ProducersShareOneIoThread) {
  StartServer();
  auto io = client::IoThread::Start();
  ASSERT_TRUE(io.ok()) << io.status().ToString();
  ProducerOptions none;
  none.socket_path = dir_.File("nobody.sock");
  none.connect_timeout_ms = 200;
  none.io = *io;
  EXPECT_EQ(Producer::Connect(none).status().code(), Code::kUnavailable);

  constexpr int kProducers = 8, kEach = 500, kMore = 200;
  std::vector<std::unique_ptr<Producer>> producers;
  for (int i = 0; i < kProducers; ++i) {
    ProducerOptions o;
    o.io = *io;
    o.backoff_initial_ms = 20;
    o.backoff_max_ms = 200;
    producers.push_back(Connect(o));
    ASSERT_TRUE(producers.back());
  }
  std::mutex mu;
  std::set<std::thread::id> callback_threads, publisher_threads;
  std::atomic<int> acked{0}, failed{0};
  auto publish = [&](int from, int to, int n, const std::string& tag) {
    std::vector<std::thread> threads;
    for (int i = from; i < to; ++i) {
      threads.emplace_back([&, i] {
        {
          std::lock_guard<std::mutex> lock(mu);
          publisher_threads.insert(std::this_thread::get_id());
        }
        for (int k = 0; k < n; ++k) {
          PublishOptions o;
          o.id = tag + std::to_string(i) + "-" + std::to_string(k);
          producers[i]->Publish("io/t", "x", o, [&](PublishResult r) {
            (r.status.ok() ? acked : failed)++;
            std::lock_guard<std::mutex> lock(mu);
            callback_threads.insert(std::this_thread::get_id());
          });
        }
        EXPECT_TRUE(producers[i]->Drain(30000));
      });
    }
    for (auto& t : threads) t.join();
  };
  publish(0, kProducers, kEach, "a");
  EXPECT_EQ(acked.load(), kProducers * kEach);
  EXPECT_EQ(callback_threads.size(), 1u) << "every callback on the one shared thread";
  EXPECT_EQ(publisher_threads.count(*callback_threads.begin()), 0u);

  io->reset();  // the Producers keep it alive
  for (int i = 0; i < kProducers / 2; ++i) producers[i].reset();
  publish(kProducers / 2, kProducers, kMore, "b");
  harness_->Stop();
  StartServer();
  publish(kProducers / 2, kProducers, kMore, "c");
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(acked.load(), kProducers * kEach + kProducers * kMore);
  EXPECT_EQ(callback_threads.size(), 1u);
  EXPECT_EQ(harness_->JournalStats().pending_count,
            static_cast<uint64_t>(kProducers * kEach + kProducers * kMore));
  for (int i = kProducers / 2; i < kProducers; ++i) EXPECT_GE(producers[i]->reconnects(), 1u);
  producers.clear();  // the last one stops the thread
}

TEST_F(ProducerClientTest, CApi) {
  StartServer();
  edgespool_producer* p = nullptr;
  EXPECT_EQ(edgespool_connect(dir_.File("none.sock").c_str(), &p), EDGESPOOL_ERR_UNAVAILABLE);
  EXPECT_EQ(p, nullptr);
  ASSERT_EQ(edgespool_connect(dir_.File("producer.sock").c_str(), &p), EDGESPOOL_OK);
  int64_t seq = edgespool_publish(p, "c/api", "hello", 5);
  EXPECT_GT(seq, 0);
  int64_t seq2 = edgespool_publish_ex(p, "c/api", "again", 5, "c-api-1", 1700000000000, "low");
  EXPECT_GT(seq2, seq);
  EXPECT_EQ(edgespool_publish_ex(p, "c/api", "again", 5, "c-api-1", -1, nullptr), seq2);
  EXPECT_EQ(edgespool_publish(p, "c/#", "x", 1), EDGESPOOL_ERR_BAD_TOPIC);
  EXPECT_EQ(edgespool_publish_ex(p, "c", "x", 1, nullptr, -1, "urgent"),
            EDGESPOOL_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(edgespool_publish(p, nullptr, "x", 1), EDGESPOOL_ERR_INVALID_ARGUMENT);
  EXPECT_STREQ(edgespool_strerror(EDGESPOOL_ERR_JOURNAL_FULL), "journal full");
  edgespool_close(p);
  edgespool_close(nullptr);
  auto q = harness_->QueryById("c-api-1");
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(static_cast<int64_t>(q->seq), seq2);
}

}  // namespace
}  // namespace edgespool::testing
