// RLIMIT_NOFILE raising against the real kernel. Each case runs in a forked
// child (gtest death-test machinery), so lowering limits there, hard ones
// included, never touches the test process.
#include "platform/process_limits.h"

#include <gtest/gtest.h>
#include <sys/resource.h>

#include <cstdio>
#include <cstdlib>

namespace edgespool::platform {
namespace {

// In the child: sets soft:hard, or exits 2 if even that is refused.
void SetLimits(rlim_t soft, rlim_t hard) {
  struct rlimit rl {
    soft, hard
  };
  if (::setrlimit(RLIMIT_NOFILE, &rl) != 0) std::exit(2);
}

// In the child: exits 1 with a message unless the kernel reports soft:hard.
void ExpectKernel(uint64_t soft, uint64_t hard) {
  struct rlimit rl;
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur != soft || rl.rlim_max != hard) {
    std::fprintf(stderr, "kernel has %llu:%llu, want %llu:%llu\n",
                 static_cast<unsigned long long>(rl.rlim_cur),
                 static_cast<unsigned long long>(rl.rlim_max),
                 static_cast<unsigned long long>(soft), static_cast<unsigned long long>(hard));
    std::exit(1);
  }
}

void ExpectResult(const Result<FileLimit>& r, uint64_t soft, uint64_t hard) {
  if (!r.ok() || r->soft != soft || r->hard != hard) {
    std::fprintf(stderr, "RaiseFileLimit: %s %llu:%llu, want %llu:%llu\n",
                 r.ok() ? "ok" : r.status().ToString().c_str(),
                 static_cast<unsigned long long>(r.ok() ? r->soft : 0),
                 static_cast<unsigned long long>(r.ok() ? r->hard : 0),
                 static_cast<unsigned long long>(soft), static_cast<unsigned long long>(hard));
    std::exit(1);
  }
}

class ProcessLimits : public ::testing::Test {
 protected:
  void SetUp() override {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    auto now = GetFileLimit();
    ASSERT_TRUE(now.ok()) << now.status().ToString();
    hard_ = now->hard;
    if (hard_ < 4096) GTEST_SKIP() << "hard RLIMIT_NOFILE " << hard_ << " < 4096";
    if (hard_ == kUnlimited) hard_ = 1 << 20;  // children set a finite hard limit
  }
  uint64_t hard_ = 0;
};

TEST_F(ProcessLimits, GetReadsTheKernel) {
  struct rlimit rl;
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &rl), 0);
  auto r = GetFileLimit();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->soft, rl.rlim_cur == RLIM_INFINITY ? kUnlimited : rl.rlim_cur);
  EXPECT_EQ(r->hard, rl.rlim_max == RLIM_INFINITY ? kUnlimited : rl.rlim_max);
}

TEST_F(ProcessLimits, RaisesSoftToWhatIsWanted) {
  EXPECT_EXIT(
      {
        SetLimits(1024, hard_);
        ExpectResult(RaiseFileLimit(3000), 3000, hard_);
        ExpectKernel(3000, hard_);
        std::exit(0);
      },
      ::testing::ExitedWithCode(0), "");
}

TEST_F(ProcessLimits, NeverLowersSoft) {
  EXPECT_EXIT(
      {
        SetLimits(2048, hard_);
        ExpectResult(RaiseFileLimit(100), 2048, hard_);
        ExpectResult(RaiseFileLimit(2048), 2048, hard_);
        ExpectKernel(2048, hard_);
        std::exit(0);
      },
      ::testing::ExitedWithCode(0), "");
}

TEST_F(ProcessLimits, CapsAtTheHardLimit) {
  EXPECT_EXIT(
      {
        SetLimits(1024, 2048);  // lowering hard needs no privilege
        ExpectResult(RaiseFileLimit(10064), 2048, 2048);
        ExpectKernel(2048, 2048);
        ExpectResult(RaiseFileLimit(kUnlimited), 2048, 2048);
        std::exit(0);
      },
      ::testing::ExitedWithCode(0), "");
}

TEST_F(ProcessLimits, AlreadyAtHardIsNoError) {
  EXPECT_EXIT(
      {
        SetLimits(1500, 1500);
        ExpectResult(RaiseFileLimit(10064), 1500, 1500);
        std::exit(0);
      },
      ::testing::ExitedWithCode(0), "");
}

}  // namespace
}  // namespace edgespool::platform
