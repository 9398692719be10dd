// Many concurrent producer connections: the clients run in a child process
// (forked before any thread exists) so that client and server fds do not
// share one RLIMIT_NOFILE, and the server's RSS is measured alone.
#pragma once

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "platform/process_info.h"
#include "platform/process_limits.h"
#include "tests/integration/producer_test_util.h"

namespace edgespool::testing {

struct ConnectionsResult {
  uint64_t connected = 0, acked = 0;
  double seconds = 0;
};

// Child: waits for the go byte, opens `conns` connections (all kept open),
// publishes `per_conn` messages on each, reads every reply, reports.
[[noreturn]] inline void ConnectionsChild(int go_fd, int result_fd, const std::string& path,
                                          int conns, int per_conn) {
  char go;
  if (::read(go_fd, &go, 1) != 1) ::_exit(2);
  (void)platform::RaiseFileLimit(static_cast<uint64_t>(conns) + 64);
  auto start = std::chrono::steady_clock::now();
  ConnectionsResult res;
  std::vector<RawClient> clients(static_cast<size_t>(conns));
  for (auto& c : clients) {
    if (!c.Connect(path)) break;
    ++res.connected;
  }
  for (int m = 0; m < per_conn; ++m) {
    for (size_t i = 0; i < res.connected; ++i) {
      std::string id = "conn-" + std::to_string(i) + "-" + std::to_string(m);
      clients[i].SendFrame(PublishHeader(m, "conn/" + std::to_string(i % 100),
                                         ",\"id\":\"" + id + "\""),
                           id);
    }
    for (size_t i = 0; i < res.connected; ++i) {
      protocol::Reply r;
      if (clients[i].ReadReply(&r, nullptr, 60000) && r.ok && r.req == m) ++res.acked;
    }
  }
  res.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (::write(result_fd, &res, sizeof res) != sizeof res) ::_exit(3);
  ::_exit(0);
}

inline void RunConnectionsTest(int conns, int per_conn) {
  TempDir dir;
  std::string path = dir.File("producer.sock");
  int go[2], result[2];
  ASSERT_EQ(::pipe(go), 0);
  ASSERT_EQ(::pipe(result), 0);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) ConnectionsChild(go[0], result[1], path, conns, per_conn);
  ::close(go[0]);
  ::close(result[1]);

  auto limit = platform::RaiseFileLimit(static_cast<uint64_t>(conns) + 256);
  ASSERT_TRUE(limit.ok());
  ASSERT_GE(limit->soft, static_cast<uint64_t>(conns) + 64) << "RLIMIT_NOFILE too low for the test";
  HarnessOptions o;
  o.server.socket_path = path;
  o.server.max_connections = static_cast<size_t>(conns) + 16;
  o.journal.durability = store::Durability::kNormal;
  ServerHarness h(dir.path(), o);
  ASSERT_TRUE(h.Start().ok());
  uint64_t rss_before = platform::CurrentRssBytes();
  ASSERT_EQ(::write(go[1], "g", 1), 1);

  // Sample the server while the child works.
  ConnectionsResult res;
  uint64_t peak_conns = 0, peak_rss = 0;
  pollfd pfd{result[0], POLLIN, 0};
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(240);
  while (::poll(&pfd, 1, 20) == 0 && std::chrono::steady_clock::now() < deadline) {
    peak_conns = std::max<uint64_t>(peak_conns, h.Stats().connections);
    peak_rss = std::max(peak_rss, platform::CurrentRssBytes());
  }
  ASSERT_EQ(::read(result[0], &res, sizeof res), static_cast<ssize_t>(sizeof res));
  int status = 0;
  ::waitpid(pid, &status, 0);
  ::close(go[1]);
  ::close(result[0]);

  auto stats = h.Stats();
  std::printf("%d connections x %d publishes: connected %llu, acked %llu in %.2f s; "
              "server: peak open %llu, peak buffered %.2f MiB, RSS %.1f MiB -> peak %.1f MiB "
              "(process peak RSS %.1f MiB)\n",
              conns, per_conn, static_cast<unsigned long long>(res.connected),
              static_cast<unsigned long long>(res.acked), res.seconds,
              static_cast<unsigned long long>(peak_conns), stats.peak_buffered_bytes / 1048576.0,
              rss_before / 1048576.0, peak_rss / 1048576.0,
              platform::PeakRssBytes() / 1048576.0);
  EXPECT_EQ(res.connected, static_cast<uint64_t>(conns));
  EXPECT_EQ(res.acked, static_cast<uint64_t>(conns) * per_conn);
  EXPECT_EQ(stats.connections_refused, 0u);
  EXPECT_EQ(h.JournalStats().pending_count, static_cast<uint64_t>(conns) * per_conn);
  for (int i = 0; i < conns; i += conns / 10) {
    auto q = h.QueryById("conn-" + std::to_string(i) + "-0");
    ASSERT_TRUE(q.ok());
    EXPECT_EQ(q->state, store::MessageState::kPending);
  }
}

}  // namespace edgespool::testing
