// Clock implementations.
#include "common/clock.h"

#include <chrono>

namespace tierflow {

int64_t SystemClock::NowMicros() const {
  using namespace std::chrono;
  return duration_cast<microseconds>(steady_clock::now().time_since_epoch()).count();
}

int64_t SystemClock::WallMicros() const {
  using namespace std::chrono;
  return duration_cast<microseconds>(system_clock::now().time_since_epoch()).count();
}

SystemClock* SystemClock::Default() {
  static SystemClock clock;
  return &clock;
}

int64_t ManualClock::NowMicros() const {
  std::lock_guard<std::mutex> lock(mu_);
  return now_;
}

int64_t ManualClock::WallMicros() const { return NowMicros(); }

void ManualClock::Advance(int64_t micros) {
  std::lock_guard<std::mutex> lock(mu_);
  now_ += micros;
}

}  // namespace tierflow
