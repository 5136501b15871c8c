#pragma once
// KafkaLog: the EventLog of a Broker with `spec.storage: kafka`, keeping its events in a Kafka topic.
//
//   spec:
//     storage: kafka
//     kafka:
//       bootstrapServers: [kafka-1:9092, kafka-2:9092]   # or "a:9092,b:9092"
//       topic: sluice-broker-NAME                        # default; created if absent
//       partitions: 10                                   # used when the topic is created
//       replicationFactor: 1                             # used when the topic is created (3 in production)
//       config: {linger.ms: "5"}                         # extra librdkafka producer properties
//
// Open: the cluster must answer within admin_timeout. A cluster that refuses the client (SASL credentials,
// TLS certificates) fails open() at once with librdkafka's reason and the properties to check, so that the
// broker's status says why it is not ready.
//
// Kafka unreachable: records wait in the producer's queue (librdkafka reconnects by itself) and each
// append completes when Kafka acknowledges its records or when message.timeout.ms (30 s unless
// spec.kafka.config sets it) runs out, with an error (503): a publish is answered 202 after a short
// outage, 503 with Retry-After after a long one, and never 202 for records Kafka did not acknowledge.
//
// Write side: every append is produced with acks=all and idempotence (no duplicates from the producer's
// own retries, order kept per partition), in binary content mode of the Kafka protocol binding
// (core/kafka_binding.hpp: ce_ headers, the data as the value, partitionkey as the record key), so any
// Kafka client (kcat, Knative's Kafka broker) reads the events. `done` fires from the producer's poll
// thread once every record of the batch has its delivery report: only then does the ingress answer 202.
// A batch is not atomic in Kafka: if one record fails the batch reports the error, and the records that
// did land stay (the publisher's retry may store them twice; at-least-once).
//
// Read side: a Kafka-backed broker is read by consumer groups (one per Trigger, trigger/kafka_group.hpp),
// not through this object: read() returns no records and start_offset() == end_offset() == 0, so the
// embedded-log paths (idempotency rebuild, the file dispatcher) see an empty log.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "broker/broker_spec.hpp"
#include "broker/event_log.hpp"
#include "broker/kafka_client.hpp"
#include "core/result.hpp"

namespace sluice {

/// spec.kafka of a Broker with storage: kafka.
struct KafkaBrokerSettings {
  std::string bootstrap_servers;
  std::string topic;
  int partitions = 10;
  int replication_factor = 1;
  KafkaConfig config;  // extra librdkafka properties
};

/// Parses spec.kafka; errors name the field (spec.kafka.bootstrapServers, …) and what is right.
Result<KafkaBrokerSettings> parse_kafka_broker_settings(const BrokerSpec& spec);

struct KafkaLogOptions {
  KafkaBrokerSettings settings;
  /// The values of settings.config.secrets, looked up by the caller.
  std::map<std::string, std::string> resolved_secrets;
  /// Name used in log lines ("[broker=NAME]").
  std::string name;
  /// Bound of records produced and not yet acknowledged by Kafka; over it, append() fails with 503.
  std::size_t max_pending_records = 100000;
  /// A record not acknowledged within this time fails its batch: the publisher gets 503 after waiting this
  /// long for an unreachable cluster. message.timeout.ms in settings.config, when set, takes its place.
  std::chrono::milliseconds delivery_timeout{30000};
  /// Longest wait for the topic's creation in open().
  std::chrono::milliseconds admin_timeout{10000};
  /// Called from the poll thread with each batch's time from append() to its last delivery report.
  std::function<void(std::chrono::nanoseconds)> on_delivered;
};

struct KafkaLogStats {
  std::uint64_t records = 0;   // records acknowledged by Kafka
  std::uint64_t batches = 0;   // appends completed successfully
  std::uint64_t failed = 0;    // appends that reported an error
  std::uint64_t rejected = 0;  // appends refused at once (queue full, closed, not a CloudEvent)
};

class KafkaLog final : public EventLog {
 public:
  /// Creates the topic unless it exists and starts the producer. Blocking (up to admin_timeout).
  static Result<std::unique_ptr<KafkaLog>> open(KafkaLogOptions options);
  ~KafkaLog() override;
  KafkaLog(const KafkaLog&) = delete;
  KafkaLog& operator=(const KafkaLog&) = delete;

  /// `payloads` are events in the protobuf format (what the broker registry stores); each becomes one
  /// Kafka record. `done` gets the offset of the first record in its partition.
  void append(std::vector<std::string> payloads, AppendCallback done) override;
  Result<std::vector<LogRecord>> read(std::uint64_t from, std::size_t max_records,
                                      std::size_t max_bytes = 4 << 20) const override;
  std::uint64_t start_offset() const override { return 0; }
  std::uint64_t end_offset() const override { return 0; }
  std::uint64_t subscribe(std::function<void(std::uint64_t end_offset)> on_durable) override;
  void unsubscribe(std::uint64_t id) override;
  Status flush() override;
  void close() override;

  const KafkaBrokerSettings& settings() const { return options_.settings; }
  KafkaLogStats stats() const;

 private:
  struct Batch;
  explicit KafkaLog(KafkaLogOptions options);
  static void on_delivery_report(rd_kafka_t* rk, const rd_kafka_message_t* message, void* opaque);
  static void on_error(rd_kafka_t* rk, int err, const char* reason, void* opaque);
  void finish_records(Batch* batch, std::size_t count, const rd_kafka_message_t* message);
  void poll_loop();

  const KafkaLogOptions options_;
  KafkaHandle producer_;
  KafkaErrors errors_;
  std::thread poller_;
  std::atomic<bool> closing_{false};
  std::atomic<bool> closed_{false};
  std::atomic<std::uint64_t> records_{0};
  std::atomic<std::uint64_t> batches_{0};
  std::atomic<std::uint64_t> failed_{0};
  std::atomic<std::uint64_t> rejected_{0};
  std::atomic<std::uint64_t> unfinished_{0};  // appends waiting for their delivery reports
};

}  // namespace sluice
