// x-mcp-header annotations and Mcp-Param-{Name} headers (MCP 2026-07-28, Streamable HTTP, "Custom
// Headers from Tool Parameters").

#include "mcp/param_headers.hpp"

#include <gtest/gtest.h>
#include <strings.h>

#include <map>

namespace sluice::mcp {
namespace {

using json = nlohmann::json;

json schema_with(json properties) {
  return {{"type", "object"}, {"properties", std::move(properties)}};
}

// The reason param_headers rejects `schema`; empty when it accepts it.
std::string rejection(const json& schema) {
  auto headers = param_headers(schema);
  return headers ? std::string() : headers.error().message;
}

// Header lookup over a list of (name, value), names case-insensitive as in HTTP.
HeaderValuesFn lookup(std::vector<std::pair<std::string, std::string>> headers) {
  return [headers = std::move(headers)](const std::string& name) {
    std::vector<std::string> out;
    for (const auto& [n, v] : headers)
      if (strcasecmp(n.c_str(), name.c_str()) == 0) out.push_back(v);
    return out;
  };
}

TEST(ParamHeaders, CollectsStaticallyReachableAnnotationsWithTheirPaths) {
  auto schema = schema_with(
      {{"region", {{"type", "string"}, {"x-mcp-header", "Region"}}},
       {"query", {{"type", "string"}}},
       {"target",
        {{"type", "object"}, {"properties", {{"shard", {{"type", "integer"}, {"x-mcp-header", "Shard"}}}}}}},
       {"dry", {{"type", json::array({"boolean", "null"})}, {"x-mcp-header", "Dry-Run"}}}});
  auto headers = param_headers(schema);
  ASSERT_TRUE(headers) << headers.error().message;
  std::map<std::string, std::vector<std::string>> by_name;
  for (const auto& h : headers.value()) by_name[h.name] = h.path;
  EXPECT_EQ(by_name.size(), 3u);
  EXPECT_EQ(by_name["Region"], (std::vector<std::string>{"region"}));
  EXPECT_EQ(by_name["Shard"], (std::vector<std::string>{"target", "shard"}));
  EXPECT_EQ(by_name["Dry-Run"], (std::vector<std::string>{"dry"}));
  // A property named like the keyword is a property, and data keywords are not schemas.
  EXPECT_EQ(
      rejection(schema_with({{"x-mcp-header", {{"type", "string"}, {"default", {{"x-mcp-header", ""}}}}}})),
      "");
}

TEST(ParamHeaders, RejectsAnnotationsThatBreakTheConstraints) {
  auto annotated = [](json type, json name) {
    return json{{"type", std::move(type)}, {"x-mcp-header", name}};
  };
  EXPECT_NE(rejection(schema_with({{"a", annotated("string", "")}})).find("non-empty"), std::string::npos);
  EXPECT_NE(rejection(schema_with({{"a", annotated("string", 5)}})), "");
  EXPECT_NE(rejection(schema_with({{"a", annotated("string", "Bad Name")}})).find("token"),
            std::string::npos);
  EXPECT_NE(rejection(schema_with({{"a", annotated("string", "x\r\nInjected: 1")}})), "");
  EXPECT_NE(rejection(schema_with({{"a", annotated("string", "Région")}})), "");
  auto duplicate =
      rejection(schema_with({{"a", annotated("string", "Region")}, {"b", annotated("string", "region")}}));
  EXPECT_NE(duplicate.find("duplicates"), std::string::npos) << duplicate;
  EXPECT_NE(rejection(schema_with({{"a", annotated("number", "N")}})).find("number"), std::string::npos);
  EXPECT_NE(rejection(schema_with({{"a", annotated("object", "O")}})), "");
  EXPECT_NE(rejection(schema_with({{"a", annotated("array", "A")}})), "");
  EXPECT_NE(rejection(schema_with({{"a", annotated(json::array({"string", "integer"}), "A")}})), "");
  EXPECT_NE(rejection(schema_with({{"a", {{"x-mcp-header", "Untyped"}}}})), "");
}

TEST(ParamHeaders, RejectsAnnotationsThatAreNotStaticallyReachable) {
  const json leaf = {{"type", "string"}, {"x-mcp-header", "Deep"}};
  const json object_leaf = {{"type", "object"}, {"properties", {{"x", leaf}}}};
  for (const char* keyword : {"oneOf", "anyOf", "allOf"}) {
    auto why = rejection(schema_with({{"a", {{keyword, json::array({object_leaf})}}}}));
    EXPECT_NE(why.find(keyword), std::string::npos) << keyword << ": " << why;
  }
  for (const char* keyword : {"items", "not", "if", "then", "else", "additionalProperties"}) {
    auto why = rejection(schema_with({{"a", {{keyword, object_leaf}}}}));
    EXPECT_NE(why.find(keyword), std::string::npos) << keyword << ": " << why;
  }
  auto defs = rejection(
      {{"type", "object"}, {"properties", {{"a", {{"$ref", "#/$defs/A"}}}}}, {"$defs", {{"A", leaf}}}});
  EXPECT_NE(defs.find("$defs"), std::string::npos) << defs;
  auto ref = rejection(schema_with({{"a", {{"$ref", "#/$defs/A"}, {"x-mcp-header", "Ref"}}}}));
  EXPECT_NE(ref, "");
}

TEST(ParamHeaders, DecodesTheBase64Form) {
  EXPECT_EQ(decode_header_value("us-west1"), "us-west1");
  EXPECT_EQ(decode_header_value("=?base64?SGVsbG8sIOS4lueVjA==?="), "Hello, 世界");
  EXPECT_EQ(decode_header_value("=?base64?IHBhZGRlZCA=?="), " padded ");
  EXPECT_EQ(decode_header_value("=?base64?PT9iYXNlNjQ/bGl0ZXJhbD89?="), "=?base64?literal?=");
  EXPECT_EQ(decode_header_value("=?BASE64?SGk=?="), "=?BASE64?SGk=?=");  // the markers are case-sensitive
  EXPECT_FALSE(decode_header_value("=?base64?!!!?="));
}

class ParamHeaderCheck : public ::testing::Test {
 protected:
  std::vector<ParamHeader> headers_ =
      param_headers(
          schema_with({{"region", {{"type", "string"}, {"x-mcp-header", "Region"}}},
                       {"limit", {{"type", "integer"}, {"x-mcp-header", "Limit"}}},
                       {"dry", {{"type", "boolean"}, {"x-mcp-header", "Dry"}}},
                       {"where",
                        {{"type", "object"},
                         {"properties", {{"zone", {{"type", "string"}, {"x-mcp-header", "Zone"}}}}}}}}))
          .value();
};

TEST_F(ParamHeaderCheck, MatchingHeadersPass) {
  json args = {{"region", "us-west1"}, {"limit", 42}, {"dry", false}, {"where", {{"zone", "Hello, 世界"}}}};
  EXPECT_EQ(param_header_mismatch(headers_, args,
                                  lookup({{"mcp-param-region", "us-west1"},
                                          {"Mcp-Param-Limit", "42.0"},
                                          {"Mcp-Param-Dry", "false"},
                                          {"Mcp-Param-Zone", "=?base64?SGVsbG8sIOS4lueVjA==?="}})),
            "");
  // Absent and null values expect no header.
  EXPECT_EQ(param_header_mismatch(headers_, {{"region", nullptr}}, lookup({})), "");
  EXPECT_EQ(param_header_mismatch(headers_, json::object(), lookup({})), "");
}

TEST_F(ParamHeaderCheck, DisagreementsAreMismatches) {
  auto why = [&](json args, std::vector<std::pair<std::string, std::string>> headers) {
    return param_header_mismatch(headers_, args, lookup(std::move(headers)));
  };
  EXPECT_NE(why({{"region", "us-west1"}}, {}).find("Mcp-Param-Region header is required"), std::string::npos);
  EXPECT_NE(why(json::object(), {{"Mcp-Param-Region", "us-west1"}}).find("has no value"), std::string::npos);
  EXPECT_NE(why({{"region", "us-west1"}}, {{"Mcp-Param-Region", "eu-west1"}}).find("does not match"),
            std::string::npos);
  EXPECT_NE(
      why({{"region", "us-west1"}}, {{"Mcp-Param-Region", "us-west1"}, {"Mcp-Param-Region", "us-west1"}}),
      "");
  EXPECT_NE(why({{"limit", 42}}, {{"Mcp-Param-Limit", "43"}}), "");
  EXPECT_NE(why({{"limit", 42}}, {{"Mcp-Param-Limit", "42x"}}), "");
  EXPECT_NE(why({{"limit", 9007199254740993LL}}, {{"Mcp-Param-Limit", "9007199254740993"}}).find("safe"),
            std::string::npos);
  EXPECT_NE(why({{"dry", true}}, {{"Mcp-Param-Dry", "True"}}), "");
  EXPECT_NE(why({{"dry", true}}, {{"Mcp-Param-Dry", "1"}}), "");
  EXPECT_NE(why({{"where", {{"zone", "a"}}}}, {{"Mcp-Param-Zone", "=?base64?!!?="}}).find("base64"),
            std::string::npos);
  EXPECT_NE(why({{"where", {{"zone", "é"}}}}, {{"Mcp-Param-Zone", "é"}}).find("characters"),
            std::string::npos);
  EXPECT_NE(why({{"region", json::array({"a"})}}, {{"Mcp-Param-Region", "[\"a\"]"}}), "");
}

}  // namespace
}  // namespace sluice::mcp
