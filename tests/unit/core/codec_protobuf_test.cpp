#include <gtest/gtest.h>

#include <array>
#include <climits>
#include <cstdint>
#include <string>

#include <google/protobuf/util/message_differencer.h>

#include "core/json_format.hpp"
#include "core/protobuf_format.hpp"

namespace sluice {
namespace {

namespace pb = io::cloudevents::v1;

CloudEvent protobuf_sample() {
  CloudEvent e;
  e.id = "1234";
  e.source = "producer-1";
  e.type = "io.cloudevent.example";
  e.time = "2018-04-05T17:31:00Z";
  e.subject = "subj";
  e.dataschema = "https://example.com/schema";
  e.datacontenttype = "text/plain";
  e.data = "This is a plain text message";
  e.extensions["b"] = AttributeValue::of_bool(true);
  e.extensions["i"] = AttributeValue::of_int(-42);
  e.extensions["s"] = AttributeValue::of_string("str");
  e.extensions["bin"] = AttributeValue::of_binary(std::string("\x00\xff", 2));
  e.extensions["u"] = AttributeValue::of_uri("https://example.com/x");
  e.extensions["ur"] = AttributeValue::of_uri_ref("/relative");
  e.extensions["ts"] = AttributeValue::of_timestamp("2020-01-02T03:04:05.123456Z");
  return e;
}

TEST(ProtobufFormat, MapsAttributesToTypedValues) {
  pb::CloudEvent msg;
  to_proto(protobuf_sample(), &msg);
  EXPECT_EQ(msg.spec_version(), "1.0");
  EXPECT_EQ(msg.text_data(), "This is a plain text message");
  const auto& a = msg.attributes();
  EXPECT_EQ(a.at("datacontenttype").ce_string(), "text/plain");
  EXPECT_EQ(a.at("dataschema").ce_uri(), "https://example.com/schema");
  EXPECT_EQ(a.at("time").ce_timestamp().seconds(), 1522949460);
  EXPECT_TRUE(a.at("b").ce_boolean());
  EXPECT_EQ(a.at("i").ce_integer(), -42);
  EXPECT_EQ(a.at("bin").ce_bytes(), std::string("\x00\xff", 2));
  EXPECT_EQ(a.at("ur").ce_uri_ref(), "/relative");
  EXPECT_EQ(a.at("ts").ce_timestamp().nanos(), 123456000);
  EXPECT_EQ(a.count("id"), 0u);
}

TEST(ProtobufFormat, RoundTripIsExact) {
  std::vector<CloudEvent> events;
  auto e = protobuf_sample();
  events.push_back(e);
  e.datacontenttype.reset();
  e.data = "{ \"verbatim\" :  [1,2] }";  // JSON kept byte for byte
  events.push_back(e);
  e.datacontenttype = "application/octet-stream";
  e.data = std::string("\x00\x01\xff", 3);
  events.push_back(e);
  e.data = "";
  events.push_back(e);  // empty data differs from no data
  e.data.reset();
  events.push_back(e);
  e.time = "2018-04-05T19:31:00+02:00";  // non-canonical: kept as text
  events.push_back(e);
  e.time = "2018-04-05T17:31:00.100Z";
  events.push_back(e);
  e.datacontenttype = "text/plain";
  e.data = "not utf8 \xff";  // text type but binary content
  events.push_back(e);
  // Lengths of 128 bytes and more take two varint bytes; 16,384 and more three.
  e.data = std::string(200, 'x');
  e.extensions["long"] = AttributeValue::of_string(std::string(300, 'y'));
  e.extensions["f"] = AttributeValue::of_bool(false);
  e.extensions["zero"] = AttributeValue::of_int(0);
  e.extensions["min"] = AttributeValue::of_int(INT32_MIN);
  e.extensions["before1970"] = AttributeValue::of_timestamp("1969-12-31T23:59:59.500Z");
  e.extensions["epoch"] = AttributeValue::of_timestamp("1970-01-01T00:00:00Z");
  e.extensions["empty"] = AttributeValue::of_string("");
  events.push_back(e);
  e.data = std::string(20000, 'z');
  events.push_back(e);
  for (const auto& original : events) {
    auto bytes = to_protobuf(original);
    // The bytes written without the library parse into exactly the message the library builds.
    pb::CloudEvent parsed;
    ASSERT_TRUE(parsed.ParseFromString(bytes));
    pb::CloudEvent built;
    to_proto(original, &built);
    EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(parsed, built))
        << parsed.DebugString() << "\n---\n"
        << built.DebugString();
    auto back = parse_protobuf(bytes);
    ASSERT_TRUE(back) << back.error().to_string();
    EXPECT_EQ(back.value(), original) << to_json(original);
    pb::CloudEvent msg;
    to_proto(original, &msg);
    auto copied = from_proto(msg);
    ASSERT_TRUE(copied);
    EXPECT_EQ(copied.value(), original);
    EXPECT_EQ(msg.id(), original.id);  // from_proto leaves its input alone
  }
}

TEST(ProtobufFormat, NonCanonicalTimestampExtensionKeepsItsTextAsString) {
  // The schema cannot carry both the type and a non-canonical text; the text wins (documented).
  auto e = protobuf_sample();
  e.extensions["ts"] = AttributeValue::of_timestamp("2018-04-05T19:31:00.5+02:00");
  auto back = parse_protobuf(to_protobuf(e));
  ASSERT_TRUE(back);
  EXPECT_EQ(back.value().extensions.at("ts"), AttributeValue::of_string("2018-04-05T19:31:00.5+02:00"));
}

TEST(ProtobufFormat, CanonicalTimestamps) {
  std::int64_t s;
  std::int32_t n;
  EXPECT_TRUE(parse_canonical_timestamp("1970-01-01T00:00:00Z", &s, &n));
  EXPECT_EQ(s, 0);
  EXPECT_TRUE(parse_canonical_timestamp("1969-12-31T23:59:59.999999999Z", &s, &n));
  EXPECT_EQ(s, -1);
  EXPECT_EQ(n, 999999999);
  EXPECT_TRUE(parse_canonical_timestamp("0001-01-01T00:00:00Z", &s, &n));
  EXPECT_TRUE(parse_canonical_timestamp("9999-12-31T23:59:59Z", &s, &n));
  EXPECT_FALSE(parse_canonical_timestamp("0000-12-31T23:59:59Z", &s, &n));
  EXPECT_FALSE(parse_canonical_timestamp("2021-02-30T00:00:00Z", &s, &n));
  EXPECT_FALSE(parse_canonical_timestamp("2021-01-01T00:00:00.000Z", &s, &n));
  EXPECT_FALSE(parse_canonical_timestamp("2021-01-01T00:00:00.1Z", &s, &n));
  EXPECT_FALSE(parse_canonical_timestamp("2021-01-01t00:00:00Z", &s, &n));
  EXPECT_FALSE(parse_canonical_timestamp("2021-01-01T00:00:00+00:00", &s, &n));
  EXPECT_EQ(format_proto_timestamp(1522949460, 5000000), "2018-04-05T17:31:00.005Z");
  EXPECT_EQ(format_proto_timestamp(-62135596800, 0), "0001-01-01T00:00:00Z");
}

TEST(ProtobufFormat, DecodesOtherProducersChoices) {
  pb::CloudEvent msg;
  msg.set_id("1");
  msg.set_source("/s");
  msg.set_spec_version("1.0");
  msg.set_type("t");
  (*msg.mutable_attributes())["time"].set_ce_string("2018-04-05T17:31:00Z");
  (*msg.mutable_attributes())["dataschema"].set_ce_string("https://x.example/s");
  (*msg.mutable_attributes())["subject"].set_ce_uri_ref("/sub");
  msg.mutable_proto_data()->set_type_url("type.googleapis.com/x.Y");
  msg.mutable_proto_data()->set_value("\x08\x01");
  auto e = from_proto(msg);
  ASSERT_TRUE(e) << e.error().to_string();
  EXPECT_EQ(e.value().time, "2018-04-05T17:31:00Z");
  EXPECT_EQ(e.value().subject, "/sub");
  EXPECT_EQ(e.value().data, "\x08\x01");
}

// The broker writes what it adds to a stored event (arrival time, hop count, traceparent) while encoding:
// the bytes must be exactly those of the event carrying them, in name order, replacing a same-named one.
TEST(ProtobufFormat, ExtraAttributesEncodeAsIfTheEventCarriedThem) {
  auto event = protobuf_sample();
  event.extensions["knativebrokerttl"] = AttributeValue::of_string("not a number");
  event.extensions["zzz"] = AttributeValue::of_string("last");
  const std::string arrival = "2026-11-24T05:17:45.123Z";
  const std::string traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  const std::array<ExtraAttribute, 3> extra{{{"knativearrivaltime", AttributeType::String, arrival},
                                             {"knativebrokerttl", AttributeType::Integer, {}, 255},
                                             {"traceparent", AttributeType::String, traceparent}}};
  auto carried = event;
  carried.extensions["knativearrivaltime"] = AttributeValue::of_string(arrival);
  carried.extensions["knativebrokerttl"] = AttributeValue::of_int(255);
  carried.extensions["traceparent"] = AttributeValue::of_string(traceparent);
  EXPECT_EQ(to_protobuf(event, extra), to_protobuf(carried));
  auto back = parse_protobuf(to_protobuf(event, extra));
  ASSERT_TRUE(back) << back.error().to_string();
  EXPECT_EQ(back.value(), carried);

  CloudEvent bare;
  bare.id = "1";
  bare.source = "/s";
  bare.type = "t";
  auto bare_carried = bare;
  bare_carried.extensions["knativearrivaltime"] = AttributeValue::of_string(arrival);
  EXPECT_EQ(to_protobuf(bare, std::span(extra.data(), 1)), to_protobuf(bare_carried));
  EXPECT_EQ(to_protobuf(bare, {}), to_protobuf(bare));
}

TEST(ProtobufFormat, MalformedInputIsAnError) {
  for (std::string bad : {std::string("\xff\xff\xff"),
                          std::string("\x0a\x05"
                                      "ab"),
                          std::string("\x0a\x02\xff\xfe")}) {
    auto e = parse_protobuf(bad);
    ASSERT_FALSE(e);
    EXPECT_EQ(e.error().code, 400);
  }
  EXPECT_FALSE(parse_protobuf(""));  // parses as an empty message: required attributes missing

  pb::CloudEvent msg;
  to_proto(protobuf_sample(), &msg);
  auto with = [&](auto&& edit) {
    pb::CloudEvent m = msg;
    edit(m);
    return parse_protobuf(m.SerializeAsString());
  };
  auto r = with([](pb::CloudEvent& m) { (*m.mutable_attributes())["x"]; });
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().subject, "x");
  r = with([](pb::CloudEvent& m) { (*m.mutable_attributes())["time"].set_ce_integer(3); });
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().subject, "time");
  r = with([](pb::CloudEvent& m) { (*m.mutable_attributes())["ts"].mutable_ce_timestamp()->set_nanos(-1); });
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().subject, "ts");
  r = with([](pb::CloudEvent& m) {
    (*m.mutable_attributes())["ts"].mutable_ce_timestamp()->set_seconds(1LL << 60);
  });
  ASSERT_FALSE(r);
  r = with([](pb::CloudEvent& m) { (*m.mutable_attributes())["id"].set_ce_string("dup"); });
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().subject, "id");
  r = with([](pb::CloudEvent& m) { m.set_source("not a uri ref"); });
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().subject, "source");
  r = with([](pb::CloudEvent& m) { (*m.mutable_attributes())["Upper"].set_ce_string("x"); });
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().subject, "Upper");
}

}  // namespace
}  // namespace sluice
