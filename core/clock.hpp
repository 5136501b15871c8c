#pragma once
// Time as a seam: components take a Clock& so that tests run on manual time (see STYLE.md).

#include <atomic>
#include <chrono>
#include <mutex>

namespace sluice {

using SteadyTime = std::chrono::steady_clock::time_point;
using WallTime = std::chrono::system_clock::time_point;
using Millis = std::chrono::milliseconds;

class Clock {
 public:
  virtual ~Clock() = default;
  /// Monotonic time for intervals, windows, timeouts and backoff.
  virtual SteadyTime now() const = 0;
  /// Wall-clock time for timestamps that leave the process (CloudEvent `time`, arrival time).
  virtual WallTime wall() const = 0;
};

class RealClock final : public Clock {
 public:
  SteadyTime now() const override { return std::chrono::steady_clock::now(); }
  WallTime wall() const override { return std::chrono::system_clock::now(); }
  /// The process-wide real clock.
  static RealClock& instance() {
    static RealClock clock;
    return clock;
  }
};

/// Time that moves only when a test says so. Thread-safe.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(SteadyTime start = SteadyTime{} + std::chrono::hours(1),
                       WallTime wall_start = WallTime{} + std::chrono::hours(24 * 365 * 50))
      : steady_(start), wall_(wall_start) {}

  SteadyTime now() const override {
    std::lock_guard lock(mu_);
    return steady_;
  }
  WallTime wall() const override {
    std::lock_guard lock(mu_);
    return wall_;
  }
  template <class Rep, class Period>
  void advance(std::chrono::duration<Rep, Period> d) {
    std::lock_guard lock(mu_);
    steady_ += std::chrono::duration_cast<SteadyTime::duration>(d);
    wall_ += std::chrono::duration_cast<WallTime::duration>(d);
  }
  /// Moves the wall clock alone, as an NTP step or `date -s` does; steady time stays where it is.
  template <class Rep, class Period>
  void step_wall(std::chrono::duration<Rep, Period> d) {
    std::lock_guard lock(mu_);
    wall_ += std::chrono::duration_cast<WallTime::duration>(d);
  }
  void set(SteadyTime t) {
    std::lock_guard lock(mu_);
    wall_ += std::chrono::duration_cast<WallTime::duration>(t - steady_);
    steady_ = t;
  }

 private:
  mutable std::mutex mu_;
  SteadyTime steady_;
  WallTime wall_;
};

}  // namespace sluice
