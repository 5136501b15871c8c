#pragma once
// The most recent events that triggers gave up on: dead-lettered (the sink took them) or dropped (no
// sink), with Knative's error extensions, for the dashboard and `sluice status`. Memory only and
// bounded; the dead-letter sink remains the durable record.

#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace sluice {

struct DeadLetterRecord {
  std::int64_t unix_millis = 0;
  std::string broker;
  std::string trigger;
  std::string outcome;  // "deadLettered" or "dropped"
  std::string sink;     // the dead-letter sink's URL; empty when dropped
  std::string id, type, source;
  std::string error;       // what the last attempt got ("HTTP 500", "connection refused", …)
  std::string error_dest;  // knativeerrordest
  int error_code = 0;      // knativeerrorcode; 0 without an HTTP response
  std::string error_data;  // the start of the subscriber's response body (knativeerrordata, decoded)
};

class DeadLetterJournal {
 public:
  static DeadLetterJournal& global();
  explicit DeadLetterJournal(std::size_t capacity = 100) : capacity_(capacity) {}

  void record(DeadLetterRecord record);
  /// Newest first.
  std::vector<DeadLetterRecord> recent() const;
  /// Forgets a deleted trigger's records.
  void forget(const std::string& broker, const std::string& trigger);

  static nlohmann::json to_json(const DeadLetterRecord& record);

 private:
  const std::size_t capacity_;
  mutable std::mutex mu_;
  std::deque<DeadLetterRecord> records_;  // oldest first
};

}  // namespace sluice
