#pragma once
// Metric windows of the autoscaler, matching Knative's pkg/autoscaler/aggregation:
//   - BucketWindow is TimedFloat64Buckets: a ring of per-granularity buckets whose WindowAverage is
//     the revision-wide average over the stable (or panic) window;
//   - MaxTimeWindow is max.TimeWindow: the largest value recorded over a trailing duration, used to
//     delay scale-down decisions (`scale-down-delay`).
//
// Neither class locks: the owner (the Autoscaler service, the simulator) serialises access.
// Neither allocates after construction, so both are safe on the tick path.

#include <chrono>
#include <cstdint>
#include <vector>

#include "core/clock.hpp"

namespace sluice::autoscaler {

/// Integer division rounding toward negative infinity (times before the epoch land in earlier buckets).
inline std::int64_t floor_div(std::int64_t a, std::int64_t b) {
  std::int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

/// Per-bucket sums over a trailing window (Knative's TimedFloat64Buckets).
///
/// Contract, as Knative's:
///   - `record(now, v)` adds v to the bucket of `now` truncated to the granularity. Values from
///     several sources in the same bucket add up (Knative sums every pod's stat of one second).
///   - A record a whole window (or more) after the last one resets the window: the average is
///     then taken over the partial window that has data since.
///   - A record older than the newest one but still inside the window lands in its bucket;
///     one a whole window older (or more) is ignored.
///   - `window_average(now)` divides the sum of valid buckets by the number of buckets between
///     the first write and now (at most the window); buckets after the last write are not counted.
///     When nothing was written for a whole window it returns 0. The result is floored to
///     6 decimal places (Knative's roundToNDigits(6, …)).
class BucketWindow {
 public:
  /// `window` and `granularity` must be positive; the bucket count is ceil(window/granularity).
  explicit BucketWindow(Millis window, Millis granularity = std::chrono::seconds(1));

  void record(SteadyTime now, double value);
  double window_average(SteadyTime now) const;
  /// True when nothing has been written during the last window (Knative's IsEmpty: the metric
  /// client answers ErrNoData then).
  bool is_empty(SteadyTime now) const;

  Millis window() const { return window_; }
  Millis granularity() const { return granularity_; }

 private:
  std::int64_t bucket_of(SteadyTime t) const;
  std::size_t slot(std::int64_t bucket) const;

  std::vector<double> buckets_;
  Millis window_;
  Millis granularity_;
  bool written_ = false;
  std::int64_t first_write_ = 0;  // bucket numbers (time / granularity, floored)
  std::int64_t last_write_ = 0;
  double window_total_ = 0;
};

/// The maximum of values recorded over a trailing duration, bucketed by `granularity`
/// (Knative's max.TimeWindow, an ascending-minima deque). Several records in the same bucket keep
/// the largest. `current()` is 0 before the first record.
class MaxTimeWindow {
 public:
  /// The window keeps ceil(duration/granularity) buckets; both must be positive.
  MaxTimeWindow(Millis duration, Millis granularity);

  void record(SteadyTime now, std::int32_t value);
  std::int32_t current() const;

 private:
  struct Entry {
    std::int32_t value = 0;
    std::int64_t index = 0;
  };
  std::size_t at(std::size_t i) const { return i % maxima_.size(); }

  std::vector<Entry> maxima_;
  std::size_t first_ = 0;
  std::size_t length_ = 0;
  Millis granularity_;
};

}  // namespace sluice::autoscaler
