#include "sources/kafka_source_spec.hpp"

#include "broker/broker_spec.hpp"
#include "broker/kafka_client.hpp"

namespace sluice {
namespace {

Error field_error(const std::string& field, const std::string& message) {
  return make_error(field, message, 400);
}

}  // namespace

Result<KafkaSourceSpec> parse_kafka_source(const nlohmann::json& manifest) {
  KafkaSourceSpec spec;
  if (!manifest.contains("kind") || manifest["kind"] != "KafkaSource")
    return field_error("kind", "must be KafkaSource");
  auto name = manifest_name(manifest);
  if (!name) return name.error();
  spec.name = name.value();
  spec.consumer_group = "sluice-kafkasource-" + spec.name;
  const auto& metadata = manifest["metadata"];
  if (metadata.contains("annotations")) {
    if (!metadata["annotations"].is_object())
      return field_error("metadata.annotations", "must be an object of strings");
    for (const auto& [key, value] : metadata["annotations"].items()) {
      if (!value.is_string()) return field_error("metadata.annotations[" + key + "]", "must be a string");
      spec.annotations[key] = value.get<std::string>();
    }
  }
  if (auto it = spec.annotations.find(kDeliveryOrderAnnotation); it != spec.annotations.end()) {
    if (it->second == "ordered") {
      spec.order = DeliveryOrder::Ordered;
    } else if (it->second == "unordered") {
      spec.order = DeliveryOrder::Unordered;
    } else {
      return field_error(std::string("metadata.annotations[") + kDeliveryOrderAnnotation + "]",
                         "must be \"ordered\" or \"unordered\", got \"" + it->second + "\"");
    }
  }
  if (!manifest.contains("spec") || !manifest["spec"].is_object())
    return field_error("spec", "is required: bootstrapServers, topics and sink");
  const auto& s = manifest["spec"];
  for (const auto& [key, value] : s.items()) {
    (void)value;
    if (key != "bootstrapServers" && key != "topics" && key != "consumerGroup" && key != "initialOffset" &&
        key != "consumers" && key != "sink" && key != "delivery" && key != "config")
      return field_error(
          "spec." + key,
          "unknown field (known: bootstrapServers, topics, consumerGroup, initialOffset, consumers, "
          "sink, delivery, config)");
  }
  if (!s.contains("bootstrapServers"))
    return field_error("spec.bootstrapServers", "is required: host:port of the Kafka cluster (a list)");
  auto servers = bootstrap_servers_of(s["bootstrapServers"], "spec.bootstrapServers");
  if (!servers) return servers.error();
  spec.bootstrap_servers = servers.value();
  if (!s.contains("topics")) return field_error("spec.topics", "is required: the topics to read (a list)");
  if (s["topics"].is_string()) {
    spec.topics.push_back(s["topics"].get<std::string>());
  } else if (s["topics"].is_array()) {
    for (const auto& topic : s["topics"]) {
      if (!topic.is_string() || topic.get<std::string>().empty())
        return field_error("spec.topics", "must be a list of topic names");
      spec.topics.push_back(topic.get<std::string>());
    }
  } else {
    return field_error("spec.topics", "must be a list of topic names");
  }
  if (spec.topics.empty()) return field_error("spec.topics", "must name at least one topic");
  if (s.contains("consumerGroup")) {
    if (!s["consumerGroup"].is_string() || s["consumerGroup"].get<std::string>().empty())
      return field_error("spec.consumerGroup", "must be a non-empty string");
    spec.consumer_group = s["consumerGroup"].get<std::string>();
  }
  if (s.contains("initialOffset")) {
    const auto& v = s["initialOffset"];
    if (!v.is_string() || (v != "earliest" && v != "latest"))
      return field_error("spec.initialOffset", "must be \"earliest\" or \"latest\" (the default)");
    spec.start_at_earliest = v == "earliest";
  }
  if (s.contains("consumers") && (!s["consumers"].is_number_integer() || s["consumers"].get<int>() < 1))
    return field_error("spec.consumers", "must be a positive integer");
  if (!s.contains("sink") || !s["sink"].is_object())
    return field_error("spec.sink", "is required: {ref: {kind: Broker, name: …}} or {uri: http://…}");
  const auto& sink = s["sink"];
  if (sink.contains("ref") && sink["ref"].is_object() && sink["ref"].value("kind", "") == "Broker") {
    const auto& ref = sink["ref"];
    for (const auto& [key, value] : ref.items()) {
      (void)value;
      if (key != "apiVersion" && key != "kind" && key != "name" && key != "namespace")
        return field_error("spec.sink.ref." + key,
                           "unknown field (known: apiVersion, kind, name, namespace)");
    }
    if (!ref.contains("name") || !ref["name"].is_string() ||
        !is_valid_resource_name(ref["name"].get<std::string>()))
      return field_error("spec.sink.ref.name", "is required: the name of the Broker");
    if (sink.contains("uri")) return field_error("spec.sink.uri", "cannot be combined with a Broker ref");
    spec.sink_broker = ref["name"].get<std::string>();
    spec.sink.ref = SubscriberRef{ref.value("apiVersion", ""), "Broker", *spec.sink_broker, {}, {}};
  } else {
    auto destination = parse_destination(sink, "spec.sink");
    if (!destination) return destination.error();
    spec.sink = destination.value();
  }
  if (s.contains("delivery")) {
    auto delivery = parse_delivery(s["delivery"], "spec.delivery");
    if (!delivery) return delivery.error();
    spec.delivery = delivery.value();
  }
  if (s.contains("config")) {
    auto config = parse_kafka_config(s["config"], "spec.config");
    if (!config) return config.error();
    spec.config = std::move(config).value();
  }
  return spec;
}

}  // namespace sluice
