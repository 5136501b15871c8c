#include "autoscaler/window.hpp"

#include <gtest/gtest.h>

namespace sluice::autoscaler {
namespace {

using std::chrono::seconds;

TEST(BucketWindow, EmptyAveragesZero) {
  ManualClock clock;
  BucketWindow w(seconds(60));
  EXPECT_TRUE(w.is_empty(clock.now()));
  EXPECT_EQ(w.window_average(clock.now()), 0.0);
}

TEST(BucketWindow, SamplesOfOneSecondAddUp) {
  ManualClock clock;
  BucketWindow w(seconds(60));
  w.record(clock.now(), 3);
  w.record(clock.now() + std::chrono::milliseconds(500), 4);  // same bucket: a second reporter
  EXPECT_DOUBLE_EQ(w.window_average(clock.now()), 7.0);
}

TEST(BucketWindow, PartialWindowAtStartThenFullWindow) {
  ManualClock clock;
  BucketWindow w(seconds(10));
  for (int i = 0; i < 5; ++i) {
    w.record(clock.now(), 10);
    clock.advance(seconds(1));
  }
  // Five seconds of data: the average is over five buckets, not ten.
  EXPECT_DOUBLE_EQ(w.window_average(clock.now() - seconds(1)), 10.0);
  for (int i = 0; i < 10; ++i) {
    w.record(clock.now(), 0);
    clock.advance(seconds(1));
  }
  EXPECT_DOUBLE_EQ(w.window_average(clock.now() - seconds(1)), 0.0);
}

TEST(BucketWindow, StableAverageOverWholeWindow) {
  ManualClock clock;
  BucketWindow w(seconds(60));
  for (int i = 0; i < 120; ++i) {
    w.record(clock.now(), i < 90 ? 0 : 60);  // last 30 s at 60
    clock.advance(seconds(1));
  }
  EXPECT_DOUBLE_EQ(w.window_average(clock.now() - seconds(1)), 30.0);
}

TEST(BucketWindow, NothingForAWindowIsEmpty) {
  ManualClock clock;
  BucketWindow w(seconds(6));
  w.record(clock.now(), 5);
  clock.advance(seconds(6));
  EXPECT_FALSE(w.is_empty(clock.now()));
  clock.advance(seconds(1));
  EXPECT_TRUE(w.is_empty(clock.now()));
  EXPECT_EQ(w.window_average(clock.now()), 0.0);
}

TEST(MaxTimeWindow, KeepsMaximumOverDuration) {
  ManualClock clock;
  MaxTimeWindow w(seconds(10), seconds(2));
  EXPECT_EQ(w.current(), 0);
  w.record(clock.now(), 5);
  clock.advance(seconds(2));
  w.record(clock.now(), 3);
  EXPECT_EQ(w.current(), 5);
  clock.advance(seconds(8));
  w.record(clock.now(), 1);  // 5 is now 10 s (5 buckets) old: out
  EXPECT_EQ(w.current(), 3);
  clock.advance(seconds(10));
  w.record(clock.now(), 2);
  EXPECT_EQ(w.current(), 2);
}

TEST(MaxTimeWindow, SameBucketKeepsLarger) {
  ManualClock clock;
  MaxTimeWindow w(seconds(2), seconds(2));
  w.record(clock.now(), 4);
  w.record(clock.now(), 2);
  EXPECT_EQ(w.current(), 4);
  w.record(clock.now(), 9);
  EXPECT_EQ(w.current(), 9);
}

}  // namespace
}  // namespace sluice::autoscaler
