#pragma once
// The KPA decider: Knative's pkg/autoscaler/scaling/autoscaler.go Scale(), as a pure function of
// (spec, observed metrics, ready pods, now) with its state in a small struct.
//
//   desired stable/panic pods = ceil(observed / target), each clamped to
//     [floor(ready / max-scale-down-rate) (only when reachable), ceil(max-scale-up-rate * ready)]
//     where ready = max(1, ready pods);
//   activation-scale lifts a non-zero answer to at least activation-scale;
//   panic starts when ceil(panic / target) / ready >= panic threshold, is extended while over it,
//     and ends a full stable window after the last time it was over it; in panic the answer is
//     max(stable, panic) and never decreases (max panic pods);
//   scale-down-delay holds the maximum answer of the last delay window (bucketed by the tick);
//   excess burst capacity = floor(ready pods * total - target-burst-capacity - observed panic),
//     0 when target-burst-capacity is 0, -1 when it is -1 (unlimited: activator always in path).

#include <cstdint>
#include <optional>

#include "autoscaler/window.hpp"
#include "core/clock.hpp"

namespace sluice::autoscaler {

/// The smallest per-replica target (Knative's autoscaling.TargetMin).
inline constexpr double kTargetMin = 0.01;

enum class ScalingMetric { concurrency, rps };

/// Knative's DeciderSpec: everything Scale() reads. Values are per pod unless named total.
struct DeciderSpec {
  ScalingMetric scaling_metric = ScalingMetric::concurrency;
  double target_value = 70;  // per-pod target after utilization (TargetValue)
  double total_value = 100;  // per-pod capacity before utilization (TotalValue), for EBC
  double target_burst_capacity = 211;
  double panic_threshold = 2.0;  // a factor: 200% == 2.0
  double max_scale_up_rate = 1000;
  double max_scale_down_rate = 2;
  double activator_capacity = 100;  // carried for the activator; Scale() does not read it
  Millis stable_window = std::chrono::seconds(60);
  Millis scale_down_delay{0};
  bool reachable = true;  // false: the revision takes no traffic, scale-down is not rate limited
  std::int32_t activation_scale = 1;
};

/// What Scale() returns. `scale_valid == false` means "no decision" (Knative's invalidSR {0,0,false}):
/// keep the current scale.
struct ScaleResult {
  std::int32_t desired_pod_count = 0;
  std::int32_t excess_burst_capacity = 0;
  bool scale_valid = false;
};

/// Observed input of one decision. The observed values are revision-wide totals (the sum over
/// pods) averaged over the stable and the panic window, not per-pod values.
struct Observation {
  std::int32_t ready_pods = 0;
  double observed_stable = 0;
  double observed_panic = 0;
};

/// The decider's mutable state (Knative's autoscaler struct minus its clients).
struct DeciderState {
  std::optional<SteadyTime> panic_time;  // set while in panic mode
  std::int32_t max_panic_pods = 0;
  std::optional<MaxTimeWindow> delay_window;  // present when scale-down-delay > 0

  bool in_panic() const { return panic_time.has_value(); }
};

/// Knative ticks every 2 s; the scale-down delay window is bucketed by the tick.
inline constexpr Millis kDefaultTickInterval = std::chrono::seconds(2);

/// State of a new decider (Knative's newAutoscaler): with more than one ready pod it starts in
/// panic mode at `now` with max panic pods = ready pods, so that a restart of the autoscaler, which
/// loses metric history, does not scale a busy revision down.
DeciderState make_decider_state(const DeciderSpec& spec, std::int32_t ready_pods_at_construction,
                                SteadyTime now, Millis tick_interval = kDefaultTickInterval);

/// One decision (Knative's Scale()). Updates `state` (panic mode, delay window). Never throws,
/// never allocates. A non-positive target is treated as the smallest legal target (0.01).
ScaleResult decide(const DeciderSpec& spec, DeciderState& state, const Observation& observed, SteadyTime now);

/// A decider with its spec and state together, for callers that keep one per revision.
class KpaDecider {
 public:
  KpaDecider(DeciderSpec spec, std::int32_t ready_pods_at_construction, SteadyTime now,
             Millis tick_interval = kDefaultTickInterval)
      : spec_(spec), state_(make_decider_state(spec_, ready_pods_at_construction, now, tick_interval)) {}

  /// Replaces the spec (Knative's Update()). As in Knative, the delay window made at construction
  /// is kept: a changed scale-down-delay takes effect for new deciders.
  void update(const DeciderSpec& spec) { spec_ = spec; }
  ScaleResult scale(const Observation& observed, SteadyTime now) {
    return decide(spec_, state_, observed, now);
  }

  const DeciderSpec& spec() const { return spec_; }
  DeciderState& state() { return state_; }
  const DeciderState& state() const { return state_; }

 private:
  DeciderSpec spec_;
  DeciderState state_;
};

}  // namespace sluice::autoscaler
