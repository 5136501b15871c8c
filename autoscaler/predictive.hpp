#pragma once
// Predictive scaling (beyond Knative): learns when a revision is busy from its own history and
// scales up ahead of recurring peaks by the replica startup time.
//
// The model keeps two periodic profiles of demand (revision-wide concurrency or requests per
// second), one over a day and one over a week, each split into slots (10 minutes by default). When
// a slot of wall-clock time ends, its peak demand is folded into the matching slot of both
// profiles as an exponentially weighted average. A slot is trusted once it has seen
// `min_observations` occurrences; the weekly profile wins where it is trusted (weekday and weekend
// differ), the daily one otherwise. Wall-clock slots are in UTC.
//
// The forecast for [now, now + startup time] is the largest trusted slot value in that range, so
// replicas are ready when a peak starts and kept through it. The Autoscaler uses
// max(reactive answer, ceil(forecast / target)): prediction never lowers the reactive answer.
// The model serialises to a small JSON document so that it survives restarts.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.hpp"
#include "core/result.hpp"

namespace sluice::autoscaler {

struct PredictiveOptions {
  Millis slot = std::chrono::minutes(10);  // must divide a day
  double smoothing = 0.5;                  // weight of the newest occurrence, in (0, 1]
  std::uint32_t min_observations = 2;      // occurrences of a slot before it is used
};

class PredictiveModel {
 public:
  /// Invalid options (a slot that does not divide a day, smoothing outside (0, 1]) fall back to
  /// the defaults.
  explicit PredictiveModel(PredictiveOptions options = {});

  /// Feeds the demand seen at `wall`. Call it on every tick; the peak of each slot is what is
  /// learnt. Going back in time starts a new slot without folding the old one twice.
  void observe(WallTime wall, double demand);

  /// The predicted peak demand over [from, to] (at most a week is looked at); nullopt when no slot
  /// in the range has enough history.
  std::optional<double> forecast(WallTime from, WallTime to) const;

  /// Replicas to have now for the predicted demand up to `lead` ahead: ceil(forecast / target),
  /// 0 without a forecast or with a non-positive target.
  std::int32_t desired_pods(WallTime now, Millis lead, double target_value) const;

  /// JSON document ("format": "sluice.predictive/v1") with options, both profiles and the slot in
  /// progress.
  std::string to_json() const;
  static Result<PredictiveModel> from_json(std::string_view text);

  /// Writes atomically (temporary file and rename); loads what save wrote. Not for the tick path.
  Status save(const std::string& path) const;
  static Result<PredictiveModel> load(const std::string& path);

  const PredictiveOptions& options() const { return options_; }

 private:
  // 8 bytes a slot: a weekly profile of 10-minute slots is 8 KiB per revision.
  struct Slot {
    float value = 0;
    std::uint32_t count = 0;
  };
  void fold(std::int64_t absolute_slot, double peak);
  std::optional<double> slot_forecast(std::int64_t absolute_slot) const;
  std::int64_t absolute_slot_of(WallTime t) const;

  PredictiveOptions options_;
  std::vector<Slot> daily_;
  std::vector<Slot> weekly_;
  bool has_current_ = false;
  std::int64_t current_slot_ = 0;
  double current_peak_ = 0;
};

}  // namespace sluice::autoscaler
