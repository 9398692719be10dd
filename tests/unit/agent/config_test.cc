#include "agent/config/config.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "tests/support/test_env.h"

namespace edgespool::agent {
namespace {

using edgespool::testing::TempDir;
using edgespool::testing::WriteFile;

std::string SourceDir() {
  const char* d = std::getenv("EDGESPOOL_SOURCE_DIR");
  return d ? d : ".";
}

LoadResult Parse(const std::string& text, std::vector<std::string> env = {}) {
  return ParseConfig(text, "test.toml", env);
}

std::string Problems(const LoadResult& r) {
  std::string s;
  for (const auto& p : r.problems) s += p.ToString() + "\n";
  return s;
}

TEST(ConfigTest, DefaultsAreValid) {
  LoadResult r = Parse("");
  ASSERT_TRUE(r.ok()) << Problems(r);
  EXPECT_EQ(r.config.producer.max_message_bytes, 2 << 20);
  EXPECT_EQ(r.config.sync.backoff_initial_ms, 1000);
  EXPECT_EQ(r.config.sync.backoff_max_ms, 30000);
  EXPECT_EQ(r.config.store.durability, "full");
  EXPECT_FALSE(r.config.node.id.empty());
  EXPECT_EQ(r.config.uplink.client_id, "edgespool-" + r.config.node.id);
  ASSERT_EQ(r.config.routes.size(), 1u);  // the implied catch-all
  EXPECT_EQ(r.config.routes[0].match, "#");
}

TEST(ConfigTest, ExampleParsesToTheDefaults) {
  LoadResult example = LoadConfig(SourceDir() + "/config.example.toml", {});
  ASSERT_TRUE(example.ok()) << Problems(example);
  LoadResult defaults = Parse("");
  ASSERT_TRUE(defaults.ok());
  // The example documents the defaults: rendering both must agree.
  EXPECT_EQ(RenderConfig(example.config), RenderConfig(defaults.config));
}

// Every key the parser knows appears in config.example.toml under its section
// (commented out or not), so the example can't fall behind the code.
TEST(ConfigTest, ExampleDocumentsEveryKey) {
  std::ifstream in(SourceDir() + "/config.example.toml");
  ASSERT_TRUE(in.good());
  std::set<std::string> documented;
  std::string line, section;
  std::regex header(R"(^#?\s*\[\[?([a-z_]+)\]\]?)");
  std::regex key(R"(^#?\s*([a-z_]+)\s*=)");
  std::smatch m;
  while (std::getline(in, line)) {
    if (std::regex_search(line, m, header)) {
      section = m[1];
    } else if (std::regex_search(line, m, key) && !section.empty()) {
      documented.insert(section + "." + std::string(m[1]));
    }
  }
  for (const auto& k : KnownKeys()) EXPECT_TRUE(documented.count(k)) << k << " is not documented";
  for (const auto& k : documented) {
    auto known = KnownKeys();
    EXPECT_NE(std::find(known.begin(), known.end(), k), known.end())
        << k << " is documented but unknown to the parser";
  }
}

TEST(ConfigTest, ParsesTypedValues) {
  LoadResult r = Parse(R"(
[node]
id = "gw1"
[producer]
socket_mode = "0600"
max_message_bytes = "512KiB"
[store]
max_bytes = 1073741824
when_full = "drop-oldest"
durability = "normal"
high_water = 0.5
[uplink]
url = "mqtts://broker.example:8883"
protocol = 4
keepalive = "250ms"
[sync]
mode = "batch"
linger = "5s"
bandwidth_limit = "1MiB"
priority_weights = [5, 3, 1]
[[route]]
match = "alarms/#"
priority = "high"
ttl = "1h"
mode = "message"
order = "live-first"
upstream_topic = "site/{node}/{topic}"
)");
  ASSERT_TRUE(r.ok()) << Problems(r);
  const Config& c = r.config;
  EXPECT_EQ(c.node.id, "gw1");
  EXPECT_EQ(c.producer.socket_mode, 0600);
  EXPECT_EQ(c.producer.max_message_bytes, 512 * 1024);
  EXPECT_EQ(c.store.max_bytes, 1 << 30);
  EXPECT_EQ(c.store.when_full, "drop-oldest");
  EXPECT_DOUBLE_EQ(c.store.high_water, 0.5);
  EXPECT_EQ(c.uplink.protocol, 4);
  EXPECT_EQ(c.uplink.keepalive_ms, 250);
  EXPECT_EQ(c.sync.linger_ms, 5000);
  EXPECT_EQ(c.sync.bandwidth_limit, 1 << 20);
  EXPECT_EQ(c.sync.priority_weights, (std::vector<int64_t>{5, 3, 1}));
  ASSERT_EQ(c.routes.size(), 2u);
  EXPECT_EQ(c.routes[0].match, "alarms/#");
  EXPECT_EQ(c.routes[0].ttl_ms, 3600000);
  EXPECT_EQ(c.routes[0].order, "live-first");
  EXPECT_EQ(c.routes[1].match, "#");
}

struct BadCase {
  const char* toml;
  const char* key;
  const char* reason_part;
  int line;
};

TEST(ConfigTest, EveryErrorNamesLineKeyAndReason) {
  const BadCase cases[] = {
      {"[store]\nbogus = 1\n", "store.bogus", "unknown key", 2},
      {"[nosuch]\nx = 1\n", "nosuch", "unknown section", 1},
      {"[producer]\nmax_connections = \"many\"\n", "producer.max_connections", "expected an integer", 2},
      {"[producer]\nmax_connections = 0\n", "producer.max_connections", "out of range", 2},
      {"[uplink]\nkeepalive = 30\n", "uplink.keepalive", "duration string", 2},
      {"[uplink]\nkeepalive = \"30\"\n", "uplink.keepalive", "no unit", 2},
      {"[uplink]\nkeepalive = \"30sec\"\n", "uplink.keepalive", "unknown unit", 2},
      {"[store]\nmax_bytes = \"10MB\"\n", "store.max_bytes", "unknown unit", 2},
      {"[store]\nmax_bytes = \"1KiB\"\n", "store.max_bytes", "out of range", 2},
      {"[store]\nwhen_full = \"panic\"\n", "store.when_full", "reject,drop-oldest", 2},
      {"[store]\nhigh_water = 1.5\n", "store.high_water", "fraction", 2},
      {"[uplink]\nprotocol = 3\n", "uplink.protocol", "out of range", 2},
      {"[uplink]\ntls_verify = \"yes\"\n", "uplink.tls_verify", "true or false", 2},
      {"[producer]\nsocket_mode = \"0999\"\n", "producer.socket_mode", "octal", 2},
      {"[sync]\npriority_weights = [1, 2]\n", "sync.priority_weights", "3 weights", 2},
      {"[sync]\nbackoff_initial = \"1m\"\nbackoff_max = \"30s\"\n", "sync.backoff_initial",
       "must not exceed", 0},
      {"[uplink]\nurl = \"http://x\"\n", "uplink.url", "mqtt://", 0},
      {"[[route]]\nmatch = \"a/#\"\nmode = \"stream\"\n", "route.mode", "message,batch", 1},
      {"[[route]]\nfoo = 1\n", "route.foo", "unknown key", 2},
      {"[[acl]]\npublish = [\"a\"]\n", "acl", "needs uid", 1},
      {"[[acl]]\nuser = \"no-such-user-xyz\"\n", "acl.user", "no such user", 1},
      {"[[rate_limit]]\nuid = 1\n", "rate_limit", "needs messages_per_second", 1},
      {"[store\n", "syntax", "", 1},
  };
  for (const auto& c : cases) {
    LoadResult r = Parse(c.toml);
    ASSERT_FALSE(r.ok()) << c.toml;
    bool found = false;
    for (const auto& p : r.problems) {
      if (p.key == c.key && p.reason.find(c.reason_part) != std::string::npos) {
        found = true;
        EXPECT_EQ(p.line, c.line) << c.toml;
        EXPECT_EQ(p.file, "test.toml");
      }
    }
    EXPECT_TRUE(found) << "for:\n" << c.toml << "got:\n" << Problems(r);
  }
}

TEST(ConfigTest, ReportsEveryProblemNotJustTheFirst) {
  LoadResult r = Parse("[store]\nbogus = 1\ndurability = \"maybe\"\n[uplink]\ninflight = 0\n");
  EXPECT_EQ(r.problems.size(), 3u) << Problems(r);
}

TEST(ConfigTest, PasswordFileMustBeReadable) {
  TempDir dir;
  LoadResult r = Parse("[uplink]\nusername = \"u\"\npassword_file = \"" + dir.File("missing") +
                       "\"\n");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.problems[0].key, "uplink.password_file");
  EXPECT_NE(r.problems[0].reason.find("no such file"), std::string::npos);

  WriteFile(dir.File("pw"), "secret\n");
  r = Parse("[uplink]\nusername = \"u\"\npassword_file = \"" + dir.File("pw") + "\"\n");
  EXPECT_TRUE(r.ok()) << Problems(r);

  if (!edgespool::testing::IsRoot()) {  // root reads anything
    chmod(dir.File("pw").c_str(), 0);
    r = Parse("[uplink]\nusername = \"u\"\npassword_file = \"" + dir.File("pw") + "\"\n");
    EXPECT_FALSE(r.ok());
  }
  r = Parse("[uplink]\npassword_file = \"" + dir.File("pw") + "\"\n");
  EXPECT_FALSE(r.ok()) << "a password without a username";
}

TEST(ConfigTest, EnvironmentOverridesFileAndIsChecked) {
  LoadResult r = Parse("[uplink]\nurl = \"mqtt://file:1883\"\n",
                       {"EDGESPOOL_UPLINK_URL=mqtt://env:1883", "EDGESPOOL_STORE_MAX_BYTES=1GiB",
                        "EDGESPOOL_SYNC_BACKOFF_MAX=1m", "EDGESPOOL_UPLINK_TLS_VERIFY=false",
                        "EDGESPOOL_SYNC_PRIORITY_WEIGHTS=3,2,1", "OTHER=1"});
  ASSERT_TRUE(r.ok()) << Problems(r);
  EXPECT_EQ(r.config.uplink.url, std::vector<std::string>{"mqtt://env:1883"});
  EXPECT_EQ(r.config.store.max_bytes, 1 << 30);
  EXPECT_EQ(r.config.sync.backoff_max_ms, 60000);
  EXPECT_FALSE(r.config.uplink.tls_verify);
  EXPECT_EQ(r.config.sync.priority_weights, (std::vector<int64_t>{3, 2, 1}));

  r = Parse("", {"EDGESPOOL_UPLINK_INFLIGHT=lots"});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.problems[0].key, "uplink.inflight");
  EXPECT_NE(r.problems[0].reason.find("EDGESPOOL_UPLINK_INFLIGHT"), std::string::npos);
}

TEST(ConfigTest, ShowRedactsCredentialsInUrl) {
  LoadResult r = Parse("[uplink]\nurl = \"mqtt://user:hunter2@broker:1883\"\n");
  ASSERT_TRUE(r.ok()) << Problems(r);
  std::string shown = RenderConfig(r.config);
  EXPECT_EQ(shown.find("hunter2"), std::string::npos);
  EXPECT_NE(shown.find("mqtt://<redacted>@broker:1883"), std::string::npos);
  // What show prints parses back to the same configuration.
  LoadResult again = Parse(RenderConfig(Parse("[sync]\nmode = \"batch\"\n").config));
  ASSERT_TRUE(again.ok()) << Problems(again);
  EXPECT_EQ(again.config.sync.mode, "batch");
  EXPECT_EQ(ConfigDigest(again.config), ConfigDigest(Parse("[sync]\nmode = \"batch\"\n").config));
  EXPECT_NE(ConfigDigest(again.config), ConfigDigest(Parse("").config));
}

TEST(ConfigTest, DurationsAndSizesAreStrict) {
  int64_t v;
  std::string why;
  EXPECT_TRUE(ParseDurationMs("250ms", &v, &why));
  EXPECT_EQ(v, 250);
  EXPECT_TRUE(ParseDurationMs("1d", &v, &why));
  EXPECT_EQ(v, 86400000);
  for (const char* bad : {"", "s", "-1s", "1.5s", "1 s", "10S", "5min", "99999999999999s"}) {
    EXPECT_FALSE(ParseDurationMs(bad, &v, &why)) << bad;
  }
  EXPECT_TRUE(ParseSizeBytes("512KiB", &v, &why));
  EXPECT_EQ(v, 512 * 1024);
  EXPECT_TRUE(ParseSizeBytes("123", &v, &why));
  EXPECT_EQ(v, 123);
  EXPECT_TRUE(ParseSizeBytes("7B", &v, &why));
  EXPECT_EQ(v, 7);
  for (const char* bad : {"", "MiB", "1.5MiB", "1 MiB", "1mb", "1KB", "-5", "999999999999999GiB"}) {
    EXPECT_FALSE(ParseSizeBytes(bad, &v, &why)) << bad;
  }
  EXPECT_EQ(FormatDurationMs(90000), "90s");
  EXPECT_EQ(FormatSizeBytes(3 << 20), "3MiB");
}

TEST(ConfigTest, DownlinkDefaults) {
  LoadResult r = Parse("");
  ASSERT_TRUE(r.ok()) << Problems(r);
  const Config& c = r.config;
  EXPECT_TRUE(c.downlink.enabled);
  EXPECT_EQ(c.downlink.topic, "edgespool/{node}/down/#");
  EXPECT_EQ(c.downlink.max_bytes, 64ll << 20);
  EXPECT_EQ(c.downlink.max_message_bytes, 1 << 20);
  EXPECT_EQ(c.downlink.session_expiry_ms, 3600000);
  EXPECT_EQ(c.downlink.session_max_bytes, 16ll << 20);
  EXPECT_EQ(c.downlink.window, 100);
  EXPECT_EQ(c.downlink.retention_ms, 3600000);
  EXPECT_EQ(c.downlink.receive_maximum, 1000);
  EXPECT_EQ(c.uplink.session_expiry_ms, 86400000);
  EXPECT_TRUE(c.subscriptions.empty());
}

TEST(ConfigTest, ParsesDownlinkAndSubscriptions) {
  LoadResult r = Parse(R"(
[uplink]
session_expiry = "7d"
[downlink]
enabled = false
topic = "site/{node}/cmd/+/#"
max_bytes = "1GiB"
max_message_bytes = "256KiB"
session_expiry = "10m"
session_max_bytes = 4096
window = 10000
retention = "0ms"
receive_maximum = 65535
[[subscription]]
filter = "fleet/config/#"
local_topic = "config/{suffix}"
max_message_bytes = "256KiB"
ttl = "1h"
[[subscription]]
filter = "fleet/{node}/+/state"
)");
  ASSERT_TRUE(r.ok()) << Problems(r);
  const Config& c = r.config;
  EXPECT_EQ(c.uplink.session_expiry_ms, 7 * 86400000ll);
  EXPECT_FALSE(c.downlink.enabled);
  EXPECT_EQ(c.downlink.topic, "site/{node}/cmd/+/#");
  EXPECT_EQ(c.downlink.max_bytes, 1ll << 30);
  EXPECT_EQ(c.downlink.max_message_bytes, 256 << 10);
  EXPECT_EQ(c.downlink.session_expiry_ms, 600000);
  EXPECT_EQ(c.downlink.session_max_bytes, 4096);
  EXPECT_EQ(c.downlink.window, 10000);
  EXPECT_EQ(c.downlink.retention_ms, 0);
  EXPECT_EQ(c.downlink.receive_maximum, 65535);
  ASSERT_EQ(c.subscriptions.size(), 2u);
  EXPECT_EQ(c.subscriptions[0].filter, "fleet/config/#");
  EXPECT_EQ(c.subscriptions[0].local_topic, "config/{suffix}");
  EXPECT_EQ(c.subscriptions[0].max_message_bytes, 256 << 10);
  EXPECT_EQ(c.subscriptions[0].ttl_ms, 3600000);
  EXPECT_EQ(c.subscriptions[0].line, 14);
  EXPECT_EQ(c.subscriptions[1].filter, "fleet/{node}/+/state");
  EXPECT_EQ(c.subscriptions[1].local_topic, "{topic}");
  EXPECT_EQ(c.subscriptions[1].max_message_bytes, 0);  // downlink.max_message_bytes
  EXPECT_EQ(c.subscriptions[1].ttl_ms, 0);

  // What show prints parses back to the same configuration, subscriptions too.
  std::string shown = RenderConfig(c);
  EXPECT_NE(shown.find("[[subscription]]\nfilter = \"fleet/config/#\""), std::string::npos) << shown;
  LoadResult again = Parse(shown);
  ASSERT_TRUE(again.ok()) << Problems(again);
  EXPECT_EQ(ConfigDigest(again.config), ConfigDigest(c));
  EXPECT_EQ(again.config.subscriptions.size(), 2u);
  EXPECT_EQ(again.config.subscriptions[1].max_message_bytes, 0);
}

TEST(ConfigTest, DownlinkKeysFromTheEnvironment) {
  LoadResult r = Parse("", {"EDGESPOOL_DOWNLINK_WINDOW=7", "EDGESPOOL_DOWNLINK_ENABLED=false",
                            "EDGESPOOL_DOWNLINK_MAX_BYTES=2MiB",
                            "EDGESPOOL_UPLINK_SESSION_EXPIRY=2h"});
  ASSERT_TRUE(r.ok()) << Problems(r);
  EXPECT_EQ(r.config.downlink.window, 7);
  EXPECT_FALSE(r.config.downlink.enabled);
  EXPECT_EQ(r.config.downlink.max_bytes, 2 << 20);
  EXPECT_EQ(r.config.uplink.session_expiry_ms, 7200000);

  r = Parse("", {"EDGESPOOL_DOWNLINK_RECEIVE_MAXIMUM=0"});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.problems[0].key, "downlink.receive_maximum");
  EXPECT_NE(r.problems[0].reason.find("EDGESPOOL_DOWNLINK_RECEIVE_MAXIMUM"), std::string::npos);
}

TEST(ConfigTest, EveryDownlinkKeyRejectsABadValue) {
  const BadCase cases[] = {
      {"[uplink]\nsession_expiry = \"0s\"\n", "uplink.session_expiry", "out of range", 2},
      {"[uplink]\nsession_expiry = \"200000d\"\n", "uplink.session_expiry", "out of range", 2},
      {"[downlink]\nenabled = \"on\"\n", "downlink.enabled", "true or false", 2},
      {"[downlink]\ntopic = \"\"\n", "downlink.topic", "must not be empty", 0},
      {"[downlink]\ntopic = \"a/#/b\"\n", "downlink.topic", "not a valid MQTT filter", 0},
      {"[downlink]\ntopic = \"a/b+\"\n", "downlink.topic", "not a valid MQTT filter", 0},
      {"[downlink]\nmax_bytes = 0\n", "downlink.max_bytes", "out of range", 2},
      {"[downlink]\nmax_message_bytes = \"0B\"\n", "downlink.max_message_bytes", "out of range", 2},
      {"[downlink]\nmax_message_bytes = \"1GiB\"\n", "downlink.max_message_bytes", "out of range", 2},
      {"[downlink]\nsession_expiry = 60\n", "downlink.session_expiry", "duration string", 2},
      {"[downlink]\nsession_max_bytes = \"0KiB\"\n", "downlink.session_max_bytes", "out of range", 2},
      {"[downlink]\nwindow = 0\n", "downlink.window", "out of range", 2},
      {"[downlink]\nwindow = 10001\n", "downlink.window", "out of range", 2},
      {"[downlink]\nretention = \"1y\"\n", "downlink.retention", "unknown unit", 2},
      {"[downlink]\nreceive_maximum = 0\n", "downlink.receive_maximum", "out of range", 2},
      {"[downlink]\nreceive_maximum = 65536\n", "downlink.receive_maximum", "out of range", 2},
      {"[[subscription]]\nlocal_topic = \"x\"\n", "subscription.filter", "must not be empty", 1},
      {"\n[[subscription]]\nfilter = \"a/#/b\"\n", "subscription.filter", "not a valid MQTT filter", 2},
      {"[[subscription]]\nfilter = \"a+/b\"\n", "subscription.filter", "not a valid MQTT filter", 1},
      {"[[subscription]]\nfilter = \"a/#\"\nlocal_topic = \"\"\n", "subscription.local_topic",
       "must not be empty", 1},
      {"[[subscription]]\nfilter = \"a/#\"\nlocal_topic = \"x/#\"\n", "subscription.local_topic",
       "no + or #", 1},
      {"[[subscription]]\nfilter = \"a/#\"\nmax_message_bytes = 0\n",
       "subscription.max_message_bytes", "out of range", 1},
      {"[[subscription]]\nfilter = \"a/#\"\nttl = \"0s\"\n", "subscription.ttl", "out of range", 1},
      {"[[subscription]]\nfilter = \"a/#\"\nttl = 5\n", "subscription.ttl", "duration string", 3},
      {"[[subscription]]\nfilter = \"a/#\"\nqos = 1\n", "subscription.qos", "unknown key", 3},
      {"[subscription]\nfilter = \"a/#\"\n", "subscription", "expected [[subscription]]", 1},
  };
  for (const auto& c : cases) {
    LoadResult r = Parse(c.toml);
    ASSERT_FALSE(r.ok()) << c.toml;
    bool found = false;
    for (const auto& p : r.problems) {
      if (p.key == c.key && p.reason.find(c.reason_part) != std::string::npos) {
        found = true;
        EXPECT_EQ(p.line, c.line) << c.toml;
      }
    }
    EXPECT_TRUE(found) << "for:\n" << c.toml << "got:\n" << Problems(r);
  }
}

// A node named like the placeholder must not make {node} expansion loop.
TEST(ConfigTest, WebSocketSection) {
  LoadResult off = Parse("");
  ASSERT_TRUE(off.ok()) << Problems(off);
  EXPECT_EQ(off.config.websocket.listen, "");  // off by default
  EXPECT_EQ(off.config.websocket.max_sessions, 64);
  EXPECT_EQ(off.config.websocket.max_frame_bytes, 64 << 10);
  EXPECT_EQ(off.config.websocket.idle_timeout_ms, 60000);
  LoadResult r = Parse(
      "[websocket]\nlisten = \"127.0.0.1:8765\"\n"
      "allowed_origins = [\"http://hmi.local\", \"*\"]\nmax_sessions = 5\n"
      "max_frame_bytes = \"8KiB\"\nidle_timeout = \"30s\"\nstatus_interval = \"500ms\"\n");
  ASSERT_TRUE(r.ok()) << Problems(r);
  EXPECT_EQ(r.config.websocket.allowed_origins,
            (std::vector<std::string>{"http://hmi.local", "*"}));
  EXPECT_EQ(r.config.websocket.max_frame_bytes, 8192);
  EXPECT_EQ(r.config.websocket.status_interval_ms, 500);
  // `config show` renders what parses back to the same thing.
  LoadResult again = Parse(RenderConfig(r.config));
  ASSERT_TRUE(again.ok()) << Problems(again);
  EXPECT_EQ(again.config.websocket.allowed_origins, r.config.websocket.allowed_origins);
}

TEST(ConfigTest, WebSocketOffLoopbackNeedsAToken) {
  LoadResult r = Parse("[websocket]\nlisten = \"0.0.0.0:8765\"\n");
  ASSERT_EQ(r.problems.size(), 1u) << Problems(r);
  EXPECT_EQ(r.problems[0].key, "websocket.listen");
  EXPECT_NE(r.problems[0].reason.find("token_file"), std::string::npos);
  r = Parse("[websocket]\nlisten = \"8765\"\n");
  ASSERT_EQ(r.problems.size(), 1u) << Problems(r);
  EXPECT_EQ(r.problems[0].key, "websocket.listen");
  r = Parse("[websocket]\nlisten = \"0.0.0.0:8765\"\ntoken_file = \"/nonexistent/t\"\n");
  ASSERT_EQ(r.problems.size(), 1u) << Problems(r);
  EXPECT_EQ(r.problems[0].key, "websocket.token_file");
  r = Parse("[websocket]\nallowed_origins = \"http://x\"\n");
  ASSERT_EQ(r.problems.size(), 1u) << Problems(r);
  EXPECT_NE(r.problems[0].reason.find("array of strings"), std::string::npos);
}

TEST(ConfigTest, ExpandNodeReplacesEachPlaceholderOnce) {
  EXPECT_EQ(ExpandNode("edgespool/{node}/down/#", "gw1"), "edgespool/gw1/down/#");
  EXPECT_EQ(ExpandNode("{node}/{node}", "{node}"), "{node}/{node}");
  LoadResult r = Parse("[node]\nid = \"{node}\"\n");
  EXPECT_TRUE(r.ok()) << Problems(r);
}

TEST(ConfigTest, DurationsTooLargeAreRefusedNotWrapped) {
  int64_t v = 0;
  std::string why;
  EXPECT_FALSE(ParseDurationMs("999999999999d", &v, &why));
  EXPECT_NE(why.find("too large"), std::string::npos) << why;
}

}  // namespace
}  // namespace edgespool::agent

namespace edgespool::agent {
namespace {

// uplink.url: one string (as before) or a list of brokers to fail over between.
TEST(ConfigTest, UplinkUrlTakesAStringOrAListOfBrokers) {
  LoadResult one = Parse("[uplink]\nurl = \"mqtt://a:1883\"\n");
  ASSERT_TRUE(one.ok()) << Problems(one);
  EXPECT_EQ(one.config.uplink.url, std::vector<std::string>{"mqtt://a:1883"});
  EXPECT_EQ(one.config.uplink.failover, "ordered");
  EXPECT_NE(RenderConfig(one.config).find("url = \"mqtt://a:1883\""), std::string::npos)
      << "one broker renders as the plain string it was";

  LoadResult list = Parse(
      "[uplink]\nurl = [\"mqtt://a:1883\", \"mqtts://u:pw@b:8883\"]\nfailover = \"random\"\n"
      "tls_verify = false\n");
  ASSERT_TRUE(list.ok()) << Problems(list);
  EXPECT_EQ(list.config.uplink.url,
            (std::vector<std::string>{"mqtt://a:1883", "mqtts://u:pw@b:8883"}));
  EXPECT_EQ(list.config.uplink.failover, "random");
  std::string shown = RenderConfig(list.config);
  EXPECT_NE(shown.find("url = [\"mqtt://a:1883\", \"mqtts://<redacted>@b:8883\"]"), std::string::npos)
      << shown;
  EXPECT_EQ(shown.find("pw"), std::string::npos) << "credentials redacted in every entry";
}

TEST(ConfigTest, UplinkUrlListIsCheckedEntryByEntry) {
  LoadResult r = Parse("[uplink]\nurl = [\"mqtt://a\", \"http://b\"]\n");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(Problems(r).find("uplink.url: broker #2: expected mqtt://"), std::string::npos)
      << Problems(r);
  EXPECT_FALSE(Parse("[uplink]\nurl = []\n").ok()) << "an empty list";
  EXPECT_FALSE(Parse("[uplink]\nurl = [\"mqtt://a\", 3]\n").ok()) << "not a string";
  EXPECT_FALSE(Parse("[uplink]\nfailover = \"round-robin\"\n").ok());
}

TEST(ConfigTest, UplinkUrlListFromTheEnvironmentIsCommaSeparated) {
  LoadResult r = Parse("", {"EDGESPOOL_UPLINK_URL=mqtt://a:1, mqtt://b:2,mqtt://c:3",
                            "EDGESPOOL_UPLINK_FAILOVER=random"});
  ASSERT_TRUE(r.ok()) << Problems(r);
  EXPECT_EQ(r.config.uplink.url,
            (std::vector<std::string>{"mqtt://a:1", "mqtt://b:2", "mqtt://c:3"}));
  EXPECT_EQ(r.config.uplink.failover, "random");
  EXPECT_FALSE(Parse("", {"EDGESPOOL_UPLINK_URL=mqtt://a:1,,mqtt://b"}).ok()) << "an empty item";
}

TEST(ConfigTest, UplinkUrlListAndFailoverAreLive) {
  Config a = Parse("").config;
  Config b = Parse("[uplink]\nurl = [\"mqtt://127.0.0.1:1883\", \"mqtt://b:1883\"]\n"
                   "failover = \"random\"\n").config;
  std::vector<ConfigChange> changes = DiffConfig(a, b);
  ASSERT_EQ(changes.size(), 2u);
  for (const ConfigChange& c : changes) EXPECT_TRUE(c.live) << c.key;
}

}  // namespace
}  // namespace edgespool::agent
