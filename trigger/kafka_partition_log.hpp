#pragma once
// KafkaPartitionLog: one assigned Kafka partition seen as an EventLog, so that a TriggerDispatcher (retries,
// backoff, dead letters, replies, ordering, low-water-mark commits) delivers Kafka records unchanged.
//
// The consumer thread of a KafkaGroupDispatcher push()es records in offset order (Kafka offsets, with
// gaps where compaction or transaction markers left them: the dispatcher skips gaps). read(from) serves
// records at or after `from` and removes what it returns: the dispatcher reads each offset once, in
// order, so the buffer only holds what was fetched and not yet read. The consumer pauses the partition
// while full() and resumes it once half is read, which keeps memory flat however large the lag.

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>

#include "broker/event_log.hpp"

namespace sluice {

class KafkaPartitionLog final : public EventLog {
 public:
  /// `next_offset`: the partition's position (the committed offset where consumption starts).
  KafkaPartitionLog(std::uint64_t next_offset, std::size_t capacity);

  /// Adds a fetched record (offsets increasing) and tells subscribers. Consumer thread.
  void push(LogRecord record);
  /// Records fetched and not yet read.
  std::size_t buffered() const;
  bool full() const { return buffered() >= capacity_; }
  std::size_t capacity() const { return capacity_; }

  /// Not writable: fails with 405.
  void append(std::vector<std::string> payloads, AppendCallback done) override;
  Result<std::vector<LogRecord>> read(std::uint64_t from, std::size_t max_records,
                                      std::size_t max_bytes = 4 << 20) const override;
  std::uint64_t start_offset() const override;
  std::uint64_t end_offset() const override;
  std::uint64_t subscribe(std::function<void(std::uint64_t end_offset)> on_durable) override;
  void unsubscribe(std::uint64_t id) override;
  Status flush() override { return ok(); }
  void close() override {}

 private:
  const std::size_t capacity_;
  mutable std::mutex mu_;
  mutable std::deque<LogRecord> records_;
  std::uint64_t end_ = 0;               // one past the last pushed offset (or the starting position)
  mutable std::uint64_t read_end_ = 0;  // one past the last offset read()

  std::recursive_mutex subs_mu_;  // held while callbacks run, so unsubscribe() waits for a running one
  std::map<std::uint64_t, std::function<void(std::uint64_t)>> subs_;
  std::uint64_t next_sub_ = 1;
};

}  // namespace sluice
