#include <gtest/gtest.h>

#include <string>

#include "core/http_binding.hpp"

namespace sluice {
namespace {

CloudEvent http_sample() {
  CloudEvent e;
  e.id = "1234-1234-1234";
  e.source = "/mycontext/subcontext";
  e.type = "com.example.someevent";
  e.time = "2018-04-05T03:56:24Z";
  e.subject = "Euro \xE2\x82\xAC \xF0\x9F\x98\x80";
  e.extensions["comexampleextension1"] = AttributeValue::of_string("value with \"quotes\" and 100%");
  e.datacontenttype = "application/json; charset=utf-8";
  e.data = "{\n  \"a\": 1\n}";
  return e;
}

CloudEvent decode_one(const HttpMessage& msg) {
  auto events = decode_http(msg);
  EXPECT_TRUE(events) << events.error().to_string();
  if (!events || events.value().size() != 1) {
    ADD_FAILURE() << "expected exactly one event";
    return {};
  }
  return events.value().front();
}

TEST(HttpBinding, DetectsModeFromContentType) {
  EXPECT_EQ(detect_http_mode("application/cloudevents-batch+json; charset=UTF-8"), HttpMode::Batched);
  EXPECT_EQ(detect_http_mode("Application/CloudEvents+JSON"), HttpMode::Structured);
  EXPECT_EQ(detect_http_mode("application/cloudevents+xml"), HttpMode::Structured);
  EXPECT_EQ(detect_http_mode("application/json"), HttpMode::Binary);
  EXPECT_EQ(detect_http_mode(""), HttpMode::Binary);
}

TEST(HttpBinding, HeaderLookupIsCaseInsensitive) {
  HttpMessage msg{{{"Content-Type", "a/b"}, {"CE-ID", "x"}}, ""};
  ASSERT_NE(msg.header("content-type"), nullptr);
  EXPECT_EQ(*msg.header("ce-id"), "x");
  EXPECT_EQ(msg.header("ce-source"), nullptr);
}

TEST(HttpBinding, PercentEncodingFollowsTheSpecExample) {
  EXPECT_EQ(percent_encode_header("Euro \xE2\x82\xAC \xF0\x9F\x98\x80"), "Euro%20%E2%82%AC%20%F0%9F%98%80");
  EXPECT_EQ(percent_encode_header("a\"b%c~!"), "a%22b%25c~!");
  EXPECT_EQ(decode_header_value("Euro%20%e2%82%ac%20%F0%9F%98%80"), "Euro \xE2\x82\xAC \xF0\x9F\x98\x80");
  EXPECT_EQ(decode_header_value("%41%42"), "AB");  // unnecessary encoding is accepted
}

TEST(HttpBinding, HeaderDecodingIsLenientWhereAllowed) {
  EXPECT_EQ(decode_header_value("100%"), "100%");  // malformed escapes stay literal
  EXPECT_EQ(decode_header_value("%zz%4"), "%zz%4");
  EXPECT_EQ(decode_header_value("h\xC3\xA9llo"), "h\xC3\xA9llo");  // raw UTF-8 (npm client)
  EXPECT_EQ(decode_header_value("\"quoted \\\"value\\\"\""), "quoted \"value\"");
  EXPECT_EQ(decode_header_value("  padded  "), "padded");
  EXPECT_FALSE(decode_header_value("%C0%A0"));  // overlong UTF-8 must be rejected
  EXPECT_FALSE(decode_header_value("\xff"));
}

TEST(HttpBinding, BinaryModeRoundTrip) {
  auto e = http_sample();
  auto msg = encode_http(e, HttpMode::Binary);
  EXPECT_EQ(*msg.header("ce-subject"), "Euro%20%E2%82%AC%20%F0%9F%98%80");
  EXPECT_EQ(*msg.header("content-type"), "application/json; charset=utf-8");
  EXPECT_EQ(msg.header("ce-datacontenttype"), nullptr);
  EXPECT_EQ(msg.body, *e.data);
  EXPECT_EQ(decode_one(msg), e);
}

TEST(HttpBinding, BinaryModeWithoutDataOrContentType) {
  auto e = http_sample();
  e.data.reset();
  e.datacontenttype.reset();
  auto msg = encode_http(e);
  EXPECT_EQ(msg.header("content-type"), nullptr);
  EXPECT_TRUE(msg.body.empty());
  EXPECT_EQ(decode_one(msg), e);
}

TEST(HttpBinding, BinaryModeDataWithoutContentTypeGetsJson) {
  auto e = http_sample();
  e.datacontenttype.reset();
  e.data = R"("I'm just a string")";
  auto msg = encode_http(e);
  EXPECT_EQ(*msg.header("content-type"), "application/json");
  auto back = decode_one(msg);
  EXPECT_EQ(back.datacontenttype, "application/json");
  EXPECT_EQ(back.data, e.data);
}

// JSON format §3.1.2: without datacontenttype, data that is not JSON is not assumed to be JSON. Binary
// mode then carries no Content-Type at all.
TEST(HttpBinding, BinaryModeBytesWithoutContentTypeAreNotLabelledJson) {
  auto e = http_sample();
  e.datacontenttype.reset();
  e.data = std::string("\xff\xfe", 2);
  auto msg = encode_http(e);
  EXPECT_EQ(msg.header("content-type"), nullptr);
  auto back = decode_one(msg);
  EXPECT_FALSE(back.datacontenttype);
  EXPECT_EQ(back.data, e.data);
  e.data = "plain words";
  EXPECT_EQ(encode_http(e).header("content-type"), nullptr);
}

// A Content-Type's optional whitespace may be a tab (RFC 9110 OWS): it becomes a space in
// datacontenttype, whose String value may hold no control character.
TEST(HttpBinding, ATabInContentTypeIsOptionalWhitespace) {
  std::vector<std::pair<std::string, std::string>> headers = {{"ce-specversion", "1.0"},
                                                              {"ce-id", "1"},
                                                              {"ce-source", "/s"},
                                                              {"ce-type", "t"},
                                                              {"content-type", "text/plain;\tcharset=utf-8"}};
  std::vector<std::pair<std::string_view, std::string_view>> views(headers.begin(), headers.end());
  auto events = decode_http(views, "hi");
  ASSERT_TRUE(events) << events.error().to_string();
  EXPECT_EQ(events.value().at(0).datacontenttype, "text/plain; charset=utf-8");
}

TEST(HttpBinding, BinaryModeTypedExtensionsBecomeStrings) {
  auto e = http_sample();
  e.extensions["count"] = AttributeValue::of_int(5);
  e.extensions["flag"] = AttributeValue::of_bool(false);
  e.extensions["blob"] = AttributeValue::of_binary("\x01\x02");
  auto msg = encode_http(e);
  EXPECT_EQ(*msg.header("ce-count"), "5");
  EXPECT_EQ(*msg.header("ce-flag"), "false");
  EXPECT_EQ(*msg.header("ce-blob"), "AQI=");
  auto back = decode_one(msg);
  EXPECT_EQ(back.extensions.at("count"), AttributeValue::of_string("5"));
}

TEST(HttpBinding, SpecBinaryExample) {
  // http-protocol-binding.md §3.1.4, and json-format.md's re-encoding of example B234.
  HttpMessage msg{{{"ce-specversion", "1.0"},
                   {"ce-type", "com.example.someevent"},
                   {"ce-time", "2018-04-05T03:56:24Z"},
                   {"ce-id", "1234-1234-1234"},
                   {"ce-source", "/mycontext/subcontext"},
                   {"ce-comexampleothervalue", "5"},
                   {"Content-Type", "application/xml"}},
                  R"(<much wow="xml"/>)"};
  auto e = decode_one(msg);
  EXPECT_EQ(e.id, "1234-1234-1234");
  EXPECT_EQ(e.source, "/mycontext/subcontext");
  EXPECT_EQ(e.datacontenttype, "application/xml");
  EXPECT_EQ(e.data, R"(<much wow="xml"/>)");
  EXPECT_EQ(e.extensions.at("comexampleothervalue").text, "5");
}

TEST(HttpBinding, StructuredModeRoundTripAndSpecExample) {
  auto e = http_sample();
  auto msg = encode_http(e, HttpMode::Structured);
  EXPECT_EQ(*msg.header("Content-Type"), "application/cloudevents+json; charset=utf-8");
  EXPECT_EQ(decode_one(msg), e);

  HttpMessage spec{{{"Content-Type", "application/cloudevents+json; charset=utf-8"}},
                   R"({ "specversion" : "1.0", "type" : "com.example.someevent",
                        "source" : "/mycontext", "id" : "A1", "data" : { "k" : [1, 2] } })"};
  auto decoded = decode_one(spec);
  EXPECT_EQ(decoded.data, R"({ "k" : [1, 2] })");
  // ce- headers beside a structured body are ignored; the body is authoritative (§3.2.3).
  spec.headers.emplace_back("ce-id", "other");
  EXPECT_EQ(decode_one(spec).id, "A1");
}

TEST(HttpBinding, BatchedModeRoundTrip) {
  std::vector<CloudEvent> events{http_sample(), http_sample()};
  events[1].id = "second";
  events[1].datacontenttype = "application/octet-stream";
  events[1].data = std::string("\x00\x01", 2);
  auto msg = encode_http_batch(events);
  EXPECT_EQ(detect_http_mode(*msg.header("content-type")), HttpMode::Batched);
  auto back = decode_http(msg);
  ASSERT_TRUE(back);
  EXPECT_EQ(back.value(), events);
  auto one = encode_http(events[0], HttpMode::Batched);
  auto single = decode_http(one);
  ASSERT_TRUE(single);
  ASSERT_EQ(single.value().size(), 1u);
  auto empty = decode_http(encode_http_batch({}));
  ASSERT_TRUE(empty);
  EXPECT_TRUE(empty.value().empty());
}

TEST(HttpBinding, WhitespaceAroundJsonBodyIsDroppedInStructuredMode) {
  // Regression (fuzz): a binary body "\n\n\"11\"" re-encoded in structured mode came back as "\"11\"",
  // so the JSON form now drops the whitespace around the value on the way out.
  HttpMessage msg{{{"ce-specversion", "1.0"}, {"ce-type", "t"}, {"ce-id", "1"}, {"ce-source", "/s"}},
                  "\n\n\"11\""};
  auto e = decode_one(msg);
  EXPECT_EQ(e.data, "\n\n\"11\"");  // binary mode keeps the body exactly
  auto structured = encode_http(e, HttpMode::Structured);
  EXPECT_NE(structured.body.find(R"("data":"11")"), std::string::npos) << structured.body;
  EXPECT_EQ(decode_one(structured).data, "\"11\"");
}

TEST(HttpBinding, UnsupportedFormatsAndCharsetsAre415) {
  for (const char* ct : {"application/cloudevents+xml", "application/cloudevents",
                         "application/cloudevents+json; charset=latin1", "application/cloudevents-batch+avro",
                         "application/cloudevents-batch+json; charset=\"iso-8859-1\""}) {
    HttpMessage msg{{{"Content-Type", ct}}, "{}"};
    auto r = decode_http(msg);
    ASSERT_FALSE(r) << ct;
    EXPECT_EQ(r.error().code, 415) << ct;
  }
  HttpMessage quoted{{{"Content-Type", "application/cloudevents+json; charset=\"UTF-8\""}},
                     R"({"specversion":"1.0","type":"t","source":"/s","id":"1"})"};
  EXPECT_TRUE(decode_http(quoted));
}

TEST(HttpBinding, InvalidBinaryEventsAre400NamingTheAttribute) {
  auto base = [] {
    return HttpMessage{{{"ce-specversion", "1.0"}, {"ce-type", "t"}, {"ce-source", "/s"}, {"ce-id", "1"}},
                       ""};
  };
  struct Case {
    HttpMessage msg;
    const char* subject;
  };
  std::vector<Case> cases;
  auto m = base();
  m.headers.erase(m.headers.begin() + 3);
  cases.push_back({m, "id"});
  m = base();
  m.headers[0].second = "0.3";
  cases.push_back({m, "specversion"});
  m = base();
  m.headers.emplace_back("ce-time", "not-a-time");
  cases.push_back({m, "time"});
  m = base();
  m.headers.emplace_back("ce-subject", "%C0%A0");
  cases.push_back({m, "subject"});
  m = base();
  m.headers.emplace_back("CE-ID", "2");
  cases.push_back({m, "id"});
  m = base();
  m.headers.emplace_back("ce-bad_name", "x");
  cases.push_back({m, "bad_name"});
  m = base();
  m.headers.emplace_back("ce-", "x");
  cases.push_back({m, "ce-"});
  cases.push_back({HttpMessage{{}, "no headers at all"}, "id"});
  for (const auto& c : cases) {
    auto r = decode_http(c.msg);
    ASSERT_FALSE(r) << c.subject;
    EXPECT_EQ(r.error().code, 400);
    EXPECT_EQ(r.error().subject, c.subject) << r.error().to_string();
  }
}

TEST(HttpBinding, DecodingAMessageGivenUpTakesItsBodyOver) {
  for (auto mode : {HttpMode::Binary, HttpMode::Structured, HttpMode::Batched}) {
    const auto msg = encode_http(http_sample(), mode);
    auto kept = decode_http(msg);
    auto copy = msg;
    auto moved = decode_http(std::move(copy));
    // The same from header views (as ingress decodes a parsed request without copying its headers).
    std::vector<std::pair<std::string_view, std::string_view>> views(msg.headers.begin(), msg.headers.end());
    auto viewed = decode_http(views, msg.body);
    ASSERT_TRUE(kept) << kept.error().to_string();
    ASSERT_TRUE(moved) << moved.error().to_string();
    ASSERT_TRUE(viewed) << viewed.error().to_string();
    EXPECT_EQ(moved.value(), kept.value());
    EXPECT_EQ(viewed.value(), kept.value());
    EXPECT_EQ(moved.value().at(0), http_sample());
  }
  HttpMessage invalid{{{"ce-specversion", "1.0"}, {"ce-type", "t"}, {"ce-source", "/s"}}, "{}"};
  auto r = decode_http(std::move(invalid));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().subject, "id");
}

TEST(HttpBinding, EmptyBodyWithContentTypeIsEmptyData) {
  HttpMessage msg{{{"ce-specversion", "1.0"},
                   {"ce-type", "t"},
                   {"ce-source", "/s"},
                   {"ce-id", "1"},
                   {"content-type", "text/plain"}},
                  ""};
  auto e = decode_one(msg);
  EXPECT_EQ(e.data, "");
  msg.headers.pop_back();
  EXPECT_FALSE(decode_one(msg).data);
}

TEST(HttpBinding, MalformedStructuredBodiesAre400) {
  for (const char* body :
       {"", "{", "[]", R"({"specversion":"1.0","type":"t","source":"/s"})",
        R"({"specversion":"1.0","type":"t","source":"/s","id":"1","data":1,"data_base64":"AA=="})"}) {
    HttpMessage msg{{{"Content-Type", "application/cloudevents+json"}}, body};
    auto r = decode_http(msg);
    ASSERT_FALSE(r) << body;
    EXPECT_EQ(r.error().code, 400);
  }
}

}  // namespace
}  // namespace sluice
