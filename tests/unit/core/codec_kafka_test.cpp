#include <gtest/gtest.h>

#include <string>

#include "core/kafka_binding.hpp"

namespace sluice {
namespace {

CloudEvent kafka_sample() {
  CloudEvent e;
  e.id = "1234-1234-1234";
  e.source = "/mycontext/subcontext";
  e.type = "com.example.someevent";
  e.time = "2018-04-05T03:56:24Z";
  e.subject = "h\xC3\xA9llo \"raw\" 100%";
  e.datacontenttype = "application/avro";
  e.data = std::string("\x00\x02\xff", 3);
  e.extensions["partitionkey"] = AttributeValue::of_string("mykey");
  e.extensions["count"] = AttributeValue::of_string("5");
  return e;
}

const std::string* header(const KafkaRecord& r, const std::string& name) {
  for (const auto& [k, v] : r.headers)
    if (k == name) return &v;
  return nullptr;
}

TEST(KafkaBinding, BinaryModeRoundTrip) {
  auto e = kafka_sample();
  auto r = encode_kafka(e);
  EXPECT_EQ(r.key, "mykey");
  EXPECT_EQ(*header(r, "ce_partitionkey"), "mykey");  // the event keeps its partitionkey (§3.1)
  EXPECT_EQ(*header(r, "ce_subject"), *e.subject);    // no percent-encoding in Kafka
  EXPECT_EQ(*header(r, "content-type"), "application/avro");
  EXPECT_EQ(header(r, "ce_datacontenttype"), nullptr);
  EXPECT_EQ(r.value, e.data);
  EXPECT_EQ(r.timestamp_ms, -1);  // the producer's clock (KafkaBinding.RecordTimestampIsTheProducersClock)
  EXPECT_TRUE(is_cloudevent_record(r));
  auto back = decode_kafka(r);
  ASSERT_TRUE(back) << back.error().to_string();
  EXPECT_EQ(back.value(), e);
}

// The record timestamp is when the record is produced, not the event's `time`: Kafka rolls and deletes
// segments by record timestamps (segment.ms, retention.ms), so an event with an old `time` (a replay, a
// device with a wrong clock) would be deleted minutes after it was stored, and brokers refuse records
// too far in the future (log.message.timestamp.after.max.ms).
TEST(KafkaBinding, RecordTimestampIsTheProducersClock) {
  for (const std::string time : {"1999-01-01T00:00:00Z", "1960-01-01T00:00:00Z", "9999-12-31T23:59:59Z"}) {
    auto e = kafka_sample();
    e.time = time;
    for (auto mode : {KafkaMode::Binary, KafkaMode::Structured}) {
      auto r = encode_kafka(e, mode);
      EXPECT_EQ(r.timestamp_ms, -1) << time;
      auto back = decode_kafka(r);
      ASSERT_TRUE(back) << back.error().to_string();
      EXPECT_EQ(back.value().time, time);
    }
  }
}

TEST(KafkaBinding, StructuredModeRoundTrip) {
  auto e = kafka_sample();
  auto r = encode_kafka(e, KafkaMode::Structured);
  EXPECT_EQ(r.key, "mykey");
  EXPECT_EQ(*header(r, "content-type"), "application/cloudevents+json; charset=utf-8");
  ASSERT_TRUE(r.value);
  EXPECT_TRUE(is_cloudevent_record(r));
  auto back = decode_kafka(r);
  ASSERT_TRUE(back) << back.error().to_string();
  EXPECT_EQ(back.value(), e);
  // No data: structured mode still has a value (§3.3.2).
  e.data.reset();
  EXPECT_TRUE(encode_kafka(e, KafkaMode::Structured).value);
}

// A broker's own topic is read back with Validation::stored: a record written under laxer rules is
// decoded in both modes, while a publish-time decode refuses it.
TEST(KafkaBinding, StoredRecordsAreDecodedWithoutThePublishRules) {
  KafkaRecord binary;
  binary.headers = {{"ce_specversion", "1.0"},
                    {"ce_id", "1"},
                    {"ce_source", "/s"},
                    {"ce_type", "t"},
                    {"ce_subject", "a\tb"}};
  EXPECT_FALSE(decode_kafka(binary));
  auto stored = decode_kafka(binary, Validation::stored);
  ASSERT_TRUE(stored) << stored.error().to_string();
  EXPECT_EQ(stored.value().subject, "a\tb");
  KafkaRecord structured;
  structured.headers = {{"content-type", "application/cloudevents+json"}};
  structured.value =
      R"({"specversion":"1.0","id":"2","source":"/s","type":"t","datacontenttype":"not a media type"})";
  EXPECT_FALSE(decode_kafka(structured));
  EXPECT_TRUE(decode_kafka(structured, Validation::stored));
  // What delivery needs is still checked.
  binary.headers.pop_back();
  binary.headers.erase(binary.headers.begin() + 3);  // no ce_type
  EXPECT_FALSE(decode_kafka(binary, Validation::stored));
}

TEST(KafkaBinding, BinaryModeWithoutDataIsATombstone) {
  auto e = kafka_sample();
  e.data.reset();
  e.datacontenttype.reset();
  e.extensions.erase("partitionkey");
  auto r = encode_kafka(e);
  EXPECT_FALSE(r.value);
  EXPECT_FALSE(r.key);
  EXPECT_EQ(header(r, "content-type"), nullptr);
  auto back = decode_kafka(r);
  ASSERT_TRUE(back);
  EXPECT_FALSE(back.value().data);
  EXPECT_EQ(back.value(), e);
}

// The content-type header maps to datacontenttype both ways (§3.2.1): an event without one is stored
// without one, even when its data is JSON, so that it reads back unchanged (filters on a Kafka-backed
// broker see what the publisher sent).
TEST(KafkaBinding, BinaryModeKeepsAnAbsentDatacontenttype) {
  auto e = kafka_sample();
  e.datacontenttype.reset();
  e.data = R"({"a":1})";
  auto r = encode_kafka(e);
  EXPECT_EQ(header(r, "content-type"), nullptr);
  auto back = decode_kafka(r);
  ASSERT_TRUE(back) << back.error().to_string();
  EXPECT_FALSE(back.value().datacontenttype);
  EXPECT_EQ(back.value(), e);
}

TEST(KafkaBinding, SpecBinaryExample) {
  KafkaRecord r;
  r.key = "mykey";
  r.headers = {{"ce_specversion", "1.0"},
               {"ce_type", "com.example.someevent"},
               {"ce_source", "/mycontext/subcontext"},
               {"ce_id", "1234-1234-1234"},
               {"ce_time", "2018-04-05T03:56:24Z"},
               {"content-type", "application/avro"}};
  r.value = "avro bytes";
  auto e = decode_kafka(r);
  ASSERT_TRUE(e) << e.error().to_string();
  EXPECT_EQ(e.value().datacontenttype, "application/avro");
  EXPECT_EQ(e.value().data, "avro bytes");
  EXPECT_TRUE(e.value().extensions.empty());  // the key is not an attribute
}

TEST(KafkaBinding, SpecStructuredExample) {
  KafkaRecord r;
  r.headers = {{"content-type", "application/cloudevents+json; charset=UTF-8"}};
  r.value = R"({ "specversion" : "1.0", "type" : "com.example.someevent",
                 "source" : "/mycontext/subcontext", "id" : "1234-1234-1234",
                 "time" : "2018-04-05T03:56:24Z", "datacontenttype" : "application/xml",
                 "data" : "<a/>" })";
  auto e = decode_kafka(r);
  ASSERT_TRUE(e) << e.error().to_string();
  EXPECT_EQ(e.value().data, "<a/>");
}

TEST(KafkaBinding, RecognisesCloudEventRecords) {
  KafkaRecord plain;
  plain.headers = {{"content-type", "application/json"}};
  plain.value = "{}";
  EXPECT_FALSE(is_cloudevent_record(plain));
  plain.headers.emplace_back("CE_SPECVERSION", "1.0");
  EXPECT_TRUE(is_cloudevent_record(plain));
  KafkaRecord structured;
  structured.headers = {{"Content-Type", "Application/CloudEvents+json"}};
  EXPECT_TRUE(is_cloudevent_record(structured));
}

TEST(KafkaBinding, BinaryValueThatLooksLikeJsonSurvivesStructuredMode) {
  // Regression (fuzz): a value starting with JSON and followed by a NUL byte was embedded as JSON.
  KafkaRecord r;
  r.headers = {{"ce_specversion", "1.0"}, {"ce_type", "t"}, {"ce_source", "/s"}, {"ce_id", "1"}};
  r.value = std::string("{}\0\0\x0fn\n\nhel\n$", 12);
  auto e = decode_kafka(r);
  ASSERT_TRUE(e);
  auto back = decode_kafka(encode_kafka(e.value(), KafkaMode::Structured));
  ASSERT_TRUE(back) << back.error().to_string();
  EXPECT_EQ(back.value(), e.value());
}

TEST(KafkaBinding, MalformedRecordsAreErrors) {
  auto base = [] {
    KafkaRecord r;
    r.headers = {{"ce_specversion", "1.0"}, {"ce_type", "t"}, {"ce_source", "/s"}, {"ce_id", "1"}};
    return r;
  };
  auto r = base();
  r.headers.pop_back();
  auto e = decode_kafka(r);
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error().subject, "id");
  r = base();
  r.headers.emplace_back("ce_subject", "\xC0\xA0");
  e = decode_kafka(r);
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error().subject, "subject");
  r = base();
  r.headers.emplace_back("ce_id", "2");
  e = decode_kafka(r);
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error().subject, "id");
  KafkaRecord s;
  s.headers = {{"content-type", "application/cloudevents+avro"}};
  s.value = "x";
  e = decode_kafka(s);
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error().code, 415);
  s.headers = {{"content-type", "application/cloudevents+json"}};
  s.value.reset();
  e = decode_kafka(s);
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error().code, 400);
  s.value = "{bad json";
  EXPECT_FALSE(decode_kafka(s));
}

}  // namespace
}  // namespace sluice
