#pragma once
// Small pieces shared by everything in Sluice that talks to Kafka through librdkafka: owning handles,
// client configuration from a map, conversion between librdkafka messages and KafkaRecord (the codec's
// view, core/kafka_binding.hpp), and topic creation.

#include <librdkafka/rdkafka.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include <nlohmann/json.hpp>

#include "core/kafka_binding.hpp"
#include "core/result.hpp"
#include "core/secret_ref.hpp"

namespace sluice {

struct KafkaHandleDeleter {
  void operator()(rd_kafka_t* rk) const { rd_kafka_destroy(rk); }
};
/// An rd_kafka_t destroyed with rd_kafka_destroy (which, for a consumer, must follow
/// rd_kafka_consumer_close).
using KafkaHandle = std::unique_ptr<rd_kafka_t, KafkaHandleDeleter>;

struct KafkaPartitionListDeleter {
  void operator()(rd_kafka_topic_partition_list_t* list) const {
    rd_kafka_topic_partition_list_destroy(list);
  }
};
using KafkaPartitionList = std::unique_ptr<rd_kafka_topic_partition_list_t, KafkaPartitionListDeleter>;

/// Builds a configuration from librdkafka property names and values. Error (code 400) names the property.
Result<rd_kafka_conf_t*> make_kafka_conf(const std::map<std::string, std::string>& properties);

/// The `config` of a KafkaSource or of a broker on Kafka: extra librdkafka properties (SSL and SASL
/// among them), each a string, number or boolean, or `{secretKeyRef: {name, key}}` for what must not
/// sit in a manifest (`sasl.password`, `ssl.key.password`, …).
struct KafkaConfig {
  std::map<std::string, std::string> values;
  std::map<std::string, SecretRef> secrets;
  bool operator==(const KafkaConfig&) const = default;
};

/// Parses and checks `config` at `field` against librdkafka (property names and values; secret values
/// are checked when used). Errors name `field.PROPERTY`.
Result<KafkaConfig> parse_kafka_config(const nlohmann::json& v, const std::string& field);

/// Every property with its secrets looked up; errors name `field.PROPERTY` and the Secret.
Result<std::map<std::string, std::string>> resolve_kafka_config(const KafkaConfig& config,
                                                                const SecretResolver& resolve,
                                                                const std::string& field);

/// The record a consumed message carries (key, headers, value, timestamp). Does not take ownership.
KafkaRecord record_of(const rd_kafka_message_t& message);

/// Produces `record` to `topic` (partition chosen by the partitioner from the key), with `opaque`
/// handed to the delivery report. Returns the librdkafka error (RD_KAFKA_RESP_ERR_NO_ERROR when queued).
rd_kafka_resp_err_t produce_record(rd_kafka_t* producer, const std::string& topic, const KafkaRecord& record,
                                   void* opaque);

/// Creates `topic` unless it exists (CreateTopics with the topic `configs`, such as cleanup.policy, waiting
/// up to `timeout`). Blocking: call from a thread that may block. An existing topic is fine whatever its
/// partition count and configs.
Status ensure_kafka_topic(rd_kafka_t* client, const std::string& topic, int partitions,
                          int replication_factor, std::chrono::milliseconds timeout,
                          const std::map<std::string, std::string>& configs = {});

/// Number of partitions of `topic` (0 when it does not exist or the cluster does not answer). Blocking.
int kafka_partition_count(rd_kafka_t* client, const std::string& topic, std::chrono::milliseconds timeout);

/// What a client's error callback (rd_kafka_conf_set_error_cb) heard from librdkafka, kept so that the
/// client can say why it cannot use the cluster. Thread-safe.
class KafkaErrors {
 public:
  /// Records one error callback's `err` and `reason`.
  void note(int err, const char* reason);
  /// The latest reason ("all brokers are down" only when nothing more precise came before), "" if none.
  std::string last() const;
  /// The first error that reconnecting will not cure, "" if none: the cluster refused the SASL
  /// credentials, or TLS failed (the cluster's certificate is not trusted here, or the cluster refused
  /// ours or its absence), with a hint naming the properties to check.
  std::string refusal() const;
  /// Forgets the refusal (the cluster took the client after all, e.g. its ACLs were fixed).
  void clear_refusal();

 private:
  mutable std::mutex mu_;
  std::string last_;
  std::string refusal_;
};

/// Waits up to `timeout` for the cluster to answer a metadata request, polling `client` meanwhile so that its
/// error callback (which feeds `errors`) runs. Error (503, no subject) at once when `errors` holds a refusal
/// ("refused the connection: REASON (HINT)"), or at the timeout with the last error librdkafka reported
/// ("did not answer within N ms (last error: REASON)"). Blocking. For a producer: a consumer serves its
/// error callback from rd_kafka_consumer_poll.
Status wait_for_kafka(rd_kafka_t* client, const KafkaErrors& errors, std::chrono::milliseconds timeout);

/// Comma-separated bootstrap servers from a string or a list of strings; Error names `field`.
Result<std::string> bootstrap_servers_of(const nlohmann::json& value, const std::string& field);

}  // namespace sluice
