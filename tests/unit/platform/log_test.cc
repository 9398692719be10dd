// Log lines as a terminal and as journald see them. Journal mode is detected
// the way the agent meets it under systemd: JOURNAL_STREAM holds the
// device:inode of the file the lines go to (here a real file whose st_dev and
// st_ino the test reads with stat(2)).
#include "platform/log.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <regex>
#include <string>
#include <vector>

#include "tests/support/test_env.h"

namespace edgespool::platform {
namespace {

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  for (size_t nl; (nl = text.find('\n', start)) != std::string::npos; start = nl + 1) {
    out.push_back(text.substr(start, nl - start));
  }
  EXPECT_EQ(start, text.size()) << "last line not terminated";
  return out;
}

std::string StreamId(const std::string& path) {
  struct stat st;
  EXPECT_EQ(::stat(path.c_str(), &st), 0);
  return std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
}

class LogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = dir_.File("log");
    fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ASSERT_GE(fd_, 0);
    const char* old = std::getenv("JOURNAL_STREAM");
    had_env_ = old != nullptr;
    if (had_env_) old_env_ = old;
    ::unsetenv("JOURNAL_STREAM");
  }
  void TearDown() override {
    if (had_env_) {
      ::setenv("JOURNAL_STREAM", old_env_.c_str(), 1);
    } else {
      ::unsetenv("JOURNAL_STREAM");
    }
    Logger::SetFd(-1);
    Logger::SetLevel(LogLevel::kInfo);
    Logger::SetFormat(LogFormat::kText);
    ::close(fd_);
  }
  void Capture() { Logger::SetFd(fd_); }
  void CaptureAsJournal() {
    ::setenv("JOURNAL_STREAM", StreamId(path_).c_str(), 1);
    Logger::SetFd(fd_);
  }
  std::vector<std::string> Written() { return Lines(testing::ReadFile(path_)); }

  testing::TempDir dir_;
  std::string path_;
  int fd_ = -1;
  bool had_env_ = false;
  std::string old_env_;
};

const std::regex kTimestamp(R"(^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z )");

TEST_F(LogTest, TextLinesOutsideJournaldCarryATimestampAndNoPrefix) {
  Capture();
  EXPECT_FALSE(Logger::JournalMode());
  ES_LOG_WARN("uplink disconnected", {{"url", "mqtt://b:1883"}, {"why", "peer closed"}});
  ES_LOG_INFO("plain");
  auto lines = Written();
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_TRUE(std::regex_search(lines[0], kTimestamp)) << lines[0];
  EXPECT_EQ(lines[0].substr(25), R"(warn uplink disconnected url=mqtt://b:1883 why="peer closed")");
  EXPECT_EQ(lines[1].substr(25), "info plain");
}

TEST_F(LogTest, JournaldLinesCarryThePriorityPrefixAndNoTimestamp) {
  Logger::SetLevel(LogLevel::kDebug);
  CaptureAsJournal();
  EXPECT_TRUE(Logger::JournalMode());
  ES_LOG_ERROR("journal cannot be opened", {{"path", "/var/lib/edgespool/journal.db"}});
  ES_LOG_WARN("uplink disconnected", {{"why", "peer closed"}});
  ES_LOG_INFO("edgespool running");
  ES_LOG_DEBUG("tick", {{"n", "1"}});
  auto lines = Written();
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(lines[0], "<3>error journal cannot be opened path=/var/lib/edgespool/journal.db");
  EXPECT_EQ(lines[1], R"(<4>warn uplink disconnected why="peer closed")");
  EXPECT_EQ(lines[2], "<6>info edgespool running");
  EXPECT_EQ(lines[3], "<7>debug tick n=1");
}

TEST_F(LogTest, JsonLinesUnderJournaldKeepTheirTimestampField) {
  Logger::SetFormat(LogFormat::kJson);
  CaptureAsJournal();
  ES_LOG_WARN("slow \"disk\"", {{"ms", "1200"}});
  auto lines = Written();
  ASSERT_EQ(lines.size(), 1u);
  std::regex json(
      R"re(^<4>\{"ts":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z","level":"warn","msg":"slow \\"disk\\"","ms":"1200"\}$)re");
  EXPECT_TRUE(std::regex_match(lines[0], json)) << lines[0];
}

TEST_F(LogTest, JsonLinesOutsideJournaldHaveNoPrefix) {
  Logger::SetFormat(LogFormat::kJson);
  Capture();
  ES_LOG_INFO("m", {{"k", "a\nb"}});
  auto lines = Written();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0].rfind("{\"ts\":\"", 0), 0u) << lines[0];
  EXPECT_NE(lines[0].find(R"("level":"info","msg":"m","k":"a\nb"})"), std::string::npos);
}

TEST_F(LogTest, JournalStreamOfAnotherFileIsNotJournald) {
  std::string other = dir_.File("other");
  testing::WriteFile(other, "");
  ::setenv("JOURNAL_STREAM", StreamId(other).c_str(), 1);
  Logger::SetFd(fd_);
  EXPECT_FALSE(Logger::JournalMode());
  ES_LOG_INFO("x");
  EXPECT_TRUE(std::regex_search(Written().at(0), kTimestamp));
}

TEST_F(LogTest, MalformedJournalStreamIsIgnored) {
  std::string id = StreamId(path_);
  for (std::string bad : {std::string(""), std::string("garbage"), id + "x", id + ":1",
                          id.substr(0, id.find(':')), ":" + id.substr(id.find(':') + 1)}) {
    ::setenv("JOURNAL_STREAM", bad.c_str(), 1);
    EXPECT_FALSE(IsJournalStream(fd_)) << "JOURNAL_STREAM=" << bad;
  }
  ::setenv("JOURNAL_STREAM", id.c_str(), 1);
  EXPECT_TRUE(IsJournalStream(fd_));
  EXPECT_FALSE(IsJournalStream(-1));
}

TEST_F(LogTest, RestoringStderrRecomputesTheMode) {
  CaptureAsJournal();
  ASSERT_TRUE(Logger::JournalMode());
  Logger::SetFd(-1);  // JOURNAL_STREAM still names the file, not fd 2
  EXPECT_EQ(Logger::JournalMode(), IsJournalStream(2));
  EXPECT_FALSE(Logger::JournalMode());
}

TEST_F(LogTest, DisabledLevelsWriteNothing) {
  CaptureAsJournal();
  ES_LOG_DEBUG("hidden");
  Logger::SetLevel(LogLevel::kOff);
  ES_LOG_ERROR("hidden too");
  EXPECT_TRUE(Written().empty());
}

}  // namespace
}  // namespace edgespool::platform
