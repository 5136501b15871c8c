#include <gtest/gtest.h>

#include "core/clock.hpp"
#include "trigger/trigger_spec.hpp"

namespace sluice {
namespace {

using std::chrono::milliseconds;

DeliverySpec delivery(BackoffPolicy policy, int delay_ms, int max_ms = 0) {
  DeliverySpec d;
  d.backoff_policy = policy;
  d.backoff_delay = milliseconds(delay_ms);
  if (max_ms > 0) d.backoff_max = milliseconds(max_ms);
  return d;
}

TEST(Backoff, ExponentialDoublesFromTheDelay) {
  auto d = delivery(BackoffPolicy::Exponential, 200);
  EXPECT_EQ(backoff_delay(d, 1), milliseconds(200));
  EXPECT_EQ(backoff_delay(d, 2), milliseconds(400));
  EXPECT_EQ(backoff_delay(d, 3), milliseconds(800));
  EXPECT_EQ(backoff_delay(d, 10), milliseconds(200 * 512));
}

TEST(Backoff, LinearGrowsByTheDelay) {
  auto d = delivery(BackoffPolicy::Linear, 250);
  EXPECT_EQ(backoff_delay(d, 1), milliseconds(250));
  EXPECT_EQ(backoff_delay(d, 2), milliseconds(500));
  EXPECT_EQ(backoff_delay(d, 7), milliseconds(1750));
}

TEST(Backoff, DefaultsAreExponentialFrom200ms) {
  DeliverySpec d;
  EXPECT_EQ(backoff_delay(d, 1), milliseconds(200));
  EXPECT_EQ(backoff_delay(d, 4), milliseconds(1600));
}

TEST(Backoff, BackoffMaxCaps) {
  auto d = delivery(BackoffPolicy::Exponential, 100, 1000);
  EXPECT_EQ(backoff_delay(d, 4), milliseconds(800));
  EXPECT_EQ(backoff_delay(d, 5), milliseconds(1000));
  EXPECT_EQ(backoff_delay(d, 50), milliseconds(1000));
  auto l = delivery(BackoffPolicy::Linear, 100, 250);
  EXPECT_EQ(backoff_delay(l, 3), milliseconds(250));
}

TEST(Backoff, SaturatesInsteadOfOverflowing) {
  auto d = delivery(BackoffPolicy::Exponential, 200);
  auto huge = backoff_delay(d, 100000);
  EXPECT_GT(huge, milliseconds(0));
  EXPECT_GE(huge, backoff_delay(d, 40));
  EXPECT_EQ(backoff_delay(delivery(BackoffPolicy::Exponential, 200, 5000), 100000), milliseconds(5000));
}

TEST(Backoff, RetryNumberBelowOneIsTheFirstRetry) {
  auto d = delivery(BackoffPolicy::Exponential, 10);
  EXPECT_EQ(backoff_delay(d, 0), milliseconds(10));
  EXPECT_EQ(backoff_delay(d, -3), milliseconds(10));
}

TEST(Backoff, ZeroDelayRetriesImmediately) {
  auto d = delivery(BackoffPolicy::Exponential, 0);
  EXPECT_EQ(backoff_delay(d, 5), milliseconds(0));
}

TEST(RetryAfter, DelaySeconds) {
  ManualClock clock;
  EXPECT_EQ(parse_retry_after("3", clock.wall()), milliseconds(3000));
  EXPECT_EQ(parse_retry_after(" 0 ", clock.wall()), milliseconds(0));
  EXPECT_EQ(parse_retry_after("120", clock.wall()), milliseconds(120000));
  EXPECT_GT(parse_retry_after("99999999999999999999", clock.wall()).value(), milliseconds(0));
}

TEST(RetryAfter, HttpDateRelativeToTheClock) {
  // 1994-11-06T08:49:37Z
  ManualClock clock(SteadyTime{}, WallTime{} + std::chrono::seconds(784111777 - 10));
  EXPECT_EQ(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", clock.wall()), milliseconds(10000));
  EXPECT_EQ(parse_retry_after("Sunday, 06-Nov-94 08:49:37 GMT", clock.wall()), milliseconds(10000));
  EXPECT_EQ(parse_retry_after("Sun Nov  6 08:49:37 1994", clock.wall()), milliseconds(10000));
  clock.advance(std::chrono::seconds(4));
  EXPECT_EQ(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", clock.wall()), milliseconds(6000));
  clock.advance(std::chrono::seconds(60));
  EXPECT_EQ(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", clock.wall()), milliseconds(0));
}

// Dates past 2262 (where a nanosecond time_point overflows) and far-off delays wait as long as a year,
// which retryAfterMax then caps; they are not dropped as if the header had not been sent.
TEST(RetryAfter, FarFutureDatesSaturateAtAYear) {
  ManualClock clock(SteadyTime{}, WallTime{} + std::chrono::seconds(1'700'000'000));
  const milliseconds year{365LL * 24 * 3600 * 1000};
  EXPECT_EQ(parse_retry_after("Sat, 01 Jan 2263 00:00:00 GMT", clock.wall()), year);
  EXPECT_EQ(parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT", clock.wall()), year);
  EXPECT_EQ(parse_retry_after("Thu, 31 Dec 2099 00:00:00 GMT", clock.wall()), year);
  EXPECT_EQ(parse_retry_after("99999999999", clock.wall()), year);
}

TEST(RetryAfter, Malformed) {
  ManualClock clock;
  for (const char* bad :
       {"", "soon", "-1", "1.5", "3s", "Sun, 32 Nov 1994 08:49:37 GMT", "Sun, 06 Foo 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 25:49:37 GMT", "Sun, 06 Nov 1994 08:49:37 PST"})
    EXPECT_FALSE(parse_retry_after(bad, clock.wall())) << bad;
}

}  // namespace
}  // namespace sluice
