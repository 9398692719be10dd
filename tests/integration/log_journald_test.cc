// The real agent's log lines as journald receives them. systemd points the
// service's stderr at a journald stream socket and sets JOURNAL_STREAM to its
// device:inode; here stderr is a file (the agent's log) and JOURNAL_STREAM
// names that file, which is all the agent can see of the difference. Every
// line must then carry a sd-daemon(3) priority prefix and no timestamp of its
// own; without JOURNAL_STREAM (or with one naming another file, as a child
// of a service whose stderr was redirected sees) lines are the terminal kind.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/e2e.h"

namespace edgespool::testing {
namespace {

std::vector<std::string> LinesOf(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

std::string StreamId(const std::string& path) {
  struct stat st;
  EXPECT_EQ(::stat(path.c_str(), &st), 0);
  return std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
}

// Runs the agent against a port nothing listens on (so the uplink logs a
// warning) until it has warned, then stops it; returns its log lines.
std::vector<std::string> RunAndStop(const std::string& journal_stream_of) {
  TempDir dir;
  AgentProcess agent(dir.path(), "mqtt://127.0.0.1:" + std::to_string(FreePort()));
  std::string log_path = dir.File("agent.log");
  WriteFile(log_path, "");  // the agent appends to this very inode
  if (!journal_stream_of.empty()) {
    std::string path = journal_stream_of == "log" ? log_path : dir.File(journal_stream_of);
    if (path != log_path) WriteFile(path, "");
    agent.SetCommandPrefix({"env", "JOURNAL_STREAM=" + StreamId(path)});
  }
  EXPECT_TRUE(agent.Start()) << agent.log();
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (agent.log().find("uplink connect failed") == std::string::npos &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_NE(agent.log().find("uplink connect failed"), std::string::npos) << agent.log();
  EXPECT_EQ(agent.Stop(), 0) << agent.log();
  return LinesOf(agent.log());
}

TEST(LogJournald, EveryLineHasAPriorityPrefixAndNoTimestamp) {
  auto lines = RunAndStop("log");
  ASSERT_GE(lines.size(), 4u);
  std::regex line_re(R"(^<([3467])>(error|warn|info|debug) \S.*$)");
  int warnings = 0;
  for (const auto& line : lines) {
    std::smatch m;
    ASSERT_TRUE(std::regex_match(line, m, line_re)) << line;
    const std::string prio = m[1], level = m[2];
    EXPECT_EQ(prio, level == "error"  ? "3"
                    : level == "warn" ? "4"
                    : level == "info" ? "6"
                                      : "7")
        << line;
    if (level == "warn") ++warnings;
  }
  EXPECT_EQ(lines.front().rfind("<6>info edgespool starting version=", 0), 0u) << lines.front();
  EXPECT_EQ(lines.back().rfind("<6>info edgespool stopped", 0), 0u) << lines.back();
  EXPECT_GE(warnings, 1);  // "<4>warn uplink connect failed; retrying ..."
}

TEST(LogJournald, WithoutJournaldLinesKeepTheirTimestamp) {
  for (const char* stream : {"", "elsewhere"}) {
    auto lines = RunAndStop(stream);
    ASSERT_GE(lines.size(), 4u);
    std::regex line_re(R"(^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (error|warn|info|debug) \S.*$)");
    for (const auto& line : lines) {
      EXPECT_TRUE(std::regex_match(line, line_re))
          << "JOURNAL_STREAM of '" << stream << "': " << line;
    }
  }
}

}  // namespace
}  // namespace edgespool::testing
