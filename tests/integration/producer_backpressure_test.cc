// Backpressure and memory bounds: a producer that never reads its replies, and
// producers publishing faster than the disk commits, see reads slow down (or
// busy / journal_full), never unbounded memory.
#include <fcntl.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "platform/process_info.h"
#include "tests/integration/producer_test_util.h"
#include "tests/support/sanitizers.h"

namespace edgespool::testing {
namespace {

using agent::ProducerServer;
using protocol::Reply;

// The per-connection bound stated in producer_server.h, for a given
// max_message_bytes, plus one 64 KiB read's worth of requests beyond it.
uint64_t PerConnectionBound(uint64_t max_message_bytes) {
  return ProducerServer::kMaxConnPendingBytes + ProducerServer::kMaxConnWriteBytes + 8 +
         protocol::kMaxHeaderBytes + max_message_bytes + 2 * 64 * 1024 +
         // reply frames of requests held in slots (~100 B each)
         (ProducerServer::kMaxConnPending + 64 * 1024 / 8) * 128;
}

// Under ASan, freed memory sits in a quarantine (256 MiB by default) before
// it is reused, so RSS grows with everything the process frees, not with
// what it holds. Measured on this test: +22 MiB with quarantine_size_mb=0,
// +370 MiB with the default; the server's own byte accounting
// (peak_buffered_bytes) is what checks the bound there.
constexpr uint64_t kSanitizerQuarantine = kAddressSanitizer ? 256ull << 20 : 0;

// Sends frames for up to `seconds` or `max_bytes`, never reading; returns the
// bytes the kernel accepted.
uint64_t Flood(RawClient& c, int seconds, uint64_t max_bytes, const std::string& frame) {
  ::fcntl(c.fd(), F_SETFL, ::fcntl(c.fd(), F_GETFL) | O_NONBLOCK);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  uint64_t sent = 0;
  size_t off = 0;
  while (std::chrono::steady_clock::now() < deadline && sent < max_bytes) {
    ssize_t n = ::send(c.fd(), frame.data() + off, frame.size() - off, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<uint64_t>(n);
      off = (off + static_cast<size_t>(n)) % frame.size();
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  return sent;
}

TEST(ProducerBackpressure, NonReadingProducerIsThrottledWithBoundedMemory) {
  TempDir dir;
  HarnessOptions o;
  o.journal.durability = store::Durability::kNormal;
  o.journal.max_bytes = 1ull << 30;
  ServerHarness h(dir.path(), o);
  ASSERT_TRUE(h.Start().ok());
  RawClient c;
  ASSERT_TRUE(c.Connect(h.socket_path()));
  std::string frame = protocol::EncodeFrame(PublishHeader(1, "flood/t"), std::string(1024, 'p'));
  uint64_t rss_before = platform::CurrentRssBytes();
  std::atomic<bool> flooding{true};
  std::thread sampler([&] {  // stats() also records the peak of buffered bytes
    while (flooding) {
      h.Stats();
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  });
  uint64_t sent = Flood(c, 3, 400ull << 20, frame);
  flooding = false;
  sampler.join();
  auto stats = h.Stats();
  uint64_t rss_after = platform::CurrentRssBytes();
  std::printf(
      "non-reading producer: kernel took %.1f MiB in 3 s, server stored %llu, "
      "peak buffered %.2f MiB (bound %.2f MiB), conn pauses %llu, RSS +%.1f MiB\n",
      sent / 1048576.0, static_cast<unsigned long long>(stats.published),
      stats.peak_buffered_bytes / 1048576.0, PerConnectionBound(2u << 20) / 1048576.0,
      static_cast<unsigned long long>(stats.conn_pauses),
      (static_cast<double>(rss_after) - static_cast<double>(rss_before)) / 1048576.0);
  EXPECT_GT(stats.conn_pauses, 0u);
  EXPECT_LE(stats.peak_buffered_bytes, PerConnectionBound(2u << 20));
  // The connection stalls: the kernel buffers fill and sending stops, far
  // below what 3 s of unthrottled sending would push.
  EXPECT_LT(sent, 400ull << 20);
  EXPECT_LT(rss_after, rss_before + (128ull << 20) + kSanitizerQuarantine);
  // Once the producer reads, everything it sent is answered.
  Reply r;
  ::fcntl(c.fd(), F_SETFL, ::fcntl(c.fd(), F_GETFL) & ~O_NONBLOCK);
  uint64_t frames = sent / frame.size(), got = 0;
  while (got < frames && c.ReadReply(&r, nullptr, 5000)) {
    ASSERT_TRUE(r.ok) << r.message;
    ++got;
  }
  EXPECT_EQ(got, frames);
}

// Eight producers blast pipelined publishes at a full-durability journal:
// the server stops reading while too many appends await their commit, and
// nothing is lost.
TEST(ProducerBackpressure, FasterThanDiskStopsReadingAndLosesNothing) {
  TempDir dir;
  HarnessOptions o;
  o.journal.durability = store::Durability::kFull;
  o.journal.group_max_messages = 256;  // small groups: commits are the bottleneck
  o.server.max_awaiting_commit = 2000;
  ServerHarness h(dir.path(), o);
  ASSERT_TRUE(h.Start().ok());
  constexpr int kConns = 8, kEach = 6000;
  std::atomic<uint64_t> acked{0}, refused{0};
  std::atomic<uint64_t> peak_awaiting{0};
  std::atomic<bool> done{false};
  std::thread sampler([&] {
    while (!done) {
      peak_awaiting = std::max<uint64_t>(peak_awaiting, h.Stats().awaiting_commit);
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  });
  std::vector<std::thread> threads;
  for (int t = 0; t < kConns; ++t) {
    threads.emplace_back([&, t] {
      RawClient c;
      ASSERT_TRUE(c.Connect(h.socket_path()));
      std::thread writer([&] {
        std::string batch;
        for (int i = 0; i < kEach; ++i) {
          protocol::AppendFrame(
              &batch,
              PublishHeader(i, "bp/" + std::to_string(t),
                            ",\"id\":\"bp-" + std::to_string(t) + "-" + std::to_string(i) + "\""),
              std::string(200, 'x'));
          if (batch.size() > 256 * 1024) {
            c.Send(batch);
            batch.clear();
          }
        }
        c.Send(batch);
      });
      for (int i = 0; i < kEach; ++i) {
        Reply r;
        ASSERT_TRUE(c.ReadReply(&r, nullptr, 30000)) << i;
        ASSERT_EQ(r.req, i);
        (r.ok ? acked : refused)++;
      }
      writer.join();
    });
  }
  for (auto& t : threads) t.join();
  done = true;
  sampler.join();
  auto stats = h.Stats();
  std::printf(
      "faster than disk: %llu acked, %llu refused, global read pauses %llu, "
      "peak awaiting commit %llu (server peak %llu, bound %zu + one read per conn)\n",
      static_cast<unsigned long long>(acked.load()),
      static_cast<unsigned long long>(refused.load()),
      static_cast<unsigned long long>(stats.read_pauses),
      static_cast<unsigned long long>(peak_awaiting.load()),
      static_cast<unsigned long long>(stats.peak_awaiting_commit), o.server.max_awaiting_commit);
  EXPECT_EQ(acked.load(), static_cast<uint64_t>(kConns * kEach));
  EXPECT_GT(stats.read_pauses, 0u);
  // One 64 KiB read of ~260-byte frames per connection can land after the
  // block: ~250 requests each.
  EXPECT_LE(stats.peak_awaiting_commit, o.server.max_awaiting_commit + kConns * 300u);
  EXPECT_EQ(h.JournalStats().pending_count, static_cast<uint64_t>(kConns * kEach));
}

// Above the journal's high-water mark reading goes on in pulses: a publish
// is answered (journal_full here) within a bounded time, never left hanging.
TEST(ProducerBackpressure, FullJournalAnswersInsteadOfHanging) {
  TempDir dir;
  HarnessOptions o;
  o.journal.durability = store::Durability::kNormal;
  o.journal.max_bytes = 256 * 1024;
  ServerHarness h(dir.path(), o);
  ASSERT_TRUE(h.Start().ok());
  RawClient c;
  ASSERT_TRUE(c.Connect(h.socket_path()));
  int full = 0;
  for (int i = 0; i < 60; ++i) {
    auto start = std::chrono::steady_clock::now();
    ASSERT_TRUE(c.SendFrame(PublishHeader(i, "full/t"), std::string(8 * 1024, 'f')));
    Reply r;
    ASSERT_TRUE(c.ReadReply(&r, nullptr, 3000)) << i;
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(1500));
    if (!r.ok) {
      EXPECT_EQ(r.code, protocol::ErrorCode::kJournalFull) << r.message;
      EXPECT_TRUE(r.retry_after_ms);
      ++full;
    }
  }
  EXPECT_GT(full, 0);
}

}  // namespace
}  // namespace edgespool::testing
