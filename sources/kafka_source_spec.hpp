#pragma once
// The KafkaSource resource, in Knative's shape (sources.knative.dev/v1beta1):
//
//   apiVersion: sources.knative.dev/v1beta1
//   kind: KafkaSource
//   metadata:
//     name: orders
//     annotations: {kafka.eventing.knative.dev/delivery.order: ordered}   # default; or unordered
//   spec:
//     bootstrapServers: [kafka:9092]
//     topics: [orders]
//     consumerGroup: orders-source          # default: sluice-kafkasource-<name>
//     initialOffset: latest                 # or earliest: where a partition the group never read starts
//     consumers: 1                          # accepted for compatibility (one consumer per sluice node)
//     sink: {ref: {kind: Broker, name: default}}     # or {uri: http://…}; uri with ref appends a path
//     delivery: {retry: 5, backoffDelay: PT0.2S, deadLetterSink: {uri: …}, maxInFlight: 100}
//     config: {session.timeout.ms: "6000"}  # Sluice: extra librdkafka consumer properties
//
// Ordered (the default, as in Knative's KafkaSource): records of one partition with the same key are
// delivered one at a time in offset order (retries included); different keys run in parallel up to
// delivery.maxInFlight. Unordered: up to maxInFlight records of a partition at once.

#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "broker/kafka_client.hpp"
#include "core/result.hpp"
#include "trigger/trigger_spec.hpp"

namespace sluice {

struct KafkaSourceSpec {
  std::string name;
  std::map<std::string, std::string> annotations;
  std::string bootstrap_servers;  // comma-separated
  std::vector<std::string> topics;
  std::string consumer_group;
  bool start_at_earliest = false;
  std::optional<std::string> sink_broker;  // sink.ref {kind: Broker}
  Destination sink;                        // otherwise: a uri, or an Agent/Service ref
  DeliverySpec delivery;
  DeliveryOrder order = DeliveryOrder::Ordered;
  KafkaConfig config;

  bool operator==(const KafkaSourceSpec&) const = default;
};

/// Parses and validates a KafkaSource manifest; errors name the field (Error.subject) and what is right.
Result<KafkaSourceSpec> parse_kafka_source(const nlohmann::json& manifest);

}  // namespace sluice
