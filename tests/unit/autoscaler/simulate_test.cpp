// The simulator's per-second series form, through the real windows and the Autoscaler.

#include "autoscaler/simulate.hpp"

#include <gtest/gtest.h>

namespace sluice::autoscaler {
namespace {

TEST(SimulateSeries, RampPanicScaleDownAndZero) {
  nlohmann::json doc;
  doc["annotations"] = {{"autoscaling.knative.dev/target", "10"},
                        {"autoscaling.knative.dev/target-utilization-percentage", "100"}};
  std::vector<double> load;
  for (int i = 0; i < 30; ++i) load.push_back(10);   // 1 replica
  for (int i = 0; i < 60; ++i) load.push_back(100);  // burst: panic
  for (int i = 0; i < 240; ++i) load.push_back(0);   // idle: down, then zero
  doc["concurrency"] = load;
  auto steps = simulate_series(doc);
  ASSERT_TRUE(steps) << steps.error().to_string();
  ASSERT_EQ(steps.value().size(), 165u);  // t = 0, 2, ..., 328
  const auto& s = steps.value();
  EXPECT_EQ(s[0].t_s, 0);
  EXPECT_EQ(s[10].desired_pod_count, 1);  // t=20
  bool panicked = false;
  int peak = 0;
  for (const auto& step : s) {
    EXPECT_TRUE(step.scale_valid);
    if (step.t_s >= 30 && step.t_s < 40 && step.in_panic) panicked = true;
    peak = std::max(peak, step.desired_pod_count);
  }
  EXPECT_TRUE(panicked);
  EXPECT_EQ(peak, 10);
  EXPECT_EQ(s.back().desired_pod_count, 0);
  EXPECT_FALSE(s.back().in_panic);
}

TEST(SimulateSeries, BareArray) {
  auto steps = simulate("[0, 0, 140, 140, 140, 140, 140, 140]");
  ASSERT_TRUE(steps) << steps.error().to_string();
  ASSERT_EQ(steps.value().size(), 4u);
  EXPECT_EQ(steps.value()[0].desired_pod_count, 1);  // initial scale
  EXPECT_EQ(steps.value()[1].desired_pod_count, 1);  // (0 + 0 + 140) / 3 seconds = 46.7 < 70
  EXPECT_EQ(steps.value()[2].desired_pod_count, 2);  // 420 / 5 = 84: ceil(84 / 70)
}

TEST(SimulateSeries, StartupDelayKeepsPanicLonger) {
  // Replicas that take 10 s to start leave the revision over the panic threshold until then, so
  // panic lasts a stable window past t=10 instead of past t=0.
  auto run = [](int startup_s) {
    nlohmann::json doc;
    doc["concurrency"] = std::vector<double>(80, 700);
    doc["startup_s"] = startup_s;
    auto steps = simulate_series(doc);
    EXPECT_TRUE(steps);
    return steps.value();
  };
  const auto fast = run(0);
  const auto slow = run(10);
  EXPECT_EQ(fast[33].t_s, 66);
  EXPECT_FALSE(fast[33].in_panic);
  EXPECT_TRUE(slow[33].in_panic);
  EXPECT_EQ(fast[33].desired_pod_count, 10);
  EXPECT_EQ(slow[33].desired_pod_count, 10);
}

TEST(SimulateSeries, BacklogAlone) {
  auto steps = simulate(R"({"config": {"allow-zero-initial-scale": "true"},
                            "annotations": {"autoscaling.knative.dev/initial-scale": "0"},
                            "concurrency": [0, 0, 0, 0], "backlog": [0, 0, 350, 350]})");
  ASSERT_TRUE(steps) << steps.error().to_string();
  EXPECT_EQ(steps.value()[0].desired_pod_count, 0);
  EXPECT_EQ(steps.value()[1].desired_pod_count, 4);  // ceil(350 / 100)
}

TEST(SimulateSeries, ErrorsNameTheAnnotation) {
  auto steps =
      simulate(R"({"annotations": {"autoscaling.knative.dev/max-scale": "-3"}, "concurrency": [1]})");
  ASSERT_FALSE(steps);
  EXPECT_EQ(steps.error().subject, "autoscaling.knative.dev/max-scale");
  EXPECT_FALSE(simulate("{\"neither\": 1}"));
  EXPECT_FALSE(simulate("not json"));
}

TEST(SimulateScenario, LinesHaveTheDocumentedShape) {
  SimulationStep step{0.5, true, 4, -137, false, std::nullopt};
  EXPECT_EQ(
      to_json_line(step),
      R"({"t_s":0.5,"scale_valid":true,"desired_pod_count":4,"excess_burst_capacity":-137,"in_panic":false})");
  step.t_s = 2;
  EXPECT_EQ(to_json_line(step).substr(0, 9), R"({"t_s":2,)");
}

}  // namespace
}  // namespace sluice::autoscaler
