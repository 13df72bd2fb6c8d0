// The scheduler thread: batch-drains posted closures, runs due timers, then the turn-end hook.
#include "coordinator/event_loop.h"

#include <pthread.h>

#include <chrono>

namespace tierflow::coordinator {

EventLoop::EventLoop(Clock* clock) : clock_(clock) {}

EventLoop::~EventLoop() { Stop(); }

void EventLoop::Start() {
  thread_ = std::thread([this] { Run(); });
}

void EventLoop::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  std::lock_guard<std::mutex> lock(mu_);
  stopped_ = true;
  posted_.clear();
}

void EventLoop::Post(Fn fn) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopped_) return;
    posted_.push_back(std::move(fn));
  }
  cv_.notify_one();
}

void EventLoop::Poke() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    poked_ = true;
  }
  cv_.notify_one();
}

EventLoop::TimerId EventLoop::RunAt(int64_t deadline_us, Fn fn) {
  TimerId id = next_timer_++;
  timers_.emplace(std::make_pair(deadline_us, id), std::move(fn));
  timer_deadlines_.emplace(id, deadline_us);
  return id;
}

void EventLoop::CancelTimer(TimerId id) {
  auto it = timer_deadlines_.find(id);
  if (it == timer_deadlines_.end()) return;
  timers_.erase({it->second, id});
  timer_deadlines_.erase(it);
}

void EventLoop::SetTurnEndHook(Fn hook) { turn_end_ = std::move(hook); }

int64_t EventLoop::NextTimerDelay() const {
  if (timers_.empty()) return -1;
  int64_t delay = timers_.begin()->first.first - clock_->NowMicros();
  return delay < 0 ? 0 : delay;
}

bool EventLoop::RunDueTimers() {
  bool ran = false;
  int64_t now = clock_->NowMicros();
  while (!timers_.empty() && timers_.begin()->first.first <= now) {
    auto it = timers_.begin();
    Fn fn = std::move(it->second);
    timer_deadlines_.erase(it->first.second);
    timers_.erase(it);
    fn();
    ran = true;
  }
  return ran;
}

void EventLoop::Run() {
  thread_id_ = std::this_thread::get_id();
  pthread_setname_np(pthread_self(), "tf-loop");
  std::deque<Fn> batch;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      for (;;) {
        if (!posted_.empty() || poked_) break;
        int64_t delay = NextTimerDelay();
        if (delay == 0) break;
        if (stop_) break;
        if (delay < 0) {
          cv_.wait(lock);
        } else {
          cv_.wait_for(lock, std::chrono::microseconds(delay));
        }
      }
      if (stop_ && posted_.empty()) {
        // Run what is due one last time, then leave.
        lock.unlock();
        RunDueTimers();
        if (turn_end_) turn_end_();
        return;
      }
      poked_ = false;
      batch.swap(posted_);
    }
    for (Fn& fn : batch) fn();
    batch.clear();
    RunDueTimers();
    ++turns_;
    if (turn_end_) turn_end_();
  }
}

}  // namespace tierflow::coordinator
