#include "broker/token_bucket.hpp"

#include <gtest/gtest.h>

namespace sluice {
namespace {

TEST(TokenBucket, AllowsTheBurstThenTheRate) {
  ManualClock clock;
  TokenBucket bucket(10, 20, clock);
  for (int i = 0; i < 20; ++i) EXPECT_FALSE(bucket.take(1)) << i;
  auto wait = bucket.take(1);
  ASSERT_TRUE(wait);
  EXPECT_EQ(wait->count(), 100);  // one token at 10/s
  clock.advance(std::chrono::milliseconds(100));
  EXPECT_FALSE(bucket.take(1));
  EXPECT_TRUE(bucket.take(1));
  clock.advance(std::chrono::seconds(10));  // refills only up to the burst
  EXPECT_FALSE(bucket.take(20));
  EXPECT_TRUE(bucket.take(1));
}

TEST(TokenBucket, ABatchTakesAllItsTokensOrNone) {
  ManualClock clock;
  TokenBucket bucket(5, 5, clock);
  EXPECT_FALSE(bucket.take(3));
  auto wait = bucket.take(3);  // 2 left: nothing taken
  ASSERT_TRUE(wait);
  EXPECT_EQ(wait->count(), 200);
  EXPECT_FALSE(bucket.take(2));
  auto too_big = bucket.take(50);  // larger than the burst: the time for a full bucket
  ASSERT_TRUE(too_big);
  EXPECT_EQ(too_big->count(), 1000);
}

TEST(TokenBucket, AWaitIsNeverZeroAndRefusedTokensCanBeGivenBack) {
  ManualClock clock;
  TokenBucket bucket(1, 2, clock);
  EXPECT_EQ(bucket.burst(), 2);
  auto wait = bucket.take(3);  // more than the burst, with a full bucket
  ASSERT_TRUE(wait);
  EXPECT_GE(wait->count(), 1);
  EXPECT_FALSE(bucket.take(2));
  bucket.give_back(1);
  EXPECT_FALSE(bucket.take(1));
  EXPECT_TRUE(bucket.take(1));
}

}  // namespace
}  // namespace sluice
