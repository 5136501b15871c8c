#include "core/event_arguments.hpp"

#include <gtest/gtest.h>

namespace sluice {
namespace {

using nlohmann::json;

CloudEvent event_with(std::optional<std::string> data,
                      std::optional<std::string> content_type = std::nullopt) {
  CloudEvent e;
  e.id = "e-1";
  e.source = "/shop";
  e.type = "com.example.order";
  e.subject = "order-7";
  e.extensions["tenant"] = AttributeValue::of_string("acme");
  e.extensions["priority"] = AttributeValue::of_int(3);
  e.data = std::move(data);
  e.datacontenttype = std::move(content_type);
  return e;
}

TEST(EventArguments, WithoutATemplateTheDataObjectIsTheArguments) {
  EventArguments none;
  auto args = none.build(event_with(R"({"text": "hi", "n": [1, 2]})"));
  ASSERT_TRUE(args) << args.error().to_string();
  EXPECT_EQ(args.value(), json::parse(R"({"text": "hi", "n": [1, 2]})"));
  for (auto data : {std::optional<std::string>("[1, 2]"), std::optional<std::string>("plain"),
                    std::optional<std::string>()}) {
    auto bad = none.build(
        event_with(data, data && *data == "plain" ? std::optional<std::string>("text/plain") : std::nullopt));
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().code, 400);
    EXPECT_NE(bad.error().message.find("sluice.dev/tool-arguments"), std::string::npos);
  }
}

TEST(EventArguments, ReferencesReachDataMembersAndAttributes) {
  auto t = EventArguments::parse(R"({
      "text": "$data.doc.body", "whole": "$data", "id": "$id", "who": "$tenant", "prio": "$priority",
      "nested": {"list": ["$subject", 7, true, null]}, "price": "$$5", "plain": "as is"})",
                                 "f");
  ASSERT_TRUE(t) << t.error().to_string();
  auto args = t.value().build(event_with(R"({"doc": {"body": "hello"}, "k": 1})"));
  ASSERT_TRUE(args) << args.error().to_string();
  EXPECT_EQ(args.value(), json::parse(R"({
      "text": "hello", "whole": {"doc": {"body": "hello"}, "k": 1}, "id": "e-1", "who": "acme", "prio": "3",
      "nested": {"list": ["order-7", 7, true, null]}, "price": "$5", "plain": "as is"})"));
  // Text data is passed as a string.
  auto text =
      EventArguments::parse(R"({"t": "$data"})", "f").value().build(event_with("hi there", "text/plain"));
  ASSERT_TRUE(text);
  EXPECT_EQ(text.value(), json::parse(R"({"t": "hi there"})"));
}

TEST(EventArguments, MissingReferencesAreErrorsThatNameThem) {
  auto t = EventArguments::parse(R"({"a": "$data.doc.title"})", "f").value();
  auto missing = t.build(event_with(R"({"doc": {"body": "x"}})"));
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, 400);
  EXPECT_NE(missing.error().to_string().find("no member \"doc.title\""), std::string::npos)
      << missing.error().to_string();
  auto attr = EventArguments::parse(R"({"a": "$dataschema"})", "f").value().build(event_with("{}"));
  ASSERT_FALSE(attr);
  EXPECT_NE(attr.error().to_string().find("no attribute \"dataschema\""), std::string::npos);
  auto no_data = EventArguments::parse(R"({"a": "$data"})", "f").value().build(event_with(std::nullopt));
  ASSERT_FALSE(no_data);
  EXPECT_NE(no_data.error().to_string().find("has no data"), std::string::npos);
}

TEST(EventArguments, BadTemplatesAreRejectedWhenParsed) {
  for (const char* bad : {"[]", "\"$data\"", "{", R"({"a": "$Type"})", R"({"a": "$data."})",
                          R"({"a": "$data..b"})", R"({"a": ["$bad-name"]})"}) {
    auto t = EventArguments::parse(bad, "metadata.annotations[sluice.dev/tool-arguments]");
    ASSERT_FALSE(t) << bad;
    EXPECT_EQ(t.error().code, 400) << bad;
    EXPECT_NE(t.error().to_string().find("sluice.dev/tool-arguments"), std::string::npos) << bad;
  }
}

}  // namespace
}  // namespace sluice
