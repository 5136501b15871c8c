// The Autoscaler service on manual time: scale to zero after the grace period, from zero on poke,
// queue depth, bounds, reserve, many revisions.

#include "autoscaler/autoscaler.hpp"

#include <gtest/gtest.h>

namespace sluice::autoscaler {
namespace {

using std::chrono::seconds;

class AutoscalerTest : public ::testing::Test {
 protected:
  // Advances one second at a time, recording `concurrency` each second and ticking every 2 s;
  // ready replicas follow the decisions at once. Returns the last decision.
  Decision run(Autoscaler& a, const std::string& rev, int secs, double concurrency) {
    Decision last;
    for (int i = 0; i < secs; ++i) {
      clock_.advance(seconds(1));
      if (concurrency > 0) a.record(rev, MetricSample{concurrency, concurrency}, clock_.now());
      if (++second_ % 2 == 0) {
        auto d = a.tick(clock_.now(), clock_.wall());
        for (const auto& x : d) {
          if (x.revision == rev) last = x;
        }
        a.set_ready_pods(rev, last.desired_replicas);
        history_.push_back(last.desired_replicas);
      }
    }
    return last;
  }

  ManualClock clock_;
  int second_ = 0;
  std::vector<int> history_;
};

TEST_F(AutoscalerTest, ASecondNotYetReportedDoesNotCountAsIdle) {
  // The activator reports in the middle of each second; every other second the tick comes first, before
  // that second's report. Steady load of 4 must be seen as 4 in both windows, not as 4 with an idle
  // second (a 6 s panic window would read 3.33).
  Autoscaler a(clock_);
  ASSERT_TRUE(a.add_revision("r", {{"autoscaling.knative.dev/target", "1"},
                                   {"autoscaling.knative.dev/target-utilization-percentage", "100"}}));
  a.set_ready_pods("r", 4);
  Decision d;
  for (int second = 1; second <= 20; ++second) {
    clock_.advance(std::chrono::milliseconds(100));
    if (second % 2 == 0) {
      d = a.tick(clock_.now(), clock_.wall()).at(0);
      EXPECT_DOUBLE_EQ(d.observed_stable, 4) << "second " << second;
      EXPECT_DOUBLE_EQ(d.observed_panic, 4) << "second " << second;
    }
    clock_.advance(std::chrono::milliseconds(400));
    a.record("r", MetricSample{4, 4}, clock_.now());
    clock_.advance(std::chrono::milliseconds(500));
  }
  EXPECT_EQ(d.desired_replicas, 4);
}

TEST_F(AutoscalerTest, UnknownRevisionIsReported) {
  Autoscaler a(clock_);
  EXPECT_FALSE(a.record("nope", MetricSample{1, 1}, clock_.now()));
  EXPECT_FALSE(a.poke("nope").has_value());
  EXPECT_FALSE(a.set_backlog("nope", 3));
}

TEST_F(AutoscalerTest, BadAnnotationIsRejectedWithItsName) {
  Autoscaler a(clock_);
  auto st = a.add_revision("r", {{"autoscaling.knative.dev/window", "1s"}});
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().subject, "autoscaling.knative.dev/window");
  EXPECT_FALSE(a.has_revision("r"));
}

TEST_F(AutoscalerTest, InitialScaleThenFollowsLoad) {
  Autoscaler a(clock_);
  ASSERT_TRUE(a.add_revision("r", {{"autoscaling.knative.dev/target", "10"}}));
  Decision d = run(a, "r", 2, 0);
  EXPECT_EQ(d.desired_replicas, 1);  // initial-scale 1
  d = run(a, "r", 20, 45);
  EXPECT_EQ(d.desired_replicas, 7);  // target 10 at 70% utilization: ceil(45 / 7)
}

TEST_F(AutoscalerTest, ScaleToZeroOnlyAfterStableWindowAndGracePeriod) {
  Autoscaler a(clock_);
  ASSERT_TRUE(a.add_revision("r", {{"autoscaling.knative.dev/target", "10"},
                                   {"autoscaling.knative.dev/target-utilization-percentage", "100"}}));
  run(a, "r", 20, 30);
  EXPECT_EQ(a.last_decision("r")->desired_replicas, 3);
  // Traffic stops. The stable window (60 s) still holds it for a while; then the revision must be
  // inactive for the grace period (30 s) with one replica before going to zero.
  history_.clear();
  run(a, "r", 200, 0);
  std::size_t first_zero = history_.size();
  for (std::size_t i = 0; i < history_.size(); ++i) {
    if (history_[i] == 0) {
      first_zero = i;
      break;
    }
  }
  ASSERT_LT(first_zero, history_.size());
  const int zero_after_s = static_cast<int>(first_zero + 1) * 2;
  EXPECT_GE(zero_after_s, 60 + 30);
  EXPECT_LE(zero_after_s, 60 + 30 + 4);
  EXPECT_EQ(history_[first_zero - 1], 1);  // held at one replica through the grace period
  for (std::size_t i = first_zero; i < history_.size(); ++i) EXPECT_EQ(history_[i], 0);
}

TEST_F(AutoscalerTest, PodRetentionExtendsTheGracePeriod) {
  Autoscaler a(clock_);
  ASSERT_TRUE(a.add_revision("r", {{"autoscaling.knative.dev/target", "10"},
                                   {"autoscaling.knative.dev/scale-to-zero-pod-retention-period", "2m"}}));
  run(a, "r", 10, 5);
  history_.clear();
  run(a, "r", 400, 0);
  std::size_t first_zero = 0;
  while (first_zero < history_.size() && history_[first_zero] != 0) ++first_zero;
  const int zero_after_s = static_cast<int>(first_zero + 1) * 2;
  EXPECT_GE(zero_after_s, 60 + 120);
  EXPECT_LE(zero_after_s, 60 + 120 + 4);
}

TEST_F(AutoscalerTest, PokeScalesFromZeroImmediately) {
  Autoscaler a(clock_);
  ASSERT_TRUE(a.add_revision("r", {{"autoscaling.knative.dev/target", "10"},
                                   {"autoscaling.knative.dev/target-utilization-percentage", "100"}}));
  run(a, "r", 300, 0);
  ASSERT_EQ(a.last_decision("r")->desired_replicas, 0);
  // Half a second later, 25 requests are buffered by the activator.
  clock_.advance(std::chrono::milliseconds(500));
  a.record("r", MetricSample{25, 25});
  auto d = a.poke("r");
  ASSERT_TRUE(d);
  // A fresh partial window, as Knative's at zero: ceil(25 / 10).
  EXPECT_EQ(d->desired_replicas, 3);
  EXPECT_TRUE(d->scale_valid);
}

TEST_F(AutoscalerTest, MinScaleAndReserveForbidZero) {
  Autoscaler a(clock_);
  ASSERT_TRUE(a.add_revision("min", {{"autoscaling.knative.dev/min-scale", "2"}}));
  ASSERT_TRUE(a.add_revision("reserve", {}));
  ASSERT_TRUE(a.set_reserve("reserve", 1));
  ASSERT_TRUE(a.set_ready_pods("reserve", 1));  // initial scale reached: only the reserve holds it
  run(a, "min", 400, 0);
  EXPECT_EQ(a.last_decision("min")->desired_replicas, 2);
  EXPECT_EQ(a.last_decision("reserve")->desired_replicas, 1);
}

TEST_F(AutoscalerTest, MaxScaleBoundsTheAnswer) {
  Autoscaler a(clock_);
  ASSERT_TRUE(a.add_revision(
      "r", {{"autoscaling.knative.dev/target", "1"}, {"autoscaling.knative.dev/max-scale", "4"}}));
  EXPECT_EQ(run(a, "r", 20, 100).desired_replicas, 4);
}

TEST_F(AutoscalerTest, InitialScaleHeldUntilReached) {
  Autoscaler a(clock_);
  ASSERT_TRUE(a.add_revision("r", {{"autoscaling.knative.dev/initial-scale", "3"}}));
  auto d = a.tick(clock_.now(), clock_.wall());
  EXPECT_EQ(d.front().desired_replicas, 3);
  a.set_ready_pods("r", 2);
  clock_.advance(seconds(2));
  EXPECT_EQ(a.tick(clock_.now(), clock_.wall()).front().desired_replicas, 3);
  // Once reached, the load decides (no load: down to 1 while active, rate-limited from 3).
  a.set_ready_pods("r", 3);
  clock_.advance(seconds(2));
  EXPECT_EQ(a.tick(clock_.now(), clock_.wall()).front().desired_replicas, 1);
}

TEST_F(AutoscalerTest, PanicOnBurst) {
  Autoscaler a(clock_);
  ASSERT_TRUE(a.add_revision("r", {{"autoscaling.knative.dev/target", "10"},
                                   {"autoscaling.knative.dev/target-utilization-percentage", "100"}}));
  run(a, "r", 60, 10);
  EXPECT_EQ(a.last_decision("r")->desired_replicas, 1);
  EXPECT_FALSE(a.last_decision("r")->in_panic);
  const Decision d = run(a, "r", 4, 200);
  EXPECT_TRUE(d.in_panic);
  EXPECT_GE(d.desired_replicas, 10);
}

TEST_F(AutoscalerTest, QueueDepthScalesFromZeroWithoutRequests) {
  AutoscalerConfig config;
  config.allow_zero_initial_scale = true;
  Autoscaler a(clock_, config);
  ASSERT_TRUE(a.add_revision("r", {{"autoscaling.knative.dev/initial-scale", "0"},
                                   {"sluice.dev/target-backlog", "10"},
                                   {"sluice.dev/activation-backlog", "5"}}));
  EXPECT_EQ(a.poke("r")->desired_replicas, 0);
  a.set_backlog("r", 5);  // not above the activation threshold
  EXPECT_EQ(a.poke("r")->desired_replicas, 0);
  a.set_backlog("r", 6);
  EXPECT_EQ(a.poke("r")->desired_replicas, 1);
  a.set_backlog("r", 250);
  auto d = a.poke("r");
  EXPECT_EQ(d->desired_replicas, 25);
  EXPECT_EQ(d->backlog_desired, 25);
  EXPECT_EQ(d->kpa_desired, 0);
}

TEST_F(AutoscalerTest, QueueDepthCombinesByMaxAndKeepsOneWhileBacklogRemains) {
  Autoscaler a(clock_);
  ASSERT_TRUE(a.add_revision("r", {{"autoscaling.knative.dev/target", "10"},
                                   {"autoscaling.knative.dev/target-utilization-percentage", "100"},
                                   {"sluice.dev/target-backlog", "100"},
                                   {"sluice.dev/activation-backlog", "50"}}));
  a.set_backlog("r", 500);
  EXPECT_EQ(run(a, "r", 20, 30).desired_replicas, 5);  // backlog 5 > concurrency 3
  a.set_backlog("r", 200);
  EXPECT_EQ(run(a, "r", 70, 80).desired_replicas, 8);  // concurrency 8 > backlog 2
  // No traffic, a small backlog (below activation) on a running revision: stays at one.
  a.set_backlog("r", 10);
  EXPECT_EQ(run(a, "r", 400, 0).desired_replicas, 1);
  a.set_backlog("r", 0);
  EXPECT_EQ(run(a, "r", 400, 0).desired_replicas, 0);
}

TEST_F(AutoscalerTest, RpsMetric) {
  Autoscaler a(clock_);
  ASSERT_TRUE(a.add_revision("r", {{"autoscaling.knative.dev/metric", "rps"},
                                   {"autoscaling.knative.dev/target", "100"},
                                   {"autoscaling.knative.dev/target-utilization-percentage", "100"}}));
  EXPECT_EQ(run(a, "r", 70, 450).desired_replicas, 5);
}

TEST_F(AutoscalerTest, TickDecidesEveryRevision) {
  Autoscaler a(clock_);
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(a.add_revision("r" + std::to_string(i), {}));
  EXPECT_EQ(a.revision_count(), 100u);
  EXPECT_EQ(a.tick(clock_.now(), clock_.wall()).size(), 100u);
  EXPECT_TRUE(a.remove_revision("r7"));
  EXPECT_EQ(a.tick(clock_.now(), clock_.wall()).size(), 99u);
}

TEST_F(AutoscalerTest, ScaleToZeroDisabledKeepsOne) {
  AutoscalerConfig config;
  config.enable_scale_to_zero = false;
  Autoscaler a(clock_, config);
  ASSERT_TRUE(a.add_revision("r", {}));
  EXPECT_EQ(run(a, "r", 400, 0).desired_replicas, 1);
}

}  // namespace
}  // namespace sluice::autoscaler
