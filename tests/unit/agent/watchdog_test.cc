// The watchdog pinger on a real loop, pinging a real datagram socket that
// plays systemd's notify socket.
#include "agent/watchdog.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "tests/support/test_env.h"

namespace edgespool::agent {
namespace {

class NotifySocket {
 public:
  explicit NotifySocket(const std::string& path) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  }
  ~NotifySocket() { ::close(fd_); }
  // Every datagram waiting now.
  std::vector<std::string> Drain() {
    std::vector<std::string> out;
    char buf[512];
    ssize_t n;
    while ((n = ::recv(fd_, buf, sizeof buf, 0)) > 0) out.emplace_back(buf, static_cast<size_t>(n));
    return out;
  }

 private:
  int fd_;
};

// Runs the loop for about ms milliseconds.
void RunFor(platform::Loop& loop, uint64_t ms) {
  platform::TimerHandle stop(loop);
  stop.Start(ms, 0, [&] { loop.Stop(); });
  loop.Run();
}

TEST(WatchdogTest, PingsAtHalfTheIntervalWhileHealthy) {
  testing::TempDir dir;
  NotifySocket sock(dir.File("notify.sock"));
  platform::SystemdNotifier notifier(dir.File("notify.sock"), 100000);  // 100 ms -> ping 50 ms
  auto loop = platform::Loop::Create();
  ASSERT_TRUE(loop.ok());
  bool healthy = true;
  {
    WatchdogPinger pinger(**loop, notifier, [&] { return healthy; });
    ASSERT_TRUE(pinger.Start());
    RunFor(**loop, 330);
    auto pings = sock.Drain();
    // One at once, then every 50 ms: about 7 in 330 ms. Timers only drift
    // late, so on a loaded machine there may be fewer, never more.
    EXPECT_GE(pings.size(), 3u);
    EXPECT_LE(pings.size(), 8u);
    for (const auto& p : pings) EXPECT_EQ(p, "WATCHDOG=1");
    EXPECT_EQ(pinger.pings_sent(), pings.size());

    // Unhealthy: the pings stop, which is what makes systemd restart us.
    healthy = false;
    RunFor(**loop, 200);
    EXPECT_TRUE(sock.Drain().empty());
    EXPECT_GE(pinger.pings_skipped(), 2u);

    healthy = true;
    RunFor(**loop, 120);
    EXPECT_GE(sock.Drain().size(), 1u);
    pinger.Stop();
    RunFor(**loop, 120);
    EXPECT_TRUE(sock.Drain().empty());
  }
  (*loop)->RunNoWait();
}

TEST(WatchdogTest, DisabledWatchdogDoesNotStart) {
  testing::TempDir dir;
  NotifySocket sock(dir.File("notify.sock"));
  platform::SystemdNotifier no_watchdog(dir.File("notify.sock"), 0);
  platform::SystemdNotifier no_systemd;
  auto loop = platform::Loop::Create();
  ASSERT_TRUE(loop.ok());
  {
    WatchdogPinger a(**loop, no_watchdog, {});
    WatchdogPinger b(**loop, no_systemd, {});
    EXPECT_FALSE(a.Start());
    EXPECT_FALSE(b.Start());
    RunFor(**loop, 50);
    EXPECT_TRUE(sock.Drain().empty());
  }
  (*loop)->RunNoWait();
}

}  // namespace
}  // namespace edgespool::agent
