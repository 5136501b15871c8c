#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/kafka_binding.hpp"
#include "sources/kafka_record_event.hpp"
#include "sources/kafka_source_spec.hpp"

namespace sluice {
namespace {

nlohmann::json source_manifest() {
  return nlohmann::json::parse(R"({
    "apiVersion": "sources.knative.dev/v1beta1", "kind": "KafkaSource",
    "metadata": {"name": "orders"},
    "spec": {"bootstrapServers": ["k1:9092", "k2:9092"], "topics": ["orders"],
             "sink": {"ref": {"apiVersion": "eventing.knative.dev/v1", "kind": "Broker", "name": "default"}}}})");
}

TEST(KafkaSourceSpec, DefaultsFollowKnative) {
  auto spec = parse_kafka_source(source_manifest());
  ASSERT_TRUE(spec) << spec.error().to_string();
  EXPECT_EQ(spec.value().bootstrap_servers, "k1:9092,k2:9092");
  EXPECT_EQ(spec.value().topics, std::vector<std::string>{"orders"});
  EXPECT_EQ(spec.value().consumer_group, "sluice-kafkasource-orders");
  EXPECT_FALSE(spec.value().start_at_earliest);
  EXPECT_EQ(spec.value().order, DeliveryOrder::Ordered);
  ASSERT_TRUE(spec.value().sink_broker);
  EXPECT_EQ(*spec.value().sink_broker, "default");
}

TEST(KafkaSourceSpec, ReadsEveryField) {
  auto m = source_manifest();
  m["metadata"]["annotations"] = {{"kafka.eventing.knative.dev/delivery.order", "unordered"}};
  m["spec"]["consumerGroup"] = "g1";
  m["spec"]["initialOffset"] = "earliest";
  m["spec"]["sink"] = {{"uri", "http://127.0.0.1:9/x"}};
  m["spec"]["delivery"] = {{"retry", 3}};
  m["spec"]["config"] = {{"session.timeout.ms", 6000},
                         {"security.protocol", "SASL_SSL"},
                         {"sasl.password", {{"secretKeyRef", {{"name", "kafka"}, {"key", "password"}}}}}};
  auto spec = parse_kafka_source(m);
  ASSERT_TRUE(spec) << spec.error().to_string();
  EXPECT_EQ(spec.value().consumer_group, "g1");
  EXPECT_TRUE(spec.value().start_at_earliest);
  EXPECT_EQ(spec.value().order, DeliveryOrder::Unordered);
  EXPECT_FALSE(spec.value().sink_broker);
  EXPECT_EQ(spec.value().sink.uri, "http://127.0.0.1:9/x");
  EXPECT_EQ(spec.value().delivery.retries(), 3);
  EXPECT_EQ(spec.value().config.values.at("session.timeout.ms"), "6000");
  EXPECT_EQ(spec.value().config.secrets.at("sasl.password"), (SecretRef{"kafka", "password"}));
  EXPECT_EQ(spec.value().config.values.count("sasl.password"), 0u) << "a reference, not a value";
}

TEST(KafkaSourceSpec, ErrorsNameTheField) {
  struct Case {
    std::function<void(nlohmann::json&)> edit;
    std::string field;
  };
  const std::vector<Case> cases = {
      {[](nlohmann::json& m) { m["spec"].erase("bootstrapServers"); }, "spec.bootstrapServers"},
      {[](nlohmann::json& m) { m["spec"]["bootstrapServers"] = 5; }, "spec.bootstrapServers"},
      {[](nlohmann::json& m) { m["spec"].erase("topics"); }, "spec.topics"},
      {[](nlohmann::json& m) { m["spec"]["topics"] = nlohmann::json::array(); }, "spec.topics"},
      {[](nlohmann::json& m) { m["spec"]["initialOffset"] = "middle"; }, "spec.initialOffset"},
      {[](nlohmann::json& m) { m["spec"].erase("sink"); }, "spec.sink"},
      {[](nlohmann::json& m) { m["spec"]["sink"]["ref"].erase("name"); }, "spec.sink.ref.name"},
      {[](nlohmann::json& m) {
         m["spec"]["sink"] = {{"ref", {{"kind", "Pod"}, {"name", "x"}}}};
       },
       "spec.sink.ref.kind"},
      {[](nlohmann::json& m) {
         m["spec"]["delivery"] = {{"retry", "many"}};
       },
       "spec.delivery.retry"},
      {[](nlohmann::json& m) {
         m["spec"]["config"] = {{"no.such.property", "1"}};
       },
       "spec.config.no.such.property"},
      {[](nlohmann::json& m) {
         m["spec"]["config"] = {{"sasl.password", {{"secretKeyRef", {{"name", "kafka"}}}}}};
       },
       "spec.config.sasl.password.secretKeyRef.key"},
      {[](nlohmann::json& m) { m["spec"]["net"] = nlohmann::json::object(); }, "spec.net"},
      {[](nlohmann::json& m) { m["spec"]["consumers"] = 0; }, "spec.consumers"},
      {[](nlohmann::json& m) {
         m["metadata"]["annotations"] = {{kDeliveryOrderAnnotation, "random"}};
       },
       std::string("metadata.annotations[") + kDeliveryOrderAnnotation + "]"},
  };
  for (const auto& c : cases) {
    auto m = source_manifest();
    c.edit(m);
    auto spec = parse_kafka_source(m);
    ASSERT_FALSE(spec) << c.field;
    EXPECT_EQ(spec.error().subject, c.field) << spec.error().to_string();
    EXPECT_EQ(spec.error().code, 400);
  }
}

TEST(KafkaRecordEvent, ConvertsAPlainRecordAsKnativeDoes) {
  KafkaRecord record;
  record.key = "customer-7";
  record.value = R"({"total":12})";
  record.timestamp_ms = 1714564800123;  // 2024-05-01T12:00:00.123Z
  record.headers = {{"content-type", "application/json"}, {"Trace-ID", "abc"}, {"x_retry.count", "2"}};
  auto event = kafka_record_to_event(record, "orders", "shop.orders", 3, 42);
  ASSERT_TRUE(event) << event.error().to_string();
  const CloudEvent& e = event.value();
  EXPECT_EQ(e.id, "partition:3/offset:42");
  EXPECT_EQ(e.type, "dev.knative.kafka.event");
  EXPECT_EQ(e.source, "/apis/v1/namespaces/default/kafkasources/orders#shop.orders");
  EXPECT_EQ(e.subject, "partition:3#42");
  EXPECT_EQ(e.time, "2024-05-01T12:00:00.123Z");
  EXPECT_EQ(e.datacontenttype, "application/json");
  EXPECT_EQ(e.data, R"({"total":12})");
  ASSERT_NE(e.attribute_text("key"), nullptr);
  EXPECT_EQ(*e.attribute_text("key"), "customer-7");
  EXPECT_EQ(*e.attribute_text("partitionkey"), "customer-7");
  EXPECT_EQ(*e.attribute_text("kafkaheadertraceid"), "abc");
  EXPECT_EQ(*e.attribute_text("kafkaheaderxretrycount"), "2");
  EXPECT_EQ(e.attribute_text("kafkaheadercontenttype"), nullptr);
  EXPECT_TRUE(validate(e).empty());
}

// Keys and header values are bytes: one that is no CloudEvents String (binary, a control character)
// becomes a Binary extension, and a content-type header that is no media type is kept as an extension,
// so that the event is valid and the broker takes it.
TEST(KafkaRecordEvent, BinaryKeysAndHeadersBecomeBinaryExtensions) {
  KafkaRecord record;
  record.key = std::string("\x00\xff\x01", 3);
  record.value = "v";
  record.headers = {{"trace", "line\nbreak"}, {"content-type", "not a media type"}, {"ok", "fine"}};
  auto event = kafka_record_to_event(record, "s", "t", 0, 0);
  ASSERT_TRUE(event) << event.error().to_string();
  const CloudEvent& e = event.value();
  EXPECT_EQ(e.extensions.at("key").type, AttributeType::Binary);
  EXPECT_EQ(e.extensions.at("key").text, std::string("\x00\xff\x01", 3));
  EXPECT_EQ(e.extensions.at("partitionkey").type, AttributeType::Binary);
  EXPECT_EQ(e.extensions.at("kafkaheadertrace").type, AttributeType::Binary);
  EXPECT_EQ(e.extensions.at("kafkaheaderok").type, AttributeType::String);
  EXPECT_FALSE(e.datacontenttype);
  EXPECT_EQ(*e.attribute_text("kafkaheadercontenttype"), "not a media type");
  EXPECT_TRUE(validate(e).empty());
}

TEST(KafkaRecordEvent, NullKeyAndValueAndNoTimestamp) {
  KafkaRecord record;
  auto event = kafka_record_to_event(record, "s", "t", 0, 0);
  ASSERT_TRUE(event);
  EXPECT_EQ(event.value().attribute_text("key"), nullptr);
  EXPECT_EQ(event.value().attribute_text("partitionkey"), nullptr);
  EXPECT_FALSE(event.value().time);
  EXPECT_FALSE(event.value().data);
  EXPECT_FALSE(event.value().datacontenttype);
}

CloudEvent sample_event() {
  CloudEvent e;
  e.id = "evt-1";
  e.source = "/orders";
  e.type = "order.created";
  e.subject = "o-1";
  e.time = "2024-05-01T12:00:00Z";
  e.datacontenttype = "application/json";
  e.data = R"({"a":1})";
  e.extensions["partitionkey"] = AttributeValue::of_string("cust-1");
  e.extensions["tenant"] = AttributeValue::of_string("acme");
  return e;
}

TEST(KafkaRecordEvent, BinaryCloudEventsPassThroughUnchanged) {
  const CloudEvent e = sample_event();
  auto event = kafka_record_to_event(encode_kafka(e, KafkaMode::Binary), "s", "t", 1, 9);
  ASSERT_TRUE(event) << event.error().to_string();
  EXPECT_EQ(event.value(), e);
}

TEST(KafkaRecordEvent, StructuredCloudEventsPassThroughUnchanged) {
  const CloudEvent e = sample_event();
  auto event = kafka_record_to_event(encode_kafka(e, KafkaMode::Structured), "s", "t", 1, 9);
  ASSERT_TRUE(event) << event.error().to_string();
  EXPECT_EQ(event.value(), e);
}

// A record that claims to be a CloudEvent but is not a valid one is converted like any other record (as
// Knative's KafkaSource does), so that no record of the topic is lost.
TEST(KafkaRecordEvent, AnInvalidCloudEventRecordIsConvertedLikeAPlainRecord) {
  KafkaRecord record;
  record.key = "k";
  record.value = "v";
  record.headers = {{"ce_specversion", "1.0"}, {"ce_type", "t"}, {"content-type", "text/plain"}};  // no id
  auto event = kafka_record_to_event(record, "s", "orders", 2, 7);
  ASSERT_TRUE(event) << event.error().to_string();
  const CloudEvent& e = event.value();
  EXPECT_EQ(e.id, "partition:2/offset:7");
  EXPECT_EQ(e.type, "dev.knative.kafka.event");
  EXPECT_EQ(e.source, "/apis/v1/namespaces/default/kafkasources/s#orders");
  EXPECT_EQ(*e.attribute_text("kafkaheadercespecversion"), "1.0");
  EXPECT_EQ(*e.attribute_text("kafkaheadercetype"), "t");
  EXPECT_EQ(*e.attribute_text("partitionkey"), "k");
  EXPECT_EQ(e.datacontenttype, "text/plain");
  EXPECT_EQ(e.data, "v");
  EXPECT_TRUE(validate(e).empty());
}

// A structured-mode record whose value is no JSON event, or whose event format is not JSON: the
// content-type stays a header extension, since the data is not in that format.
TEST(KafkaRecordEvent, AnUnreadableStructuredRecordIsConvertedLikeAPlainRecord) {
  for (const std::string content_type :
       {"application/cloudevents+json; charset=utf-8", "application/cloudevents+avro"}) {
    KafkaRecord record;
    record.value = "{not json";
    record.headers = {{"content-type", content_type}};
    auto event = kafka_record_to_event(record, "s", "t", 0, 3);
    ASSERT_TRUE(event) << content_type << ": " << event.error().to_string();
    const CloudEvent& e = event.value();
    EXPECT_EQ(e.id, "partition:0/offset:3");
    EXPECT_FALSE(e.datacontenttype) << content_type;
    EXPECT_EQ(*e.attribute_text("kafkaheadercontenttype"), content_type);
    EXPECT_EQ(e.data, "{not json");
    EXPECT_TRUE(validate(e).empty());
  }
}

}  // namespace
}  // namespace sluice
