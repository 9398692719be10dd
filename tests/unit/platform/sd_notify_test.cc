// The notify protocol against a real Unix datagram socket playing the service
// manager, and socket activation with real fds placed at 3, 4, ...
#include "platform/sd_notify.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "tests/support/test_env.h"

namespace edgespool::platform {
namespace {

// Sets or unsets an environment variable for the scope of a test.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    const char* old = std::getenv(name);
    had_ = old != nullptr;
    if (had_) old_ = old;
    if (value) {
      ::setenv(name, value, 1);
    } else {
      ::unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (had_) {
      ::setenv(name_, old_.c_str(), 1);
    } else {
      ::unsetenv(name_);
    }
  }

 private:
  const char* name_;
  bool had_ = false;
  std::string old_;
};

// The service manager's end: a bound datagram socket.
class FakeManager {
 public:
  // name: a path, or "@name" for the abstract namespace.
  explicit FakeManager(const std::string& name) : name_(name) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    EXPECT_GE(fd_, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, name.data(), name.size());
    socklen_t len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name.size());
    if (name[0] == '@') {
      addr.sun_path[0] = '\0';
    } else {
      len += 1;
    }
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), len), 0) << std::strerror(errno);
  }
  ~FakeManager() { ::close(fd_); }

  // The next datagram, or "<none>" after timeout_ms.
  std::string Receive(int timeout_ms = 1000) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) != 1) return "<none>";
    char buf[4096];
    ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    return n < 0 ? "<error>" : std::string(buf, static_cast<size_t>(n));
  }

 private:
  std::string name_;
  int fd_ = -1;
};

TEST(SdNotifyTest, SendsReadyStatusWatchdogStoppingToPathSocket) {
  testing::TempDir dir;
  std::string path = dir.File("notify.sock");
  FakeManager manager(path);
  ScopedEnv s("NOTIFY_SOCKET", path.c_str());
  ScopedEnv u("WATCHDOG_USEC", "3000000");
  ScopedEnv p("WATCHDOG_PID", std::to_string(::getpid()).c_str());

  SystemdNotifier n = SystemdNotifier::FromEnvironment();
  ASSERT_TRUE(n.enabled());
  EXPECT_TRUE(n.watchdog_enabled());
  EXPECT_EQ(n.WatchdogInterval(), std::chrono::microseconds(1500000));

  ASSERT_TRUE(n.Ready().ok());
  EXPECT_EQ(manager.Receive(), "READY=1");
  ASSERT_TRUE(n.Status("uplink connected, 12 pending").ok());
  EXPECT_EQ(manager.Receive(), "STATUS=uplink connected, 12 pending");
  // A newline would start a second assignment the manager would misread.
  ASSERT_TRUE(n.Status("two\nlines\r").ok());
  EXPECT_EQ(manager.Receive(), "STATUS=two lines ");
  ASSERT_TRUE(n.Watchdog().ok());
  EXPECT_EQ(manager.Receive(), "WATCHDOG=1");
  ASSERT_TRUE(n.Stopping().ok());
  EXPECT_EQ(manager.Receive(), "STOPPING=1");
  EXPECT_EQ(manager.Receive(50), "<none>");
}

// A reload is announced as one datagram: RELOADING=1 and the CLOCK_MONOTONIC
// time in microseconds (what sd_notify(3) asks for with Type=notify-reload).
TEST(SdNotifyTest, ReloadingCarriesMonotonicUsec) {
  testing::TempDir dir;
  std::string path = dir.File("notify.sock");
  FakeManager manager(path);
  SystemdNotifier n(path, 0);
  struct timespec before;
  ::clock_gettime(CLOCK_MONOTONIC, &before);
  ASSERT_TRUE(n.Reloading().ok());
  std::string got = manager.Receive();
  const std::string prefix = "RELOADING=1\nMONOTONIC_USEC=";
  ASSERT_EQ(got.substr(0, prefix.size()), prefix) << got;
  uint64_t usec = std::stoull(got.substr(prefix.size()));
  uint64_t before_usec = static_cast<uint64_t>(before.tv_sec) * 1000000u +
                         static_cast<uint64_t>(before.tv_nsec) / 1000u;
  EXPECT_GE(usec, before_usec);
  EXPECT_LT(usec, before_usec + 10000000u);
  ASSERT_TRUE(n.Ready().ok());
  EXPECT_EQ(manager.Receive(), "READY=1");
}

TEST(SdNotifyTest, AbstractNamespaceSocket) {
  std::string name = "@edgespool-sd-notify-test-" + std::to_string(::getpid());
  FakeManager manager(name);
  ScopedEnv s("NOTIFY_SOCKET", name.c_str());
  ScopedEnv u("WATCHDOG_USEC", nullptr);
  ScopedEnv p("WATCHDOG_PID", nullptr);
  SystemdNotifier n = SystemdNotifier::FromEnvironment();
  ASSERT_TRUE(n.enabled());
  EXPECT_FALSE(n.watchdog_enabled());
  EXPECT_EQ(n.WatchdogInterval().count(), 0);
  ASSERT_TRUE(n.Ready().ok());
  EXPECT_EQ(manager.Receive(), "READY=1");
  // No watchdog configured: the ping is a no-op and sends nothing.
  ASSERT_TRUE(n.Watchdog().ok());
  ASSERT_TRUE(n.Status("abstract").ok());
  EXPECT_EQ(manager.Receive(), "STATUS=abstract");
}

TEST(SdNotifyTest, UnsetNotifySocketIsANoOp) {
  ScopedEnv s("NOTIFY_SOCKET", nullptr);
  ScopedEnv u("WATCHDOG_USEC", "1000000");
  SystemdNotifier n = SystemdNotifier::FromEnvironment();
  EXPECT_FALSE(n.enabled());
  EXPECT_FALSE(n.watchdog_enabled());
  EXPECT_TRUE(n.Ready().ok());
  EXPECT_TRUE(n.Status("x").ok());
  EXPECT_TRUE(n.Watchdog().ok());
  EXPECT_TRUE(n.Stopping().ok());
  SystemdNotifier defaulted;
  EXPECT_FALSE(defaulted.enabled());
  EXPECT_TRUE(defaulted.Ready().ok());
}

TEST(SdNotifyTest, WatchdogForAnotherPidIsDisabled) {
  testing::TempDir dir;
  std::string path = dir.File("notify.sock");
  FakeManager manager(path);
  ScopedEnv s("NOTIFY_SOCKET", path.c_str());
  ScopedEnv u("WATCHDOG_USEC", "2000000");
  ScopedEnv p("WATCHDOG_PID", std::to_string(::getpid() + 1).c_str());
  SystemdNotifier n = SystemdNotifier::FromEnvironment();
  EXPECT_TRUE(n.enabled());
  EXPECT_FALSE(n.watchdog_enabled());
  EXPECT_EQ(n.WatchdogInterval().count(), 0);
  ASSERT_TRUE(n.Watchdog().ok());
  ASSERT_TRUE(n.Ready().ok());
  // READY arrives, and nothing came before it: the ping was not sent.
  EXPECT_EQ(manager.Receive(), "READY=1");
}

TEST(SdNotifyTest, MalformedWatchdogUsecDisablesWatchdogOnly) {
  testing::TempDir dir;
  std::string path = dir.File("notify.sock");
  FakeManager manager(path);
  ScopedEnv s("NOTIFY_SOCKET", path.c_str());
  ScopedEnv p("WATCHDOG_PID", nullptr);
  for (const char* bad : {"abc", "-5", "12 ", "0", "99999999999999999999999"}) {
    ScopedEnv u("WATCHDOG_USEC", bad);
    SystemdNotifier n = SystemdNotifier::FromEnvironment();
    EXPECT_TRUE(n.enabled()) << bad;
    EXPECT_FALSE(n.watchdog_enabled()) << bad;
  }
}

TEST(SdNotifyTest, UnsetEnvironmentRemovesVariables) {
  ScopedEnv s("NOTIFY_SOCKET", "/nonexistent/notify.sock");
  ScopedEnv u("WATCHDOG_USEC", "1000000");
  ScopedEnv p("WATCHDOG_PID", std::to_string(::getpid()).c_str());
  SystemdNotifier n = SystemdNotifier::FromEnvironment(/*unset_environment=*/true);
  EXPECT_TRUE(n.enabled());
  EXPECT_TRUE(n.watchdog_enabled());
  EXPECT_EQ(std::getenv("NOTIFY_SOCKET"), nullptr);
  EXPECT_EQ(std::getenv("WATCHDOG_USEC"), nullptr);
  EXPECT_EQ(std::getenv("WATCHDOG_PID"), nullptr);
  // Nobody listens there: the error says so instead of being swallowed.
  Status st = n.Ready();
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("/nonexistent/notify.sock"), std::string::npos) << st.ToString();
}

TEST(SdNotifyTest, RelativeNotifySocketIsIgnored) {
  ScopedEnv s("NOTIFY_SOCKET", "relative.sock");
  SystemdNotifier n = SystemdNotifier::FromEnvironment();
  EXPECT_FALSE(n.enabled());
}

TEST(SdNotifyTest, MovedNotifierKeepsWorking) {
  testing::TempDir dir;
  std::string path = dir.File("notify.sock");
  FakeManager manager(path);
  SystemdNotifier a(path, 1000000);
  ASSERT_TRUE(a.Ready().ok());  // opens the socket
  EXPECT_EQ(manager.Receive(), "READY=1");
  SystemdNotifier b(std::move(a));
  EXPECT_FALSE(a.enabled());  // NOLINT(bugprone-use-after-move): moved-from is disabled
  ASSERT_TRUE(b.Watchdog().ok());
  EXPECT_EQ(manager.Receive(), "WATCHDOG=1");
}

// --- socket activation -------------------------------------------------------

// Places the given fds at 3, 4, ... for the scope of a test, restoring
// whatever was there before (the test runner may own low fds).
class FdsAtThree {
 public:
  explicit FdsAtThree(std::vector<int> fds) {
    // Move the sources out of the way first: one may already sit at 3 or 4.
    for (int& fd : fds) {
      int high = ::fcntl(fd, F_DUPFD, 100);
      ::close(fd);
      fd = high;
    }
    for (size_t i = 0; i < fds.size(); ++i) {
      int target = kListenFdsStart + static_cast<int>(i);
      int saved = ::fcntl(target, F_DUPFD_CLOEXEC, 200);  // -1 if target was closed
      saved_.push_back(saved);
      EXPECT_EQ(::dup2(fds[i], target), target);
      ::close(fds[i]);
    }
  }
  ~FdsAtThree() {
    for (size_t i = 0; i < saved_.size(); ++i) {
      int target = kListenFdsStart + static_cast<int>(i);
      if (saved_[i] >= 0) {
        ::dup2(saved_[i], target);
        ::close(saved_[i]);
      } else {
        ::close(target);
      }
    }
  }

 private:
  std::vector<int> saved_;
};

int ListeningTcpSocket() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);  // no CLOEXEC: as systemd passes it
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  EXPECT_EQ(::listen(fd, 4), 0);
  return fd;
}

int ListeningUnixSocket(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  EXPECT_EQ(::listen(fd, 4), 0);
  return fd;
}

TEST(ListenFdsTest, ReturnsPassedSocketsWithNamesAndClearsEnvironment) {
  testing::TempDir dir;
  FdsAtThree fds({ListeningUnixSocket(dir.File("p.sock")), ListeningTcpSocket()});
  ScopedEnv pid("LISTEN_PID", std::to_string(::getpid()).c_str());
  ScopedEnv n("LISTEN_FDS", "2");
  ScopedEnv names("LISTEN_FDNAMES", "producer:metrics");
  auto got = TakeListenFds();
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ASSERT_EQ(got->size(), 2u);
  EXPECT_EQ((*got)[0].fd, 3);
  EXPECT_EQ((*got)[0].name, "producer");
  EXPECT_TRUE((*got)[0].is_unix);
  EXPECT_EQ((*got)[1].fd, 4);
  EXPECT_EQ((*got)[1].name, "metrics");
  EXPECT_FALSE((*got)[1].is_unix);
  // Close-on-exec, so a spawned child does not hold our listeners open.
  EXPECT_TRUE(::fcntl(3, F_GETFD) & FD_CLOEXEC);
  EXPECT_TRUE(::fcntl(4, F_GETFD) & FD_CLOEXEC);
  EXPECT_EQ(std::getenv("LISTEN_PID"), nullptr);
  EXPECT_EQ(std::getenv("LISTEN_FDS"), nullptr);
  EXPECT_EQ(std::getenv("LISTEN_FDNAMES"), nullptr);
  // Taken once: a second call finds nothing.
  auto again = TakeListenFds();
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->empty());
}

TEST(ListenFdsTest, WithoutNamesEachIsUnknown) {
  FdsAtThree fds({ListeningTcpSocket()});
  ScopedEnv pid("LISTEN_PID", std::to_string(::getpid()).c_str());
  ScopedEnv n("LISTEN_FDS", "1");
  ScopedEnv names("LISTEN_FDNAMES", nullptr);
  auto got = TakeListenFds();
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ASSERT_EQ(got->size(), 1u);
  EXPECT_EQ((*got)[0].name, "unknown");
}

TEST(ListenFdsTest, PidMismatchIsIgnoredButCleared) {
  FdsAtThree fds({ListeningTcpSocket()});
  ScopedEnv pid("LISTEN_PID", std::to_string(::getpid() + 1).c_str());
  ScopedEnv n("LISTEN_FDS", "1");
  auto got = TakeListenFds();
  ASSERT_TRUE(got.ok());
  EXPECT_TRUE(got->empty());
  EXPECT_EQ(std::getenv("LISTEN_PID"), nullptr);
  EXPECT_EQ(std::getenv("LISTEN_FDS"), nullptr);
}

TEST(ListenFdsTest, UnsetGivesEmpty) {
  ScopedEnv pid("LISTEN_PID", nullptr);
  ScopedEnv n("LISTEN_FDS", nullptr);
  auto got = TakeListenFds();
  ASSERT_TRUE(got.ok());
  EXPECT_TRUE(got->empty());
}

TEST(ListenFdsTest, MalformedValuesAreClearErrors) {
  std::string me = std::to_string(::getpid());
  {
    ScopedEnv pid("LISTEN_PID", me.c_str());
    ScopedEnv n("LISTEN_FDS", "two");
    auto got = TakeListenFds();
    ASSERT_FALSE(got.ok());
    EXPECT_NE(got.status().message().find("LISTEN_FDS"), std::string::npos);
  }
  {
    ScopedEnv pid("LISTEN_PID", "self");
    ScopedEnv n("LISTEN_FDS", "1");
    auto got = TakeListenFds();
    ASSERT_FALSE(got.ok());
    EXPECT_NE(got.status().message().find("LISTEN_PID"), std::string::npos);
  }
  {
    FdsAtThree fds({ListeningTcpSocket()});
    ScopedEnv pid("LISTEN_PID", me.c_str());
    ScopedEnv n("LISTEN_FDS", "1");
    ScopedEnv names("LISTEN_FDNAMES", "a:b");
    auto got = TakeListenFds();
    ASSERT_FALSE(got.ok());
    EXPECT_NE(got.status().message().find("LISTEN_FDNAMES"), std::string::npos);
  }
  {
    // An fd that is not a socket (a pipe) is refused.
    int p[2];
    ASSERT_EQ(::pipe(p), 0);
    ::close(p[1]);
    FdsAtThree fds({p[0]});
    ScopedEnv pid("LISTEN_PID", me.c_str());
    ScopedEnv n("LISTEN_FDS", "1");
    auto got = TakeListenFds();
    ASSERT_FALSE(got.ok());
    EXPECT_NE(got.status().message().find("not a socket"), std::string::npos)
        << got.status().ToString();
  }
}

}  // namespace
}  // namespace edgespool::platform
