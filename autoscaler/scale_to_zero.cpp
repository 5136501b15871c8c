#include "autoscaler/scale_to_zero.hpp"

#include <algorithm>

namespace sluice::autoscaler {

std::int32_t apply_scale_to_zero(ActivityState& state, const ScaleToZeroSettings& settings,
                                 std::int32_t desired, SteadyTime now) {
  if (desired != 0) {
    if (!state.active) state = ActivityState{true, now};
    return desired;
  }
  if (!settings.enabled) return 1;
  if (state.active) {
    // Knative marks the PodAutoscaler inactive only after it has been active for a stable window,
    // and keeps one replica while the activator takes over the traffic.
    if (now - state.since >= settings.stable_window) state = ActivityState{false, now};
    return 1;
  }
  // Backed by the activator for the grace period, and the last pod kept for its retention period.
  const Millis wait = std::max(settings.grace_period, settings.pod_retention);
  return now - state.since >= wait ? 0 : 1;
}

std::int32_t apply_bounds(std::int32_t desired, std::int32_t min_scale, std::int32_t max_scale) {
  if (desired < min_scale) return min_scale;
  if (max_scale != 0 && desired > max_scale) return max_scale;
  return desired;
}

}  // namespace sluice::autoscaler
