// The KPA decider on manual time: panic enter/exit, rates, scale-down delay, EBC, activation scale.

#include "autoscaler/kpa.hpp"

#include <gtest/gtest.h>

#include <limits>

namespace sluice::autoscaler {
namespace {

using std::chrono::seconds;

DeciderSpec spec_with_target(double target) {
  DeciderSpec s;
  s.target_value = target;
  s.total_value = target / 0.7;
  s.target_burst_capacity = 0;
  s.panic_threshold = 2.0;
  s.max_scale_up_rate = 1000;
  s.max_scale_down_rate = 2;
  s.stable_window = seconds(60);
  return s;
}

TEST(Kpa, StableModeDesiredIsCeilOfObservedOverTarget) {
  ManualClock clock;
  KpaDecider d(spec_with_target(10), 0, clock.now());
  auto r = d.scale({4, 35, 35}, clock.now());
  EXPECT_TRUE(r.scale_valid);
  EXPECT_EQ(r.desired_pod_count, 4);
  EXPECT_FALSE(d.state().in_panic());
}

TEST(Kpa, PanicEntersAtThresholdAndNeverScalesDownInPanic) {
  ManualClock clock;
  KpaDecider d(spec_with_target(10), 0, clock.now());
  // 2 ready, panic window asks for 4: 4/2 >= 2.0 -> panic.
  auto r = d.scale({2, 10, 40}, clock.now());
  EXPECT_TRUE(d.state().in_panic());
  EXPECT_EQ(r.desired_pod_count, 4);
  clock.advance(seconds(2));
  // The burst fades in the panic window, but panic holds the high-water mark.
  r = d.scale({4, 10, 10}, clock.now());
  EXPECT_TRUE(d.state().in_panic());
  EXPECT_EQ(r.desired_pod_count, 4);
  // Still in panic just before a full stable window since the last time over the threshold.
  clock.advance(seconds(58));
  r = d.scale({4, 10, 10}, clock.now());
  EXPECT_TRUE(d.state().in_panic());
  EXPECT_EQ(r.desired_pod_count, 4);
  // After the stable window: back to stable mode, scale down (rate-limited to ready/2).
  clock.advance(seconds(1));
  r = d.scale({4, 10, 10}, clock.now());
  EXPECT_FALSE(d.state().in_panic());
  EXPECT_EQ(r.desired_pod_count, 2);
}

TEST(Kpa, PanicIsExtendedWhileOverThreshold) {
  ManualClock clock;
  KpaDecider d(spec_with_target(1), 0, clock.now());
  d.scale({1, 1, 5}, clock.now());
  ASSERT_TRUE(d.state().in_panic());
  clock.advance(seconds(50));
  d.scale({5, 5, 10}, clock.now());  // 10/5 >= 2: extends
  clock.advance(seconds(50));
  d.scale({10, 5, 5}, clock.now());
  EXPECT_TRUE(d.state().in_panic());  // only 50 s since the extension
  clock.advance(seconds(11));
  d.scale({10, 5, 5}, clock.now());
  EXPECT_FALSE(d.state().in_panic());
}

TEST(Kpa, ScaleUpAndDownRates) {
  ManualClock clock;
  auto s = spec_with_target(1);
  s.max_scale_up_rate = 3;
  s.max_scale_down_rate = 4;
  s.panic_threshold = 1000;  // no panic
  KpaDecider d(s, 0, clock.now());
  EXPECT_EQ(d.scale({2, 100, 100}, clock.now()).desired_pod_count, 6);  // ceil(3 * 2)
  EXPECT_EQ(d.scale({0, 100, 100}, clock.now()).desired_pod_count, 3);  // ready 0 counts as 1
  EXPECT_EQ(d.scale({40, 0, 0}, clock.now()).desired_pod_count, 10);    // floor(40 / 4)
  s.reachable = false;
  d.update(s);
  EXPECT_EQ(d.scale({40, 0, 0}, clock.now()).desired_pod_count, 0);  // unreachable: no down rate
}

TEST(Kpa, ScaleDownDelayHoldsTheMaximum) {
  ManualClock clock;
  auto s = spec_with_target(10);
  s.panic_threshold = 100;
  s.max_scale_down_rate = 1000;
  s.scale_down_delay = seconds(20);
  KpaDecider d(s, 0, clock.now());
  EXPECT_EQ(d.scale({0, 50, 50}, clock.now()).desired_pod_count, 5);
  clock.advance(seconds(10));
  EXPECT_EQ(d.scale({5, 10, 10}, clock.now()).desired_pod_count, 5);
  clock.advance(seconds(8));
  EXPECT_EQ(d.scale({5, 10, 10}, clock.now()).desired_pod_count, 5);
  clock.advance(seconds(2));
  EXPECT_EQ(d.scale({5, 10, 10}, clock.now()).desired_pod_count, 1);
  // Scale up is never delayed.
  EXPECT_EQ(d.scale({1, 80, 80}, clock.now()).desired_pod_count, 8);
}

TEST(Kpa, ExcessBurstCapacity) {
  ManualClock clock;
  auto s = spec_with_target(7);
  s.total_value = 10;
  s.target_burst_capacity = 25;
  KpaDecider d(s, 0, clock.now());
  // floor(3 pods * 10 - 25 - 4)
  EXPECT_EQ(d.scale({3, 4, 4}, clock.now()).excess_burst_capacity, 1);
  EXPECT_EQ(d.scale({3, 4, 6.5}, clock.now()).excess_burst_capacity, -2);
  s.target_burst_capacity = 0;
  d.update(s);
  EXPECT_EQ(d.scale({3, 4, 100}, clock.now()).excess_burst_capacity, 0);
  s.target_burst_capacity = -1;
  d.update(s);
  EXPECT_EQ(d.scale({3, 4, 4}, clock.now()).excess_burst_capacity, -1);
}

TEST(Kpa, ActivationScaleLiftsNonZeroAnswers) {
  ManualClock clock;
  auto s = spec_with_target(10);
  s.activation_scale = 3;
  KpaDecider d(s, 0, clock.now());
  EXPECT_EQ(d.scale({0, 0, 0}, clock.now()).desired_pod_count, 0);
  EXPECT_EQ(d.scale({0, 1, 1}, clock.now()).desired_pod_count, 3);
}

TEST(Kpa, RestartWithManyPodsStartsInPanic) {
  ManualClock clock;
  KpaDecider d(spec_with_target(10), 8, clock.now());
  EXPECT_TRUE(d.state().in_panic());
  // Without history the metric reads low, but the current scale is kept.
  EXPECT_EQ(d.scale({8, 1, 1}, clock.now()).desired_pod_count, 8);
}

TEST(Kpa, NonFiniteMetricsCountAsNoLoad) {
  ManualClock clock;
  KpaDecider d(spec_with_target(10), 0, clock.now());
  auto r = d.scale({1, std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity()},
                   clock.now());
  EXPECT_TRUE(r.scale_valid);
  EXPECT_EQ(r.desired_pod_count, 0);
}

}  // namespace
}  // namespace sluice::autoscaler
