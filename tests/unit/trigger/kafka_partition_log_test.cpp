#include <gtest/gtest.h>

#include "trigger/kafka_partition_log.hpp"

namespace sluice {
namespace {

LogRecord record(std::uint64_t offset) {
  return LogRecord{offset, 0, "p" + std::to_string(offset)};
}

TEST(KafkaPartitionLog, StartsAtTheCommittedPosition) {
  KafkaPartitionLog log(40, 10);
  EXPECT_EQ(log.start_offset(), 40u);
  EXPECT_EQ(log.end_offset(), 40u);
  EXPECT_TRUE(log.read(40, 10).value().empty());
}

TEST(KafkaPartitionLog, ServesRecordsInOrderAndForgetsWhatWasRead) {
  KafkaPartitionLog log(0, 3);
  std::uint64_t notified = 0;
  log.subscribe([&](std::uint64_t end) { notified = end; });
  log.push(record(0));
  log.push(record(1));
  log.push(record(5));  // a gap (compaction, transaction markers)
  EXPECT_EQ(notified, 6u);
  EXPECT_EQ(log.end_offset(), 6u);
  EXPECT_TRUE(log.full());
  auto first = log.read(0, 2).value();
  ASSERT_EQ(first.size(), 2u);
  EXPECT_EQ(first[1].payload, "p1");
  EXPECT_EQ(log.buffered(), 1u);
  EXPECT_FALSE(log.full());
  auto second = log.read(2, 10).value();
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second[0].offset, 5u);
  EXPECT_EQ(log.buffered(), 0u);
  EXPECT_EQ(log.start_offset(), 6u);
}

TEST(KafkaPartitionLog, IgnoresRecordsFetchedAgain) {
  KafkaPartitionLog log(0, 10);
  log.push(record(0));
  log.push(record(1));
  log.push(record(1));
  EXPECT_EQ(log.buffered(), 2u);
}

TEST(KafkaPartitionLog, IsReadOnly) {
  KafkaPartitionLog log(0, 10);
  int code = 0;
  log.append({"x"}, [&](Result<std::uint64_t> r) { code = r ? 0 : r.error().code; });
  EXPECT_EQ(code, 405);
}

}  // namespace
}  // namespace sluice
