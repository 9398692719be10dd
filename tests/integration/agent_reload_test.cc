// Reloading the configuration of a running agent (agent/reload.h) while
// producers keep publishing, against real mosquitto brokers: each class of
// live change applies (routes and priorities to new messages, rate limits
// and ACLs to the next publish, the uplink URL by moving to another broker,
// the log level), refusals (an invalid file, a store.path change) keep the
// running configuration and the agent working, both SIGHUP and `edgespool
// reload` work, config_digest follows, and nothing acknowledged is lost
// (counted as TESTING.md describes, over every broker the agent used).
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <mutex>
#include <regex>
#include <thread>

#include "tests/support/e2e_fixture.h"
#include "tests/support/publish_load.h"
#include "tests/support/http_get.h"
#include "tests/support/tls_certs.h"

namespace edgespool::testing {
namespace {

using Settings = std::multimap<std::string, std::string>;

struct CliRun {
  int exit_code = -1;
  std::string output;  // stdout and stderr
};

class AgentReloadTest : public AgentE2ETest {
 protected:
  void SetUp() override {
    if (!std::getenv("EDGESPOOL_BIN")) GTEST_SKIP() << "EDGESPOOL_BIN not set (run through ctest)";
    if (!CommandExists("mosquitto") || !CommandExists("mosquitto_sub")) {
      GTEST_SKIP() << "mosquitto not installed";
    }
  }

  // `edgespool reload ARGS...` (as `prefix...` when given, e.g. setpriv).
  CliRun Reload(std::vector<std::string> args, std::vector<std::string> prefix = {}) {
    std::vector<std::string> argv = std::move(prefix);
    argv.push_back(std::getenv("EDGESPOOL_BIN"));
    argv.push_back("reload");
    argv.insert(argv.end(), args.begin(), args.end());
    Process p;
    std::string out = dir_.File("reload-" + std::to_string(++cli_runs_) + ".out");
    CliRun r;
    if (!p.Start(argv, out)) return r;
    int status = p.Wait(30000);
    r.exit_code = status >= 0 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    r.output = ReadFile(out);
    return r;
  }
  CliRun ReloadCli() { return Reload({"--config", agent_->config_path()}); }

  // SIGHUP, then wait for the outcome's log line (the nth of its kind).
  bool SignalReload(const std::string& expect_line) {
    size_t before = CountInLog(expect_line);
    agent_->Signal(SIGHUP);
    return WaitUntil([&] { return CountInLog(expect_line) > before; }, 10000);
  }
  size_t CountInLog(const std::string& what) const {
    std::string log = agent_->log();
    size_t n = 0;
    for (size_t at = log.find(what); at != std::string::npos; at = log.find(what, at + 1)) ++n;
    return n;
  }

  std::string Status(client::Producer& p) {
    auto doc = p.GetStatus().get();
    EXPECT_TRUE(doc.ok()) << doc.status().ToString();
    return doc.ok() ? *doc : "";
  }
  std::string Field(const std::string& json, const std::string& key) {
    std::smatch m;
    std::regex re("\"" + key + "\":\"([^\"]*)\"");
    return std::regex_search(json, m, re) ? m[1].str() : "";
  }
  std::string Digest(client::Producer& p) { return Field(Status(p), "config_digest"); }

  // One publish, answered: its status and code.
  client::PublishResult PublishOne(client::Producer& p, const std::string& topic,
                                   const std::string& id) {
    client::PublishOptions o;
    o.id = id;
    o.ts_ms = 1733000000000;
    return p.Publish(topic, TelemetryPayload(id, *o.ts_ms, 0), o).get();
  }

  int cli_runs_ = 0;
};

int IndexOf(const std::string& id, const std::string& prefix) {
  if (id.compare(0, prefix.size(), prefix) != 0) return -1;
  return std::stoi(id.substr(prefix.size()));
}

// A route's upstream topic and priority change while messages flow: messages
// stored after the reload take the new route (upstream topic and priority);
// those stored before keep their priority; nothing is lost; config_digest
// changes. SIGHUP.
TEST_F(AgentReloadTest, RouteAndPriorityApplyToNewMessages) {
  StartBroker();
  StartSubscriber("#");
  Settings route = {
      {"route", "match = \"sensors/#\"\nupstream_topic = \"v1/{topic}\"\npriority = \"low\""}};
  StartAgent(route);
  auto producer = Connect();
  ASSERT_TRUE(producer);
  std::string digest_before = Digest(*producer);
  ASSERT_FALSE(digest_before.empty());

  const int kCount = 4000;
  Load load(*producer, "r", kCount, [](int i) { return "sensors/t" + std::to_string(i % 4); });
  load.Start();
  ASSERT_TRUE(load.WaitAnswered(kCount / 2, 30000));
  int before_signal = load.answered();
  agent_->Rewrite(
      broker_->url(),
      {{"route", "match = \"sensors/#\"\nupstream_topic = \"v2/{topic}\"\npriority = \"high\""}});
  ASSERT_TRUE(SignalReload("configuration reloaded")) << agent_->log();
  int after_reload = load.answered() + 100;  // the chunk being answered may predate it
  EXPECT_NE(agent_->log().find("route[1].upstream_topic"), std::string::npos) << agent_->log();
  load.Join();
  load.Record(&checker_);
  std::string digest_after = Digest(*producer);
  EXPECT_NE(digest_after, digest_before);

  auto counts = WaitAndCheck(checker_.acked().size(), /*order=*/false);
  EXPECT_EQ(counts.lost, 0u) << counts.ToString();
  EXPECT_EQ(counts.unexpected, 0u) << counts.ToString();
  EXPECT_EQ(counts.acked, static_cast<size_t>(kCount));

  size_t old_route = 0, new_route = 0;
  for (const auto& m : sub_->Read()) {
    std::string id;
    int64_t ts;
    if (!ParseTelemetry(m.payload, &id, &ts)) continue;
    int i = IndexOf(id, "r");
    if (i < 0) continue;
    // The upstream topic is the route's when the message is sent: one
    // stored before the reload but sent after it goes out under v2 too.
    if (i < before_signal && m.topic.substr(0, 3) == "v1/") {
      ++old_route;
    } else if (i >= after_reload) {
      EXPECT_EQ(m.topic.substr(0, 3), "v2/") << id << " " << m.topic;
      ++new_route;
    }
  }
  EXPECT_GT(old_route, 0u);
  EXPECT_GT(new_route, 0u);

  // Priority is stored with each row: low before, high after the reload.
  producer.reset();
  ASSERT_EQ(agent_->Stop(), 0);
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open_v2(agent_->journal().c_str(), &db, SQLITE_OPEN_READONLY, nullptr),
            SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT msg_id, priority FROM journal", -1, &st, nullptr),
            SQLITE_OK);
  size_t low = 0, high = 0;
  while (sqlite3_step(st) == SQLITE_ROW) {
    const char* id = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
    int i = id ? IndexOf(id, "r") : -1;
    int priority = sqlite3_column_int(st, 1);
    if (i >= 0 && i < before_signal) {
      EXPECT_EQ(priority, 2) << id;
      ++low;
    } else if (i >= after_reload) {
      EXPECT_EQ(priority, 0) << id;
      ++high;
    }
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  EXPECT_GT(low, 0u);
  EXPECT_GT(high, 0u);
}

// Rate limits and ACLs change for the next publish, through `edgespool
// reload` (the answer names what changed); a load on an allowed topic keeps
// flowing and loses nothing.
TEST_F(AgentReloadTest, RateLimitAndAclApplyToTheNextPublish) {
  StartBroker();
  StartSubscriber("#");
  StartAgent();
  auto producer = Connect();
  auto probe = Connect();
  ASSERT_TRUE(producer && probe);
  const int kCount = 3000;
  Load load(
      *producer, "l", kCount, [](int i) { return "load/t" + std::to_string(i % 4); }, 50, 10);
  load.Start();

  auto burst = [&](const std::string& topic, const std::string& prefix, int n, int* rate_limited,
                   int* forbidden) {
    std::vector<std::future<client::PublishResult>> f;
    for (int i = 0; i < n; ++i) {
      client::PublishOptions o;
      o.id = prefix + std::to_string(i);
      f.push_back(probe->Publish(topic, TelemetryPayload(o.id, 1733000000000, i), o));
    }
    int ok = 0;
    for (int i = 0; i < n; ++i) {
      auto r = f[static_cast<size_t>(i)].get();
      checker_.Published(prefix + std::to_string(i), r.status.ok());
      if (r.status.ok()) ++ok;
      if (r.code == client::ErrorCode::kRateLimited) ++*rate_limited;
      if (r.code == client::ErrorCode::kForbidden) ++*forbidden;
    }
    return ok;
  };
  int limited = 0, forbidden = 0;
  EXPECT_EQ(burst("probe/a", "a", 300, &limited, &forbidden), 300);

  std::string uid = std::to_string(::getuid());
  agent_->Rewrite(broker_->url(),
                  {{"rate_limit", "uid = " + uid + "\nmessages_per_second = 20\nburst = 20"}});
  CliRun r = ReloadCli();
  ASSERT_EQ(r.exit_code, 0) << r.output << agent_->log();
  EXPECT_NE(r.output.find("reloaded: applied: rate_limit"), std::string::npos) << r.output;
  limited = forbidden = 0;
  int ok = burst("probe/b", "b", 300, &limited, &forbidden);
  EXPECT_LE(ok, 60) << "the new limit of 20/s with a burst of 20 did not apply";
  EXPECT_GE(limited, 240);

  agent_->Rewrite(broker_->url(),
                  {{"acl", "uid = " + uid + "\npublish = [\"allowed/#\", \"load/#\"]"}});
  r = ReloadCli();
  ASSERT_EQ(r.exit_code, 0) << r.output << agent_->log();
  EXPECT_NE(r.output.find("acl"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("rate_limit"), std::string::npos) << r.output;
  limited = forbidden = 0;
  EXPECT_EQ(burst("probe/c", "c", 50, &limited, &forbidden), 0);
  EXPECT_EQ(forbidden, 50);
  limited = forbidden = 0;
  EXPECT_EQ(burst("allowed/d", "d", 300, &limited, &forbidden), 300);  // and no rate limit
  EXPECT_EQ(limited, 0);

  load.Join();
  load.Record(&checker_);
  for (const auto& s : load.results()) {
    // The load's uid was limited too while the limit held; never forbidden.
    EXPECT_TRUE(s.acked || s.code == client::ErrorCode::kRateLimited) << s.id;
  }
  auto counts = WaitAndCheck(checker_.acked().size(), false);
  EXPECT_EQ(counts.lost, 0u) << counts.ToString();
  EXPECT_EQ(counts.unexpected, 0u) << counts.ToString();
}

// uplink.url moves the agent to a second broker while messages flow: the
// first broker's connection closes gracefully (no will), the second gets
// what was in flight and everything after, and of the acknowledged messages
// none is lost over the two brokers together.
TEST_F(AgentReloadTest, UplinkUrlChangeMovesToAnotherBrokerLosingNothing) {
  StartBroker();
  StartSubscriber("sensors/#");
  TempDir dir_b;
  MosquittoOptions ob;
  ob.persistence = true;
  Mosquitto broker_b(dir_b.path(), ob);
  ASSERT_TRUE(broker_b.Start()) << broker_b.log();
  Subscriber sub_b(dir_b.path(), broker_b.port(), "sensors/#", "checker-b");
  ASSERT_TRUE(sub_b.Start());
  StartAgent();
  auto producer = Connect();
  ASSERT_TRUE(producer);

  const int kCount = 20000;
  Load load(
      *producer, "u", kCount, [](int i) { return "sensors/t" + std::to_string(i % 8); }, 200, 5);
  load.Start();
  ASSERT_TRUE(load.WaitAnswered(kCount * 2 / 5, 60000));
  agent_->Rewrite(broker_b.url());
  CliRun r = ReloadCli();
  ASSERT_EQ(r.exit_code, 0) << r.output << agent_->log();
  EXPECT_NE(r.output.find("uplink.url"), std::string::npos) << r.output;
  int switched_at = load.answered();
  load.Join();
  load.Record(&checker_);
  EXPECT_LT(switched_at, kCount) << "the load ended before the switch: make it longer";

  // Every acknowledged id, over both brokers.
  auto distinct = [&] {
    std::set<std::string> ids;
    for (const auto& d : ToDeliveries(sub_->Read())) ids.insert(d.id);
    for (const auto& d : ToDeliveries(sub_b.Read())) ids.insert(d.id);
    return ids.size();
  };
  WaitUntil([&] { return distinct() >= checker_.acked().size(); }, 60000);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto on_a = ToDeliveries(sub_->Read());
  auto on_b = ToDeliveries(sub_b.Read());
  for (const auto& d : on_a) checker_.Deliver(d);
  for (const auto& d : on_b) checker_.Deliver(d);
  auto counts = checker_.Check(false);
  std::printf("queue checker over both brokers: %s (a: %zu, b: %zu)\n", counts.ToString().c_str(),
              on_a.size(), on_b.size());
  EXPECT_EQ(counts.acked, static_cast<size_t>(kCount));
  EXPECT_EQ(counts.lost, 0u) << counts.ToString();
  EXPECT_EQ(counts.unexpected, 0u) << counts.ToString();
  EXPECT_GT(on_a.size(), 0u);
  EXPECT_GT(on_b.size(), 0u);

  std::string status = Status(*producer);
  EXPECT_NE(status.find(broker_b.url()), std::string::npos) << status;
  EXPECT_NE(status.find("\"state\":\"connected\""), std::string::npos) << status;
  // A graceful DISCONNECT: the first broker did not publish our will.
  Subscriber will(dir_.path(), broker_->port(), "edgespool/test-node/status", "will-reader");
  ASSERT_TRUE(will.Start());
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  for (const auto& m : will.Read()) {
    EXPECT_EQ(m.payload.find("\"online\":false"), std::string::npos) << m.payload;
  }
}

// log.level applies at once: after a reload to "warn", info lines stop (the
// next reload's "reloading configuration" is not logged) while errors (a
// refused reload) still are.
TEST_F(AgentReloadTest, LogLevelAppliesAtOnce) {
  StartBroker();
  StartSubscriber("#");
  uint16_t mport = FreePort();
  std::string listen = "listen = \"127.0.0.1:" + std::to_string(mport) + "\"";
  StartAgent({{"log", "level = \"info\""}, {"metrics", listen}});
  auto producer = Connect();
  ASSERT_TRUE(producer);
  auto reloads_ok = [&] {
    std::string m = HttpGet(mport, "/metrics");
    std::smatch v;
    std::regex re("edgespool_config_reloads_total\\{result=\"ok\"\\} ([0-9]+)");
    return std::regex_search(m, v, re) ? std::stoi(v[1].str()) : -1;
  };
  Load load(
      *producer, "g", 1000, [](int) { return "sensors/g"; }, 50, 10);
  load.Start();
  std::string digest0 = Digest(*producer);
  agent_->Rewrite(broker_->url(), {{"log", "level = \"warn\""}, {"metrics", listen}});
  agent_->Signal(SIGHUP);
  ASSERT_TRUE(WaitUntil([&] { return Digest(*producer) != digest0; }, 10000)) << agent_->log();
  EXPECT_EQ(CountInLog("reloading configuration"), 1u);
  EXPECT_EQ(CountInLog("configuration reloaded"), 0u) << "logged after the level changed";

  agent_->Signal(SIGHUP);  // unchanged: logged at info only
  ASSERT_TRUE(WaitUntil([&] { return reloads_ok() == 2; }, 10000)) << reloads_ok();
  agent_->Rewrite(
      broker_->url(),
      {{"log", "level = \"warn\""}, {"metrics", listen}, {"sync", "batch_messages = 0"}});
  ASSERT_TRUE(SignalReload("reload refused")) << agent_->log();
  EXPECT_EQ(CountInLog("reloading configuration"), 1u) << agent_->log();
  EXPECT_EQ(CountInLog("no changes"), 0u) << agent_->log();

  load.Join();
  load.Record(&checker_);
  auto counts = WaitAndCheck(checker_.acked().size(), false);
  EXPECT_EQ(counts.lost, 0u) << counts.ToString();
}

// An invalid file and a store.path change are refused (SIGHUP and `edgespool
// reload`, exit 78 with the reason), the running configuration and digest
// stay, the agent keeps taking and forwarding messages, and the reload
// metrics count it all; a valid reload afterwards applies.
TEST_F(AgentReloadTest, InvalidAndRestartOnlyChangesAreRefused) {
  StartBroker();
  StartSubscriber("#");
  uint16_t mport = FreePort();
  std::string listen = "listen = \"127.0.0.1:" + std::to_string(mport) + "\"";
  StartAgent({{"metrics", listen}});
  auto producer = Connect();
  ASSERT_TRUE(producer);
  Load load(
      *producer, "i", 3000, [](int i) { return "sensors/t" + std::to_string(i % 4); }, 50, 10);
  load.Start();
  std::string digest0 = Digest(*producer);

  // Invalid, by SIGHUP: the agent's own refusal names the file, line and key.
  agent_->Rewrite(broker_->url(), {{"metrics", listen}, {"sync", "batch_messages = 0"}});
  ASSERT_TRUE(SignalReload("reload refused")) << agent_->log();
  EXPECT_NE(agent_->log().find("agent.toml:"), std::string::npos);
  EXPECT_NE(agent_->log().find("sync.batch_messages"), std::string::npos) << agent_->log();
  // The same file through the CLI: checked before asking, exit 78.
  CliRun r = ReloadCli();
  EXPECT_EQ(r.exit_code, 78) << r.output;
  EXPECT_NE(r.output.find("sync.batch_messages"), std::string::npos) << r.output;
  // And the agent's refusal through the socket (no local check: --socket only).
  r = Reload({"--socket", agent_->socket()});
  EXPECT_EQ(r.exit_code, 78) << r.output;
  EXPECT_NE(r.output.find("reload refused: the new configuration is invalid"), std::string::npos)
      << r.output;

  // store.path needs a restart.
  agent_->Rewrite(broker_->url(),
                  {{"metrics", listen}, {"store", "path = \"" + dir_.File("other.db") + "\""}});
  r = ReloadCli();
  EXPECT_EQ(r.exit_code, 78) << r.output;
  EXPECT_NE(r.output.find("store.path"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("restart"), std::string::npos) << r.output;
  EXPECT_EQ(Digest(*producer), digest0);

  // Still working: a publish is stored and forwarded.
  auto one = PublishOne(*producer, "sensors/after", "after-refusals");
  ASSERT_TRUE(one.status.ok()) << one.status.ToString();
  checker_.Published("after-refusals", true);
  std::string m = HttpGet(mport, "/metrics");
  EXPECT_NE(m.find("edgespool_config_reloads_total{result=\"refused\"} 3"), std::string::npos) << m;
  EXPECT_NE(m.find("edgespool_config_reloads_total{result=\"ok\"} 0"), std::string::npos) << m;
  EXPECT_EQ(MetricValue(m, "edgespool_config_last_reload_successful"), 0);
  EXPECT_GT(MetricValue(m, "edgespool_config_last_reload_timestamp_seconds"), 1.7e9);

  // A valid live change now applies.
  agent_->Rewrite(broker_->url(), {{"metrics", listen}, {"status", "interval = \"2s\""}});
  r = ReloadCli();
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("status.interval"), std::string::npos) << r.output;
  EXPECT_NE(Digest(*producer), digest0);
  m = HttpGet(mport, "/metrics");
  EXPECT_NE(m.find("edgespool_config_reloads_total{result=\"ok\"} 1"), std::string::npos) << m;
  EXPECT_EQ(MetricValue(m, "edgespool_config_last_reload_successful"), 1);

  load.Join();
  load.Record(&checker_);
  auto counts = WaitAndCheck(checker_.acked().size(), false);
  EXPECT_EQ(counts.lost, 0u) << counts.ToString();
  EXPECT_EQ(counts.unexpected, 0u) << counts.ToString();
}

// TLS files rotated in place (same key, new contents) are picked up by a
// reload: the agent, stuck on a CA that does not verify the broker, connects
// once the right CA is written over the file and delivers what it held. A
// reload naming a TLS file that does not load is refused, the link kept.
TEST_F(AgentReloadTest, TlsFilesRotatedInPlaceApplyOnReload) {
  TlsCerts certs;
  std::string error;
  ASSERT_TRUE(TlsCerts::Generate(dir_.path(), &certs, &error)) << error;
  uint16_t plain = FreePort();
  MosquittoOptions o;
  o.persistence = true;
  o.cafile = certs.ca_cert;
  o.certfile = certs.server_cert;
  o.keyfile = certs.server_key;
  o.require_certificate = true;
  o.extra_config = "listener " + std::to_string(plain) + " 127.0.0.1\n";  // for the checker
  broker_ = std::make_unique<Mosquitto>(dir_.path(), o);
  ASSERT_TRUE(broker_->Start()) << broker_->log();
  ASSERT_TRUE(WaitForPort(plain, 10000));
  sub_ = std::make_unique<Subscriber>(dir_.path(), plain, "sensors/#", "checker");
  ASSERT_TRUE(sub_->Start());

  std::string ca = dir_.File("ca-in-use.pem");
  WriteFile(ca, ReadFile(certs.other_ca_cert));  // the wrong CA: no connection
  Settings tls = {{"uplink", "ca_file = \"" + ca + "\""},
                  {"uplink", "cert_file = \"" + certs.client_cert + "\""},
                  {"uplink", "key_file = \"" + certs.client_key + "\""}};
  StartAgent(tls);
  auto producer = Connect();
  ASSERT_TRUE(producer);
  Load load(
      *producer, "k", 500, [](int i) { return "sensors/k" + std::to_string(i % 2); }, 50, 10);
  load.Start();
  ASSERT_TRUE(load.WaitAnswered(200, 20000));
  EXPECT_NE(Field(Status(*producer), "state"), "connected") << Status(*producer);

  WriteFile(ca, ReadFile(certs.ca_cert));  // rotated in place
  CliRun r = ReloadCli();
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("uplink credential files (contents)"), std::string::npos) << r.output;
  ASSERT_TRUE(WaitUntil([&] { return Field(Status(*producer), "state") == "connected"; }, 15000))
      << agent_->log();

  // A client key that does not exist: refused before anything changes.
  Settings broken = {{"uplink", "ca_file = \"" + ca + "\""},
                     {"uplink", "cert_file = \"" + certs.client_cert + "\""},
                     {"uplink", "key_file = \"" + dir_.File("missing.key") + "\""}};
  agent_->Rewrite(broker_->url(), broken);
  r = ReloadCli();
  EXPECT_EQ(r.exit_code, 78) << r.output;
  EXPECT_NE(r.output.find("missing.key"), std::string::npos) << r.output;
  EXPECT_EQ(Field(Status(*producer), "state"), "connected");

  load.Join();
  load.Record(&checker_);
  auto counts = WaitAndCheck(checker_.acked().size(), false);
  EXPECT_EQ(counts.acked, 500u);
  EXPECT_EQ(counts.lost, 0u) << counts.ToString();
  EXPECT_EQ(counts.unexpected, 0u) << counts.ToString();
}

// Only root and the agent's own user may reload: another user gets exit 77.
TEST_F(AgentReloadTest, OtherUsersMayNotReload) {
  if (!IsRoot() || !CommandExists("setpriv")) GTEST_SKIP() << "needs root and setpriv";
  StartBroker();
  StartAgent({{"producer", "socket_mode = \"0666\""}});
  ASSERT_EQ(::chmod(dir_.path().c_str(), 0755), 0);
  CliRun r = Reload({"--socket", agent_->socket()},
                    {"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"});
  EXPECT_EQ(r.exit_code, 77) << r.output;
  EXPECT_NE(r.output.find("forbidden"), std::string::npos) << r.output;
  r = Reload({"--socket", agent_->socket()});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("unchanged"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace edgespool::testing
