#pragma once
// A Prometheus metrics registry rendered in the text exposition format 0.0.4
// (https://prometheus.io/docs/instrumenting/exposition_formats/).
//
// Naming conventions (https://prometheus.io/docs/practices/naming/), enforced where they can be:
//   - every metric is prefixed `sluice_` and names its component: `sluice_broker_events_appended_total`;
//   - counters end in `_total` (checked); gauges and histograms never do (checked);
//   - a unit suffix in base units: `_seconds`, `_bytes` (histograms of latency use latency_buckets());
//   - label names say what the value is (`broker`, `trigger`, `agent`, `revision`, `code`), and label
//     values stay bounded: never an event id or a URL with a query.
//
// Registration (counter/gauge/histogram/remove) takes a mutex and is meant for set-up paths: look the
// metric up once and keep the reference. Updates (inc/set/add/observe) are lock-free relaxed atomics.

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace sluice {

/// Label name/value pairs. Order does not matter: a series is identified by its labels sorted by name.
using Labels = std::vector<std::pair<std::string, std::string>>;

/// A monotonically increasing value. Thread-safe, lock-free.
class Counter {
 public:
  /// Adds `v`, which must be >= 0 (negative or NaN values are ignored: counters never go down).
  void inc(double v = 1) {
    if (v >= 0) value_.fetch_add(v, std::memory_order_relaxed);
  }
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

/// A value that goes up and down. Thread-safe, lock-free.
class Gauge {
 public:
  void set(double v) { value_.store(v, std::memory_order_relaxed); }
  void add(double v) { value_.fetch_add(v, std::memory_order_relaxed); }
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

/// Counts observations into buckets with fixed upper bounds (`le`), plus their sum. Thread-safe, lock-free.
/// Rendered buckets are cumulative and end with `le="+Inf"`, whose count equals `_count`.
class Histogram {
 public:
  /// `bounds` must be sorted, strictly increasing and finite (the registry checks; +Inf is implicit).
  explicit Histogram(std::vector<double> bounds);

  /// Records one observation. NaN is ignored.
  void observe(double v);
  /// Number of observations so far.
  std::uint64_t count() const;
  /// Sum of the observations so far.
  double sum() const { return sum_.load(std::memory_order_relaxed); }
  /// The finite upper bounds.
  const std::vector<double>& bounds() const { return bounds_; }
  /// Cumulative counts, one per bound plus a final one for +Inf (so back() == total count).
  std::vector<std::uint64_t> cumulative_counts() const;
  /// The q-quantile (0 ≤ q ≤ 1) estimated as Prometheus' histogram_quantile() does: linear
  /// interpolation inside the bucket that holds it, the highest finite bound when it falls in +Inf.
  /// 0 when nothing was observed.
  double quantile(double q) const;

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> buckets_;  // non-cumulative; bounds_.size() + 1 slots
  std::atomic<double> sum_{0};
};

/// Prometheus-style latency buckets in seconds, from 100µs to 60s:
/// 0.0001 0.00025 0.0005 0.001 0.0025 0.005 0.01 0.025 0.05 0.1 0.25 0.5 1 2.5 5 10 30 60.
std::vector<double> latency_buckets();

/// Metric families by name, each with its series by label set.
///
/// Errors in registration are programming errors and throw std::invalid_argument: an invalid metric or
/// label name, a counter whose name lacks `_total` (or a gauge/histogram that has it), the same name
/// registered with another type, a histogram name registered again with other buckets, `le` as a
/// histogram label, or unsorted buckets. Registering an existing (name, labels) returns the same object;
/// the first `help` given for a family is kept.
///
/// Returned references stay valid (stable addresses) until remove() for that series or the registry's
/// destruction.
class MetricsRegistry {
 public:
  MetricsRegistry();
  ~MetricsRegistry();
  MetricsRegistry(const MetricsRegistry&) = delete;
  MetricsRegistry& operator=(const MetricsRegistry&) = delete;

  /// The process-wide registry, served on /metrics.
  static MetricsRegistry& global();

  Counter& counter(std::string name, std::string help, Labels labels = {});
  Gauge& gauge(std::string name, std::string help, Labels labels = {});
  /// `buckets`: finite upper bounds in increasing order (a trailing +Inf is accepted and dropped).
  Histogram& histogram(std::string name, std::string help, std::vector<double> buckets, Labels labels = {});

  /// Removes one series (for example when a trigger is deleted); no-op if absent. References to it
  /// become dangling: the owner of the series must drop them first. A family left without series
  /// disappears from render() and may be registered again with another type.
  void remove(const std::string& name, const Labels& labels);

  /// Takes every series that has the label `label`=`value` out of render() (a deleted broker's series,
  /// for example) without freeing them: references to them stay valid until the registry's destruction,
  /// so code still holding one (a publish in flight, a per-thread cache) is safe. Registering the same
  /// series again makes a new one, from zero. Bumps generation().
  void retire(const std::string& label, const std::string& value);

  /// Changes with every retire(): a cache of series references drops its entries when it changes, so
  /// that it does not go on counting into retired series.
  std::uint64_t generation() const { return generation_.load(std::memory_order_acquire); }

  /// The text exposition format 0.0.4: per family `# HELP` and `# TYPE` once, families sorted by name,
  /// series sorted by labels, label values and help escaped (`\\`, `\"`, `\n`).
  /// Content-Type: "text/plain; version=0.0.4; charset=utf-8".
  std::string render() const;

  static constexpr const char* kContentType = "text/plain; version=0.0.4; charset=utf-8";

 private:
  enum class Type { Counter, Gauge, Histogram };
  struct Series;
  struct Family;

  static const char* type_name(Type type);

  Series& find_or_add(std::string name, std::string help, Type type, Labels labels,
                      const std::vector<double>* buckets);

  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<Family>> families_;
  std::vector<std::unique_ptr<Series>> retired_;  // kept alive, never rendered
  std::atomic<std::uint64_t> generation_{0};
};

}  // namespace sluice
