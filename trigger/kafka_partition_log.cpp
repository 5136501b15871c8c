#include "trigger/kafka_partition_log.hpp"

namespace sluice {

KafkaPartitionLog::KafkaPartitionLog(std::uint64_t next_offset, std::size_t capacity)
    : capacity_(capacity), end_(next_offset), read_end_(next_offset) {}

void KafkaPartitionLog::push(LogRecord record) {
  std::uint64_t end = 0;
  {
    std::lock_guard lock(mu_);
    if (record.offset < end_) return;  // fetched again after a seek: already buffered or read
    end_ = record.offset + 1;
    end = end_;
    records_.push_back(std::move(record));
  }
  std::lock_guard lock(subs_mu_);
  for (auto& [id, callback] : subs_) callback(end);
}

std::size_t KafkaPartitionLog::buffered() const {
  std::lock_guard lock(mu_);
  return records_.size();
}

void KafkaPartitionLog::append(std::vector<std::string>, AppendCallback done) {
  done(make_error("kafka partition", "is read-only (events are produced to the topic)", 405));
}

Result<std::vector<LogRecord>> KafkaPartitionLog::read(std::uint64_t from, std::size_t max_records,
                                                       std::size_t max_bytes) const {
  std::lock_guard lock(mu_);
  while (!records_.empty() && records_.front().offset < from) records_.pop_front();
  // The dispatcher reads each offset once and never before its previous read's end: what is returned
  // leaves the buffer.
  std::vector<LogRecord> out;
  std::size_t bytes = 0;
  while (!records_.empty()) {
    const LogRecord& record = records_.front();
    if (out.size() >= max_records || (!out.empty() && bytes + record.payload.size() > max_bytes)) break;
    bytes += record.payload.size();
    read_end_ = record.offset + 1;
    out.push_back(std::move(records_.front()));
    records_.pop_front();
  }
  return out;
}

std::uint64_t KafkaPartitionLog::start_offset() const {
  std::lock_guard lock(mu_);
  return records_.empty() ? read_end_ : records_.front().offset;
}

std::uint64_t KafkaPartitionLog::end_offset() const {
  std::lock_guard lock(mu_);
  return end_;
}

std::uint64_t KafkaPartitionLog::subscribe(std::function<void(std::uint64_t)> on_durable) {
  std::lock_guard lock(subs_mu_);
  const std::uint64_t id = next_sub_++;
  subs_.emplace(id, std::move(on_durable));
  return id;
}

void KafkaPartitionLog::unsubscribe(std::uint64_t id) {
  std::lock_guard lock(subs_mu_);
  subs_.erase(id);
}

}  // namespace sluice
