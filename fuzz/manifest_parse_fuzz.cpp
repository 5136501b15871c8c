// Fuzz target: manifests as `sluice apply` reads them (multi-document YAML or JSON), then every
// document through the validators of Broker, Trigger, Agent, EventPolicy and KafkaSource, and trigger
// filter compilation. Any input must give a result or a
// clear error, never a crash or a hang.

#include <cstddef>
#include <cstdint>
#include <string>

#include "agents/agent_spec.hpp"
#include "broker/broker_spec.hpp"
#include "core/manifest.hpp"
#include "server/event_policy.hpp"
#include "sources/kafka_source_spec.hpp"
#include "trigger/filter.hpp"
#include "trigger/trigger_spec.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto docs = sluice::parse_manifests(text);
  if (!docs) return 0;
  for (const auto& doc : docs.value()) {
    (void)sluice::parse_broker(doc);
    (void)sluice::agents::parse_agent(doc);
    (void)sluice::parse_trigger(doc);
    (void)sluice::parse_event_policy(doc);
    (void)sluice::parse_kafka_source(doc);
    if (doc.is_object() && doc.contains("spec") && doc["spec"].is_object()) {
      const auto& spec = doc["spec"];
      if (spec.contains("filters")) (void)sluice::Filter::from_dialects(spec["filters"], "spec.filters");
      if (spec.contains("filter")) (void)sluice::Filter::from_attributes(spec["filter"], "spec.filter");
    }
    (void)sluice::to_yaml(doc);
  }
  return 0;
}
