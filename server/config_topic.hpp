#pragma once
// The resource definitions of a cluster of `sluice serve` nodes, kept in a compacted Kafka topic
// (`--config-store kafka://HOST:PORT[,HOST:PORT]/TOPIC[?PROPERTY=VALUE&...]`).
//
// Every record is one resource: key `Kind/name`, value the stored resource as JSON (manifest,
// generation, timestamps), a tombstone (null value) when it was deleted. Compaction keeps the latest
// record of each key, so the topic is the cluster's current configuration. A node reads the topic to its
// end before it is ready, then follows it: a change applied on any node reaches every node in order.
// A node writes a change with acks=all and answers the client only once its own follower has applied
// it (read-your-writes).

#include <librdkafka/rdkafka.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "broker/kafka_client.hpp"
#include "core/result.hpp"

namespace sluice {

struct ConfigStoreUrl {
  std::string bootstrap_servers;
  std::string topic = "sluice-config";
  std::map<std::string, std::string> properties;  // librdkafka client properties (SSL, SASL, …)
};

/// Parses `kafka://HOST:PORT[,HOST:PORT…][/TOPIC][?PROPERTY=VALUE&…]`; errors say what is expected.
Result<ConfigStoreUrl> parse_config_store_url(std::string_view url);

/// One record of the topic.
struct ConfigRecord {
  std::string key;
  std::optional<std::string> value;  // nullopt: a tombstone
  std::int32_t partition = 0;
  std::int64_t offset = 0;
};

class KafkaConfigTopic {
 public:
  /// Creates the topic unless it exists (one partition, cleanup.policy=compact) and connects a producer
  /// and a reader. `timeout` bounds each blocking step (topic creation, a write, reading to the end).
  static Result<std::unique_ptr<KafkaConfigTopic>> open(const ConfigStoreUrl& url,
                                                        std::chrono::milliseconds timeout);
  ~KafkaConfigTopic();
  KafkaConfigTopic(const KafkaConfigTopic&) = delete;
  KafkaConfigTopic& operator=(const KafkaConfigTopic&) = delete;

  /// Every record from the beginning to the end of the topic as of this call, in offset order per
  /// partition. Blocking. Error (503) when the cluster does not answer within the timeout.
  Result<std::vector<ConfigRecord>> read_to_end();

  /// After read_to_end: calls `apply` from a thread of its own for every later record, in order.
  void follow(std::function<void(const ConfigRecord&)> apply);

  /// Writes `key` = `value` (nullopt: a tombstone), acknowledged by all in-sync replicas. Blocking.
  /// Returns the record's position; error (503) when the cluster did not take it within the timeout.
  Result<ConfigRecord> write(const std::string& key, const std::optional<std::string>& value);

  /// Waits until the follower has applied the record at `written`. False after `timeout`.
  bool wait_applied(const ConfigRecord& written, std::chrono::milliseconds timeout);

  /// Stops following (idempotent; the destructor calls it).
  void stop();

  const std::string& topic() const { return url_.topic; }

 private:
  KafkaConfigTopic() = default;
  static void on_delivery(rd_kafka_t*, const rd_kafka_message_t* message, void*);
  static void on_error(rd_kafka_t*, int err, const char* reason, void* opaque);
  Result<std::vector<ConfigRecord>> read_until(const std::map<std::int32_t, std::int64_t>& ends);
  void mark_applied(std::int32_t partition, std::int64_t offset);

  ConfigStoreUrl url_;
  std::chrono::milliseconds timeout_{10000};
  KafkaErrors errors_;  // what the producer's error callback heard: why the cluster cannot be used
  KafkaHandle producer_;
  KafkaHandle reader_;
  std::mutex write_mu_;
  std::mutex applied_mu_;
  std::condition_variable applied_cv_;
  std::map<std::int32_t, std::int64_t> applied_;  // partition → next offset to apply
  std::atomic<bool> stopping_{false};
  std::thread follower_;
};

}  // namespace sluice
