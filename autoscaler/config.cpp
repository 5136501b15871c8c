#include "autoscaler/config.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <functional>
#include <sstream>
#include <utility>
#include <vector>

#include "core/duration.hpp"
#include "core/text.hpp"

namespace sluice::autoscaler {
namespace {

// Bounds from Knative's pkg/apis/autoscaling.
constexpr Millis kWindowMin = std::chrono::seconds(6);
constexpr Millis kWindowMax = std::chrono::hours(1);
constexpr double kPanicWindowPercentageMin = 1;
constexpr double kPanicWindowPercentageMax = 100;
constexpr double kPanicThresholdPercentageMin = 110;
constexpr double kPanicThresholdPercentageMax = 1000;

std::string format_number(double v) {
  std::ostringstream out;
  out << v;
  return out.str();
}

Result<double> parse_double(std::string_view key, std::string_view text) {
  double value = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || ec != std::errc() || ptr != end || !std::isfinite(value)) {
    return make_error(std::string(key), "must be a number, was " + quote(text));
  }
  return value;
}

Result<std::int32_t> parse_int32(std::string_view key, std::string_view text) {
  std::int32_t value = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || ec != std::errc() || ptr != end) {
    return make_error(std::string(key), "must be a whole number, was " + quote(text));
  }
  return value;
}

Result<bool> parse_bool(std::string_view key, std::string_view text) {
  if (text == "true" || text == "True" || text == "TRUE") return true;
  if (text == "false" || text == "False" || text == "FALSE") return false;
  return make_error(std::string(key), "must be true or false, was " + quote(text));
}

Result<Millis> parse_duration_value(std::string_view key, std::string_view text) {
  auto parsed = parse_go_duration(text);
  if (!parsed) return make_error(std::string(key), parsed.error().message);
  return parsed.value();
}

bool whole_seconds(Millis d) {
  return d.count() % 1000 == 0;
}

std::string format_duration(Millis d) {
  if (whole_seconds(d)) return std::to_string(d.count() / 1000) + "s";
  return std::to_string(d.count()) + "ms";
}

// Looks an annotation up under its canonical key or its legacy camelCase alias.
class AnnotationReader {
 public:
  explicit AnnotationReader(const std::map<std::string, std::string>& annotations)
      : annotations_(annotations) {}

  Result<std::optional<std::pair<std::string, std::string>>> get(std::string_view key,
                                                                 std::string_view alias = {}) const {
    auto canonical = annotations_.find(std::string(key));
    if (!alias.empty()) {
      auto legacy = annotations_.find(std::string(alias));
      if (legacy != annotations_.end()) {
        if (canonical != annotations_.end()) {
          return make_error(std::string(key),
                            "is also given as " + std::string(alias) + ": keep only " + std::string(key));
        }
        return std::optional<std::pair<std::string, std::string>>(std::in_place, std::string(alias),
                                                                  legacy->second);
      }
    }
    if (canonical == annotations_.end()) return std::optional<std::pair<std::string, std::string>>();
    return std::optional<std::pair<std::string, std::string>>(std::in_place, std::string(key),
                                                              canonical->second);
  }

 private:
  const std::map<std::string, std::string>& annotations_;
};

Status check_range(const std::string& key, double value, double lo, double hi, std::string_view text) {
  if (value < lo || value > hi) {
    return make_error(
        key, "must be in [" + format_number(lo) + ", " + format_number(hi) + "], was " + quote(text));
  }
  return ok();
}

}  // namespace

std::string_view to_string(ScalingMetric metric) {
  return metric == ScalingMetric::rps ? "rps" : "concurrency";
}

Status validate_config(const AutoscalerConfig& c) {
  if (c.scale_to_zero_grace_period.count() <= 0) {
    return make_error("scale-to-zero-grace-period",
                      "must be positive, was " + format_duration(c.scale_to_zero_grace_period));
  }
  if (c.scale_down_delay.count() < 0 || !whole_seconds(c.scale_down_delay)) {
    return make_error("scale-down-delay", "must be a non-negative whole number of seconds, was " +
                                              format_duration(c.scale_down_delay));
  }
  if (c.scale_to_zero_pod_retention_period.count() < 0) {
    return make_error("scale-to-zero-pod-retention-period", "cannot be negative");
  }
  if (c.target_burst_capacity < 0 && c.target_burst_capacity != -1) {
    return make_error("target-burst-capacity", "must be either non-negative or -1 (for unlimited), was " +
                                                   format_number(c.target_burst_capacity));
  }
  if (c.container_concurrency_target_fraction <= 0 || c.container_concurrency_target_fraction > 1) {
    return make_error(
        "container-concurrency-target-percentage",
        "must be in (0, 100], was " + format_number(c.container_concurrency_target_fraction * 100));
  }
  if (c.container_concurrency_target_fraction * c.container_concurrency_target_default < kTargetMin) {
    return make_error(
        "container-concurrency-target-default",
        "with container-concurrency-target-percentage yields a target below " + format_number(kTargetMin));
  }
  if (c.target_utilization <= 0 || c.target_utilization > 1) {
    return make_error("target-utilization", "must be in (0, 1], was " + format_number(c.target_utilization));
  }
  if (c.rps_target_default < kTargetMin) {
    return make_error(
        "requests-per-second-target-default",
        "must be at least " + format_number(kTargetMin) + ", was " + format_number(c.rps_target_default));
  }
  if (c.activator_capacity < 1) {
    return make_error("activator-capacity", "must be at least 1, was " + format_number(c.activator_capacity));
  }
  if (c.max_scale_up_rate <= 1.0) {
    return make_error("max-scale-up-rate",
                      "must be greater than 1.0, was " + format_number(c.max_scale_up_rate));
  }
  if (c.max_scale_down_rate <= 1.0) {
    return make_error("max-scale-down-rate",
                      "must be greater than 1.0, was " + format_number(c.max_scale_down_rate));
  }
  if (c.stable_window < kWindowMin || c.stable_window > kWindowMax || !whole_seconds(c.stable_window)) {
    return make_error("stable-window",
                      "must be whole seconds in [6s, 1h], was " + format_duration(c.stable_window));
  }
  if (c.panic_window_percentage < kPanicWindowPercentageMin ||
      c.panic_window_percentage > kPanicWindowPercentageMax) {
    return make_error("panic-window-percentage",
                      "must be in [1, 100], was " + format_number(c.panic_window_percentage));
  }
  if (c.panic_threshold_percentage < kPanicThresholdPercentageMin ||
      c.panic_threshold_percentage > kPanicThresholdPercentageMax) {
    return make_error("panic-threshold-percentage",
                      "must be in [110, 1000], was " + format_number(c.panic_threshold_percentage));
  }
  if (c.initial_scale < 0 || (c.initial_scale == 0 && !c.allow_zero_initial_scale)) {
    return make_error("initial-scale",
                      "must be at least 1 (or 0 when allow-zero-initial-scale is true), was " +
                          std::to_string(c.initial_scale));
  }
  if (c.max_scale_limit < 0) {
    return make_error("max-scale-limit", "must be at least 0, was " + std::to_string(c.max_scale_limit));
  }
  const std::int32_t min_max_scale = c.max_scale_limit > 0 ? 1 : 0;
  if (c.max_scale < min_max_scale || (c.max_scale_limit > 0 && c.max_scale > c.max_scale_limit)) {
    return make_error("max-scale", "must be in [" + std::to_string(min_max_scale) + ", max-scale-limit (" +
                                       std::to_string(c.max_scale_limit) + ")], was " +
                                       std::to_string(c.max_scale));
  }
  if (c.min_scale < 0)
    return make_error("min-scale", "must be at least 0, was " + std::to_string(c.min_scale));
  if (c.tick_interval < Millis(1000) || !whole_seconds(c.tick_interval)) {
    return make_error("tick-interval", "must be a whole number of seconds, at least 1s, was " +
                                           format_duration(c.tick_interval));
  }
  if (c.target_backlog_default <= 0) {
    return make_error("target-backlog-default",
                      "must be positive, was " + format_number(c.target_backlog_default));
  }
  if (c.startup_time_default.count() < 0) return make_error("startup-time-default", "cannot be negative");
  return ok();
}

Result<AutoscalerConfig> parse_autoscaler_config(const std::map<std::string, std::string>& data) {
  AutoscalerConfig c;
  using Setter = std::function<Status(const std::string&, const std::string&)>;
  auto as_double = [](double& field) -> Setter {
    return [&field](const std::string& k, const std::string& v) -> Status {
      auto parsed = parse_double(k, v);
      if (!parsed) return parsed.error();
      field = parsed.value();
      return ok();
    };
  };
  auto as_int = [](std::int32_t& field) -> Setter {
    return [&field](const std::string& k, const std::string& v) -> Status {
      auto parsed = parse_int32(k, v);
      if (!parsed) return parsed.error();
      field = parsed.value();
      return ok();
    };
  };
  auto as_bool = [](bool& field) -> Setter {
    return [&field](const std::string& k, const std::string& v) -> Status {
      auto parsed = parse_bool(k, v);
      if (!parsed) return parsed.error();
      field = parsed.value();
      return ok();
    };
  };
  auto as_duration = [](Millis& field) -> Setter {
    return [&field](const std::string& k, const std::string& v) -> Status {
      auto parsed = parse_duration_value(k, v);
      if (!parsed) return parsed.error();
      field = parsed.value();
      return ok();
    };
  };
  const std::map<std::string, Setter> setters = {
      {"enable-scale-to-zero", as_bool(c.enable_scale_to_zero)},
      {"allow-zero-initial-scale", as_bool(c.allow_zero_initial_scale)},
      {"max-scale-up-rate", as_double(c.max_scale_up_rate)},
      {"max-scale-down-rate", as_double(c.max_scale_down_rate)},
      {"container-concurrency-target-percentage", as_double(c.container_concurrency_target_fraction)},
      {"container-concurrency-target-default", as_double(c.container_concurrency_target_default)},
      {"target-utilization", as_double(c.target_utilization)},
      {"requests-per-second-target-default", as_double(c.rps_target_default)},
      {"target-burst-capacity", as_double(c.target_burst_capacity)},
      {"panic-window-percentage", as_double(c.panic_window_percentage)},
      {"activator-capacity", as_double(c.activator_capacity)},
      {"panic-threshold-percentage", as_double(c.panic_threshold_percentage)},
      {"initial-scale", as_int(c.initial_scale)},
      {"min-scale", as_int(c.min_scale)},
      {"max-scale", as_int(c.max_scale)},
      {"max-scale-limit", as_int(c.max_scale_limit)},
      {"stable-window", as_duration(c.stable_window)},
      {"scale-down-delay", as_duration(c.scale_down_delay)},
      {"scale-to-zero-grace-period", as_duration(c.scale_to_zero_grace_period)},
      {"scale-to-zero-pod-retention-period", as_duration(c.scale_to_zero_pod_retention_period)},
      {"tick-interval", as_duration(c.tick_interval)},
      {"target-backlog-default", as_double(c.target_backlog_default)},
      {"startup-time-default", as_duration(c.startup_time_default)},
  };
  for (const auto& [key, value] : data) {
    auto setter = setters.find(key);
    if (setter == setters.end()) {
      return make_error(key, "is not an autoscaler setting (see config-autoscaler keys, e.g. stable-window)");
    }
    if (auto st = setter->second(key, value); !st) return st.error();
  }
  // Knative allows the legacy fraction form (0, 1]; larger values are percentages.
  if (c.container_concurrency_target_fraction > 1.0) c.container_concurrency_target_fraction /= 100.0;
  if (auto st = validate_config(c); !st) return st.error();
  return c;
}

MetricTarget resolve_metric_target(ScalingMetric metric, std::int32_t container_concurrency,
                                   std::optional<double> target_annotation, std::optional<double> utilization,
                                   const AutoscalerConfig& config) {
  double total = 0;
  double tu = 0;
  if (metric == ScalingMetric::rps) {
    total = config.rps_target_default;
    tu = config.target_utilization;
  } else {
    total = container_concurrency > 0 ? static_cast<double>(container_concurrency)
                                      : config.container_concurrency_target_default;
    tu = config.container_concurrency_target_fraction;
  }
  if (target_annotation) {
    total = *target_annotation;
    // A concurrency target above the hard limit cannot be reached: Knative caps it.
    if (metric == ScalingMetric::concurrency && container_concurrency > 0) {
      total = std::min(*target_annotation, static_cast<double>(container_concurrency));
    }
  }
  if (utilization) tu = *utilization;
  return MetricTarget{std::max(kTargetMin, total * tu), total};
}

Millis panic_window_of(Millis stable_window, double panic_window_percentage) {
  const double ms = static_cast<double>(stable_window.count()) * panic_window_percentage / 100.0;
  // Go's Duration.Round(time.Second): half away from zero.
  auto seconds = static_cast<std::int64_t>(std::round(ms / 1000.0));
  return std::chrono::seconds(std::max<std::int64_t>(1, seconds));
}

Result<RevisionSpec> parse_revision_spec(const std::map<std::string, std::string>& annotation_map,
                                         std::int32_t container_concurrency, const AutoscalerConfig& config) {
  namespace a = annotations;
  AnnotationReader reader(annotation_map);
  RevisionSpec spec;
  if (container_concurrency < 0) {
    return make_error("spec.template.spec.containerConcurrency",
                      "must be at least 0 (0 means unlimited), was " + std::to_string(container_concurrency));
  }
  spec.container_concurrency = container_concurrency;

#define SLUICE_TRY_GET(var, key, alias)  \
  auto var##_r = reader.get(key, alias); \
  if (!var##_r) return var##_r.error();  \
  const auto& var = var##_r.value();

  SLUICE_TRY_GET(klass, a::kClass, "")
  if (klass && klass->second != "kpa.autoscaling.knative.dev") {
    return make_error(klass->first,
                      "only kpa.autoscaling.knative.dev is supported, was " + quote(klass->second));
  }

  SLUICE_TRY_GET(metric, a::kMetric, "")
  if (metric) {
    if (metric->second == "concurrency") {
      spec.metric = ScalingMetric::concurrency;
    } else if (metric->second == "rps") {
      spec.metric = ScalingMetric::rps;
    } else {
      return make_error(metric->first, "must be concurrency or rps, was " + quote(metric->second));
    }
  }

  std::optional<double> target;
  SLUICE_TRY_GET(target_a, a::kTarget, "")
  if (target_a) {
    auto v = parse_double(target_a->first, target_a->second);
    if (!v) return v.error();
    if (v.value() < kTargetMin) {
      return make_error(target_a->first,
                        "must be at least " + format_number(kTargetMin) + ", was " + quote(target_a->second));
    }
    target = v.value();
  }

  std::optional<double> utilization;
  SLUICE_TRY_GET(tu_a, a::kTargetUtilization, "autoscaling.knative.dev/targetUtilizationPercentage")
  if (tu_a) {
    auto v = parse_double(tu_a->first, tu_a->second);
    if (!v) return v.error();
    if (auto st = check_range(tu_a->first, v.value(), 1, 100, tu_a->second); !st) return st.error();
    utilization = v.value() / 100.0;
  }
  const MetricTarget resolved =
      resolve_metric_target(spec.metric, container_concurrency, target, utilization, config);
  spec.target_value = resolved.target;
  spec.total_value = resolved.total;

  spec.target_burst_capacity = config.target_burst_capacity;
  SLUICE_TRY_GET(tbc_a, a::kTargetBurstCapacity, "autoscaling.knative.dev/targetBurstCapacity")
  if (tbc_a) {
    auto v = parse_double(tbc_a->first, tbc_a->second);
    if (!v) return v.error();
    if (v.value() < 0 && v.value() != -1) {
      return make_error(tbc_a->first, "must be at least 0, or -1 for unlimited, was " + quote(tbc_a->second));
    }
    spec.target_burst_capacity = v.value();
  }

  spec.stable_window = config.stable_window;
  SLUICE_TRY_GET(window_a, a::kWindow, "")
  if (window_a) {
    auto v = parse_duration_value(window_a->first, window_a->second);
    if (!v) return v.error();
    if (v.value() < kWindowMin || v.value() > kWindowMax || !whole_seconds(v.value())) {
      return make_error(window_a->first, "must be whole seconds in [6s, 1h], was " + quote(window_a->second));
    }
    spec.stable_window = v.value();
  }

  spec.panic_window_percentage = config.panic_window_percentage;
  SLUICE_TRY_GET(pwp_a, a::kPanicWindowPercentage, "autoscaling.knative.dev/panicWindowPercentage")
  if (pwp_a) {
    auto v = parse_double(pwp_a->first, pwp_a->second);
    if (!v) return v.error();
    if (auto st = check_range(pwp_a->first, v.value(), kPanicWindowPercentageMin, kPanicWindowPercentageMax,
                              pwp_a->second);
        !st) {
      return st.error();
    }
    spec.panic_window_percentage = v.value();
  }
  spec.panic_window = panic_window_of(spec.stable_window, spec.panic_window_percentage);

  spec.panic_threshold_percentage = config.panic_threshold_percentage;
  SLUICE_TRY_GET(ptp_a, a::kPanicThresholdPercentage, "autoscaling.knative.dev/panicThresholdPercentage")
  if (ptp_a) {
    auto v = parse_double(ptp_a->first, ptp_a->second);
    if (!v) return v.error();
    if (auto st = check_range(ptp_a->first, v.value(), kPanicThresholdPercentageMin,
                              kPanicThresholdPercentageMax, ptp_a->second);
        !st) {
      return st.error();
    }
    spec.panic_threshold_percentage = v.value();
  }

  auto read_scale = [&](std::string_view key, std::string_view alias,
                        std::int32_t& field) -> Result<std::optional<std::string>> {
    auto got = reader.get(key, alias);
    if (!got) return got.error();
    if (!got.value()) return std::optional<std::string>();
    const auto& [name, text] = *got.value();
    auto v = parse_int32(name, text);
    if (!v) return v.error();
    field = v.value();
    return std::optional<std::string>(name);
  };

  spec.min_scale = config.min_scale;
  auto min_name = read_scale(a::kMinScale, "autoscaling.knative.dev/minScale", spec.min_scale);
  if (!min_name) return min_name.error();
  if (spec.min_scale < 0) {
    return make_error(min_name.value().value_or("min-scale"),
                      "must be at least 0, was " + std::to_string(spec.min_scale));
  }

  spec.max_scale = config.max_scale;
  auto max_name = read_scale(a::kMaxScale, "autoscaling.knative.dev/maxScale", spec.max_scale);
  if (!max_name) return max_name.error();
  if (max_name.value()) {
    const std::int32_t lo = config.max_scale_limit > 0 ? 1 : 0;
    if (spec.max_scale < lo || (config.max_scale_limit > 0 && spec.max_scale > config.max_scale_limit)) {
      std::string range = config.max_scale_limit > 0
                              ? "[1, " + std::to_string(config.max_scale_limit) + "] (max-scale-limit)"
                              : "at least 0 (0 means unbounded)";
      return make_error(*max_name.value(), "must be " + range + ", was " + std::to_string(spec.max_scale));
    }
  }
  if (spec.max_scale != 0 && spec.min_scale > spec.max_scale) {
    return make_error(min_name.value().value_or(std::string(a::kMinScale)),
                      "is " + std::to_string(spec.min_scale) + ", greater than max-scale " +
                          std::to_string(spec.max_scale));
  }

  spec.initial_scale = config.initial_scale;
  auto initial_name =
      read_scale(a::kInitialScale, "autoscaling.knative.dev/initialScale", spec.initial_scale);
  if (!initial_name) return initial_name.error();
  if (initial_name.value() &&
      (spec.initial_scale < 0 || (spec.initial_scale == 0 && !config.allow_zero_initial_scale))) {
    return make_error(*initial_name.value(),
                      "must be at least 1 (0 only when the server allows zero initial scale), was " +
                          std::to_string(spec.initial_scale));
  }

  spec.activation_scale = 1;
  auto activation_name =
      read_scale(a::kActivationScale, "autoscaling.knative.dev/activationScale", spec.activation_scale);
  if (!activation_name) return activation_name.error();
  if (spec.activation_scale < 1) {
    return make_error(activation_name.value().value_or(std::string(a::kActivationScale)),
                      "must be at least 1, was " + std::to_string(spec.activation_scale));
  }
  if (spec.max_scale != 0 && spec.activation_scale > spec.max_scale) {
    return make_error(activation_name.value().value_or(std::string(a::kActivationScale)),
                      "is " + std::to_string(spec.activation_scale) + ", greater than max-scale " +
                          std::to_string(spec.max_scale));
  }

  spec.scale_down_delay = config.scale_down_delay;
  SLUICE_TRY_GET(sdd_a, a::kScaleDownDelay, "")
  if (sdd_a) {
    auto v = parse_duration_value(sdd_a->first, sdd_a->second);
    if (!v) return v.error();
    if (v.value() > kWindowMax || !whole_seconds(v.value())) {
      return make_error(sdd_a->first, "must be whole seconds in [0s, 1h], was " + quote(sdd_a->second));
    }
    spec.scale_down_delay = v.value();
  }

  spec.scale_to_zero_pod_retention = config.scale_to_zero_pod_retention_period;
  SLUICE_TRY_GET(ret_a, a::kScaleToZeroPodRetention, "")
  if (ret_a) {
    auto v = parse_duration_value(ret_a->first, ret_a->second);
    if (!v) return v.error();
    if (v.value() > kWindowMax) {
      return make_error(ret_a->first, "must be in [0s, 1h], was " + quote(ret_a->second));
    }
    spec.scale_to_zero_pod_retention = v.value();
  }

  spec.target_backlog = config.target_backlog_default;
  SLUICE_TRY_GET(tb_a, a::kTargetBacklog, "")
  if (tb_a) {
    auto v = parse_double(tb_a->first, tb_a->second);
    if (!v) return v.error();
    if (v.value() <= 0)
      return make_error(tb_a->first, "must be a positive number of events, was " + quote(tb_a->second));
    spec.target_backlog = v.value();
  }

  SLUICE_TRY_GET(ab_a, a::kActivationBacklog, "")
  if (ab_a) {
    auto v = parse_double(ab_a->first, ab_a->second);
    if (!v) return v.error();
    if (v.value() < 0) return make_error(ab_a->first, "must be at least 0, was " + quote(ab_a->second));
    spec.activation_backlog = v.value();
  }

  SLUICE_TRY_GET(pred_a, a::kPredictive, "")
  if (pred_a) {
    const auto& v = pred_a->second;
    if (v == "enable" || v == "enabled" || v == "true") {
      spec.predictive = true;
    } else if (v == "disable" || v == "disabled" || v == "false") {
      spec.predictive = false;
    } else {
      return make_error(pred_a->first, "must be enable or disable, was " + quote(v));
    }
  }

  spec.startup_time = config.startup_time_default;
  SLUICE_TRY_GET(st_a, a::kStartupTime, "")
  if (st_a) {
    auto v = parse_duration_value(st_a->first, st_a->second);
    if (!v) return v.error();
    if (v.value() > std::chrono::hours(24)) {
      return make_error(st_a->first, "must be at most 24h, was " + quote(st_a->second));
    }
    spec.startup_time = v.value();
  }
#undef SLUICE_TRY_GET
  return spec;
}

DeciderSpec make_decider_spec(const RevisionSpec& spec, const AutoscalerConfig& config, bool reachable) {
  DeciderSpec d;
  d.scaling_metric = spec.metric;
  d.target_value = spec.target_value;
  d.total_value = spec.total_value;
  d.target_burst_capacity = spec.target_burst_capacity;
  d.panic_threshold = spec.panic_threshold_percentage / 100.0;
  d.max_scale_up_rate = config.max_scale_up_rate;
  d.max_scale_down_rate = config.max_scale_down_rate;
  d.activator_capacity = config.activator_capacity;
  d.stable_window = spec.stable_window;
  d.scale_down_delay = spec.scale_down_delay;
  d.reachable = reachable;
  d.activation_scale = spec.activation_scale;
  return d;
}

}  // namespace sluice::autoscaler
