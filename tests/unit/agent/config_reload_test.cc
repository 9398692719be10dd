// What a reload changes and whether it may: DiffConfig (which keys differ,
// live or restart, from schema.cc's table), PlanReload (refusals) and the
// outcome it reports; and config.example.toml marking exactly the keys that
// need a restart.
#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <set>

#include "agent/config/config.h"
#include "agent/reload.h"

namespace edgespool::agent {
namespace {

std::string SourceDir() {
  const char* d = std::getenv("EDGESPOOL_SOURCE_DIR");
  return d ? d : ".";
}

Config Load(const std::string& text) {
  LoadResult r = ParseConfig(text, "test.toml", {});
  EXPECT_TRUE(r.ok()) << (r.problems.empty() ? "" : r.problems[0].ToString());
  return r.config;
}

std::vector<std::string> Keys(const std::vector<ConfigChange>& changes, bool live) {
  std::vector<std::string> out;
  for (const auto& c : changes) {
    if (c.live == live) out.push_back(c.key);
  }
  return out;
}

using Strings = std::vector<std::string>;

TEST(ConfigReloadTest, SameConfigHasNoChanges) {
  const char* text = "[uplink]\nurl = \"mqtt://a:1883\"\n[[route]]\nmatch = \"x/#\"\n";
  EXPECT_TRUE(DiffConfig(Load(text), Load(text)).empty());
}

TEST(ConfigReloadTest, ClassifiesLiveAndRestartKeys) {
  Config a = Load("[node]\nid = \"gw\"\n");
  Config b = Load(R"([node]
id = "gw"
[store]
path = "/elsewhere/journal.db"
[uplink]
url = "mqtt://other:1883"
username = "u2"
keepalive = "10s"
[sync]
priority_weights = [50, 30, 20]
batch_messages = 10
[status]
interval = "5s"
[log]
level = "debug"
)");
  auto changes = DiffConfig(a, b);
  EXPECT_EQ(Keys(changes, true),
            (Strings{"uplink.url", "uplink.username", "sync.batch_messages",
                     "sync.priority_weights", "status.interval", "log.level"}));
  EXPECT_EQ(Keys(changes, false), (Strings{"store.path", "uplink.keepalive"}));
}

TEST(ConfigReloadTest, UrlCredentialsCountThoughRedactedInShow) {
  // `config show` and the digest redact userinfo; the diff must not.
  Config a = Load("[uplink]\nurl = \"mqtt://u:one@broker:1883\"\n");
  Config b = Load("[uplink]\nurl = \"mqtt://u:two@broker:1883\"\n");
  auto changes = DiffConfig(a, b);
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].key, "uplink.url");
  EXPECT_TRUE(changes[0].live);
}

TEST(ConfigReloadTest, ArrayElementsByIndexAndCount) {
  Config a = Load("[[route]]\nmatch = \"a/#\"\npriority = \"low\"\n[[route]]\nmatch = \"#\"\n");
  Config b = Load("[[route]]\nmatch = \"a/#\"\npriority = \"high\"\n[[route]]\nmatch = \"#\"\n");
  EXPECT_EQ(Keys(DiffConfig(a, b), true), (Strings{"route[1].priority"}));

  // A route added: the catch-all moves to third place, so its slot differs too.
  Config c = Load(
      "[[route]]\nmatch = \"a/#\"\npriority = \"low\"\n[[route]]\nmatch = \"b/#\"\n"
      "[[route]]\nmatch = \"#\"\n");
  auto changes = DiffConfig(a, c);
  EXPECT_EQ(Keys(changes, true), (Strings{"route[2].match", "route"}));
  EXPECT_TRUE(Keys(changes, false).empty());

  // Lines moved (a comment added above) are not a change.
  Config d = Load(
      "\n\n# moved\n[[route]]\nmatch = \"a/#\"\npriority = \"low\"\n"
      "[[route]]\nmatch = \"#\"\n");
  EXPECT_TRUE(DiffConfig(a, d).empty());
}

TEST(ConfigReloadTest, AclAndRateLimitAreLiveSubscriptionsAreNot) {
  Config a = Load("");
  Config b = Load(R"([[acl]]
uid = 1000
publish = ["x/#"]
[[rate_limit]]
messages_per_second = 10
)");
  auto changes = DiffConfig(a, b);
  EXPECT_EQ(Keys(changes, true), (Strings{"acl", "rate_limit"}));
  Config c = Load("[[subscription]]\nfilter = \"fleet/#\"\n");
  auto sub = DiffConfig(a, c);
  ASSERT_EQ(sub.size(), 1u);
  EXPECT_EQ(sub[0].key, "subscription");
  EXPECT_FALSE(sub[0].live);
}

TEST(ConfigReloadTest, IsLiveKey) {
  EXPECT_TRUE(IsLiveKey("uplink.url"));
  EXPECT_TRUE(IsLiveKey("route.priority"));
  EXPECT_TRUE(IsLiveKey("rate_limit.burst"));
  EXPECT_FALSE(IsLiveKey("store.path"));
  EXPECT_FALSE(IsLiveKey("uplink.client_id"));
  EXPECT_FALSE(IsLiveKey("downlink.topic"));
  EXPECT_FALSE(IsLiveKey("nonsense.key"));
  EXPECT_FALSE(IsLiveKey("store"));
}

TEST(ConfigReloadTest, PlanRefusesInvalidAndRestartChanges) {
  Config running = Load("");
  LoadResult invalid = ParseConfig("[sync]\nbatch_messages = 0\n", "new.toml", {});
  ASSERT_FALSE(invalid.ok());
  ReloadPlan p1 = PlanReload(running, invalid);
  EXPECT_EQ(p1.verdict, ReloadPlan::Verdict::kRefuseInvalid);
  ASSERT_EQ(p1.problems.size(), 1u);
  EXPECT_NE(p1.problems[0].find("new.toml:2: sync.batch_messages"), std::string::npos)
      << p1.problems[0];

  LoadResult moved =
      ParseConfig("[store]\npath = \"/x/j.db\"\n[log]\nlevel = \"debug\"\n", "new.toml", {});
  ReloadPlan p2 = PlanReload(running, moved);
  EXPECT_EQ(p2.verdict, ReloadPlan::Verdict::kRefuseRestart);
  EXPECT_EQ(p2.restart, (Strings{"store.path"}));
  EXPECT_EQ(p2.live, (Strings{"log.level"}));
  ReloadOutcome o2 = DescribeReload(p2, {}, "", "/etc/edgespool/config.toml", "abc");
  EXPECT_FALSE(o2.ok);
  EXPECT_NE(o2.message.find("store.path"), std::string::npos);
  EXPECT_NE(o2.json.find("\"outcome\":\"refused\""), std::string::npos) << o2.json;
  EXPECT_NE(o2.json.find("\"restart\":[\"store.path\"]"), std::string::npos) << o2.json;

  LoadResult same = ParseConfig("", "new.toml", {});
  ReloadPlan p3 = PlanReload(running, same);
  EXPECT_EQ(p3.verdict, ReloadPlan::Verdict::kUnchanged);
  ReloadOutcome o3 = DescribeReload(p3, {}, "", "", "abc");
  EXPECT_TRUE(o3.ok);
  EXPECT_FALSE(o3.changed);
  // A rotated certificate is a change even though no key changed.
  ReloadOutcome o4 = DescribeReload(p3, {"uplink credential files (contents)"}, "", "", "abc");
  EXPECT_TRUE(o4.ok && o4.changed);
  // A live change that cannot be applied (a TLS file that does not load) is refused.
  LoadResult url = ParseConfig("[uplink]\nurl = \"mqtts://x:8883\"\n", "new.toml", {});
  ReloadPlan p5 = PlanReload(running, url);
  EXPECT_EQ(p5.verdict, ReloadPlan::Verdict::kApply);
  ReloadOutcome o5 = DescribeReload(p5, {}, "uplink: tls: ca_file /nope: not found", "", "abc");
  EXPECT_FALSE(o5.ok);
  EXPECT_NE(o5.json.find("\"outcome\":\"refused\""), std::string::npos);
}

// config.example.toml marks a key "(restart)" on its own line exactly when
// schema.cc does not mark it live: the docs cannot drift from the table.
TEST(ConfigReloadTest, ExampleMarksExactlyTheRestartKeys) {
  std::ifstream in(SourceDir() + "/config.example.toml");
  ASSERT_TRUE(in.good());
  std::regex header(R"(^#?\s*\[\[?([a-z_]+)\]\]?)");
  std::regex key(R"(^#?\s*([a-z_]+)\s*=)");
  std::smatch m;
  std::string line, section;
  std::set<std::string> seen;
  while (std::getline(in, line)) {
    if (std::regex_search(line, m, header)) {
      section = m[1];
      continue;
    }
    if (!std::regex_search(line, m, key) || section.empty()) continue;
    std::string name = section + "." + std::string(m[1]);
    bool marked = line.find("(restart)") != std::string::npos;
    EXPECT_EQ(marked, !IsLiveKey(name))
        << name
        << (marked ? " is marked (restart) but is live" : " needs a restart but is not marked");
    seen.insert(name);
  }
  EXPECT_EQ(seen.size(), KnownKeys().size());
}

}  // namespace
}  // namespace edgespool::agent
