#pragma once
// Scale to zero and the bounds applied after the decider, after Knative's KPA reconciler
// (pkg/reconciler/autoscaling/kpa/scaler.go handleScaleToZero and applyBounds):
//   - a revision the decider wants at 0 stays at 1 until it has been active for at least the
//     stable window (it then turns inactive: the activator takes over its traffic), and then
//     until it has been inactive for max(scale-to-zero-grace-period, pod retention period);
//   - with scale to zero disabled server-wide, 0 becomes 1;
//   - any non-zero answer makes the revision active again at once (scale from zero);
//   - min-scale (raised to initial-scale until the revision first reaches it) and max-scale bound
//     the result; max-scale 0 means unbounded.

#include <cstdint>

#include "core/clock.hpp"

namespace sluice::autoscaler {

struct ScaleToZeroSettings {
  bool enabled = true;
  Millis stable_window = std::chrono::seconds(60);
  Millis grace_period = std::chrono::seconds(30);
  Millis pod_retention{0};
};

/// Knative's PodAutoscaler Active condition with its transition time.
struct ActivityState {
  bool active = true;
  SteadyTime since{};
};

/// Applies the scale-to-zero rules to a desired count. Updates `state`. Never throws.
std::int32_t apply_scale_to_zero(ActivityState& state, const ScaleToZeroSettings& settings,
                                 std::int32_t desired, SteadyTime now);

/// Knative's applyBounds: at least `min_scale`, at most `max_scale` unless it is 0.
std::int32_t apply_bounds(std::int32_t desired, std::int32_t min_scale, std::int32_t max_scale);

}  // namespace sluice::autoscaler
