#pragma once
// Autoscaler settings: the server-wide config (Knative's config-autoscaler ConfigMap, same keys and
// defaults) and the per-revision spec resolved from `autoscaling.knative.dev/*` annotations (plus
// Sluice's `sluice.dev/*` additions), validated as Knative's annotation validation does. Every
// error names the annotation or key and says what would be right.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "autoscaler/kpa.hpp"
#include "core/clock.hpp"
#include "core/result.hpp"

namespace sluice::autoscaler {

/// Annotation keys. The camelCase spellings Knative still accepts (minScale, maxScale, …) are
/// accepted as aliases; giving both spellings of one key is an error.
namespace annotations {
inline constexpr std::string_view kClass = "autoscaling.knative.dev/class";
inline constexpr std::string_view kMetric = "autoscaling.knative.dev/metric";
inline constexpr std::string_view kTarget = "autoscaling.knative.dev/target";
inline constexpr std::string_view kTargetUtilization =
    "autoscaling.knative.dev/target-utilization-percentage";
inline constexpr std::string_view kTargetBurstCapacity = "autoscaling.knative.dev/target-burst-capacity";
inline constexpr std::string_view kWindow = "autoscaling.knative.dev/window";
inline constexpr std::string_view kPanicWindowPercentage = "autoscaling.knative.dev/panic-window-percentage";
inline constexpr std::string_view kPanicThresholdPercentage =
    "autoscaling.knative.dev/panic-threshold-percentage";
inline constexpr std::string_view kMinScale = "autoscaling.knative.dev/min-scale";
inline constexpr std::string_view kMaxScale = "autoscaling.knative.dev/max-scale";
inline constexpr std::string_view kInitialScale = "autoscaling.knative.dev/initial-scale";
inline constexpr std::string_view kActivationScale = "autoscaling.knative.dev/activation-scale";
inline constexpr std::string_view kScaleDownDelay = "autoscaling.knative.dev/scale-down-delay";
inline constexpr std::string_view kScaleToZeroPodRetention =
    "autoscaling.knative.dev/scale-to-zero-pod-retention-period";
// Sluice's own.
inline constexpr std::string_view kTargetBacklog = "sluice.dev/target-backlog";
inline constexpr std::string_view kActivationBacklog = "sluice.dev/activation-backlog";
inline constexpr std::string_view kPredictive = "sluice.dev/predictive";
inline constexpr std::string_view kStartupTime = "sluice.dev/startup-time";
}  // namespace annotations

/// Server-wide settings with Knative's defaults (config-autoscaler), plus Sluice's queue-depth and
/// predictive defaults. Durations are whole milliseconds.
struct AutoscalerConfig {
  bool enable_scale_to_zero = true;
  double container_concurrency_target_fraction = 0.7;  // "container-concurrency-target-percentage" 70
  double container_concurrency_target_default = 100;
  double target_utilization = 0.7;  // applies to rps
  double rps_target_default = 200;
  double max_scale_up_rate = 1000;
  double max_scale_down_rate = 2;
  double target_burst_capacity = 211;
  double panic_window_percentage = 10;
  double panic_threshold_percentage = 200;
  double activator_capacity = 100;
  Millis stable_window = std::chrono::seconds(60);
  Millis scale_to_zero_grace_period = std::chrono::seconds(30);
  Millis scale_to_zero_pod_retention_period{0};
  Millis scale_down_delay{0};
  Millis tick_interval = std::chrono::seconds(2);
  std::int32_t initial_scale = 1;
  bool allow_zero_initial_scale = false;
  std::int32_t min_scale = 0;
  std::int32_t max_scale = 0;  // 0: unbounded
  std::int32_t max_scale_limit = 0;
  // Sluice additions.
  double target_backlog_default = 100;
  Millis startup_time_default = std::chrono::seconds(30);
};

/// Reads config-autoscaler keys ("stable-window": "60s", "max-scale-up-rate": "1000", …, and
/// Sluice's "target-backlog-default", "startup-time-default", "tick-interval") over the defaults,
/// then validates. As Knative, "container-concurrency-target-percentage" above 1 is a percentage.
/// Unknown keys are errors (they are usually typos).
Result<AutoscalerConfig> parse_autoscaler_config(const std::map<std::string, std::string>& data);

/// Knative's validation of config-autoscaler; the error's subject is the offending key.
Status validate_config(const AutoscalerConfig& config);

/// One revision's autoscaling settings, every default resolved.
struct RevisionSpec {
  ScalingMetric metric = ScalingMetric::concurrency;
  std::int32_t container_concurrency = 0;  // 0: unlimited
  double target_value = 70;                // per-pod target after utilization
  double total_value = 100;                // per-pod target before utilization
  double target_burst_capacity = 211;      // -1: unlimited
  double panic_threshold_percentage = 200;
  double panic_window_percentage = 10;
  Millis stable_window = std::chrono::seconds(60);
  Millis panic_window = std::chrono::seconds(6);
  Millis scale_down_delay{0};
  Millis scale_to_zero_pod_retention{0};
  std::int32_t min_scale = 0;
  std::int32_t max_scale = 0;  // 0: unbounded
  std::int32_t initial_scale = 1;
  std::int32_t activation_scale = 1;
  double target_backlog = 100;
  double activation_backlog = 0;
  bool predictive = false;
  Millis startup_time = std::chrono::seconds(30);
};

/// Resolves a revision's spec from its annotations and `containerConcurrency`. Errors name the
/// annotation, quote the value and give the accepted range.
Result<RevisionSpec> parse_revision_spec(const std::map<std::string, std::string>& annotations,
                                         std::int32_t container_concurrency, const AutoscalerConfig& config);

/// Knative's ResolveMetricTarget: `total` is the per-pod capacity (containerConcurrency, the
/// `target` annotation capped by containerConcurrency, or the default), `target` = max(0.01,
/// total * utilization). `utilization` is a fraction (0.75), from the annotation when present.
struct MetricTarget {
  double target = 0;
  double total = 0;
};
MetricTarget resolve_metric_target(ScalingMetric metric, std::int32_t container_concurrency,
                                   std::optional<double> target_annotation, std::optional<double> utilization,
                                   const AutoscalerConfig& config);

/// Knative's panic window: stable * percentage / 100 rounded to the second, at least one second.
Millis panic_window_of(Millis stable_window, double panic_window_percentage);

/// The decider's spec for a revision (Knative's MakeDecider).
DeciderSpec make_decider_spec(const RevisionSpec& spec, const AutoscalerConfig& config,
                              bool reachable = true);

/// "concurrency" | "rps".
std::string_view to_string(ScalingMetric metric);

}  // namespace sluice::autoscaler
