// EventLoop: posting order, batching, timers under a ManualClock, stop semantics.
#include "coordinator/event_loop.h"

#include <gtest/gtest.h>

#include <future>
#include <vector>

namespace tierflow::coordinator {
namespace {

void Sync(EventLoop& loop) {
  std::promise<void> done;
  loop.Post([&] { loop.Post([&] { done.set_value(); }); });
  done.get_future().wait();
}

TEST(EventLoopTest, RunsPostedClosuresInOrderOnItsThread) {
  ManualClock clock;
  EventLoop loop(&clock);
  loop.Start();
  std::vector<int> seen;
  bool on_loop = true;
  for (int i = 0; i < 100; ++i) {
    loop.Post([&, i] {
      seen.push_back(i);
      on_loop = on_loop && loop.InLoopThread();
    });
  }
  Sync(loop);
  ASSERT_EQ(seen.size(), 100u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(seen[i], i);
  EXPECT_TRUE(on_loop);
  EXPECT_FALSE(loop.InLoopThread());
}

TEST(EventLoopTest, TimersFireWhenTheManualClockPassesThem) {
  ManualClock clock(1000);
  EventLoop loop(&clock);
  std::vector<int> fired;
  int turn_ends = 0;
  loop.SetTurnEndHook([&] { ++turn_ends; });
  loop.Start();
  EventLoop::TimerId cancelled = 0;
  loop.Post([&] {
    loop.RunAt(3000, [&] { fired.push_back(3); });
    loop.RunAt(2000, [&] { fired.push_back(2); });
    cancelled = loop.RunAt(2500, [&] { fired.push_back(25); });
  });
  Sync(loop);
  loop.Post([&] { loop.CancelTimer(cancelled); });
  Sync(loop);
  EXPECT_TRUE(fired.empty());
  clock.Advance(1500);  // now 2500
  loop.Poke();
  Sync(loop);
  EXPECT_EQ(fired, std::vector<int>({2}));
  clock.Advance(10'000);
  loop.Poke();
  Sync(loop);
  EXPECT_EQ(fired, std::vector<int>({2, 3}));
  EXPECT_GT(turn_ends, 0);
}

TEST(EventLoopTest, StopRunsWhatWasPostedThenDropsLatePosts) {
  ManualClock clock;
  EventLoop loop(&clock);
  loop.Start();
  int ran = 0;
  for (int i = 0; i < 10; ++i) loop.Post([&] { ++ran; });
  loop.Stop();
  EXPECT_EQ(ran, 10);
  loop.Post([&] { ++ran; });
  loop.Stop();
  EXPECT_EQ(ran, 10);
}

TEST(EventLoopTest, RealClockTimerFires) {
  EventLoop loop(SystemClock::Default());
  loop.Start();
  std::promise<void> fired;
  loop.Post(
      [&] { loop.RunAt(SystemClock::Default()->NowMicros() + 2000, [&] { fired.set_value(); }); });
  EXPECT_EQ(fired.get_future().wait_for(std::chrono::seconds(10)), std::future_status::ready);
}

}  // namespace
}  // namespace tierflow::coordinator
