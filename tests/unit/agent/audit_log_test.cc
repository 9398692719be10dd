// The audit log's sampling (per message, by seq) and its lines.
#include "agent/audit_log.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <string>

#include "platform/log.h"
#include "tests/support/test_env.h"

namespace edgespool::agent {
namespace {

TEST(AuditLogTest, SampleIsTheShareOfSeqsAndStableForASeq) {
  AuditLog quarter(true, 0.25);
  size_t in = 0;
  for (uint64_t seq = 1; seq <= 100000; ++seq) in += quarter.Sampled(seq) ? 1 : 0;
  EXPECT_NEAR(static_cast<double>(in) / 100000, 0.25, 0.01);
  for (uint64_t seq = 1; seq <= 1000; ++seq) EXPECT_EQ(quarter.Sampled(seq), quarter.Sampled(seq));
  AuditLog all(true, 1.0);
  for (uint64_t seq = 1; seq <= 1000; ++seq) EXPECT_TRUE(all.Sampled(seq));
}

TEST(AuditLogTest, WritesOneJsonLinePerNoteOnlyWhenEnabled) {
  testing::TempDir dir;
  std::string path = dir.File("log");
  int fd = ::open(path.c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0600);
  ASSERT_GE(fd, 0);
  platform::Logger::SetFd(fd);
  platform::Logger::SetFormat(platform::LogFormat::kJson);
  platform::Logger::SetLevel(platform::LogLevel::kError);  // audit lines ignore the level
  AuditLog(false, 1.0).Note("accepted", 1, "a/b");
  AuditLog on(true, 1.0);
  on.Note("accepted", 7, "a/b");
  on.Note("dead", 7, {}, "too large");
  platform::Logger::SetFd(-1);
  platform::Logger::SetFormat(platform::LogFormat::kText);
  platform::Logger::SetLevel(platform::LogLevel::kInfo);
  ::close(fd);
  std::string log = testing::ReadFile(path);
  EXPECT_EQ(log.find("\"seq\":\"1\""), std::string::npos) << log;
  EXPECT_NE(log.find("\"msg\":\"audit\",\"event\":\"accepted\",\"seq\":\"7\",\"topic\":\"a/b\"}"),
            std::string::npos)
      << log;
  EXPECT_NE(
      log.find("\"msg\":\"audit\",\"event\":\"dead\",\"seq\":\"7\",\"reason\":\"too large\"}"),
      std::string::npos)
      << log;
}

}  // namespace
}  // namespace edgespool::agent
