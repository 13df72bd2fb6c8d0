// The coordinator's single scheduler thread: a queue of posted closures and a set of timers
// driven by the injected Clock. Everything that touches coordinator state runs here, so the
// state itself needs no locks (the Redis model).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "common/clock.h"

namespace tierflow::coordinator {

class EventLoop {
 public:
  using Fn = std::function<void()>;
  using TimerId = uint64_t;

  // `clock` must outlive the loop. With a ManualClock, time moves only when the test advances
  // it; the test then calls Poke() so the loop re-checks its timers.
  explicit EventLoop(Clock* clock);
  ~EventLoop();  // Stop()
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // Starts the loop thread. Call once.
  void Start();
  // Runs what was posted before the call, then joins the thread. Not from the loop thread. Closures
  // posted after Stop are dropped (a late journal callback during shutdown has nobody left to
  // answer). Idempotent.
  void Stop();

  // Thread-safe, never blocks on the loop. Closures run in posting order, on the loop thread.
  void Post(Fn fn);
  // Wakes the loop so it re-reads the clock (after ManualClock::Advance). Thread-safe.
  void Poke();

  // Loop thread only. Runs `fn` once clock->NowMicros() >= deadline_us.
  TimerId RunAt(int64_t deadline_us, Fn fn);
  // Loop thread only. Cancelling a timer that already ran (or 0) does nothing.
  void CancelTimer(TimerId id);

  // Loop thread only (or before Start). Runs after each turn: a turn drains every closure
  // posted so far and every due timer, so the hook sees a whole batch of work at once (the
  // coordinator uses it to dispatch and to group journal records into one append).
  void SetTurnEndHook(Fn hook);

  bool InLoopThread() const { return std::this_thread::get_id() == thread_id_.load(); }
  Clock* clock() const { return clock_; }
  // Number of turns run so far; for tests and benchmarks.
  uint64_t turns() const { return turns_; }

 private:
  void Run();
  bool RunDueTimers();  // true when at least one ran
  // Microseconds until the next timer, or -1 when there is none.
  int64_t NextTimerDelay() const;

  Clock* const clock_;
  std::thread thread_;
  std::atomic<std::thread::id> thread_id_{};

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Fn> posted_;  // guarded by mu_
  bool stop_ = false;      // guarded by mu_
  bool stopped_ = false;   // guarded by mu_: the thread has exited; Post drops
  bool poked_ = false;     // guarded by mu_

  // Loop thread only.
  std::map<std::pair<int64_t, TimerId>, Fn> timers_;
  std::unordered_map<TimerId, int64_t> timer_deadlines_;
  TimerId next_timer_ = 1;
  Fn turn_end_;
  uint64_t turns_ = 0;
};

}  // namespace tierflow::coordinator
