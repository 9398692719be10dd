// The dashboard's routes and event stream (agent/fleet/dashboard.h) over a
// real socket, fed by hand: documents are applied to the model and the
// observer calls made as the watcher would make them (the watcher is created
// but never started, so no broker is needed).
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>

#include "agent/fleet/dashboard.h"
#include "platform/clock.h"
#include "tests/support/http_get.h"
#include "tests/support/loop_thread.h"

namespace edgespool::agent::fleet {
namespace {

using ::edgespool::testing::LoopThread;

std::string Doc(const std::string& node, int pending) {
  return R"({"node":")" + node + R"(","online":true,"ts_ms":1,"pending":{"messages":)" +
         std::to_string(pending) + "}}";
}

// A blocking reader of one event stream.
class StreamReader {
 public:
  explicit StreamReader(uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    std::string req = "GET /events HTTP/1.1\r\nHost: x\r\n\r\n";
    EXPECT_EQ(::write(fd_, req.data(), req.size()), ssize_t(req.size()));
  }
  ~StreamReader() { ::close(fd_); }
  // The next complete event ("event: ...\ndata: ..."), skipping the HTTP
  // head, retry: lines and comments; "" after 3 s without one.
  std::string NextEvent() {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
    while (true) {
      size_t head = buf_.find("\r\n\r\n");
      if (head != std::string::npos) buf_.erase(0, head + 4);
      size_t end = buf_.find("\n\n");
      if (end != std::string::npos) {
        std::string event = buf_.substr(0, end);
        buf_.erase(0, end + 2);
        size_t at = event.find("event: ");
        if (at != std::string::npos) return event.substr(at);
        continue;
      }
      int left = int(std::chrono::duration_cast<std::chrono::milliseconds>(
                         deadline - std::chrono::steady_clock::now())
                         .count());
      pollfd p{fd_, POLLIN, 0};
      if (left <= 0 || ::poll(&p, 1, left) != 1) return "";
      char chunk[65536];
      ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
      if (n <= 0) return "";
      buf_.append(chunk, size_t(n));
    }
  }

 private:
  int fd_ = -1;
  std::string buf_;
};

TEST(DashboardTest, SnapshotThenOneUpdatePerTurnThenRemovals) {
  LoopThread lt;
  FleetModel model;
  std::unique_ptr<FleetWatcher> watcher;
  std::unique_ptr<Dashboard> dashboard;
  const platform::Clock& clock = platform::SystemClock::Get();
  lt.RunOnLoop([&] {
    FleetWatcherOptions o;
    o.client.url = "mqtt://127.0.0.1:1";  // never started: no connection is made
    watcher = std::move(FleetWatcher::Create(lt.loop(), std::move(o), &model, clock)).value();
    std::string node;
    model.Apply("edgespool/a/status", Doc("a", 0), false, clock.WallMs(), &node);
    dashboard = std::move(Dashboard::Create(lt.loop(), *ParseListenAddress("127.0.0.1:0"),
                                            watcher.get(), clock, "mqtt://broker:1883"))
                    .value();
  });
  uint16_t port = lt.RunOnLoop([&] { return dashboard->port(); });

  StreamReader stream(port);
  std::string snapshot = stream.NextEvent();
  ASSERT_EQ(snapshot.rfind("event: snapshot\ndata: {", 0), 0u) << snapshot;
  EXPECT_NE(snapshot.find(R"("broker":"mqtt://broker:1883","connected":false)"), std::string::npos)
      << snapshot;
  EXPECT_NE(snapshot.find(R"("nodes":[{"node":"a",)"), std::string::npos) << snapshot;

  // Two documents in one loop turn: one event with both rows (pending and
  // never synced: behind).
  lt.RunOnLoop([&] {
    std::string node;
    for (const auto& [name, pending] : {std::pair<std::string, int>{"b", 7}, {"a", 3}}) {
      model.Apply("edgespool/" + name + "/status", Doc(name, pending), false, clock.WallMs(),
                  &node);
      dashboard->OnNodeChanged(*model.Find(node));
    }
  });
  std::string update = stream.NextEvent();
  ASSERT_EQ(update.rfind("event: update\ndata: {", 0), 0u) << update;
  EXPECT_NE(update.find(R"({"node":"a","online":true,"stale":true,"state":"behind")"),
            std::string::npos)
      << update;
  EXPECT_NE(update.find(R"("pending":7)"), std::string::npos) << update;
  EXPECT_NE(update.find(R"("removed":[])"), std::string::npos) << update;
  EXPECT_EQ(update.find('\n', update.find("data: ")), std::string::npos) << "one data line";
  EXPECT_EQ(lt.RunOnLoop([&] { return dashboard->events_sent(); }), 1u);

  lt.RunOnLoop([&] {
    std::string node;
    model.Apply("edgespool/b/status", "", false, clock.WallMs(), &node);
    dashboard->OnNodeRemoved(node);
  });
  update = stream.NextEvent();
  EXPECT_NE(update.find(R"("nodes":[],"removed":["b"])"), std::string::npos) << update;

  std::string page = ::edgespool::testing::HttpGet(port, "/");
  EXPECT_NE(page.find("Content-Type: text/html"), std::string::npos);
  EXPECT_NE(page.find("<title>edgespool fleet</title>"), std::string::npos);
  EXPECT_NE(page.find("new EventSource(\"events\")"), std::string::npos);
  std::string api = ::edgespool::testing::HttpGet(port, "/api/fleet");
  EXPECT_NE(api.find("\r\n\r\n[{\"node\":\"a\""), std::string::npos) << api;
  EXPECT_EQ(api.find("\"node\":\"b\""), std::string::npos) << api;
  // Not connected to a broker: not ready.
  EXPECT_EQ(::edgespool::testing::HttpGet(port, "/readyz").rfind("HTTP/1.1 503", 0), 0u);

  lt.RunOnLoop([&] {
    dashboard.reset();
    watcher.reset();
  });
}

}  // namespace
}  // namespace edgespool::agent::fleet
