#pragma once
// Queue-depth scaling: the backlog of the triggers that deliver to a revision (events between a
// cursor and the log end, or Kafka consumer lag) as a second signal beside concurrency, as KEDA's
// Kafka lag scaler does:
//   desired = ceil(backlog / target-backlog) (`sluice.dev/target-backlog`, default 100);
//   activation: from zero only when backlog > activation threshold (`sluice.dev/activation-backlog`,
//     default 0, KEDA's activationLagThreshold: strictly greater), while a running revision with
//     any backlog keeps at least one replica;
//   the answer is clamped by the same max-scale-up rate as the KPA's, and combined with the KPA's
//   answer by max, before scale-to-zero and min/max bounds.

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace sluice::autoscaler {

/// Replicas wanted for `backlog` events. `currently_scaled`: the revision has replicas (ready or
/// wanted) now, so the activation threshold does not apply. Returns 0 for no backlog, a
/// non-positive target, or a backlog at or below the activation threshold from zero.
inline std::int32_t queue_depth_desired(double backlog, double target_backlog, double activation_backlog,
                                        bool currently_scaled) {
  if (!(backlog > 0) || !(target_backlog > 0)) return 0;
  if (!currently_scaled && !(backlog > activation_backlog)) return 0;
  const double pods = std::ceil(backlog / target_backlog);
  return pods >= 2147483647.0 ? INT32_MAX : static_cast<std::int32_t>(pods);
}

/// The KPA's scale-up limit applied to another signal: at most ceil(rate * max(1, ready)).
inline std::int32_t limit_scale_up(std::int32_t desired, double max_scale_up_rate, std::int32_t ready_pods) {
  const double limit = std::ceil(max_scale_up_rate * std::max(1.0, static_cast<double>(ready_pods)));
  if (static_cast<double>(desired) > limit)
    return limit >= 2147483647.0 ? INT32_MAX : static_cast<std::int32_t>(limit);
  return desired;
}

}  // namespace sluice::autoscaler
