#include "autoscaler/window.hpp"

#include <algorithm>
#include <cmath>

namespace sluice::autoscaler {
namespace {

// Knative's roundToNDigits(6, f): floors to 6 decimal places.
double floor_6_digits(double f) {
  constexpr double kScale = 1e6;
  return std::floor(f * kScale) / kScale;
}

}  // namespace

BucketWindow::BucketWindow(Millis window, Millis granularity)
    : buckets_(static_cast<std::size_t>(std::max<std::int64_t>(
          1, (window.count() + granularity.count() - 1) / std::max<std::int64_t>(1, granularity.count())))),
      window_(window),
      granularity_(granularity.count() > 0 ? granularity : Millis(1000)) {}

std::int64_t BucketWindow::bucket_of(SteadyTime t) const {
  const auto ms = std::chrono::duration_cast<Millis>(t.time_since_epoch()).count();
  return floor_div(ms, granularity_.count());
}

std::size_t BucketWindow::slot(std::int64_t bucket) const {
  const auto n = static_cast<std::int64_t>(buckets_.size());
  return static_cast<std::size_t>(((bucket % n) + n) % n);
}

void BucketWindow::record(SteadyTime now, double value) {
  const std::int64_t bucket = bucket_of(now);
  if (!written_ || bucket != last_write_) {
    // Knative ignores a value whose bucket is a whole window (or more) older than the last write.
    if (written_ && (bucket - last_write_) * granularity_.count() + window_.count() <= 0) return;
    if (!written_ || first_write_ > bucket) first_write_ = bucket;
    if (!written_ || bucket > last_write_) {
      if (!written_ || (bucket - last_write_) * granularity_.count() >= window_.count()) {
        // No write for a whole window: start a fresh partial window.
        first_write_ = bucket;
        std::fill(buckets_.begin(), buckets_.end(), 0.0);
        window_total_ = 0;
      } else {
        // Buckets skipped since the last write hold stale values from a previous lap: clear them.
        for (std::int64_t i = last_write_ + 1; i <= bucket; ++i) {
          auto& b = buckets_[slot(i)];
          window_total_ -= b;
          b = 0;
        }
      }
      last_write_ = bucket;
      written_ = true;
    }
  }
  buckets_[slot(bucket)] += value;
  window_total_ += value;
}

double BucketWindow::window_average(SteadyTime now) const {
  if (!written_) return 0;
  const std::int64_t now_bucket = bucket_of(now);
  const std::int64_t behind = now_bucket - last_write_;
  const auto n = static_cast<std::int64_t>(buckets_.size());
  const std::int64_t since_first = last_write_ - first_write_ + 1;  // inclusive
  if (behind <= 0) {
    return floor_6_digits(window_total_ / static_cast<double>(std::min(since_first, n)));
  }
  if (behind * granularity_.count() < window_.count()) {
    // No data for part of the window: drop the buckets that fell out and average over the rest.
    double total = window_total_;
    for (std::int64_t i = last_write_ + 1; i <= now_bucket; ++i) total -= buckets_[slot(i)];
    const std::int64_t valid = std::min(since_first, n - behind);
    return floor_6_digits(total / static_cast<double>(valid));
  }
  return 0;
}

bool BucketWindow::is_empty(SteadyTime now) const {
  if (!written_) return true;
  return (bucket_of(now) - last_write_) * granularity_.count() > window_.count();
}

MaxTimeWindow::MaxTimeWindow(Millis duration, Millis granularity)
    : maxima_(static_cast<std::size_t>(std::max<std::int64_t>(
          1, (duration.count() + granularity.count() - 1) / std::max<std::int64_t>(1, granularity.count())))),
      granularity_(granularity.count() > 0 ? granularity : Millis(1000)) {}

void MaxTimeWindow::record(SteadyTime now, std::int32_t value) {
  // Knative indexes by whole Unix seconds divided by the granularity in seconds.
  const auto seconds = floor_div(std::chrono::duration_cast<Millis>(now.time_since_epoch()).count(), 1000);
  const std::int64_t g = std::max<std::int64_t>(1, granularity_.count() / 1000);
  const std::int64_t index = floor_div(seconds, g);
  const auto size = static_cast<std::int64_t>(maxima_.size());

  // An entry not larger than the new value can never be the maximum again.
  while (length_ > 0 && value >= maxima_[at(first_ + length_ - 1)].value) --length_;
  // Entries a whole window old leave from the front.
  while (length_ > 0 && index - maxima_[first_].index >= size) {
    --length_;
    first_ = at(first_ + 1);
  }
  // Two records in one bucket keep the larger.
  if (length_ > 0) {
    const Entry& last = maxima_[at(first_ + length_ - 1)];
    if (last.index == index) {
      value = std::max(value, last.value);
      --length_;
    }
  }
  maxima_[at(first_ + length_)] = Entry{value, index};
  ++length_;
}

std::int32_t MaxTimeWindow::current() const {
  return length_ == 0 ? 0 : maxima_[first_].value;
}

}  // namespace sluice::autoscaler
