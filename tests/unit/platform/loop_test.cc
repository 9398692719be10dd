#include "platform/loop.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

namespace edgespool::platform {
namespace {

TEST(LoopTest, TimerFiresAndLoopClosesCleanly) {
  auto loop = Loop::Create();
  ASSERT_TRUE(loop.ok());
  int fired = 0;
  {
    TimerHandle timer(**loop);
    timer.Start(1, 0, [&] { ++fired; });
    (*loop)->Run();
  }
  EXPECT_EQ(fired, 1);
}

TEST(LoopTest, RepeatingTimerStopsFromItsOwnCallback) {
  auto loop = Loop::Create();
  ASSERT_TRUE(loop.ok());
  int fired = 0;
  TimerHandle timer(**loop);
  timer.Start(1, 1, [&] {
    if (++fired == 3) timer.Stop();
  });
  (*loop)->Run();
  EXPECT_EQ(fired, 3);
}

TEST(LoopTest, PostFromOtherThreadsRunsOnLoopThread) {
  auto loop = Loop::Create();
  ASSERT_TRUE(loop.ok());
  Loop& l = **loop;
  std::atomic<int> ran{0};
  bool all_on_loop = true;
  // Keep the loop alive until every post has arrived.
  TimerHandle keepalive(l);
  keepalive.Start(10000, 0, [] {});
  constexpr int kThreads = 4, kPerThread = 1000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kPerThread; ++i) {
        l.Post([&] {
          all_on_loop = all_on_loop && l.InLoopThread();
          if (++ran == kThreads * kPerThread) keepalive.Stop();
        });
      }
    });
  }
  l.Run();
  for (auto& t : threads) t.join();
  EXPECT_EQ(ran.load(), kThreads * kPerThread);
  EXPECT_TRUE(all_on_loop);
}

TEST(LoopTest, DeferDeleteReleasesOnLaterTurn) {
  auto loop = Loop::Create();
  ASSERT_TRUE(loop.ok());
  struct Tracked {
    explicit Tracked(bool* g) : gone(g) {}
    bool* gone;
    ~Tracked() { *gone = true; }
  };
  bool gone = false;
  (*loop)->DeferDelete(std::make_unique<Tracked>(&gone));
  EXPECT_FALSE(gone);
  TimerHandle t(**loop);
  t.Start(5, 0, [] {});
  (*loop)->Run();
  EXPECT_TRUE(gone);
}

TEST(StatusTest, CarriesCodeAndContext) {
  Status ok;
  EXPECT_TRUE(ok.ok());
  Status err = Status::IoError("EIO").Annotate("fsync journal.db-wal");
  EXPECT_EQ(err.code(), Code::kIoError);
  EXPECT_EQ(err.ToString(), "io_error: fsync journal.db-wal: EIO");
  Result<int> r = Status::NotFound("x");
  EXPECT_FALSE(r.ok());
  Result<int> v = 5;
  EXPECT_EQ(*v, 5);
}

}  // namespace
}  // namespace edgespool::platform
