// ACL and rate limits: the pure classes, then two real uids over the socket
// (children that setuid; skipped unless root).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "agent/acl.h"
#include "agent/rate_limiter.h"
#include "agent/server/connection.h"
#include "tests/integration/producer_test_util.h"

namespace edgespool::testing {
namespace {

using agent::Acl;
using agent::AclEntry;
using agent::RateLimiter;
using agent::RateLimitRule;

TEST(ProducerAcl, NoEntriesAllowsEveryone) {
  auto acl = Acl::Create({});
  ASSERT_TRUE(acl.ok());
  EXPECT_TRUE(acl->MayPublish(1234, 1234, "any/topic"));
}

TEST(ProducerAcl, UidAndGidEntries) {
  AclEntry by_uid;
  by_uid.uid = 1001;
  by_uid.publish = {"sensors/#", "site/+/temp"};
  AclEntry by_gid;
  by_gid.gid = 2000;
  by_gid.publish = {"shared/#"};
  auto acl = Acl::Create({by_uid, by_gid});
  ASSERT_TRUE(acl.ok());
  EXPECT_TRUE(acl->MayPublish(1001, 5, "sensors/a/b"));
  EXPECT_TRUE(acl->MayPublish(1001, 5, "site/x/temp"));
  EXPECT_FALSE(acl->MayPublish(1001, 5, "site/x/humidity"));
  EXPECT_FALSE(acl->MayPublish(1001, 5, "shared/x"));
  EXPECT_TRUE(acl->MayPublish(1001, 2000, "shared/x"));
  EXPECT_FALSE(acl->MayPublish(1002, 5, "sensors/a"));
}

TEST(ProducerAcl, NamesAreResolvedAndUnknownNamesRejected) {
  AclEntry root;
  root.user = "root";
  root.group = "root";
  root.publish = {"#"};
  auto acl = Acl::Create({root});
  ASSERT_TRUE(acl.ok());
  EXPECT_TRUE(acl->MayPublish(0, 0, "x"));
  AclEntry ghost;
  ghost.user = "no-such-user-edgespool";
  ghost.publish = {"#"};
  EXPECT_FALSE(Acl::Create({ghost}).ok());
  AclEntry empty;
  empty.uid = 1;
  EXPECT_FALSE(Acl::Create({empty}).ok()) << "an entry without filters";
}

TEST(ProducerAcl, FilterWithin) {
  EXPECT_TRUE(agent::FilterWithin("#", "a/+/#"));
  EXPECT_TRUE(agent::FilterWithin("cmd/hmi/#", "cmd/hmi/+/x"));
  EXPECT_TRUE(agent::FilterWithin("cmd/hmi/#", "cmd/hmi"));  // "#" covers its parent
  EXPECT_TRUE(agent::FilterWithin("cmd/hmi/#", "cmd/hmi/#"));
  EXPECT_TRUE(agent::FilterWithin("cmd/+/x", "cmd/a/x"));
  EXPECT_TRUE(agent::FilterWithin("cmd/+/x", "cmd/+/x"));
  EXPECT_TRUE(agent::FilterWithin("a", "a"));
  EXPECT_FALSE(agent::FilterWithin("cmd/hmi/#", "cmd/#"));
  EXPECT_FALSE(agent::FilterWithin("cmd/hmi/#", "cmd/+/x"));
  EXPECT_FALSE(agent::FilterWithin("cmd/+/x", "cmd/#"));
  EXPECT_FALSE(agent::FilterWithin("cmd/+/x", "cmd/a/x/y"));
  EXPECT_FALSE(agent::FilterWithin("cmd/+", "cmd"));
  EXPECT_FALSE(agent::FilterWithin("a/b", "a"));
  EXPECT_FALSE(agent::FilterWithin("a", "a/b"));
  EXPECT_FALSE(agent::FilterWithin("a", "+"));
}

// Each right is restricted once some entry names it, and only then.
TEST(ProducerAcl, SubscribeAndRespondRights) {
  AclEntry hmi;
  hmi.uid = 1001;
  hmi.subscribe = {"cmd/hmi/#"};
  AclEntry ops;
  ops.gid = 3000;
  ops.respond = {"reboot", "config/+"};
  auto acl = Acl::Create({hmi, ops});
  ASSERT_TRUE(acl.ok());
  EXPECT_TRUE(acl->MayPublish(1001, 5, "any/topic")) << "no entry names publish";
  EXPECT_TRUE(acl->MaySubscribe(1001, 5, "cmd/hmi/+"));
  EXPECT_FALSE(acl->MaySubscribe(1001, 5, "cmd/#"));
  EXPECT_FALSE(acl->MaySubscribe(1002, 5, "cmd/hmi/x"));
  EXPECT_FALSE(acl->MayRespond(1001, 5, "reboot"));
  EXPECT_TRUE(acl->MayRespond(1002, 3000, "reboot"));
  EXPECT_TRUE(acl->MayRespond(1002, 3000, "config/network"));
  EXPECT_FALSE(acl->MayRespond(1002, 3000, "config/network/dns"));
  AclEntry pub;
  pub.uid = 1001;
  pub.publish = {"a/#"};
  auto only_publish = Acl::Create({pub});
  ASSERT_TRUE(only_publish.ok());
  EXPECT_FALSE(only_publish->MayPublish(1002, 5, "a/x"));
  EXPECT_TRUE(only_publish->MaySubscribe(1002, 5, "#")) << "no entry names subscribe";
  EXPECT_TRUE(only_publish->MayRespond(1002, 5, "reboot")) << "no entry names respond";
}

TEST(ProducerRateLimiter, MessagesPerSecondWithBurst) {
  RateLimitRule rule;
  rule.uid = 7;
  rule.messages_per_second = 10;
  rule.burst = 3;
  RateLimiter rl({rule});
  int64_t t = 1000;
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(rl.Admit(7, 0, 10, t).allowed);
  auto d = rl.Admit(7, 0, 10, t);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.retry_after_ms, 100);
  EXPECT_TRUE(rl.Admit(8, 0, 10, t).allowed) << "other uid: no rule";
  EXPECT_FALSE(rl.Admit(7, 0, 10, t + 99).allowed);
  EXPECT_TRUE(rl.Admit(7, 0, 10, t + 100).allowed);
  // Idle buckets are swept once full again.
  rl.Sweep(t + 100000);
  EXPECT_EQ(rl.bucket_count(), 0u);
}

TEST(ProducerRateLimiter, BytesPerSecond) {
  RateLimitRule rule;
  rule.gid = 50;
  rule.bytes_per_second = 1000;
  RateLimiter rl({rule});
  EXPECT_TRUE(rl.Admit(1, 50, 600, 0).allowed);
  auto d = rl.Admit(1, 50, 600, 0);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.retry_after_ms, 200);
  EXPECT_TRUE(rl.Admit(1, 50, 600, 200).allowed);
  // A message larger than the bucket is slowed down, not refused forever.
  EXPECT_TRUE(rl.Admit(1, 50, 50000, 5000).allowed);
}

// --- two real uids over the socket ------------------------------------------

constexpr int kChildOps = 8;
struct ChildReport {
  int codes[kChildOps];  // per request: -1 ok, else ErrorCode; -2 no reply
  int64_t retry_after_ms;
};

[[noreturn]] void UidChild(int go_fd, int out_fd, const std::string& path, uid_t uid) {
  char go;
  if (::read(go_fd, &go, 1) != 1) ::_exit(2);
  if (::setgid(uid) != 0 || ::setuid(uid) != 0) ::_exit(3);
  ChildReport rep{{-2, -2, -2, -2, -2, -2, -2, -2}, 0};
  RawClient c;
  if (c.Connect(path)) {
    const char* topics[] = {"a/x", "b/x", "b/y", "b/z"};
    const char* others[] = {
        R"({"req":4,"op":"subscribe","filters":["cmd/a/#"]})",
        R"({"req":5,"op":"subscribe","filters":["cmd/a/x","cmd/#"]})",
        R"({"req":6,"op":"respond","methods":["a/reboot"]})",
        R"({"req":7,"op":"respond","methods":["b/reboot"]})",
    };
    for (int i = 0; i < kChildOps; ++i) {
      protocol::Reply r;
      bool sent = i < 4 ? c.SendFrame(PublishHeader(i, topics[i]), "v")
                        : c.SendFrame(others[i - 4], "");
      if (!sent || !c.ReadReply(&r)) break;
      rep.codes[i] = r.ok ? -1 : static_cast<int>(*r.code);
      if (r.retry_after_ms) rep.retry_after_ms = *r.retry_after_ms;
    }
  }
  if (::write(out_fd, &rep, sizeof rep) != sizeof rep) ::_exit(4);
  ::_exit(0);
}

TEST(ProducerAclTwoUids, AclAndRateLimitPerPeer) {
  if (!IsRoot()) GTEST_SKIP() << "needs root to setuid children into two uids";
  constexpr uid_t kUidA = 47001, kUidB = 47002;
  TempDir dir;
  ASSERT_EQ(::chmod(dir.path().c_str(), 0755), 0);
  std::string path = dir.File("producer.sock");
  int go[2], out[2];
  ASSERT_EQ(::pipe(go), 0);
  ASSERT_EQ(::pipe(out), 0);
  std::vector<pid_t> kids;
  for (uid_t uid : {kUidA, kUidB}) {
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) UidChild(go[0], out[1], path, uid);
    kids.push_back(pid);
  }
  HarnessOptions o;
  o.server.socket_path = path;
  o.server.socket_mode = 0666;
  AclEntry a, b;
  a.uid = kUidA;
  a.publish = {"a/#"};
  a.subscribe = {"cmd/a/#"};
  a.respond = {"a/+"};
  b.uid = kUidB;
  b.publish = {"b/#"};
  o.server.acl = {a, b};
  // What the ACL lets through reaches these hooks (the real downlink and
  // methods are tested elsewhere); they just say yes.
  auto ok = [](agent::server::Connection& c, const protocol::Request& r) {
    protocol::Reply reply;
    reply.req = r.req;
    reply.ok = true;
    c.ReplyNow(reply);
  };
  o.hooks.consumer_op = ok;
  o.hooks.method_op = [ok](agent::server::Connection& c, const protocol::Request& r,
                           std::string_view) { ok(c, r); };
  RateLimitRule slow_b;
  slow_b.uid = kUidB;
  slow_b.messages_per_second = 1;
  slow_b.burst = 2;
  o.server.rate_limits = {slow_b};
  ServerHarness h(dir.path(), o);
  ASSERT_TRUE(h.Start().ok());

  std::vector<ChildReport> reports(2);
  for (int k = 0; k < 2; ++k) {
    ASSERT_EQ(::write(go[1], "g", 1), 1);  // one child at a time: reports in order
    ASSERT_EQ(::read(out[0], &reports[k], sizeof(ChildReport)),
              static_cast<ssize_t>(sizeof(ChildReport)));
  }
  for (pid_t pid : kids) ::waitpid(pid, nullptr, 0);
  // Which report is whose: uid A may publish a/x, B may not.
  const ChildReport& ra = reports[0].codes[0] == -1 ? reports[0] : reports[1];
  const ChildReport& rb = reports[0].codes[0] == -1 ? reports[1] : reports[0];
  const int kForbidden = static_cast<int>(protocol::ErrorCode::kForbidden);
  const int kRateLimited = static_cast<int>(protocol::ErrorCode::kRateLimited);
  EXPECT_EQ(ra.codes[0], -1);
  EXPECT_EQ(ra.codes[1], kForbidden);
  EXPECT_EQ(ra.codes[2], kForbidden);
  EXPECT_EQ(ra.codes[3], kForbidden);
  EXPECT_EQ(rb.codes[0], kForbidden);
  EXPECT_EQ(rb.codes[1], -1);
  EXPECT_EQ(rb.codes[2], -1);
  EXPECT_EQ(rb.codes[3], kRateLimited) << "B's burst of 2 is spent; A was never limited";
  EXPECT_GT(rb.retry_after_ms, 0);
  // subscribe and respond: only A's entry names them, so B has neither.
  EXPECT_EQ(ra.codes[4], -1);
  EXPECT_EQ(ra.codes[5], kForbidden) << "cmd/# reaches beyond cmd/a/#";
  EXPECT_EQ(ra.codes[6], -1);
  EXPECT_EQ(ra.codes[7], kForbidden);
  for (int i = 4; i < kChildOps; ++i) EXPECT_EQ(rb.codes[i], kForbidden) << i;
}

}  // namespace
}  // namespace edgespool::testing
