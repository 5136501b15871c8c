#include "trigger/low_water_mark.hpp"

#include <gtest/gtest.h>

namespace sluice {
namespace {

TEST(LowWaterMark, StartsAtTheCursor) {
  LowWaterMark m(40);
  EXPECT_EQ(m.low(), 40u);
  EXPECT_EQ(m.next(), 40u);
  EXPECT_EQ(m.pending(), 0u);
}

TEST(LowWaterMark, InOrderCompletion) {
  LowWaterMark m(0);
  m.add(0);
  m.add(1);
  EXPECT_EQ(m.low(), 0u);
  m.complete(0);
  EXPECT_EQ(m.low(), 1u);
  m.complete(1);
  EXPECT_EQ(m.low(), 2u);
  EXPECT_EQ(m.next(), 2u);
}

TEST(LowWaterMark, OutOfOrderCompletionNeverSkipsAGap) {
  LowWaterMark m(10);
  for (std::uint64_t o = 10; o < 15; ++o) m.add(o);
  m.complete(11);
  m.complete(13);
  m.complete(14);
  EXPECT_EQ(m.low(), 10u);
  m.complete(10);
  EXPECT_EQ(m.low(), 12u);
  m.complete(12);
  EXPECT_EQ(m.low(), 15u);
  EXPECT_EQ(m.pending(), 0u);
}

TEST(LowWaterMark, GapsInTheLogCountAsDone) {
  LowWaterMark m(0);
  m.skip_to(100);  // records 0..99 were removed by retention
  EXPECT_EQ(m.low(), 100u);
  m.add(100);
  m.add(105);  // 101..104 missing
  EXPECT_EQ(m.next(), 106u);
  m.complete(100);
  EXPECT_EQ(m.low(), 105u);
  m.complete(105);
  EXPECT_EQ(m.low(), 106u);
  m.skip_to(50);  // never backwards
  EXPECT_EQ(m.next(), 106u);
}

TEST(LowWaterMark, UnknownCompletionIsIgnored) {
  LowWaterMark m(5);
  m.add(5);
  m.complete(99);
  EXPECT_EQ(m.low(), 5u);
}

}  // namespace
}  // namespace sluice
