// Predictive scaling with a synthetic periodic trace under manual time.

#include "autoscaler/predictive.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <string>

#include "autoscaler/autoscaler.hpp"
#include "core/fs.hpp"

namespace sluice::autoscaler {
namespace {

using std::chrono::hours;
using std::chrono::minutes;
using std::chrono::seconds;

// A temporary directory for profiles, removed at the end of the test.
class ProfileDir {
 public:
  ProfileDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "sluice-predictive-XXXXXX").string();
    path_ = ::mkdtemp(pattern.data()) != nullptr ? pattern : std::string();
  }
  ~ProfileDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// ManualClock's wall time starts at midnight UTC.
bool in_daily_peak(WallTime t) {
  const auto since_midnight = std::chrono::duration_cast<seconds>(t.time_since_epoch()).count() % 86400;
  return since_midnight >= 12 * 3600 && since_midnight < 12 * 3600 + 30 * 60;  // 12:00-12:30
}

TEST(PredictiveModel, LearnsDailyPeakAndPreScalesAheadOfIt) {
  ManualClock clock;
  PredictiveModel model;
  for (int i = 0; i < 3 * 8640; ++i) {  // three days, every 10 s
    model.observe(clock.wall(), in_daily_peak(clock.wall()) ? 500 : 0);
    clock.advance(seconds(10));
  }
  const WallTime day4 = clock.wall();  // midnight
  EXPECT_EQ(model.desired_pods(day4 + hours(11), minutes(2), 70), 0);
  // 11:59 with a two-minute startup: the 12:00 peak must already be provisioned.
  EXPECT_EQ(model.desired_pods(day4 + hours(11) + minutes(59), minutes(2), 70), 8);  // ceil(500 / 70)
  // 11:50 is too early for a two-minute lead.
  EXPECT_EQ(model.desired_pods(day4 + hours(11) + minutes(50), minutes(2), 70), 0);
  EXPECT_EQ(model.desired_pods(day4 + hours(12) + minutes(10), minutes(2), 70), 8);
  EXPECT_EQ(model.desired_pods(day4 + hours(12) + minutes(45), minutes(2), 70), 0);
}

TEST(PredictiveModel, NeedsEnoughHistory) {
  ManualClock clock;
  PredictiveModel model;
  for (int i = 0; i < 8640; ++i) {  // one day only
    model.observe(clock.wall(), in_daily_peak(clock.wall()) ? 500 : 0);
    clock.advance(seconds(10));
  }
  EXPECT_FALSE(model.forecast(clock.wall() + hours(12), clock.wall() + hours(12) + minutes(5)).has_value());
  EXPECT_EQ(model.desired_pods(clock.wall() + hours(12), minutes(2), 70), 0);
}

TEST(PredictiveModel, WeeklyProfileSeparatesWeekdays) {
  ManualClock clock;
  PredictiveModel model;
  // Three weeks: a peak every day at 12:00 except on the weekday of day 0 of each week.
  for (int day = 0; day < 21; ++day) {
    for (int i = 0; i < 8640; ++i) {
      const bool quiet_day = day % 7 == 0;
      model.observe(clock.wall(), !quiet_day && in_daily_peak(clock.wall()) ? 500 : 0);
      clock.advance(seconds(10));
    }
  }
  const WallTime week4 = clock.wall();
  EXPECT_EQ(model.desired_pods(week4 + hours(12), minutes(1), 70), 0);              // the quiet weekday
  EXPECT_EQ(model.desired_pods(week4 + hours(24) + hours(12), minutes(1), 70), 8);  // the next day
}

TEST(PredictiveModel, JsonRoundTripAndFile) {
  ManualClock clock;
  PredictiveModel model;
  for (int i = 0; i < 2 * 8640 + 10; ++i) {
    model.observe(clock.wall(), in_daily_peak(clock.wall()) ? 300 : 1);
    clock.advance(seconds(10));
  }
  auto copy = PredictiveModel::from_json(model.to_json());
  ASSERT_TRUE(copy) << copy.error().to_string();
  const WallTime noon = clock.wall() + hours(12);
  EXPECT_EQ(copy.value().desired_pods(noon, minutes(1), 10), model.desired_pods(noon, minutes(1), 10));
  EXPECT_EQ(copy.value().desired_pods(noon, minutes(1), 10), 30);

  ProfileDir dir;
  ASSERT_FALSE(dir.path().empty());
  const std::string path = dir.path() + "/profile.json";
  ASSERT_TRUE(model.save(path));
  auto loaded = PredictiveModel::load(path);
  ASSERT_TRUE(loaded) << loaded.error().to_string();
  EXPECT_EQ(loaded.value().desired_pods(noon, minutes(1), 10), 30);

  EXPECT_FALSE(PredictiveModel::from_json("{\"format\":\"other\"}"));
  EXPECT_FALSE(PredictiveModel::from_json("not json"));
  EXPECT_FALSE(PredictiveModel::load(dir.path() + "/missing.json"));
}

// The service: predictive answer ahead of the peak, never below the reactive answer, and the
// profile survives a restart through profile_dir.
TEST(PredictiveAutoscaler, PreScalesAheadOfRecurringPeakAndSurvivesRestart) {
  ManualClock clock;
  ProfileDir dir;
  ASSERT_FALSE(dir.path().empty());
  const std::map<std::string, std::string> annotations{
      {"autoscaling.knative.dev/target", "10"},
      {"autoscaling.knative.dev/target-utilization-percentage", "100"},
      {"sluice.dev/predictive", "enable"},
      {"sluice.dev/startup-time", "90s"}};
  {
    Autoscaler a(clock, AutoscalerConfig{}, dir.path());
    ASSERT_TRUE(a.add_revision("r", annotations));
    for (int s = 0; s < 2 * 86400; ++s) {  // two days, ticking every 2 s
      if (in_daily_peak(clock.wall())) a.record("r", MetricSample{100, 100}, clock.now());
      if (s % 2 == 0) {
        auto d = a.tick(clock.now(), clock.wall());
        a.set_ready_pods("r", d.front().desired_replicas);
      }
      clock.advance(seconds(1));
    }
    ASSERT_TRUE(a.save_profiles());
  }
  // Restart on day 3, shortly before noon.
  clock.advance(hours(11) + minutes(58) + seconds(40));
  Autoscaler a(clock, AutoscalerConfig{}, dir.path());
  ASSERT_TRUE(a.add_revision("r", annotations));
  a.set_ready_pods("r", 1);
  auto d = a.tick(clock.now(), clock.wall());
  EXPECT_EQ(d.front().kpa_desired, 0);
  EXPECT_EQ(d.front().predicted_desired, 10);  // ceil(100 / 10), 80 s before the peak
  EXPECT_EQ(d.front().desired_replicas, 10);

  // Reactive above the prediction wins.
  for (int s = 0; s < 10; ++s) {
    clock.advance(seconds(1));
    a.record("r", MetricSample{400, 400}, clock.now());
  }
  d = a.tick(clock.now(), clock.wall());
  EXPECT_GE(d.front().kpa_desired, 40);
  EXPECT_EQ(d.front().desired_replicas, d.front().kpa_desired);
}

}  // namespace
}  // namespace sluice::autoscaler
