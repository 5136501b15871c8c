// Every vector of ../shared/reference/kpa/kpa_vectors.json (transcribed from Knative's own tests):
// the decider scenarios, metric target resolution, panic windows and the bucketed window average.

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "autoscaler/config.hpp"
#include "autoscaler/simulate.hpp"
#include "autoscaler/window.hpp"

namespace sluice::autoscaler {
namespace {

using nlohmann::json;

const json& vectors() {
  static const json doc = [] {
    std::ifstream in(SLUICE_REFERENCE_DIR "/kpa/kpa_vectors.json");
    std::stringstream ss;
    ss << in.rdbuf();
    return json::parse(ss.str());
  }();
  return doc;
}

TEST(KpaVectors, FileHasEveryGroup) {
  const json& v = vectors();
  ASSERT_TRUE(v.contains("scale_vectors"));
  EXPECT_GE(v["scale_vectors"].size(), 16u);
  EXPECT_TRUE(v.contains("resolve_metric_target_vectors"));
  EXPECT_TRUE(v.contains("panic_window_vectors"));
  EXPECT_TRUE(v.contains("window_average_vectors"));
}

TEST(KpaVectors, EveryScaleScenarioMatches) {
  std::size_t scenarios = 0;
  std::size_t passed = 0;
  std::size_t steps_checked = 0;
  for (const json& scenario : vectors()["scale_vectors"]) {
    ++scenarios;
    const std::string id = scenario.value("id", "?");
    SCOPED_TRACE(id);
    auto result = simulate_scenario(scenario);
    ASSERT_TRUE(result) << result.error().to_string();
    const auto& steps = result.value();
    ASSERT_EQ(steps.size(), scenario["steps"].size());
    bool all_match = true;
    auto check = [&](bool ok) {
      all_match = all_match && ok;
      return ok;
    };
    for (std::size_t i = 0; i < steps.size(); ++i) {
      SCOPED_TRACE("step " + std::to_string(i));
      const json& step = scenario["steps"][i];
      const json& expect = step["expect"];
      const SimulationStep& got = steps[i];
      ++steps_checked;
      EXPECT_TRUE(check(got.t_s == step["t_s"].get<double>()));
      EXPECT_TRUE(check(got.scale_valid == expect["scale_valid"].get<bool>())) << got.scale_valid;
      EXPECT_TRUE(check(got.desired_pod_count == expect["desired_pod_count"].get<int>()))
          << "desired " << got.desired_pod_count << " vs expected " << expect["desired_pod_count"];
      const int tolerance = expect.value("ebc_tolerance", 0);
      EXPECT_TRUE(check(std::abs(got.excess_burst_capacity - expect["excess_burst_capacity"].get<int>()) <=
                        tolerance))
          << "EBC " << got.excess_burst_capacity << " vs expected " << expect["excess_burst_capacity"];
      if (expect.contains("panic_time_t_s")) {
        if (expect["panic_time_t_s"].is_null()) {
          EXPECT_TRUE(check(!got.panic_time_t_s.has_value()));
        } else {
          EXPECT_TRUE(check(got.panic_time_t_s.has_value() &&
                            *got.panic_time_t_s == expect["panic_time_t_s"].get<double>()));
        }
      }
      // Not asserted by the Go tests but derivable: the production EBC formula exactly, and the panic state.
      if (step.contains("derived_not_asserted")) {
        const json& derived = step["derived_not_asserted"];
        if (derived.contains("ebc_from_production_formula") && got.scale_valid) {
          EXPECT_TRUE(check(got.excess_burst_capacity == derived["ebc_from_production_formula"].get<int>()))
              << "EBC " << got.excess_burst_capacity << " vs production formula "
              << derived["ebc_from_production_formula"];
        }
        if (derived.contains("in_panic_after") && !derived["in_panic_after"].is_null()) {
          EXPECT_TRUE(check(got.in_panic == derived["in_panic_after"].get<bool>()))
              << "in_panic " << got.in_panic;
        }
      }
    }
    if (all_match) ++passed;
  }
  std::cout << "[ kpa_vectors ] " << passed << "/" << scenarios << " scenarios, " << steps_checked
            << " steps match\n";
  EXPECT_EQ(passed, scenarios);
}

TEST(KpaVectors, ResolveMetricTarget) {
  const json& group = vectors()["resolve_metric_target_vectors"];
  const json& base = group["base_config"];
  for (const json& c : group["cases"]) {
    SCOPED_TRACE(c.value("name", "?"));
    AutoscalerConfig config;
    config.container_concurrency_target_fraction =
        base["container_concurrency_target_fraction"].get<double>();
    config.container_concurrency_target_default = base["container_concurrency_target_default"].get<double>();
    config.rps_target_default = base["rps_target_default"].get<double>();
    config.target_utilization = base["target_utilization"].get<double>();
    if (c.contains("cfg")) {
      const json& cfg = c["cfg"];
      if (cfg.contains("container_concurrency_target_fraction")) {
        config.container_concurrency_target_fraction =
            cfg["container_concurrency_target_fraction"].get<double>();
      }
      if (cfg.contains("container_concurrency_target_default")) {
        config.container_concurrency_target_default =
            cfg["container_concurrency_target_default"].get<double>();
      }
      if (cfg.contains("rps_target_default"))
        config.rps_target_default = cfg["rps_target_default"].get<double>();
      if (cfg.contains("target_utilization"))
        config.target_utilization = cfg["target_utilization"].get<double>();
    }
    // Through the annotation parser, the way revisions get their targets.
    std::map<std::string, std::string> annotations;
    if (c.value("metric", "concurrency") == "rps") annotations[std::string(annotations::kMetric)] = "rps";
    if (c.contains("target_annotation")) {
      annotations[std::string(annotations::kTarget)] = c["target_annotation"].get<std::string>();
    }
    if (c.contains("tu_annotation")) {
      annotations[std::string(annotations::kTargetUtilization)] = c["tu_annotation"].get<std::string>();
    }
    auto spec = parse_revision_spec(annotations, c["cc"].get<std::int32_t>(), config);
    ASSERT_TRUE(spec) << spec.error().to_string();
    EXPECT_NEAR(spec.value().target_value, c["want_target"].get<double>(), 1e-9);
    EXPECT_NEAR(spec.value().total_value, c["want_total"].get<double>(), 1e-9);
  }
}

TEST(KpaVectors, PanicWindow) {
  for (const json& c : vectors()["panic_window_vectors"]["cases"]) {
    const auto stable = std::chrono::seconds(c["stable_s"].get<int>());
    const Millis got = panic_window_of(stable, c["pct"].get<double>());
    EXPECT_EQ(got, std::chrono::seconds(c["want_panic_s"].get<int>())) << c.dump();
    // And through the annotations.
    std::map<std::string, std::string> annotations{
        {std::string(annotations::kWindow), std::to_string(c["stable_s"].get<int>()) + "s"},
        {std::string(annotations::kPanicWindowPercentage), c["pct"].dump()}};
    auto spec = parse_revision_spec(annotations, 0, AutoscalerConfig{});
    ASSERT_TRUE(spec) << spec.error().to_string();
    EXPECT_EQ(spec.value().panic_window, std::chrono::seconds(c["want_panic_s"].get<int>()));
  }
}

TEST(KpaVectors, WindowAverage) {
  const json& group = vectors()["window_average_vectors"];
  BucketWindow window(std::chrono::seconds(5), std::chrono::seconds(1));
  const SteadyTime start = SteadyTime{} + std::chrono::hours(10);
  auto at = [&](double t) {
    return start + std::chrono::duration_cast<SteadyTime::duration>(std::chrono::duration<double>(t));
  };
  std::size_t checked = 0;
  for (const json& op : group["ops"]) {
    SCOPED_TRACE(op.dump());
    if (op["op"] == "record") {
      window.record(at(op["t"].get<double>()), op["v"].get<double>());
    } else {
      EXPECT_NEAR(window.window_average(at(op["t"].get<double>())), op["want"].get<double>(), 1e-5);
      ++checked;
    }
  }
  EXPECT_GT(checked, 10u);
}

}  // namespace
}  // namespace sluice::autoscaler
