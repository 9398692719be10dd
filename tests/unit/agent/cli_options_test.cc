// The option parser (agent/cli/options.h): every getopt_long habit the
// commands rely on, and its errors.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "agent/cli/options.h"

namespace edgespool::agent::cli {
namespace {

int Noop(const Args&) { return 0; }

constexpr OptionSpec kOptions[] = {
    Opt("topic", 't', ValueKind::kString, "TOPIC", "topic"),
    Opt("message", 'm', ValueKind::kString, "MESSAGE", "message"),
    Flag("lines", 'l', "lines"),
    Flag("verbose", 'v', "verbose"),
    Opt("ttl", 0, ValueKind::kDuration, "DURATION", "ttl").Range(1, 86400000),
    Opt("size", 0, ValueKind::kSize, "SIZE", "size").Range(0, 1 << 20),
    Opt("count", 'C', ValueKind::kInt, "N", "count").Range(1, 100),
    Opt("priority", 0, ValueKind::kChoice, "P", "priority").Choices("high|normal|low"),
    Opt("header", 'H', ValueKind::kString, "K=V", "header").Repeatable(),
};
constexpr ExitCodeDoc kExits[] = {{0, "ok"}, {64, "usage"}};
const CommandSpec kSpec =
    Command("test", "[options] A [B]", "s", "d", kOptions, kExits, Noop, 0, 2);

struct Result {
  ParseOutcome outcome;
  Args args;
  std::string error;
};

Result P(std::vector<std::string> argv, const CommandSpec& spec = kSpec) {
  std::vector<const char*> ptrs;
  for (const auto& a : argv) ptrs.push_back(a.c_str());
  Result r;
  r.outcome = Parse(spec, static_cast<int>(ptrs.size()), ptrs.data(), &r.args, &r.error);
  return r;
}

TEST(CliOptionsTest, LongOptionsTakeTheirValueAfterASpaceOrAnEqualsSign) {
  auto r = P({"--topic", "a/b", "--message=x=y", "--ttl=10m"});
  ASSERT_EQ(r.outcome, ParseOutcome::kOk) << r.error;
  EXPECT_EQ(r.args.Str("topic"), "a/b");
  EXPECT_EQ(r.args.Str("message"), "x=y");  // only the first '=' splits
  EXPECT_EQ(r.args.DurationMs("ttl"), 600000);
  EXPECT_FALSE(r.args.Has("lines"));
  r = P({"--message="});  // an empty value is a value
  ASSERT_EQ(r.outcome, ParseOutcome::kOk);
  EXPECT_TRUE(r.args.Has("message"));
  EXPECT_EQ(r.args.Str("message", "fallback"), "");
}

TEST(CliOptionsTest, ShortOptionsClusterAndTakeAttachedValues) {
  auto r = P({"-lv", "-tTOPIC", "-m", "hello"});
  ASSERT_EQ(r.outcome, ParseOutcome::kOk) << r.error;
  EXPECT_TRUE(r.args.Has("lines"));
  EXPECT_TRUE(r.args.Has("verbose"));
  EXPECT_EQ(r.args.Str("topic"), "TOPIC");
  EXPECT_EQ(r.args.Str("message"), "hello");
  r = P({"-lt", "x/y"});  // flags, then one taking the next argument
  ASSERT_EQ(r.outcome, ParseOutcome::kOk) << r.error;
  EXPECT_EQ(r.args.Str("topic"), "x/y");
  r = P({"-ltx/y"});  // ...or the rest of the cluster
  EXPECT_EQ(r.args.Str("topic"), "x/y");
  r = P({"-C5"});
  EXPECT_EQ(r.args.Int("count"), 5);
}

TEST(CliOptionsTest, PositionalsMixWithOptionsAndDoubleDashEndsOptions) {
  auto r = P({"first", "--lines", "second"});
  ASSERT_EQ(r.outcome, ParseOutcome::kOk) << r.error;
  EXPECT_EQ(r.args.positionals(), (std::vector<std::string>{"first", "second"}));
  EXPECT_TRUE(r.args.Has("lines"));
  r = P({"--lines", "--", "--topic", "-x"});
  ASSERT_EQ(r.outcome, ParseOutcome::kOk) << r.error;
  EXPECT_EQ(r.args.positionals(), (std::vector<std::string>{"--topic", "-x"}));
  EXPECT_FALSE(r.args.Has("topic"));
  r = P({"-"});  // stdin, by custom
  ASSERT_EQ(r.outcome, ParseOutcome::kOk);
  EXPECT_EQ(r.args.positionals(), (std::vector<std::string>{"-"}));
  r = P({"--topic", "--lines"});  // a value may start with '-'
  ASSERT_EQ(r.outcome, ParseOutcome::kOk) << r.error;
  EXPECT_EQ(r.args.Str("topic"), "--lines");
  EXPECT_FALSE(r.args.Has("lines"));
}

TEST(CliOptionsTest, HelpWinsWhereverItStandsBeforeDoubleDash) {
  EXPECT_EQ(P({"--help"}).outcome, ParseOutcome::kHelp);
  EXPECT_EQ(P({"-h"}).outcome, ParseOutcome::kHelp);
  EXPECT_EQ(P({"--ttl", "bogus", "--help"}).outcome, ParseOutcome::kHelp);
  EXPECT_EQ(P({"--", "--help"}).outcome, ParseOutcome::kOk);
}

TEST(CliOptionsTest, RepeatableOptionsKeepEveryValueOthersTheLast) {
  auto r = P({"-H", "a=1", "--header", "b=2", "--header=c=3", "-t", "x", "-t", "y"});
  ASSERT_EQ(r.outcome, ParseOutcome::kOk) << r.error;
  EXPECT_EQ(r.args.All("header"), (std::vector<std::string>{"a=1", "b=2", "c=3"}));
  EXPECT_EQ(r.args.Str("topic"), "y");
  EXPECT_EQ(r.args.All("topic").size(), 1u);
}

TEST(CliOptionsTest, ValuesAreCheckedByKind) {
  auto r = P({"--ttl", "90s", "--size", "64KiB", "--count", "7", "--priority", "low"});
  ASSERT_EQ(r.outcome, ParseOutcome::kOk) << r.error;
  EXPECT_EQ(r.args.DurationMs("ttl"), 90000);
  EXPECT_EQ(r.args.SizeBytes("size"), 65536);
  EXPECT_EQ(r.args.Int("count"), 7);
  EXPECT_EQ(r.args.Str("priority"), "low");
  EXPECT_EQ(P({"--ttl", "60000"}).args.DurationMs("ttl"), 60000);  // bare: ms, as before units
  EXPECT_EQ(P({}).args.DurationMs("ttl", 5), 5);
}

TEST(CliOptionsTest, ErrorsNameTheOptionAndTheReason) {
  struct Case {
    std::vector<std::string> argv;
    std::string error;
  } cases[] = {
      {{"--bogus"}, "unrecognized option '--bogus'"},
      {{"-x"}, "invalid option '-x'"},
      {{"-lx"}, "invalid option '-x'"},
      {{"--topic"}, "option '--topic' requires an argument (TOPIC)"},
      {{"-t"}, "option '-t' requires an argument (TOPIC)"},
      {{"--lines=yes"}, "option '--lines' doesn't allow an argument"},
      {{"--ttl", "10x"}, "option '--ttl': "},
      {{"--ttl", "0s"}, "option '--ttl': \"0s\" is outside 1ms..1d"},
      {{"--ttl", "2d"}, "is outside"},
      {{"--size", "2MiB"}, "option '--size': \"2MiB\" is outside 0..1MiB"},
      {{"--size", "lots"}, "option '--size': "},
      {{"--count", "0"}, "option '--count': \"0\" is outside 1..100"},
      {{"--count", "7x"}, "option '--count': \"7x\" is not an integer"},
      {{"-C", ""}, "is not an integer"},
      {{"--priority", "urgent"}, "option '--priority': \"urgent\" is not one of high,normal,low"},
      {{"--priority", "hig"}, "is not one of"},
      {{"a", "b", "c"}, "unexpected argument 'c'"},
      {{"--topi", "x"}, "unrecognized option '--topi'"},  // never abbreviated
  };
  for (const Case& c : cases) {
    auto r = P(c.argv);
    EXPECT_EQ(r.outcome, ParseOutcome::kError) << c.argv[0];
    EXPECT_NE(r.error.find(c.error), std::string::npos) << c.argv[0] << ": " << r.error;
  }
  const CommandSpec needs_one = Command("one", "A", "s", "d", kOptions, kExits, Noop, 1, 1);
  auto r = P({"--lines"}, needs_one);
  EXPECT_EQ(r.outcome, ParseOutcome::kError);
  EXPECT_NE(r.error.find("missing argument"), std::string::npos) << r.error;
}

TEST(CliOptionsTest, ACommandWithoutOptionsStillTakesHelpAndRefusesOthers) {
  const CommandSpec bare = Command("bare", "", "s", "d", nullptr, kExits, Noop, 0, 0);
  EXPECT_EQ(P({"--help"}, bare).outcome, ParseOutcome::kHelp);
  EXPECT_EQ(P({"--x"}, bare).outcome, ParseOutcome::kError);
  EXPECT_EQ(P({"arg"}, bare).outcome, ParseOutcome::kError);
  EXPECT_EQ(P({}, bare).outcome, ParseOutcome::kOk);
}

}  // namespace
}  // namespace edgespool::agent::cli
