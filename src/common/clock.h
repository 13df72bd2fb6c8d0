// Time comes in through Clock so that timeouts and batching windows are tested without sleeping.
#pragma once

#include <cstdint>
#include <mutex>

namespace tierflow {

class Clock {
 public:
  virtual ~Clock() = default;
  // Microseconds since an arbitrary fixed origin; monotonic. Thread-safe.
  virtual int64_t NowMicros() const = 0;
  // Microseconds since the Unix epoch, for records shown to people. Thread-safe.
  virtual int64_t WallMicros() const = 0;
};

// The real clock: steady_clock for NowMicros, system_clock for WallMicros.
class SystemClock final : public Clock {
 public:
  int64_t NowMicros() const override;
  int64_t WallMicros() const override;
  static SystemClock* Default();
};

// A clock that moves only when told to. Thread-safe.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(int64_t start_micros = 1'000'000) : now_(start_micros) {}
  int64_t NowMicros() const override;
  int64_t WallMicros() const override;
  void Advance(int64_t micros);

 private:
  mutable std::mutex mu_;
  int64_t now_;
};

}  // namespace tierflow
