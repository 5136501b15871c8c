#include "autoscaler/simulate.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <sstream>

#include "autoscaler/autoscaler.hpp"
#include "autoscaler/kpa.hpp"

namespace sluice::autoscaler {
namespace {

using nlohmann::json;

SteadyTime at_seconds(double t_s) {
  return SteadyTime{} + std::chrono::duration_cast<SteadyTime::duration>(std::chrono::duration<double>(t_s));
}

Result<double> number_field(const json& obj, const std::string& where, const std::string& key,
                            std::optional<double> fallback = std::nullopt) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) {
    if (fallback) return *fallback;
    return make_error(where + "." + key, "is required");
  }
  if (!it->is_number()) return make_error(where + "." + key, "must be a number");
  return it->get<double>();
}

Result<bool> bool_field(const json& obj, const std::string& where, const std::string& key, bool fallback) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return fallback;
  if (!it->is_boolean()) return make_error(where + "." + key, "must be true or false");
  return it->get<bool>();
}

Result<DeciderSpec> parse_decider_spec(const json& j, const std::string& where) {
  if (!j.is_object()) return make_error(where, "must be an object");
  DeciderSpec s;
  auto metric = j.find("scaling_metric");
  if (metric != j.end() && !metric->is_null()) {
    if (!metric->is_string())
      return make_error(where + ".scaling_metric", "must be \"concurrency\" or \"rps\"");
    const auto m = metric->get<std::string>();
    if (m == "rps") {
      s.scaling_metric = ScalingMetric::rps;
    } else if (m == "concurrency") {
      s.scaling_metric = ScalingMetric::concurrency;
    } else {
      return make_error(where + ".scaling_metric", "must be \"concurrency\" or \"rps\", was \"" + m + "\"");
    }
  }
#define SLUICE_NUMBER(field, key, fallback)         \
  {                                                 \
    auto v = number_field(j, where, key, fallback); \
    if (!v) return v.error();                       \
    field = v.value();                              \
  }
  SLUICE_NUMBER(s.target_value, "target_value", std::nullopt)
  SLUICE_NUMBER(s.total_value, "total_value", 0.0)
  SLUICE_NUMBER(s.target_burst_capacity, "target_burst_capacity", 0.0)
  SLUICE_NUMBER(s.panic_threshold, "panic_threshold", 2.0)
  SLUICE_NUMBER(s.max_scale_up_rate, "max_scale_up_rate", 1000.0)
  SLUICE_NUMBER(s.max_scale_down_rate, "max_scale_down_rate", 2.0)
  SLUICE_NUMBER(s.activator_capacity, "activator_capacity", 100.0)
  double stable_s = 60;
  double delay_s = 0;
  double activation = 1;
  SLUICE_NUMBER(stable_s, "stable_window_s", 60.0)
  SLUICE_NUMBER(delay_s, "scale_down_delay_s", 0.0)
  SLUICE_NUMBER(activation, "activation_scale", 1.0)
#undef SLUICE_NUMBER
  s.stable_window = std::chrono::duration_cast<Millis>(std::chrono::duration<double>(stable_s));
  s.scale_down_delay = std::chrono::duration_cast<Millis>(std::chrono::duration<double>(delay_s));
  s.activation_scale = static_cast<std::int32_t>(activation);
  auto reachable = bool_field(j, where, "reachable", true);
  if (!reachable) return reachable.error();
  s.reachable = reachable.value();
  return s;
}

std::string format_seconds(double t) {
  std::ostringstream out;
  out.precision(15);
  out << t;
  return out.str();
}

Result<std::vector<double>> series_field(const json& doc, const std::string& key) {
  std::vector<double> out;
  auto it = doc.find(key);
  if (it == doc.end() || it->is_null()) return out;
  if (!it->is_array()) return make_error(key, "must be an array of numbers, one per second");
  out.reserve(it->size());
  for (std::size_t i = 0; i < it->size(); ++i) {
    const auto& v = (*it)[i];
    if (!v.is_number()) return make_error(key + "[" + std::to_string(i) + "]", "must be a number");
    out.push_back(v.get<double>());
  }
  return out;
}

Result<std::map<std::string, std::string>> string_map(const json& doc, const std::string& key) {
  std::map<std::string, std::string> out;
  auto it = doc.find(key);
  if (it == doc.end() || it->is_null()) return out;
  if (!it->is_object()) return make_error(key, "must be an object of strings");
  for (const auto& [k, v] : it->items()) {
    if (v.is_string()) {
      out[k] = v.get<std::string>();
    } else if (v.is_number() || v.is_boolean()) {
      out[k] = v.dump();  // annotations are strings; accept 10 for "10"
    } else {
      return make_error(key + "." + k, "must be a string");
    }
  }
  return out;
}

}  // namespace

std::string to_json_line(const SimulationStep& s) {
  std::string line = "{\"t_s\":" + format_seconds(s.t_s);
  line += ",\"scale_valid\":";
  line += s.scale_valid ? "true" : "false";
  line += ",\"desired_pod_count\":" + std::to_string(s.desired_pod_count);
  line += ",\"excess_burst_capacity\":" + std::to_string(s.excess_burst_capacity);
  line += ",\"in_panic\":";
  line += s.in_panic ? "true" : "false";
  line += "}";
  return line;
}

Result<std::vector<SimulationStep>> simulate_scenario(const json& scenario) {
  if (!scenario.is_object()) return make_error("scenario", "must be a JSON object");
  auto spec_it = scenario.find("spec");
  if (spec_it == scenario.end()) return make_error("spec", "is required");
  auto spec = parse_decider_spec(*spec_it, "spec");
  if (!spec) return spec.error();
  auto steps_it = scenario.find("steps");
  if (steps_it == scenario.end() || !steps_it->is_array()) return make_error("steps", "must be an array");

  auto ready_at_construction = number_field(scenario, "scenario", "ready_pods_at_construction", 0.0);
  if (!ready_at_construction) return ready_at_construction.error();
  auto construction_error = bool_field(scenario, "scenario", "construction_pod_count_error", false);
  if (!construction_error) return construction_error.error();

  // Knative's constructor reads time.Now(): the tests treat it as the first step's instant.
  double t0 = 0;
  if (!steps_it->empty() && (*steps_it)[0].is_object()) {
    auto first = number_field((*steps_it)[0], "steps[0]", "t_s", 0.0);
    if (first) t0 = first.value();
  }
  // A pod counter error at construction counts as zero pods, as in Knative.
  const auto ready0 =
      construction_error.value() ? 0 : static_cast<std::int32_t>(ready_at_construction.value());
  KpaDecider decider(spec.value(), ready0, at_seconds(t0));

  auto override_it = scenario.find("state_override_before_first_step");
  if (override_it != scenario.end() && override_it->is_object()) {
    auto pt = override_it->find("panic_time_t_s");
    if (pt != override_it->end()) {
      if (pt->is_null()) {
        decider.state().panic_time.reset();
      } else if (pt->is_number()) {
        decider.state().panic_time = at_seconds(pt->get<double>());
      } else {
        return make_error("state_override_before_first_step.panic_time_t_s", "must be a number or null");
      }
    }
    auto mpp = override_it->find("max_panic_pods");
    if (mpp != override_it->end() && mpp->is_number())
      decider.state().max_panic_pods = mpp->get<std::int32_t>();
  }

  std::vector<SimulationStep> out;
  out.reserve(steps_it->size());
  for (std::size_t i = 0; i < steps_it->size(); ++i) {
    const json& step = (*steps_it)[i];
    const std::string where = "steps[" + std::to_string(i) + "]";
    if (!step.is_object()) return make_error(where, "must be an object");
    if (auto update = step.find("spec_update_before_step"); update != step.end() && !update->is_null()) {
      auto updated = parse_decider_spec(*update, where + ".spec_update_before_step");
      if (!updated) return updated.error();
      decider.update(updated.value());
    }
    auto t = number_field(step, where, "t_s");
    if (!t) return t.error();
    auto ready = number_field(step, where, "ready_pods", 0.0);
    if (!ready) return ready.error();
    auto stable = number_field(step, where, "observed_stable", 0.0);
    if (!stable) return stable.error();
    auto panic = number_field(step, where, "observed_panic", 0.0);
    if (!panic) return panic.error();
    auto pod_error = bool_field(step, where, "pod_count_error", false);
    if (!pod_error) return pod_error.error();
    auto metric_error = bool_field(step, where, "metric_error", false);
    if (!metric_error) return metric_error.error();

    SimulationStep result;
    result.t_s = t.value();
    if (pod_error.value() || metric_error.value()) {
      // Knative returns invalidSR before touching any state.
      result.in_panic = decider.state().in_panic();
      out.push_back(result);
      continue;
    }
    Observation observed{static_cast<std::int32_t>(ready.value()), stable.value(), panic.value()};
    const ScaleResult r = decider.scale(observed, at_seconds(t.value()));
    result.scale_valid = r.scale_valid;
    result.desired_pod_count = r.desired_pod_count;
    result.excess_burst_capacity = r.excess_burst_capacity;
    result.in_panic = decider.state().in_panic();
    if (decider.state().panic_time) {
      result.panic_time_t_s =
          std::chrono::duration<double>(decider.state().panic_time->time_since_epoch()).count();
    }
    out.push_back(result);
  }
  return out;
}

Result<std::vector<SimulationStep>> simulate_series(const json& input) {
  json doc = input.is_array() ? json{{"concurrency", input}} : input;
  if (!doc.is_object()) return make_error("series", "must be a JSON object or an array of numbers");

  auto config_map = string_map(doc, "config");
  if (!config_map) return config_map.error();
  auto config = parse_autoscaler_config(config_map.value());
  if (!config) return make_error("config." + config.error().subject, config.error().message);

  auto annotations = string_map(doc, "annotations");
  if (!annotations) return annotations.error();
  auto cc = number_field(doc, "series", "container_concurrency", 0.0);
  if (!cc) return cc.error();
  auto spec = parse_revision_spec(annotations.value(), static_cast<std::int32_t>(cc.value()), config.value());
  if (!spec) return spec.error();

  auto concurrency = series_field(doc, "concurrency");
  if (!concurrency) return concurrency.error();
  auto rps = series_field(doc, "rps");
  if (!rps) return rps.error();
  auto backlog = series_field(doc, "backlog");
  if (!backlog) return backlog.error();
  if (doc.find("concurrency") == doc.end() && doc.find("rps") == doc.end()) {
    return make_error("concurrency", "is required: one observed value per second (or give \"rps\")");
  }
  auto startup = number_field(doc, "series", "startup_s", 0.0);
  if (!startup) return startup.error();
  if (startup.value() < 0) return make_error("startup_s", "cannot be negative");

  const std::size_t seconds =
      std::max({concurrency.value().size(), rps.value().size(), backlog.value().size()});
  const auto tick_s = std::max<std::int64_t>(1, config.value().tick_interval.count() / 1000);

  ManualClock clock(at_seconds(0));
  Autoscaler scaler(clock, config.value());
  const std::string revision = "simulated";
  if (auto st = scaler.add_revision_spec(revision, spec.value()); !st) return st.error();

  // (decision time, desired): ready replicas follow decisions after startup_s.
  std::vector<std::pair<double, std::int32_t>> decided;
  std::vector<SimulationStep> out;
  auto value_at = [](const std::vector<double>& v, std::size_t i) { return i < v.size() ? v[i] : 0.0; };
  for (std::size_t i = 0; i < seconds; ++i) {
    const double t = static_cast<double>(i);
    clock.set(at_seconds(t));
    const SteadyTime now = clock.now();
    MetricSample sample{value_at(concurrency.value(), i), value_at(rps.value(), i)};
    scaler.record(revision, sample, now);
    scaler.set_backlog(revision, value_at(backlog.value(), i));
    if (static_cast<std::int64_t>(i) % tick_s != 0) continue;

    std::int32_t latest = decided.empty() ? 0 : decided.back().second;
    std::int32_t requested_then = 0;
    for (const auto& [when, desired] : decided) {
      if (when <= t - startup.value()) requested_then = desired;
    }
    scaler.set_ready_pods(revision, std::min(latest, requested_then));

    auto decisions = scaler.tick(now, clock.wall());
    const Decision& d = decisions.front();
    decided.emplace_back(t, d.desired_replicas);
    out.push_back(SimulationStep{t, d.scale_valid, d.desired_replicas, d.excess_burst_capacity, d.in_panic,
                                 std::nullopt});
  }
  return out;
}

Result<std::vector<SimulationStep>> simulate(std::string_view text) {
  json doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return make_error("input", "is not valid JSON");
  if (doc.is_object() && doc.contains("steps")) return simulate_scenario(doc);
  if (doc.is_array() || (doc.is_object() && (doc.contains("concurrency") || doc.contains("rps")))) {
    return simulate_series(doc);
  }
  return make_error("input",
                    "must be a scenario object (with \"spec\" and \"steps\") or a per-second series "
                    "(an array, or an object with \"concurrency\" or \"rps\")");
}

}  // namespace sluice::autoscaler
