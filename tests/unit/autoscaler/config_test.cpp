#include "autoscaler/config.hpp"

#include <gtest/gtest.h>

namespace sluice::autoscaler {
namespace {

using std::chrono::seconds;

TEST(AutoscalerConfig, KnativeDefaults) {
  AutoscalerConfig c;
  EXPECT_TRUE(validate_config(c));
  EXPECT_EQ(c.target_burst_capacity, 211);
  EXPECT_EQ(c.max_scale_up_rate, 1000);
  EXPECT_EQ(c.max_scale_down_rate, 2);
  EXPECT_EQ(c.stable_window, seconds(60));
  EXPECT_EQ(c.scale_to_zero_grace_period, seconds(30));
  EXPECT_EQ(c.tick_interval, seconds(2));
  EXPECT_EQ(c.panic_window_percentage, 10);
  EXPECT_EQ(c.panic_threshold_percentage, 200);
  EXPECT_DOUBLE_EQ(c.container_concurrency_target_fraction, 0.7);
}

TEST(AutoscalerConfig, ParsesKeysAndPercentages) {
  auto c = parse_autoscaler_config({{"stable-window", "2m"},
                                    {"container-concurrency-target-percentage", "80"},
                                    {"enable-scale-to-zero", "false"},
                                    {"scale-to-zero-grace-period", "45s"}});
  ASSERT_TRUE(c) << c.error().to_string();
  EXPECT_EQ(c.value().stable_window, seconds(120));
  EXPECT_DOUBLE_EQ(c.value().container_concurrency_target_fraction, 0.8);
  EXPECT_FALSE(c.value().enable_scale_to_zero);
  EXPECT_EQ(c.value().scale_to_zero_grace_period, seconds(45));
}

TEST(AutoscalerConfig, ErrorsNameTheKey) {
  auto c = parse_autoscaler_config({{"max-scale-up-rate", "1"}});
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().subject, "max-scale-up-rate");
  c = parse_autoscaler_config({{"stable-window", "5s"}});
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().subject, "stable-window");
  c = parse_autoscaler_config({{"stabel-window", "60s"}});
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().subject, "stabel-window");
}

TEST(RevisionSpec, DefaultsResolveLikeKnative) {
  auto s = parse_revision_spec({}, 0, AutoscalerConfig{});
  ASSERT_TRUE(s);
  EXPECT_EQ(s.value().metric, ScalingMetric::concurrency);
  EXPECT_DOUBLE_EQ(s.value().target_value, 70);
  EXPECT_DOUBLE_EQ(s.value().total_value, 100);
  EXPECT_EQ(s.value().stable_window, seconds(60));
  EXPECT_EQ(s.value().panic_window, seconds(6));
  EXPECT_EQ(s.value().initial_scale, 1);
  EXPECT_EQ(s.value().activation_scale, 1);
  EXPECT_DOUBLE_EQ(s.value().target_backlog, 100);
  EXPECT_FALSE(s.value().predictive);
}

TEST(RevisionSpec, ReadsEveryAnnotation) {
  auto s = parse_revision_spec({{"autoscaling.knative.dev/metric", "rps"},
                                {"autoscaling.knative.dev/target", "50"},
                                {"autoscaling.knative.dev/target-utilization-percentage", "80"},
                                {"autoscaling.knative.dev/window", "120s"},
                                {"autoscaling.knative.dev/panic-window-percentage", "20"},
                                {"autoscaling.knative.dev/panic-threshold-percentage", "150"},
                                {"autoscaling.knative.dev/min-scale", "1"},
                                {"autoscaling.knative.dev/max-scale", "9"},
                                {"autoscaling.knative.dev/initial-scale", "3"},
                                {"autoscaling.knative.dev/activation-scale", "2"},
                                {"autoscaling.knative.dev/scale-down-delay", "30s"},
                                {"autoscaling.knative.dev/scale-to-zero-pod-retention-period", "1m5s"},
                                {"autoscaling.knative.dev/target-burst-capacity", "-1"},
                                {"sluice.dev/target-backlog", "25"},
                                {"sluice.dev/activation-backlog", "5"},
                                {"sluice.dev/predictive", "enable"},
                                {"sluice.dev/startup-time", "45s"}},
                               0, AutoscalerConfig{});
  ASSERT_TRUE(s) << s.error().to_string();
  const RevisionSpec& r = s.value();
  EXPECT_EQ(r.metric, ScalingMetric::rps);
  EXPECT_DOUBLE_EQ(r.target_value, 40);
  EXPECT_DOUBLE_EQ(r.total_value, 50);
  EXPECT_EQ(r.stable_window, seconds(120));
  EXPECT_EQ(r.panic_window, seconds(24));
  EXPECT_DOUBLE_EQ(r.panic_threshold_percentage, 150);
  EXPECT_EQ(r.min_scale, 1);
  EXPECT_EQ(r.max_scale, 9);
  EXPECT_EQ(r.initial_scale, 3);
  EXPECT_EQ(r.activation_scale, 2);
  EXPECT_EQ(r.scale_down_delay, seconds(30));
  EXPECT_EQ(r.scale_to_zero_pod_retention, seconds(65));
  EXPECT_EQ(r.target_burst_capacity, -1);
  EXPECT_DOUBLE_EQ(r.target_backlog, 25);
  EXPECT_DOUBLE_EQ(r.activation_backlog, 5);
  EXPECT_TRUE(r.predictive);
  EXPECT_EQ(r.startup_time, seconds(45));
}

TEST(RevisionSpec, LegacyCamelCaseAliases) {
  auto s = parse_revision_spec(
      {{"autoscaling.knative.dev/minScale", "2"}, {"autoscaling.knative.dev/maxScale", "4"}}, 0,
      AutoscalerConfig{});
  ASSERT_TRUE(s);
  EXPECT_EQ(s.value().min_scale, 2);
  EXPECT_EQ(s.value().max_scale, 4);
  auto both = parse_revision_spec(
      {{"autoscaling.knative.dev/minScale", "2"}, {"autoscaling.knative.dev/min-scale", "3"}}, 0,
      AutoscalerConfig{});
  ASSERT_FALSE(both);
  EXPECT_EQ(both.error().subject, "autoscaling.knative.dev/min-scale");
}

struct BadAnnotation {
  std::string key;
  std::string value;
};

class RevisionSpecErrors : public ::testing::TestWithParam<BadAnnotation> {};

TEST_P(RevisionSpecErrors, NameTheAnnotation) {
  const auto& bad = GetParam();
  auto s = parse_revision_spec({{bad.key, bad.value}}, 0, AutoscalerConfig{});
  ASSERT_FALSE(s) << bad.key << "=" << bad.value;
  EXPECT_EQ(s.error().subject, bad.key);
  EXPECT_NE(s.error().message.find(bad.value), std::string::npos) << s.error().to_string();
}

INSTANTIATE_TEST_SUITE_P(
    Annotations, RevisionSpecErrors,
    ::testing::Values(BadAnnotation{"autoscaling.knative.dev/metric", "cpu"},
                      BadAnnotation{"autoscaling.knative.dev/target", "0.001"},
                      BadAnnotation{"autoscaling.knative.dev/target", "ten"},
                      BadAnnotation{"autoscaling.knative.dev/target-utilization-percentage", "101"},
                      BadAnnotation{"autoscaling.knative.dev/window", "5s"},
                      BadAnnotation{"autoscaling.knative.dev/window", "60"},
                      BadAnnotation{"autoscaling.knative.dev/window", "90500ms"},
                      BadAnnotation{"autoscaling.knative.dev/panic-window-percentage", "0.5"},
                      BadAnnotation{"autoscaling.knative.dev/panic-threshold-percentage", "100"},
                      BadAnnotation{"autoscaling.knative.dev/min-scale", "-1"},
                      BadAnnotation{"autoscaling.knative.dev/initial-scale", "0"},
                      BadAnnotation{"autoscaling.knative.dev/activation-scale", "0"},
                      BadAnnotation{"autoscaling.knative.dev/scale-down-delay", "2h"},
                      BadAnnotation{"autoscaling.knative.dev/target-burst-capacity", "-2"},
                      BadAnnotation{"autoscaling.knative.dev/class", "hpa.autoscaling.knative.dev"},
                      BadAnnotation{"sluice.dev/target-backlog", "0"},
                      BadAnnotation{"sluice.dev/predictive", "maybe"}));

TEST(RevisionSpec, MinAboveMaxIsAnError) {
  auto s = parse_revision_spec(
      {{"autoscaling.knative.dev/min-scale", "5"}, {"autoscaling.knative.dev/max-scale", "3"}}, 0,
      AutoscalerConfig{});
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().subject, "autoscaling.knative.dev/min-scale");
}

TEST(RevisionSpec, ConcurrencyTargetCappedByContainerConcurrency) {
  auto s = parse_revision_spec({{"autoscaling.knative.dev/target", "50"}}, 10, AutoscalerConfig{});
  ASSERT_TRUE(s);
  EXPECT_DOUBLE_EQ(s.value().total_value, 10);
  EXPECT_DOUBLE_EQ(s.value().target_value, 7);
}

}  // namespace
}  // namespace sluice::autoscaler
