// `edgespool consume` end to end: real agents (processes) uplinking to a real
// mosquitto, the consume CLI as a process, its JSON lines checked as
// TESTING.md's queue checker does (lost, duplicated, reordered per topic).
//
// 1. Three agents with skewed clocks (faketime: +2 s, -2 s, none), two in
//    batch mode and one in message mode (MQTT 5 user properties); the third
//    loses its broker connection for 5 s (its TCP proxy turns into a black hole)
//    while its producers go on. consume prints every message once, in
//    original-ts order per topic, and marks late exactly what the cut node
//    uploaded after the others had been released past it.
// 2. Scale-out: three consume instances in one group share four partitions
//    (upstream_topic fleet/{part:4}/{topic}); one is SIGKILLed mid-stream;
//    its partitions move to the other two (their persistent sessions are
//    resumed), and no acknowledged message is lost.
// 3. Batch mode over RabbitMQ 3.10 (MQTT 3.1.1, mqtt.prefetch raised), when it
//    is installed: every message once, in order, none late.
#include <cJSON.h>
#include <glob.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <future>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <thread>

#include "agent/client/producer.h"
#include "sync/routes.h"
#include "tests/support/e2e.h"
#include "tests/support/e2e_fixture.h"
#include "tests/support/rabbitmq.h"
#include "tests/support/tcp_proxy.h"
#include "tests/support/test_env.h"

namespace edgespool::testing {
namespace {

std::string Bin() {
  const char* b = std::getenv("EDGESPOOL_BIN");
  return b ? b : "edgespool";
}

// libfaketimeMT (Debian's libfaketime, multiarch path), or "" if absent.
std::string FaketimeLibrary() {
  glob_t g;
  std::string found;
  if (::glob("/usr/lib/*/faketime/libfaketimeMT.so.1", 0, nullptr, &g) == 0 && g.gl_pathc > 0) {
    found = g.gl_pathv[0];
  }
  ::globfree(&g);
  return found;
}

struct Line {
  std::string node, id, topic;
  uint64_t seq = 0;
  int64_t ts = 0;
  bool late = false;
};

// The JSON lines a consume process wrote (other lines, e.g. warnings on
// stderr, are skipped).
std::vector<Line> ReadLines(const std::string& path) {
  std::vector<Line> out;
  std::istringstream in(ReadFile(path));
  std::string l;
  while (std::getline(in, l)) {
    if (l.empty() || l[0] != '{') continue;
    cJSON* j = cJSON_Parse(l.c_str());
    if (!j) continue;
    Line x;
    x.node = cJSON_GetObjectItem(j, "node")->valuestring;
    x.id = cJSON_GetObjectItem(j, "id")->valuestring;
    x.topic = cJSON_GetObjectItem(j, "topic")->valuestring;
    x.seq = static_cast<uint64_t>(cJSON_GetObjectItem(j, "seq")->valuedouble);
    x.ts = static_cast<int64_t>(cJSON_GetObjectItem(j, "ts")->valuedouble);
    x.late = cJSON_IsTrue(cJSON_GetObjectItem(j, "late"));
    cJSON_Delete(j);
    out.push_back(x);
  }
  return out;
}

// Non-late lines out of (ts, node, seq) order on their topic.
size_t Reordered(const std::vector<Line>& lines) {
  std::map<std::string, int64_t> last;
  size_t bad = 0;
  for (const Line& l : lines) {
    if (l.late) continue;
    auto it = last.find(l.topic);
    if (it != last.end() && l.ts < it->second) ++bad;
    last[l.topic] = l.ts;
  }
  return bad;
}

class ConsumeProcess {
 public:
  ConsumeProcess(std::string dir, std::string name)
      : dir_(std::move(dir)), name_(std::move(name)) {}
  bool Start(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {Bin(), "consume"};
    argv.insert(argv.end(), args.begin(), args.end());
    return process_.Start(argv, out());
  }
  std::string out() const { return dir_ + "/" + name_ + ".out"; }
  std::vector<Line> Lines() const { return ReadLines(out()); }
  int Stop() {
    process_.Signal(SIGTERM);
    return process_.Wait(10000);
  }
  void Kill() {
    process_.Signal(SIGKILL);
    process_.Wait(10000);
  }
  bool running() { return process_.running(); }

 private:
  std::string dir_, name_;
  Process process_;
};

class ConsumeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!CommandExists("mosquitto")) GTEST_SKIP() << "mosquitto not installed";
    MosquittoOptions o;
    o.persistence = true;  // the group's partition sessions survive their owners
    broker_ = std::make_unique<Mosquitto>(dir_.path(), o);
    ASSERT_TRUE(broker_->Start()) << broker_->log();
  }

  // An agent named `node` in its own directory, uplinking through a proxy.
  AgentProcess* AddAgent(const std::string& node, const std::string& skew,
                         std::multimap<std::string, std::string> settings,
                         uint16_t broker_port = 0) {
    std::string d = dir_.File(node);
    WriteFile(d + ".keep", "");
    ::mkdir(d.c_str(), 0755);
    proxies_.push_back(std::make_unique<TcpProxy>(broker_port ? broker_port : broker_->port()));
    EXPECT_TRUE(proxies_.back()->Start());
    settings.emplace("node", "id = \"" + node + "\"");
    settings.emplace("status", "watermark_interval = \"200ms\"");
    settings.emplace("uplink", "keepalive = \"2s\"");
    agents_.push_back(
        std::make_unique<AgentProcess>(d, proxies_.back()->url(), std::move(settings)));
    if (!skew.empty()) {
      // libfaketime preloaded through env, which execs: the faketime wrapper
      // would fork, and a SIGKILL of it leaves the agent running.
      agents_.back()->SetCommandPrefix({"env", "LD_PRELOAD=" + FaketimeLibrary(),
                                        "FAKETIME=" + skew, "FAKETIME_DONT_FAKE_MONOTONIC=1"});
    }
    EXPECT_TRUE(agents_.back()->Start()) << agents_.back()->log();
    client::ProducerOptions po;
    po.socket_path = agents_.back()->socket();
    auto p = client::Producer::Connect(po);
    EXPECT_TRUE(p.ok()) << p.status().ToString();
    producers_.push_back(p.ok() ? std::move(*p) : nullptr);
    return agents_.back().get();
  }

  // Publishes `per_agent` messages to every agent, `rate` per second each,
  // on topics sensors/t0..t{topics-1}; ids a<agent>-phase-i. Records acks.
  void Publish(const std::string& phase, int per_agent, int rate, int topics = 3) {
    std::vector<std::future<client::PublishResult>> f;
    std::vector<std::string> ids;
    auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < per_agent; ++i) {
      for (size_t a = 0; a < producers_.size(); ++a) {
        client::PublishOptions o;
        o.id = "a" + std::to_string(a) + "-" + phase + "-" + std::to_string(i);
        ids.push_back(o.id);
        f.push_back(producers_[a]->Publish("sensors/t" + std::to_string(i % topics),
                                           "{\"i\":" + std::to_string(i) + "}", o));
      }
      std::this_thread::sleep_until(start + std::chrono::microseconds(1000000LL * (i + 1) / rate));
    }
    for (size_t i = 0; i < f.size(); ++i) {
      auto r = f[i].get();
      ASSERT_TRUE(r.status.ok()) << r.status.ToString();
      acked_.insert(ids[i]);
    }
  }

  // Until every instance printed something: their subscriptions (and the
  // group's persistent sessions) exist, so nothing published later can miss
  // them. The warm-up messages ("warm-" ids) are not counted.
  bool WarmUp(const std::vector<ConsumeProcess*>& cs, int topics) {
    int round = 0;
    return WaitUntil(
        [&] {
          for (int t = 0; t < topics; ++t) {
            client::PublishOptions o;
            o.id = "warm-" + std::to_string(round) + "-" + std::to_string(t);
            (void)producers_[0]->Publish("sensors/t" + std::to_string(t), "{}", o).get();
          }
          ++round;
          std::this_thread::sleep_for(std::chrono::milliseconds(300));
          for (auto* c : cs) {
            if (c->Lines().empty()) return false;
          }
          return true;
        },
        30000);
  }

  static bool Printed(const ConsumeProcess& c, const std::string& id) {
    for (const Line& l : c.Lines()) {
      if (l.id == id) return true;
    }
    return false;
  }

  // Waits until the union of outputs holds every acked id.
  bool WaitAll(const std::vector<ConsumeProcess*>& cs, int timeout_ms) {
    return WaitUntil(
        [&] {
          std::set<std::string> got;
          for (auto* c : cs) {
            for (const Line& l : c->Lines()) got.insert(l.id);
          }
          for (const auto& id : acked_) {
            if (!got.count(id)) return false;
          }
          return true;
        },
        timeout_ms);
  }

  TempDir dir_;
  std::unique_ptr<Mosquitto> broker_;
  std::vector<std::unique_ptr<TcpProxy>> proxies_;
  std::vector<std::unique_ptr<AgentProcess>> agents_;
  std::vector<std::unique_ptr<client::Producer>> producers_;
  std::set<std::string> acked_;
};

TEST_F(ConsumeTest, SkewedClocksAndAnOutageComeOutOnceInOrderWithTheLateMarked) {
  if (FaketimeLibrary().empty()) GTEST_SKIP() << "libfaketime not installed (apt install faketime)";
  AddAgent("gw0", "+2s", {{"sync", "mode = \"batch\""}});
  AddAgent("gw1", "-2s", {});  // message mode: MQTT 5 user properties
  AddAgent("gw2", "", {{"sync", "mode = \"batch\""}});
  ASSERT_FALSE(HasFailure());
  ConsumeProcess consume(dir_.path(), "consume");
  ASSERT_TRUE(consume.Start({"--broker", broker_->url(), "--topic", "edgespool/+/batch", "--topic",
                             "sensors/#", "--max-wait", "10s", "--stats"}));
  ASSERT_TRUE(WarmUp({&consume}, 3));

  Publish("before", 200, 100);
  // gw2's uplink goes silent (a black hole: no FIN, no RST): the broker
  // drops it after 1.5 keepalives and publishes its will (offline); its
  // producers keep publishing into its journal.
  proxies_[2]->SetBlackHole(true);
  Publish("during", 500, 100);
  // The cut lasts until the consumer has released the others past what gw2
  // holds: gw1's clock runs 2 s behind, so a1-during-400 carries a ts ~2 s
  // after a2-during-0's. A fixed 5 s cut left too little margin on a loaded
  // machine (broker detection 3-4 s, gw1's watermark lagging): none came late.
  int extra = 0;
  for (; extra < 20 && !Printed(consume, "a1-during-400"); ++extra) {
    Publish("during-extra" + std::to_string(extra), 50, 100);
  }
  ASSERT_TRUE(Printed(consume, "a1-during-400"));
  proxies_[2]->SetBlackHole(false);
  Publish("after", 200, 100);

  ASSERT_TRUE(WaitAll({&consume}, 60000)) << ReadFile(consume.out()).substr(0, 2000);
  // Let whatever is still buffered out (the watermark moves every 200 ms).
  std::this_thread::sleep_for(std::chrono::seconds(2));
  EXPECT_EQ(consume.Stop(), 0);

  std::vector<Line> lines;
  for (const Line& l : consume.Lines()) {
    if (l.id.rfind("warm-", 0) != 0) lines.push_back(l);
  }
  std::map<std::string, int> seen;
  for (const Line& l : lines) ++seen[l.id];
  size_t lost = 0, duplicated = 0, unexpected = 0, late = 0, late_not_gw2 = 0;
  for (const auto& id : acked_) lost += seen.count(id) ? 0 : 1;
  for (const auto& [id, n] : seen) {
    duplicated += n > 1 ? n - 1 : 0;
    unexpected += acked_.count(id) ? 0 : 1;
  }
  std::map<std::string, size_t> per_node;
  for (const Line& l : lines) {
    ++per_node[l.node];
    if (!l.late) continue;
    ++late;
    if (l.node != "gw2") ++late_not_gw2;
  }
  size_t reordered = Reordered(lines);
  std::printf(
      "acked %zu, lines %zu, lost %zu, duplicated %zu, unexpected %zu, late %zu, "
      "reordered %zu; gw0 %zu gw1 %zu gw2 %zu\n",
      acked_.size(), lines.size(), lost, duplicated, unexpected, late, reordered, per_node["gw0"],
      per_node["gw1"], per_node["gw2"]);
  EXPECT_EQ(acked_.size(), 2700u + 150u * extra);
  EXPECT_EQ(lost, 0u);
  EXPECT_EQ(unexpected, 0u);
  EXPECT_EQ(duplicated, 0u);  // the consumer dedupes what the agents send twice
  EXPECT_EQ(reordered, 0u);
  // What gw2 held during the cut was released late (the others went on),
  // and nothing else was.
  EXPECT_GT(late, 0u);
  EXPECT_EQ(late_not_gw2, 0u);
  // The skew is real: gw0's timestamps run ~4 s ahead of gw1's for messages
  // published together, and the output is ordered by them, not by arrival.
  int64_t ts0 = 0, ts1 = 0;
  for (const Line& l : lines) {
    if (l.id == "a0-before-0") ts0 = l.ts;
    if (l.id == "a1-before-0") ts1 = l.ts;
  }
  EXPECT_GT(ts0 - ts1, 3000);
  EXPECT_LT(ts0 - ts1, 5000);
}

// 4. An idle agent says so once (watermark_follow) and then publishes its
// status only every status.interval, not every watermark_interval (200 ms
// here). The consumer follows its clock: a busy node's messages still come
// out within the watermark's latency, none forced by --max-wait; and when
// the idle node wakes up, its messages come in order, none late.
TEST_F(ConsumeTest, AnIdleNodePublishesRarelyAndTheFleetStillFlowsInOrder) {
  AddAgent("busy", "", {});
  AddAgent("idle", "", {{"status", "interval = \"1m\""}});
  ASSERT_FALSE(HasFailure());
  // A real subscriber (mosquitto_sub) counts the status publishes.
  Subscriber statuses(dir_.path(), broker_->port(), "edgespool/+/status", "status-counter");
  ASSERT_TRUE(statuses.Start());
  auto count = [&](const std::string& node) {
    size_t n = 0;
    for (const auto& m : statuses.Read()) n += m.topic == "edgespool/" + node + "/status";
    return n;
  };
  ConsumeProcess consume(dir_.path(), "consume");
  ASSERT_TRUE(consume.Start(
      {"--broker", broker_->url(), "--topic", "sensors/#", "--max-wait", "10s", "--stats"}));
  ASSERT_TRUE(WarmUp({&consume}, 2));  // through producers_[0]: busy
  std::this_thread::sleep_for(std::chrono::seconds(1));

  // 12 s: the busy node gets 20 messages a second, the idle one none.
  size_t idle_before = count("idle"), busy_before = count("busy");
  auto start = std::chrono::steady_clock::now();
  std::vector<std::future<client::PublishResult>> f;
  std::vector<std::string> ids;
  auto publish = [&](size_t agent, const std::string& id, const std::string& topic) {
    client::PublishOptions o;
    o.id = id;
    ids.push_back(id);
    f.push_back(producers_[agent]->Publish(topic, "{}", o));
  };
  for (int i = 0; i < 240; ++i) {
    publish(0, "b-" + std::to_string(i), "sensors/t" + std::to_string(i % 2));
    std::this_thread::sleep_until(start + std::chrono::milliseconds(50 * (i + 1)));
  }
  auto published = std::chrono::steady_clock::now();
  ASSERT_TRUE(WaitUntil([&] { return Printed(consume, "b-239"); }, 15000));
  auto latency = std::chrono::duration_cast<std::chrono::milliseconds>(
                     std::chrono::steady_clock::now() - published)
                     .count();
  double seconds = std::chrono::duration<double>(published - start).count();
  size_t idle_n = count("idle") - idle_before, busy_n = count("busy") - busy_before;
  std::printf(
      "over %.1f s: idle node %zu status publishes, busy node %zu; last busy message "
      "printed %lld ms after it was published\n",
      seconds, idle_n, busy_n, static_cast<long long>(latency));
  // At most 2 a minute (status.interval 1m); before this change, one per
  // watermark_interval: ~60 here.
  EXPECT_LE(idle_n, 1u);
  // The idle node does not hold the others back beyond the watermark's own
  // latency (200 ms interval + 500 ms slack, + the idle node's 200 ms lag).
  EXPECT_LT(latency, 3000);

  // The idle node wakes up: its messages and the busy one's, interleaved on
  // the same topics, come out in ts order, none late.
  for (int i = 0; i < 40; ++i) {
    publish(1, "w-idle-" + std::to_string(i), "sensors/t" + std::to_string(i % 2));
    publish(0, "w-busy-" + std::to_string(i), "sensors/t" + std::to_string(i % 2));
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  for (size_t i = 0; i < f.size(); ++i) {
    auto r = f[i].get();
    ASSERT_TRUE(r.status.ok()) << r.status.ToString();
    acked_.insert(ids[i]);
  }
  ASSERT_TRUE(WaitAll({&consume}, 20000)) << ReadFile(consume.out()).substr(0, 2000);
  EXPECT_EQ(consume.Stop(), 0);
  std::vector<Line> lines;
  for (const Line& l : consume.Lines()) {
    if (l.id.rfind("warm-", 0) != 0) lines.push_back(l);
  }
  size_t late = 0;
  std::set<std::string> seen;
  for (const Line& l : lines) {
    late += l.late ? 1 : 0;
    EXPECT_TRUE(seen.insert(l.id).second) << "duplicated " << l.id;
  }
  EXPECT_EQ(lines.size(), acked_.size());
  EXPECT_EQ(late, 0u);
  EXPECT_EQ(Reordered(lines), 0u);
  std::string out = ReadFile(consume.out());
  EXPECT_NE(out.find(", forced 0,"), std::string::npos)
      << out.substr(out.size() > 400 ? out.size() - 400 : 0);
}

TEST_F(ConsumeTest, AKilledInstancesPartitionsMoveToTheOthersWithNothingLost) {
  std::multimap<std::string, std::string> message_mode = {
      {"route", "match = \"#\"\nupstream_topic = \"fleet/{part:4}/{topic}\""}};
  AddAgent("gw0", "", message_mode);
  AddAgent("gw1", "", message_mode);
  ASSERT_FALSE(HasFailure());
  std::vector<std::unique_ptr<ConsumeProcess>> cs;
  for (int i = 0; i < 3; ++i) {
    cs.push_back(std::make_unique<ConsumeProcess>(dir_.path(), "c" + std::to_string(i)));
    ASSERT_TRUE(cs.back()->Start({"--broker", broker_->url(), "--topic", "fleet/{part}/#",
                                  "--partitions", "4", "--group", "g", "--instance",
                                  "c" + std::to_string(i), "--max-wait", "5s", "--stats"}));
  }
  ASSERT_TRUE(WarmUp({cs[0].get(), cs[1].get(), cs[2].get()}, 12));
  Publish("one", 300, 100, 12);
  // Every instance got a share (4 partitions over 3 members: 2, 1, 1).
  ASSERT_TRUE(WaitAll({cs[0].get(), cs[1].get(), cs[2].get()}, 30000));
  std::set<std::string> topics_of_killed;
  for (const Line& l : cs[0]->Lines()) {
    if (l.id.rfind("warm-", 0) != 0) topics_of_killed.insert(l.topic);
  }
  for (auto& c : cs) EXPECT_GT(c->Lines().size(), 0u);
  // Mid-stream: publish in the background and SIGKILL instance c0.
  auto bg = std::async(std::launch::async, [&] { Publish("two", 400, 100, 12); });
  std::this_thread::sleep_for(std::chrono::seconds(2));
  size_t killed_lines_at_kill = cs[0]->Lines().size();
  cs[0]->Kill();
  bg.get();
  ASSERT_FALSE(HasFailure());
  EXPECT_TRUE(WaitAll({cs[0].get(), cs[1].get(), cs[2].get()}, 60000));
  std::this_thread::sleep_for(std::chrono::seconds(1));
  for (size_t i = 1; i < cs.size(); ++i) EXPECT_EQ(cs[i]->Stop(), 0);

  std::map<std::string, int> seen;
  size_t reordered = 0;
  std::set<std::string> moved_topics;
  for (size_t i = 0; i < cs.size(); ++i) {
    auto lines = cs[i]->Lines();
    reordered += Reordered(lines);
    for (const Line& l : lines) {
      if (l.id.rfind("warm-", 0) == 0) continue;
      ++seen[l.id];
      if (i > 0 && topics_of_killed.count(l.topic) && l.id.find("-two-") != std::string::npos) {
        moved_topics.insert(l.topic);
      }
    }
  }
  size_t lost = 0, duplicated = 0;
  for (const auto& id : acked_) lost += seen.count(id) ? 0 : 1;
  for (const auto& [id, n] : seen) duplicated += n > 1 ? n - 1 : 0;
  std::printf(
      "acked %zu, lost %zu, duplicated %zu, reordered %zu; killed instance printed %zu "
      "lines; its %zu topics continued on the others: %zu\n",
      acked_.size(), lost, duplicated, reordered, killed_lines_at_kill, topics_of_killed.size(),
      moved_topics.size());
  EXPECT_EQ(lost, 0u);
  EXPECT_EQ(reordered, 0u);
  EXPECT_FALSE(topics_of_killed.empty());
  EXPECT_EQ(moved_topics, topics_of_killed);
}

// RabbitMQ 3.10 speaks MQTT 3.1.1 only: no user properties, no shared
// subscriptions, retained messages only for exact topics. Batch frames carry
// everything and live statuses arrive, so one consume instance orders a
// batch-mode fleet there too, given a prefetch above what waits for the
// watermark. Groups need retained memberships under a wildcard: not there.
TEST_F(ConsumeTest, BatchModeOverRabbitMq) {
  if (!RabbitMqInstalled()) GTEST_SKIP() << kRabbitServer << " not installed";
  // RabbitMQ sends a subscriber at most mqtt.prefetch (10) unacknowledged
  // messages; consume holds PUBLISHes unacked while they wait for the
  // watermark, statuses queue behind them, and only --max-wait frees it.
  RabbitMq rabbit("mqtt.prefetch = 10000");
  ASSERT_TRUE(rabbit.Start()) << rabbit.log();
  AddAgent("gw0", "", {{"sync", "mode = \"batch\""}}, rabbit.mqtt_port());
  AddAgent("gw1", "", {{"sync", "mode = \"batch\""}}, rabbit.mqtt_port());
  ASSERT_FALSE(HasFailure());
  ConsumeProcess consume(dir_.path(), "rabbit");
  ASSERT_TRUE(consume.Start(
      {"--broker", rabbit.mqtt_url(), "--topic", "edgespool/+/batch", "--max-wait", "10s"}));
  ASSERT_TRUE(WarmUp({&consume}, 3));
  Publish("r", 300, 100);
  ASSERT_TRUE(WaitAll({&consume}, 60000));
  std::this_thread::sleep_for(std::chrono::seconds(1));
  EXPECT_EQ(consume.Stop(), 0);
  std::vector<Line> lines;
  for (const Line& l : consume.Lines()) {
    if (l.id.rfind("warm-", 0) != 0) lines.push_back(l);
  }
  std::map<std::string, int> seen;
  size_t late = 0;
  for (const Line& l : lines) {
    ++seen[l.id];
    late += l.late ? 1 : 0;
  }
  size_t lost = 0, duplicated = 0;
  for (const auto& id : acked_) lost += seen.count(id) ? 0 : 1;
  for (const auto& [id, n] : seen) duplicated += n > 1 ? n - 1 : 0;
  std::printf("RabbitMQ: acked %zu, lost %zu, duplicated %zu, late %zu, reordered %zu\n",
              acked_.size(), lost, duplicated, late, Reordered(lines));
  EXPECT_EQ(lost, 0u);
  EXPECT_EQ(duplicated, 0u);
  EXPECT_EQ(Reordered(lines), 0u);
  // With the default mqtt.prefetch (10): 154-183 of 600 late, every release
  // forced by --max-wait.
  EXPECT_EQ(late, 0u);
}

TEST_F(ConsumeTest, UsageErrorsAndCount) {
  for (const auto& args : std::vector<std::vector<std::string>>{
           {},
           {"--broker", broker_->url(), "--partitions", "4", "--topic", "fleet/#"},
           {"--broker", broker_->url(), "--group", "a/b"},
           {"--broker", broker_->url(), "--max-wait", "soon"}}) {
    Process p;
    std::vector<std::string> argv = {Bin(), "consume"};
    argv.insert(argv.end(), args.begin(), args.end());
    ASSERT_TRUE(p.Start(argv, dir_.File("usage.out")));
    int st = p.Wait(10000);
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 64)
        << st << " " << ReadFile(dir_.File("usage.out"));
  }
  // --count: ends by itself (exit 0) after that many messages.
  AddAgent("gw0", "", {});
  ConsumeProcess c(dir_.path(), "count");
  ASSERT_TRUE(c.Start(
      {"--broker", broker_->url(), "--topic", "sensors/#", "--count", "5", "--max-wait", "2s"}));
  ASSERT_TRUE(WarmUp({&c}, 3));
  Publish("x", 20, 200);
  EXPECT_TRUE(WaitUntil([&] { return !c.running(); }, 15000));
  EXPECT_GE(c.Lines().size(), 5u);
}

}  // namespace
}  // namespace edgespool::testing
