#include "autoscaler/kpa.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace sluice::autoscaler {
namespace {

// Metrics come from outside: a NaN or infinite value counts as no load rather than poisoning the answer.
double finite_or_zero(double v) {
  return std::isfinite(v) ? v : 0.0;
}

std::int32_t saturate_int32(double v) {
  if (!(v > -2147483648.0)) return INT32_MIN;
  if (v > 2147483647.0) return INT32_MAX;
  return static_cast<std::int32_t>(v);
}

}  // namespace

DeciderState make_decider_state(const DeciderSpec& spec, std::int32_t ready_pods_at_construction,
                                SteadyTime now, Millis tick_interval) {
  DeciderState state;
  const std::int32_t ready = std::max<std::int32_t>(0, ready_pods_at_construction);
  if (ready > 1) state.panic_time = now;
  state.max_panic_pods = ready;
  if (spec.scale_down_delay.count() > 0) state.delay_window.emplace(spec.scale_down_delay, tick_interval);
  return state;
}

ScaleResult decide(const DeciderSpec& spec, DeciderState& state, const Observation& observed,
                   SteadyTime now) {
  const std::int32_t original_ready = std::max<std::int32_t>(0, observed.ready_pods);
  // Knative uses 1 when there are no ready pods, so that rates still allow a first step.
  const double ready = std::max(1.0, static_cast<double>(original_ready));
  const double target = spec.target_value > 0 ? spec.target_value : kTargetMin;

  const double max_scale_up = std::ceil(spec.max_scale_up_rate * ready);
  double max_scale_down = 0;
  if (spec.reachable && spec.max_scale_down_rate > 0)
    max_scale_down = std::floor(ready / spec.max_scale_down_rate);

  const double observed_stable = finite_or_zero(observed.observed_stable);
  const double observed_panic = finite_or_zero(observed.observed_panic);
  const double dspc = std::ceil(observed_stable / target);
  const double dppc = std::ceil(observed_panic / target);

  auto desired_stable = saturate_int32(std::min(std::max(dspc, max_scale_down), max_scale_up));
  auto desired_panic = saturate_int32(std::min(std::max(dppc, max_scale_down), max_scale_up));

  // Knative's activation scale: a non-zero answer is at least activation-scale.
  if (spec.activation_scale > 1) {
    if (dspc > 0 && spec.activation_scale > desired_stable) desired_stable = spec.activation_scale;
    if (dppc > 0 && spec.activation_scale > desired_panic) desired_panic = spec.activation_scale;
  }

  const bool over_panic_threshold = dppc / ready >= spec.panic_threshold;
  if (over_panic_threshold) {
    // Enter panic, or extend it while the panic window stays over the threshold.
    state.panic_time = now;
  } else if (state.panic_time && *state.panic_time + spec.stable_window < now) {
    // The surge has made its way into the stable window: leave panic.
    state.panic_time.reset();
    state.max_panic_pods = 0;
  }

  std::int32_t desired = desired_stable;
  if (state.panic_time) {
    // The stable window can exceed the panic one; provision for the larger. Never scale down in panic.
    desired = std::max(desired, desired_panic);
    state.max_panic_pods = std::max(state.max_panic_pods, desired);
    desired = state.max_panic_pods;
  }

  if (state.delay_window) {
    state.delay_window->record(now, desired);
    desired = state.delay_window->current();
  }

  double excess_burst_capacity = -1;
  if (spec.target_burst_capacity == 0) {
    excess_burst_capacity = 0;
  } else if (spec.target_burst_capacity > 0) {
    const double total_capacity = static_cast<double>(original_ready) * spec.total_value;
    excess_burst_capacity = std::floor(total_capacity - spec.target_burst_capacity - observed_panic);
  }

  return ScaleResult{desired, saturate_int32(excess_burst_capacity), true};
}

}  // namespace sluice::autoscaler
