#pragma once
// The simulator behind `sluice autoscaler simulate`: runs the decider on a recorded input and
// returns one step per decision. Two input forms:
//
// 1. A scenario object of ../shared/reference/kpa/kpa_vectors.json's shape: "spec" (a DeciderSpec:
//    scaling_metric, target_value, total_value, target_burst_capacity, panic_threshold (a factor),
//    max_scale_up_rate, max_scale_down_rate, activator_capacity, stable_window_s,
//    scale_down_delay_s, reachable, activation_scale), "ready_pods_at_construction",
//    "construction_pod_count_error", "state_override_before_first_step" ({panic_time_t_s,
//    max_panic_pods} or null) and "steps" ({t_s, ready_pods, observed_stable, observed_panic,
//    optional metric_error, pod_count_error, spec_update_before_step}). The observed values are
//    revision-wide window averages given directly; "expect" fields are ignored. One step per entry.
//
// 2. A per-second series of observed load, run through the real windows and the Autoscaler
//    service (queue depth, scale to zero, bounds included):
//      {"annotations": {"autoscaling.knative.dev/target": "10", ...},   optional
//       "container_concurrency": 0,                                     optional
//       "config": {"stable-window": "60s", ...},                         optional config-autoscaler keys
//       "concurrency": [1, 5, 20, ...],       revision-wide, one value per second (or "rps": [...])
//       "backlog": [0, 0, 300, ...],          optional, one value per second
//       "startup_s": 0}                       optional: seconds before a requested replica is ready
//    or just a JSON array of per-second concurrency. Second i is recorded at t = i; a decision is
//    made every tick interval (t = 0, 2, 4, ... by default). Ready replicas follow the decisions:
//    a scale-up is ready startup_s after it was decided, a scale-down at once.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/result.hpp"

namespace sluice::autoscaler {

struct SimulationStep {
  double t_s = 0;
  bool scale_valid = false;
  std::int32_t desired_pod_count = 0;
  std::int32_t excess_burst_capacity = 0;
  bool in_panic = false;
  /// When panic mode started or was last extended, in the input's seconds (scenarios only; not
  /// printed).
  std::optional<double> panic_time_t_s;
};

/// {"t_s":…,"scale_valid":…,"desired_pod_count":…,"excess_burst_capacity":…,"in_panic":…}
std::string to_json_line(const SimulationStep& step);

/// Form 1. Errors name the field that is missing or malformed.
Result<std::vector<SimulationStep>> simulate_scenario(const nlohmann::json& scenario);

/// Form 2. Errors name the field or annotation that is wrong.
Result<std::vector<SimulationStep>> simulate_series(const nlohmann::json& series);

/// Parses `text` and picks the form: an object with "steps" is a scenario, an object with
/// "concurrency" or "rps" or a bare array is a series.
Result<std::vector<SimulationStep>> simulate(std::string_view text);

}  // namespace sluice::autoscaler
