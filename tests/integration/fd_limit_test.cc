// The agent's file descriptor budget, against the real binary started the way
// systemd starts services (soft RLIMIT_NOFILE 1024, through prlimit(1)):
//   - with a hard limit that allows it, the agent raises its soft limit to
//     producer.max_connections + 64 + 4096 (agent/fd_limit.h), and 10,000
//     producer connections are all served (a ping answered), then a burst of
//     2,000 more, all connected before any is read, is refused with `busy`
//     frames; none fails with an I/O error (EMFILE at the agent shows up here
//     as a connection closed without a frame: with a margin of 64 alone, 105
//     of a burst of 200 were);
//   - with a hard limit below that, the agent says so in one warning naming
//     the key and both numbers, and runs with soft = hard.
#include "agent/fd_limit.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "agent/protocol/reply.h"
#include "platform/process_limits.h"
#include "tests/integration/producer_test_util.h"
#include "tests/support/e2e.h"

namespace edgespool::testing {
namespace {

constexpr int kConnections = 10000;
constexpr int kPastMax = 2000;  // at once, past max_connections: each must get `busy`
constexpr uint64_t kAgentNeeds = kConnections + agent::kFileLimitMargin + agent::kRefusalBurst;

bool HavePrlimit() { return ::system("prlimit --version >/dev/null 2>&1") == 0; }

// "Max open files  SOFT  HARD  files" from /proc/PID/limits.
bool ReadFileLimit(pid_t pid, uint64_t* soft, uint64_t* hard) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/limits");
  std::string line;
  while (std::getline(in, line)) {
    unsigned long long s = 0, h = 0;
    if (std::sscanf(line.c_str(), "Max open files %llu %llu", &s, &h) == 2) {
      *soft = s;
      *hard = h;
      return true;
    }
  }
  return false;
}

struct Tally {
  int served = 0, busy = 0, failed = 0;
  std::string first_failure;
  void Fail(int i, const std::string& why) {
    if (failed++ == 0) first_failure = "connection " + std::to_string(i) + ": " + why;
  }
};

// Reads one reply on c: an answered ping with req i, or a busy refusal.
void ReadOutcome(RawClient& c, int i, Tally* t) {
  std::string header, error;
  protocol::Reply r;
  if (!c.ReadFrame(&header, nullptr, 20000)) return t->Fail(i, "closed or timed out, no frame");
  if (!protocol::ParseReply(header, &r, &error)) return t->Fail(i, "bad reply " + header);
  if (r.ok && r.req == i) {
    ++t->served;
  } else if (!r.ok && r.code == protocol::ErrorCode::kBusy) {
    ++t->busy;
  } else {
    t->Fail(i, "unexpected reply " + header);
  }
}

std::string Ping(int req) { return "{\"op\":\"ping\",\"req\":" + std::to_string(req) + "}"; }

// Connects clients->size() producers (all kept open), pings each, reads
// every outcome.
Tally ConnectAndPing(const std::string& path, std::vector<RawClient>* clients) {
  Tally t;
  int n = static_cast<int>(clients->size());
  for (int i = 0; i < n; ++i) {
    if (!(*clients)[i].Connect(path)) {
      t.Fail(i, std::string("connect: ") + std::strerror(errno));
      (*clients)[i].Close();  // counted once: no send, no read
    }
  }
  for (int i = 0; i < n; ++i) {
    if ((*clients)[i].fd() >= 0 && !(*clients)[i].SendFrame(Ping(i))) {
      t.Fail(i, "send failed");
      (*clients)[i].Close();
    }
  }
  for (int i = 0; i < n; ++i) {
    if ((*clients)[i].fd() >= 0) ReadOutcome((*clients)[i], i, &t);
  }
  return t;
}

// n more connections at once, all connected before any is read: the agent
// accepts them in a turn or two, each refused one holding an fd meanwhile.
Tally Burst(const std::string& path, int n, int first_req) {
  Tally t;
  std::vector<RawClient> burst(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    if (!burst[i].Connect(path)) {
      t.Fail(first_req + i, std::string("connect: ") + std::strerror(errno));
      burst[i].Close();
    }
  }
  for (int i = 0; i < n; ++i) {
    if (burst[i].fd() >= 0) ReadOutcome(burst[i], first_req + i, &t);
  }
  return t;
}

TEST(FdLimit, TenThousandProducersUnderASoftLimitOf1024) {
  if (!HavePrlimit()) GTEST_SKIP() << "prlimit(1) (util-linux) not installed";
  // The test holds every client end itself: it needs the fds too.
  auto own = platform::RaiseFileLimit(kConnections + kPastMax + 256);
  ASSERT_TRUE(own.ok()) << own.status().ToString();
  if (own->soft < kConnections + kPastMax + 256) {
    GTEST_SKIP() << "this process cannot hold " << kConnections << " sockets: RLIMIT_NOFILE "
                 << own->soft << ":" << own->hard;
  }
  uint64_t hard = own->hard == platform::kUnlimited ? 1 << 20 : own->hard;
  ASSERT_GE(hard, kAgentNeeds);

  TempDir dir;
  Mosquitto broker(dir.path());
  ASSERT_TRUE(broker.Start());
  AgentProcess agent(dir.path(), broker.url(),
                     {{"producer", "max_connections = " + std::to_string(kConnections)}});
  agent.SetCommandPrefix({"prlimit", "--nofile=1024:" + std::to_string(hard)});
  ASSERT_TRUE(agent.Start()) << agent.log();
  uint64_t soft = 0, agent_hard = 0;
  ASSERT_TRUE(ReadFileLimit(agent.pid(), &soft, &agent_hard));
  EXPECT_EQ(soft, kAgentNeeds);
  EXPECT_EQ(agent_hard, hard);
  EXPECT_NE(agent.log().find("raised the file descriptor limit (RLIMIT_NOFILE) from=1024 to=" +
                             std::to_string(kAgentNeeds)),
            std::string::npos)
      << agent.log();

  auto start = std::chrono::steady_clock::now();
  std::vector<RawClient> clients(kConnections);
  Tally t = ConnectAndPing(agent.socket(), &clients);
  Tally past = Burst(agent.socket(), kPastMax, kConnections);  // all 10,000 still open
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf(
      "agent RLIMIT_NOFILE 1024 -> %llu (hard %llu); %d connections: %d served, %d busy, "
      "%d failed; %d past max: %d busy, %d served, %d failed; %.2f s\n",
      static_cast<unsigned long long>(soft), static_cast<unsigned long long>(agent_hard),
      kConnections, t.served, t.busy, t.failed, kPastMax, past.busy, past.served, past.failed,
      seconds);
  EXPECT_EQ(t.failed, 0) << t.first_failure;
  EXPECT_EQ(t.served, kConnections);
  EXPECT_EQ(past.failed, 0) << past.first_failure;
  EXPECT_EQ(past.busy, kPastMax);
  EXPECT_LT(seconds, 60);
  clients.clear();
  EXPECT_EQ(agent.Stop(), 0) << agent.log();
  EXPECT_EQ(agent.log().find("many open files"), std::string::npos) << agent.log();
}

TEST(FdLimit, AHardLimitBelowTheNeedIsWarnedAboutWithBothNumbers) {
  if (!HavePrlimit()) GTEST_SKIP() << "prlimit(1) (util-linux) not installed";
  TempDir dir;
  Mosquitto broker(dir.path());
  ASSERT_TRUE(broker.Start());
  AgentProcess agent(dir.path(), broker.url(),
                     {{"producer", "max_connections = " + std::to_string(kConnections)}});
  agent.SetCommandPrefix({"prlimit", "--nofile=1024:2048"});
  ASSERT_TRUE(agent.Start()) << agent.log();
  uint64_t soft = 0, hard = 0;
  ASSERT_TRUE(ReadFileLimit(agent.pid(), &soft, &hard));
  EXPECT_EQ(soft, 2048u);  // raised as far as it goes
  EXPECT_EQ(hard, 2048u);
  std::string log = agent.log();
  size_t at = log.find(
      " warn file descriptor hard limit (RLIMIT_NOFILE) is below what "
      "producer.max_connections needs");
  ASSERT_NE(at, std::string::npos) << log;
  std::string line = log.substr(at, log.find('\n', at) - at);
  std::string needed = "needed=" + std::to_string(kAgentNeeds);
  for (const char* field : {"key=producer.max_connections", "max_connections=10000", needed.c_str(),
                            "hard_limit=2048", "soft_limit=2048"}) {
    EXPECT_NE(line.find(field), std::string::npos) << field << " missing in: " << line;
  }
  EXPECT_EQ(agent.Stop(), 0) << agent.log();
}

TEST(FdLimit, ASoftLimitThatSufficesIsLeftAlone) {
  if (!HavePrlimit()) GTEST_SKIP() << "prlimit(1) (util-linux) not installed";
  TempDir dir;
  Mosquitto broker(dir.path());
  ASSERT_TRUE(broker.Start());
  AgentProcess agent(dir.path(), broker.url(), {{"producer", "max_connections = 100"}});
  agent.SetCommandPrefix({"prlimit", "--nofile=8192:8192"});
  ASSERT_TRUE(agent.Start()) << agent.log();
  uint64_t soft = 0, hard = 0;
  ASSERT_TRUE(ReadFileLimit(agent.pid(), &soft, &hard));
  EXPECT_EQ(soft, 8192u);  // 100 + 64 + 4096 needed: left alone
  EXPECT_EQ(agent.log().find("RLIMIT_NOFILE"), std::string::npos) << agent.log();
  EXPECT_EQ(agent.Stop(), 0) << agent.log();
}

}  // namespace
}  // namespace edgespool::testing
