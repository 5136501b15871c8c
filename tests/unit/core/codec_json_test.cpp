#include <gtest/gtest.h>

#include <optional>
#include <string>

#include "core/base64.hpp"
#include "core/json_format.hpp"

namespace sluice {
namespace {

CloudEvent json_sample() {
  CloudEvent e;
  e.id = "A234-1234-1234";
  e.source = "/mycontext";
  e.type = "com.example.someevent";
  e.time = "2018-04-05T17:31:00Z";
  e.subject = "larger-context";
  e.dataschema = "https://example.com/schema.json";
  e.extensions["comexampleextension1"] = AttributeValue::of_string("value");
  e.extensions["comexampleothervalue"] = AttributeValue::of_int(5);
  e.extensions["flag"] = AttributeValue::of_bool(true);
  return e;
}

// --- json-format.md §3.2 examples

TEST(JsonFormat, SpecExampleBinaryData) {
  auto e = parse_json_event(R"({
    "specversion" : "1.0", "type" : "com.example.someevent", "source" : "/mycontext",
    "id" : "A234-1234-1234", "time" : "2018-04-05T17:31:00Z",
    "comexampleextension1" : "value", "comexampleothervalue" : 5,
    "datacontenttype" : "application/vnd.apache.thrift.binary",
    "data_base64" : "AAEC/w=="})");
  ASSERT_TRUE(e) << e.error().to_string();
  EXPECT_EQ(e.value().data, std::string("\x00\x01\x02\xff", 4));
  EXPECT_EQ(e.value().extensions.at("comexampleothervalue"), AttributeValue::of_int(5));
  EXPECT_EQ(e.value().extensions.at("comexampleextension1"), AttributeValue::of_string("value"));
  // Not UTF-8 and not JSON: re-encoded as data_base64.
  auto text = to_json(e.value());
  EXPECT_NE(text.find(R"("data_base64":"AAEC/w==")"), std::string::npos) << text;
  auto back = parse_json_event(text);
  ASSERT_TRUE(back);
  EXPECT_EQ(back.value(), e.value());
}

TEST(JsonFormat, SpecExampleXmlStringData) {
  auto e = parse_json_event(R"({
    "specversion" : "1.0", "type" : "com.example.someevent", "source" : "/mycontext",
    "id" : "B234-1234-1234", "time" : "2018-04-05T17:31:00Z",
    "comexampleextension1" : "value", "comexampleothervalue" : 5, "unsetextension": null,
    "datacontenttype" : "application/xml", "data" : "<much wow=\"xml\"/>"})");
  ASSERT_TRUE(e) << e.error().to_string();
  EXPECT_EQ(e.value().data, R"(<much wow="xml"/>)");
  EXPECT_EQ(e.value().extensions.count("unsetextension"), 0u);
  auto back = parse_json_event(to_json(e.value()));
  ASSERT_TRUE(back);
  EXPECT_EQ(back.value(), e.value());
}

TEST(JsonFormat, SpecExampleJsonObjectDataIsVerbatim) {
  const std::string data =
      "{\n        \"appinfoA\" : \"abc\",\n        \"appinfoB\" : 123,\n"
      "        \"appinfoC\" : true\n    }";
  auto e = parse_json_event(R"({ "specversion" : "1.0", "type" : "com.example.someevent",
    "source" : "/mycontext", "subject": null, "id" : "C234-1234-1234",
    "datacontenttype" : "application/json", "data" : )" +
                            data + "}");
  ASSERT_TRUE(e) << e.error().to_string();
  EXPECT_EQ(e.value().data, data);
  EXPECT_FALSE(e.value().subject.has_value());
  auto text = to_json(e.value());
  EXPECT_NE(text.find(data), std::string::npos);
  auto back = parse_json_event(text);
  ASSERT_TRUE(back);
  EXPECT_EQ(back.value(), e.value());
}

TEST(JsonFormat, SpecExampleNumberAndStringData) {
  auto n = parse_json_event(R"({"specversion":"1.0","type":"t","source":"/s","id":"1",
    "datacontenttype":"application/json","data":1.5})");
  ASSERT_TRUE(n);
  EXPECT_EQ(n.value().data, "1.5");
  // A JSON string stays a JSON string (quoted), not its contents (§3.1.2).
  auto s = parse_json_event(R"({"specversion":"1.0","type":"t","source":"/s","id":"D234",
    "data" : "I'm just a string"})");
  ASSERT_TRUE(s);
  EXPECT_EQ(s.value().data, R"("I'm just a string")");
  EXPECT_FALSE(s.value().datacontenttype);
  auto back = parse_json_event(to_json(s.value()));
  ASSERT_TRUE(back);
  EXPECT_EQ(back.value(), s.value());
}

TEST(JsonFormat, SpecExampleBase64WithoutContentType) {
  auto e = parse_json_event(R"({"specversion":"1.0","type":"com.example.someevent","source":"/mycontext",
    "id":"D234-1234-1234","data_base64":"eyAieHl6IjogMTIzIH0="})");
  ASSERT_TRUE(e);
  EXPECT_EQ(e.value().data, R"({ "xyz": 123 })");
  EXPECT_FALSE(e.value().datacontenttype);
}

TEST(JsonFormat, SpecBatchExample) {
  auto batch = parse_json_batch(R"([
  { "specversion" : "1.0", "type" : "com.example.someevent", "source" : "/mycontext/4",
    "id" : "B234-1234-1234", "time" : "2018-04-05T17:31:00Z", "comexampleextension1" : "value",
    "comexampleothervalue" : 5, "datacontenttype" : "application/vnd.apache.thrift.binary",
    "data_base64" : "aGVsbG8=" },
  { "specversion" : "1.0", "type" : "com.example.someotherevent", "source" : "/mycontext/9",
    "id" : "C234-1234-1234", "time" : "2018-04-05T17:31:05Z", "comexampleextension1" : "value",
    "comexampleothervalue" : 5, "datacontenttype" : "application/json",
    "data" : {"appinfoA":"abc","appinfoB":123,"appinfoC":true} } ])");
  ASSERT_TRUE(batch) << batch.error().to_string();
  ASSERT_EQ(batch.value().size(), 2u);
  EXPECT_EQ(batch.value()[0].data, "hello");
  EXPECT_EQ(batch.value()[1].data, R"({"appinfoA":"abc","appinfoB":123,"appinfoC":true})");
  auto back = parse_json_batch(to_json_batch(batch.value()));
  ASSERT_TRUE(back);
  EXPECT_EQ(back.value(), batch.value());
  auto empty = parse_json_batch("[]");
  ASSERT_TRUE(empty);
  EXPECT_TRUE(empty.value().empty());
  EXPECT_EQ(to_json_batch({}), "[]");
}

// --- round trips

TEST(JsonFormat, RoundTripsEveryDataKindAndAttributeType) {
  std::vector<CloudEvent> events;
  auto e = json_sample();
  events.push_back(e);  // no data
  e.data = R"({"nested":{"a":[1,2,{"b":null}]},"s":"\u00e9\n"})";
  events.push_back(e);  // JSON, implied content type, with escapes kept verbatim
  e.datacontenttype = "application/cloudevents-thing+json; charset=utf-8";
  events.push_back(e);
  e.datacontenttype = "text/plain";
  e.data = "h\xC3\xA9llo \"world\"\n\x01";
  events.push_back(e);  // text
  e.datacontenttype = "application/octet-stream";
  e.data = std::string("\x00\xff\xfe binary", 10);
  events.push_back(e);  // binary
  e.data = "";
  events.push_back(e);  // empty non-JSON data
  e.datacontenttype = "application/json";
  e.data = "null";
  events.push_back(e);  // explicit JSON null payload
  for (const auto& original : events) {
    auto text = to_json(original);
    auto back = parse_json_event(text);
    ASSERT_TRUE(back) << text << " → " << back.error().to_string();
    EXPECT_EQ(back.value(), original) << text;
    auto via_value = event_from_json(event_to_json(original));
    ASSERT_TRUE(via_value) << via_value.error().to_string();
    EXPECT_EQ(via_value.value().id, original.id);
    EXPECT_EQ(via_value.value().extensions, original.extensions);
  }
}

TEST(JsonFormat, DataThatIsNotJsonTravelsAsBase64) {
  // Bytes that only claim to be JSON (e.g. binary data without a datacontenttype) come back unchanged.
  auto e = json_sample();
  for (std::string bytes : {std::string("{not json"), std::string("\x00\x01\x02\xff", 4),
                            std::string("{}\0x", 4), std::string("\xEF\xBB\xBF{}"), std::string("")}) {
    for (auto type : {std::optional<std::string>(), std::optional<std::string>("application/json")}) {
      e.datacontenttype = type;
      e.data = bytes;
      auto text = to_json(e);
      EXPECT_NE(text.find("\"data_base64\":"), std::string::npos) << text;
      auto back = parse_json_event(text);
      ASSERT_TRUE(back) << text;
      EXPECT_EQ(back.value(), e) << text;
      EXPECT_TRUE(event_to_json(e).contains("data_base64"));
    }
  }
}

TEST(JsonFormat, NulByteInTheDocumentIsAnError) {
  // Regression (fuzz): nlohmann reads NUL as the end of input, so trailing junk after it went unnoticed.
  std::string doc = std::string(R"({"specversion":"1.0","type":"t","source":"/s","id":"1"})") + '\0' + "junk";
  auto e = parse_json_event(doc);
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error().code, 400);
}

TEST(JsonFormat, BinaryExtensionIsBase64AndInvalidUtf8IsReplaced) {
  auto e = json_sample();
  e.extensions["blob"] = AttributeValue::of_binary("\x01\x02");
  e.subject = "bad \xff utf8";
  auto text = to_json(e);
  EXPECT_NE(text.find(R"("blob":"AQI=")"), std::string::npos);
  auto back = parse_json_event(text);
  ASSERT_TRUE(back) << back.error().to_string();
  EXPECT_EQ(*back.value().subject, "bad \xEF\xBF\xBD utf8");
  EXPECT_NO_THROW(event_to_json(e).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

TEST(JsonFormat, EscapedDataKeyAndDuplicatesUseLastMember) {
  auto e = parse_json_event(R"({"specversion":"1.0","type":"t","source":"/s","id":"1",
    "data":[1], "d\u0061ta" : {"x" : 2}})");
  ASSERT_TRUE(e) << e.error().to_string();
  EXPECT_EQ(e.value().data, R"({"x" : 2})");
}

TEST(JsonFormat, NestedDataMemberIsNotTheEventData) {
  auto e = parse_json_event(R"({"specversion":"1.0","type":"t","source":"/s","id":"1",
    "data":{"data":"inner","k":[{"data":1}]}})");
  ASSERT_TRUE(e);
  EXPECT_EQ(e.value().data, R"({"data":"inner","k":[{"data":1}]})");
}

TEST(JsonFormat, NullDataWithNonJsonContentTypeIsAbsent) {
  auto e = parse_json_event(R"({"specversion":"1.0","type":"t","source":"/s","id":"1",
    "datacontenttype":"text/plain","data":null})");
  ASSERT_TRUE(e);
  EXPECT_FALSE(e.value().data);
}

// --- malformed input: clear errors, never a crash

struct BadCase {
  const char* json;
  const char* subject;
};

TEST(JsonFormat, MalformedInputGivesErrorsNamingTheAttribute) {
  const BadCase cases[] = {
      {R"({"specversion":"1.0","type":"t","source":"/s"})", "id"},
      {R"({"specversion":"1.0","type":"t","id":"1"})", "source"},
      {R"({"specversion":"1.0","source":"/s","id":"1"})", "type"},
      {R"({"type":"t","source":"/s","id":"1"})", "specversion"},
      {R"({"specversion":"0.3","type":"t","source":"/s","id":"1"})", "specversion"},
      {R"({"specversion":"1.0","type":"t","source":"/s","id":5})", "id"},
      {R"({"specversion":"1.0","type":"t","source":"/s","id":"1","time":"yesterday"})", "time"},
      {R"({"specversion":"1.0","type":"t","source":"/s","id":"1","time":12})", "time"},
      {R"({"specversion":"1.0","type":"t","source":"/s","id":"1","ext":1.5})", "ext"},
      {R"({"specversion":"1.0","type":"t","source":"/s","id":"1","ext":{"a":1}})", "ext"},
      {R"({"specversion":"1.0","type":"t","source":"/s","id":"1","ext":[1]})", "ext"},
      {R"({"specversion":"1.0","type":"t","source":"/s","id":"1","ext":4294967296})", "ext"},
      {R"({"specversion":"1.0","type":"t","source":"/s","id":"1","ext":-2147483649})", "ext"},
      {R"({"specversion":"1.0","type":"t","source":"/s","id":"1","Bad_Name":"x"})", "Bad_Name"},
      {R"({"specversion":"1.0","type":"t","source":"/s","id":"1","data_base64":"!!!"})", "data_base64"},
      {R"({"specversion":"1.0","type":"t","source":"/s","id":"1","data_base64":7})", "data_base64"},
      {R"({"specversion":"1.0","type":"t","source":"/s","id":"1","data":"x","data_base64":"eA=="})", "data"},
      {R"({"specversion":"1.0","type":"t","source":"/s","id":"1","dataschema":"relative/path"})",
       "dataschema"},
  };
  for (const auto& c : cases) {
    auto e = parse_json_event(c.json);
    ASSERT_FALSE(e) << c.json;
    EXPECT_EQ(e.error().subject, c.subject) << c.json << " → " << e.error().to_string();
    EXPECT_EQ(e.error().code, 400);
  }
}

TEST(JsonFormat, IntegerExtensionBoundsAreAccepted) {
  auto e = parse_json_event(R"({"specversion":"1.0","type":"t","source":"/s","id":"1",
    "lo":-2147483648,"hi":2147483647})");
  ASSERT_TRUE(e);
  EXPECT_EQ(e.value().extensions.at("lo").integer, -2147483648);
  EXPECT_EQ(e.value().extensions.at("hi").integer, 2147483647);
}

TEST(JsonFormat, SyntaxErrorsAndWrongShapes) {
  for (const char* bad : {"", "{", "{\"id\":}", "nul", "[1,2", "{\"a\":1}}", "\"just a string\"", "[]", "42",
                          "{\"a\":\"\xff\"}", "{\"a\":1e999}"}) {
    auto e = parse_json_event(bad);
    ASSERT_FALSE(e) << bad;
    EXPECT_EQ(e.error().code, 400);
    EXPECT_FALSE(e.error().message.empty());
  }
  auto batch = parse_json_batch(R"({"not":"an array"})");
  ASSERT_FALSE(batch);
  auto element = parse_json_batch(R"([{"specversion":"1.0","type":"t","source":"/s","id":"1"}, 5])");
  ASSERT_FALSE(element);
  EXPECT_NE(element.error().message.find("batch event 1"), std::string::npos);
  auto second_bad = parse_json_batch(R"([{"specversion":"1.0","type":"t","source":"/s","id":"1"},
      {"specversion":"1.0","type":"t","source":"/s"}])");
  ASSERT_FALSE(second_bad);
  EXPECT_EQ(second_bad.error().subject, "id");
}

TEST(JsonFormat, DeepNestingIsRejectedNotACrash) {
  std::string deep = R"({"specversion":"1.0","type":"t","source":"/s","id":"1","data":)";
  deep += std::string(200000, '[') + std::string(200000, ']') + "}";
  auto e = parse_json_event(deep);
  ASSERT_FALSE(e);
  EXPECT_NE(e.error().message.find("nesting"), std::string::npos);
  std::string deep_ext = R"({"specversion":"1.0","type":"t","source":"/s","id":"1","x":)";
  deep_ext += std::string(100000, '{') + "}";
  EXPECT_FALSE(parse_json_event(deep_ext));
  // Nesting within the limit is fine, in data and verbatim.
  std::string ok = R"({"specversion":"1.0","type":"t","source":"/s","id":"1","data":)";
  std::string nested = std::string(100, '[') + std::string(100, ']');
  auto fine = parse_json_event(ok + nested + "}");
  ASSERT_TRUE(fine);
  EXPECT_EQ(fine.value().data, nested);
}

TEST(JsonFormat, HugeDataRoundTrips) {
  auto e = json_sample();
  e.datacontenttype = "text/plain";
  e.data = std::string(4 << 20, 'x');
  auto back = parse_json_event(to_json(e));
  ASSERT_TRUE(back);
  EXPECT_EQ(back.value(), e);
}

TEST(JsonFormat, UncheckedParseReportsEveryProblem) {
  auto parsed = parse_json_event_unchecked(R"({"id":5,"ext":1.5,"data":"x","data_base64":"eA=="})");
  ASSERT_TRUE(parsed);
  std::vector<std::string> attrs;
  for (const auto& p : parsed.value().problems) attrs.push_back(p.attribute);
  EXPECT_EQ(attrs, (std::vector<std::string>{"ext", "id", "data"}));
  auto violations = validate(parsed.value().event);
  EXPECT_GE(violations.size(), 3u);  // id, source, type, specversion missing
}

TEST(JsonFormat, Utf8Validation) {
  EXPECT_TRUE(is_valid_utf8("plain"));
  EXPECT_TRUE(is_valid_utf8("Euro \xE2\x82\xAC \xF0\x9F\x98\x80"));
  EXPECT_FALSE(is_valid_utf8("\xC0\xA0"));          // overlong space
  EXPECT_FALSE(is_valid_utf8("\xED\xA0\x80"));      // surrogate
  EXPECT_FALSE(is_valid_utf8("\xF4\x90\x80\x80"));  // > U+10FFFF
  EXPECT_FALSE(is_valid_utf8("\xE2\x82"));          // truncated
  EXPECT_FALSE(is_valid_utf8("\x80"));
}

}  // namespace
}  // namespace sluice
