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

TEST(CloudEventValidate, MinimalEventIsValid) {
  EXPECT_TRUE(validate(minimal()).empty());
}

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

std::string message_for(const CloudEvent& e, const std::string& attribute) {
  for (const auto& v : validate(e))
    if (v.attribute == attribute) return v.message;
  return "";
}

TEST(CloudEventValidate, ExtensionNamedDataIsRefused) {
  auto e = minimal();
  e.set_attribute("data", "v");  // how a `ce-data` header or `--ext data=v` arrives
  EXPECT_EQ(violated(e), std::vector<std::string>{"data"});
  EXPECT_NE(message_for(e, "data").find("reserved for the event's payload"), std::string::npos);
  e.extensions.clear();
  e.extensions["dataref"] = AttributeValue::of_string("v");
  e.extensions["data1"] = AttributeValue::of_string("v");
  EXPECT_TRUE(validate(e).empty());
}

TEST(CloudEventValidate, StringsRefuseControlCharacters) {
  auto e = minimal();
  e.subject =
      "a\x07"
      "b";
  EXPECT_EQ(violated(e), std::vector<std::string>{"subject"});
  EXPECT_EQ(message_for(e, "subject"),
            "contains U+0007, a control character, which CloudEvents strings may not hold");
  e.subject = std::string("a\0b", 3);
  EXPECT_EQ(message_for(e, "subject"),
            "contains U+0000, a control character, which CloudEvents strings may not hold");
  e.subject = "tab\there";
  EXPECT_EQ(violated(e), std::vector<std::string>{"subject"});
  e.subject = "del\x7f";
  EXPECT_NE(message_for(e, "subject").find("U+007F"), std::string::npos);
  e.subject = "c1 \xc2\x9f";  // U+009F, the last C1 control
  EXPECT_NE(message_for(e, "subject").find("U+009F, a control character"), std::string::npos);
  e.subject = "nbsp \xc2\xa0 é 日本 😀";  // U+00A0 and beyond are allowed
  EXPECT_TRUE(validate(e).empty());

  e = minimal();
  e.id = "id\n";
  e.type = "t\r";
  e.extensions["comment"] = AttributeValue::of_string("line\nbreak");
  EXPECT_EQ(violated(e), (std::vector<std::string>{"id", "type", "comment"}));
}

TEST(CloudEventValidate, StringsRefuseSurrogatesAndNoncharacters) {
  auto e = minimal();
  e.subject = "\xed\xa0\x80";  // U+D800 written as UTF-8 (CESU-8 style)
  EXPECT_NE(message_for(e, "subject").find("U+D800, a surrogate code point"), std::string::npos);
  e.subject = "\xed\xbf\xbf";  // U+DFFF
  EXPECT_NE(message_for(e, "subject").find("U+DFFF, a surrogate code point"), std::string::npos);
  for (const char* nonchar : {"\xef\xb7\x90", "\xef\xb7\xaf", "\xef\xbf\xbe", "\xef\xbf\xbf",
                              "\xf0\x9f\xbf\xbe", "\xf4\x8f\xbf\xbf"}) {
    e.subject = std::string("x") + nonchar;
    EXPECT_NE(message_for(e, "subject").find("a Unicode noncharacter"), std::string::npos) << nonchar;
  }
  e.subject = "\xef\xb7\x8f \xef\xb7\xb0 \xef\xbf\xbd \xf0\x9f\xbf\xbd";  // U+FDCF, U+FDF0, U+FFFD, U+1FFFD
  EXPECT_TRUE(validate(e).empty());
  e.subject = "\xff";
  EXPECT_EQ(message_for(e, "subject"), "is not UTF-8 (byte 0xFF at offset 0)");
}

TEST(CloudEventValidate, UrisAndTypedExtensionsRefuseDisallowedCharacters) {
  auto e = minimal();
  e.source = "/path/\xc2\x85";  // U+0085 (NEL), non-ASCII so the URI check lets it through
  e.dataschema = "https://example.com/\xef\xbf\xbe";
  e.extensions["ref"] = AttributeValue::of_uri_ref("/a\xc2\x80");
  e.extensions["uri"] = AttributeValue::of_uri("https://example.com/\xef\xb7\xa0");
  e.extensions["bytes"] = AttributeValue::of_binary(std::string("\0\x07\xff", 3));  // bytes are not a String
  EXPECT_EQ(violated(e), (std::vector<std::string>{"source", "dataschema", "ref", "uri"}));
  EXPECT_NE(message_for(e, "source").find("U+0085, a control character"), std::string::npos);
  EXPECT_NE(message_for(e, "dataschema").find("U+FFFE, a Unicode noncharacter"), std::string::npos);
  e.source = "/path/caf\xc3\xa9";
  e.dataschema = "https://example.com/schema";
  e.extensions.erase("ref");
  e.extensions.erase("uri");
  EXPECT_TRUE(validate(e).empty());
}

TEST(CloudEventValidate, DataContentTypeIsMediaType) {
  auto e = minimal();
  for (const char* ok :
       {"application/json", "application/json; charset=utf-8", "text/plain", "application/cloudevents+json",
        "application/octet-stream", "application/vnd.apache.thrift.binary", "application/avro",
        "image/svg+xml; charset=utf-8", "text/plain; version=0.0.4; charset=utf-8", "Text/Plain; x=y",
        "text/plain;charset=UTF-8", "multipart/form-data; boundary=----WebKitFormBoundary7MA4YWxkTrZu0gW",
        "multipart/mixed; boundary=\"simple boundary\"", "text/plain; a=\"q\\\"uote\"", "application/json;",
        "application/x-www-form-urlencoded", "application/vnd.api+json"}) {
    e.datacontenttype = ok;
    EXPECT_TRUE(validate(e).empty()) << ok;
  }
  for (const char* bad :
       {"not a media type", "text", "text/", "/plain", "text/plain/x", "text /plain", "text/plain; charset",
        "text/plain; charset=", "text/plain; charset = utf-8", "text/plain; a=\"open", "text/plain; a=b c",
        "text/plain ", "text/plain,text/html", "text/pl\xc3\xa4in"}) {
    e.datacontenttype = bad;
    EXPECT_EQ(violated(e), std::vector<std::string>{"datacontenttype"}) << bad;
  }
  e.datacontenttype = "not a media type";
  EXPECT_NE(message_for(e, "datacontenttype").find("got \"not a media type\""), std::string::npos);
  e.datacontenttype = "text/plain;\tcharset=utf-8";  // a tab is a control character
  EXPECT_NE(message_for(e, "datacontenttype").find("U+0009"), std::string::npos);
  e.datacontenttype = "";
  EXPECT_EQ(violated(e), std::vector<std::string>{"datacontenttype"});
}

TEST(CloudEventValidate, UriAuthorityBracketsMustBalance) {
  auto e = minimal();
  for (const char* ok : {"http://[::1]", "http://[::1]:8080/path", "//[fe80::1%25eth0]/x",
                         "http://user@[::1]/", "https://example.com/a?b=[c]", "/relative/[x]"}) {
    e.source = ok;
    EXPECT_TRUE(validate(e).empty()) << ok;
  }
  for (const char* bad : {"http://[::1", "http://[::1/path", "//[::1", "http://::1]/", "http://[::1]x/",
                          "http://[[::1]]/", "http://a[b]/", "http://us[er@host/"}) {
    e.source = bad;
    EXPECT_EQ(violated(e), std::vector<std::string>{"source"}) << bad;
  }
  e.source = "/s";
  e.dataschema = "http://[::1";
  EXPECT_EQ(violated(e), std::vector<std::string>{"dataschema"});
  e.dataschema = "http://[::1]/schema.json";
  EXPECT_TRUE(validate(e).empty());
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
  EXPECT_EQ(*parse_rfc3339_millis("2026-11-22T12:00:00+02:00"),
            *parse_rfc3339_millis("2026-11-22T10:00:00Z"));
}

}  // namespace
}  // namespace sluice
