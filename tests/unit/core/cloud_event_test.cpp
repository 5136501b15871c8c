#include "core/cloud_event.hpp"

#include <gtest/gtest.h>

namespace sluice {
namespace {

CloudEvent minimal() {
  CloudEvent e;
  e.id = "A234-1234-1234";
  e.source = "https://github.com/cloudevents/spec/pull";
  e.type = "com.github.pull_request.opened";
  return e;
}

std::vector<std::string> violated(const CloudEvent& e) {
  std::vector<std::string> names;
  for (const auto& v : validate(e)) names.push_back(v.attribute);
  return names;
}

TEST(CloudEventValidate, MinimalEventIsValid) { EXPECT_TRUE(validate(minimal()).empty()); }

TEST(CloudEventValidate, RequiredAttributesMustBeNonEmpty) {
  CloudEvent e;
  e.specversion = "";
  EXPECT_EQ(violated(e), (std::vector<std::string>{"id", "source", "type", "specversion"}));
}

TEST(CloudEventValidate, SpecVersionMustBe10) {
  auto e = minimal();
  e.specversion = "0.3";
  EXPECT_EQ(violated(e), std::vector<std::string>{"specversion"});
}

TEST(CloudEventValidate, SourceIsUriReference) {
  auto e = minimal();
  e.source = "/relative/path";
  EXPECT_TRUE(validate(e).empty());
  e.source = "urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66";
  EXPECT_TRUE(validate(e).empty());
  e.source = "has space";
  EXPECT_EQ(violated(e), std::vector<std::string>{"source"});
  e.source = "bad%zz";
  EXPECT_EQ(violated(e), std::vector<std::string>{"source"});
}

TEST(CloudEventValidate, TimeIsRfc3339) {
  auto e = minimal();
  e.time = "2018-04-05T17:31:00Z";
  EXPECT_TRUE(validate(e).empty());
  e.time = "2018-04-05T17:31:00.123456+02:00";
  EXPECT_TRUE(validate(e).empty());
  e.time = "2018-02-30T17:31:00Z";
  EXPECT_EQ(violated(e), std::vector<std::string>{"time"});
  e.time = "yesterday";
  EXPECT_EQ(violated(e), std::vector<std::string>{"time"});
}

TEST(CloudEventValidate, DataSchemaIsAbsoluteUri) {
  auto e = minimal();
  e.dataschema = "https://example.com/schema.json";
  EXPECT_TRUE(validate(e).empty());
  e.dataschema = "/relative";
  EXPECT_EQ(violated(e), std::vector<std::string>{"dataschema"});
}

TEST(CloudEventValidate, ExtensionNamesAreLowercaseAlphanumeric) {
  auto e = minimal();
  e.extensions["comexampleextension1"] = AttributeValue::of_string("value");
  EXPECT_TRUE(validate(e).empty());
  e.extensions["Bad_Name"] = AttributeValue::of_string("x");
  EXPECT_EQ(violated(e), std::vector<std::string>{"Bad_Name"});
}

TEST(CloudEventAttributes, LookupCoversContextAndExtensions) {
  auto e = minimal();
  e.subject = "123";
  e.extensions["partitionkey"] = AttributeValue::of_string("k1");
  e.extensions["count"] = AttributeValue::of_int(7);
  ASSERT_NE(e.attribute_text("type"), nullptr);
  EXPECT_EQ(*e.attribute_text("type"), "com.github.pull_request.opened");
  EXPECT_EQ(*e.attribute_text("subject"), "123");
  EXPECT_EQ(*e.attribute_text("partitionkey"), "k1");
  EXPECT_EQ(e.attribute("count")->integer, 7);
  EXPECT_EQ(e.attribute_text("dataschema"), nullptr);
  EXPECT_FALSE(e.attribute("missing").has_value());
}

TEST(CloudEventAttributes, SetAndEraseByName) {
  auto e = minimal();
  e.set_attribute("subject", "s");
  e.set_attribute("traceparent", "00-abc");
  EXPECT_EQ(e.subject, "s");
  EXPECT_EQ(e.extensions.at("traceparent").text, "00-abc");
  EXPECT_TRUE(e.erase_attribute("subject"));
  EXPECT_FALSE(e.erase_attribute("id"));
  EXPECT_TRUE(e.erase_attribute("traceparent"));
  EXPECT_FALSE(e.subject.has_value());
}

TEST(CloudEventData, JsonContentTypes) {
  auto e = minimal();
  EXPECT_TRUE(e.data_is_json());
  e.datacontenttype = "application/json; charset=utf-8";
  EXPECT_TRUE(e.data_is_json());
  e.datacontenttype = "application/vnd.api+json";
  EXPECT_TRUE(e.data_is_json());
  e.datacontenttype = "text/plain";
  EXPECT_FALSE(e.data_is_json());
}

TEST(Rfc3339, RoundTripsMillis) {
  auto ms = parse_rfc3339_millis("2026-11-22T10:00:00.123Z");
  ASSERT_TRUE(ms);
  EXPECT_EQ(format_rfc3339(*ms), "2026-11-22T10:00:00.123Z");
  EXPECT_EQ(*parse_rfc3339_millis("2026-11-22T12:00:00+02:00"), *parse_rfc3339_millis("2026-11-22T10:00:00Z"));
}

}  // namespace
}  // namespace sluice
