#include "mcp/tool_catalog.hpp"

#include <gtest/gtest.h>

#include "mcp/builtin_tools.hpp"
#include "mcp/json_rpc.hpp"

namespace sluice::mcp {
namespace {

nlohmann::json tools(std::initializer_list<const char*> names) {
  nlohmann::json out = nlohmann::json::array();
  for (const char* n : names) out.push_back({{"name", n}, {"inputSchema", {{"type", "object"}}}});
  return out;
}

std::vector<std::string> names(const std::vector<nlohmann::json>& list) {
  std::vector<std::string> out;
  for (const auto& t : list) out.push_back(t["name"]);
  return out;
}

TEST(ToolCatalog, PrefixesAgentToolsAndSortsWithBuiltins) {
  ToolCatalog catalog;
  catalog.set_builtins(builtin_tool_definitions());
  EXPECT_TRUE(catalog.set_agent("weather", "weather-00001", tools({"forecast", "alerts"})));
  EXPECT_TRUE(catalog.set_agent("calc", "calc-00002", tools({"add"})));
  EXPECT_EQ(names(catalog.list()), (std::vector<std::string>{"calc.add", "list_agents", "publish_event",
                                                             "weather.alerts", "weather.forecast"}));
  EXPECT_EQ(catalog.revision_of("calc"), "calc-00002");
  EXPECT_TRUE(catalog.has_tool("weather", "alerts"));
  EXPECT_FALSE(catalog.has_tool("weather", "weather.alerts"));
}

TEST(ToolCatalog, ReportsChangesOnlyWhenTheListingChanges) {
  ToolCatalog catalog;
  auto v0 = catalog.version();
  EXPECT_TRUE(catalog.set_agent("a", "a-00001", tools({"x"})));
  EXPECT_FALSE(catalog.set_agent("a", "a-00002", tools({"x"})));  // same tools from a new revision
  EXPECT_EQ(catalog.revision_of("a"), "a-00002");
  EXPECT_TRUE(catalog.set_agent("a", "a-00003", tools({"x", "y"})));
  EXPECT_TRUE(catalog.remove_agent("a"));
  EXPECT_FALSE(catalog.remove_agent("a"));
  EXPECT_GT(catalog.version(), v0);
}

TEST(ToolCatalog, LeavesOutInvalidNames) {
  ToolCatalog catalog;
  auto list = tools({"ok", "has space", ""});
  list.push_back({{"name", 5}});
  list.push_back({{"name", std::string(130, 'x')}});
  list.push_back("not an object");
  catalog.set_agent("a", "a-1", list);
  EXPECT_EQ(names(catalog.list()), std::vector<std::string>{"a.ok"});
}

TEST(ToolCatalog, LeavesOutToolsWhoseSchemasAreNotObjectSchemas) {
  ToolCatalog catalog;
  auto list = tools({"ok"});
  list.push_back({{"name", "no_input"}});
  list.push_back({{"name", "string_input"}, {"inputSchema", "object"}});
  list.push_back({{"name", "array_input"}, {"inputSchema", {{"type", "array"}}}});
  list.push_back({{"name", "bad_output"},
                  {"inputSchema", {{"type", "object"}}},
                  {"outputSchema", {{"type", "string"}}}});
  list.push_back({{"name", "with_output"},
                  {"inputSchema", {{"type", "object"}}},
                  {"outputSchema", {{"type", "object"}}}});
  catalog.set_agent("a", "a-1", list);
  EXPECT_EQ(names(catalog.list()), (std::vector<std::string>{"a.ok", "a.with_output"}));
}

TEST(ToolCatalog, LeavesOutToolsWithInvalidMcpHeaderAnnotations) {
  auto with_property = [](const char* name, nlohmann::json property) {
    return nlohmann::json{
        {"name", name}, {"inputSchema", {{"type", "object"}, {"properties", {{"p", std::move(property)}}}}}};
  };
  ToolCatalog catalog;
  nlohmann::json list = nlohmann::json::array();
  list.push_back(with_property("region", {{"type", "string"}, {"x-mcp-header", "Region"}}));
  list.push_back(with_property("empty", {{"type", "string"}, {"x-mcp-header", ""}}));
  list.push_back(with_property("spaced", {{"type", "string"}, {"x-mcp-header", "Bad Name"}}));
  list.push_back(with_property("number", {{"type", "number"}, {"x-mcp-header", "N"}}));
  list.push_back(with_property(
      "in_items", {{"type", "array"}, {"items", {{"type", "string"}, {"x-mcp-header", "Item"}}}}));
  catalog.set_agent("a", "a-1", list);
  EXPECT_EQ(names(catalog.list()), (std::vector<std::string>{"a.region"}));
  ASSERT_TRUE(catalog.input_schema("a.region"));
  EXPECT_EQ((*catalog.input_schema("a.region"))["properties"]["p"]["x-mcp-header"], "Region");
  EXPECT_FALSE(catalog.input_schema("a.number"));
  EXPECT_FALSE(catalog.input_schema("b.region"));
}

TEST(ToolCatalog, ValidNamesAndSplitting) {
  EXPECT_TRUE(ToolCatalog::valid_tool_name("a.b-c_D9"));
  EXPECT_FALSE(ToolCatalog::valid_tool_name(""));
  EXPECT_FALSE(ToolCatalog::valid_tool_name("a b"));
  EXPECT_FALSE(ToolCatalog::valid_tool_name(std::string(129, 'a')));
  auto split = ToolCatalog::split_name("agent.tool.with.dots");
  ASSERT_TRUE(split);
  EXPECT_EQ(split->first, "agent");
  EXPECT_EQ(split->second, "tool.with.dots");
  EXPECT_FALSE(ToolCatalog::split_name("publish_event"));
  EXPECT_FALSE(ToolCatalog::split_name(".x"));
  EXPECT_FALSE(ToolCatalog::split_name("x."));
}

TEST(ToolCatalog, PaginatesWithStableCursors) {
  ToolCatalog catalog;
  catalog.set_agent("a", "a-1", tools({"t1", "t2", "t3", "t4", "t5"}));
  auto first = catalog.page("", 2);
  ASSERT_TRUE(first);
  EXPECT_EQ(names(first.value().tools), (std::vector<std::string>{"a.t1", "a.t2"}));
  ASSERT_FALSE(first.value().next_cursor.empty());
  // A tool appearing before the cursor does not shift the next page.
  catalog.set_agent("0first", "0-1", tools({"z"}));
  auto second = catalog.page(first.value().next_cursor, 2);
  ASSERT_TRUE(second);
  EXPECT_EQ(names(second.value().tools), (std::vector<std::string>{"a.t3", "a.t4"}));
  auto third = catalog.page(second.value().next_cursor, 2);
  ASSERT_TRUE(third);
  EXPECT_EQ(names(third.value().tools), std::vector<std::string>{"a.t5"});
  EXPECT_TRUE(third.value().next_cursor.empty());
}

TEST(ToolCatalog, ExactlyFullLastPageHasNoCursor) {
  ToolCatalog catalog;
  catalog.set_agent("a", "a-1", tools({"t1", "t2"}));
  auto page = catalog.page("", 2);
  ASSERT_TRUE(page);
  EXPECT_EQ(page.value().tools.size(), 2u);
  EXPECT_TRUE(page.value().next_cursor.empty());
}

TEST(ToolCatalog, InvalidCursorIsInvalidParams) {
  ToolCatalog catalog;
  auto page = catalog.page("!!not-base64!!", 10);
  ASSERT_FALSE(page);
  EXPECT_EQ(page.error().code, rpc_error::invalid_params);
  EXPECT_FALSE(catalog.page("eHl6", 10));  // base64 of "xyz": not one of ours
}

TEST(ToolCatalog, SavesAndLoads) {
  ToolCatalog catalog;
  catalog.set_agent("a", "a-1", tools({"t"}));
  ToolCatalog restored;
  restored.load(catalog.to_json());
  EXPECT_EQ(names(restored.list()), std::vector<std::string>{"a.t"});
  EXPECT_EQ(restored.revision_of("a"), "a-1");
}

TEST(BuiltinTools, EventFromArguments) {
  auto event = event_from_arguments({{"broker", "default"},
                                     {"type", "com.example.t"},
                                     {"source", "/mcp"},
                                     {"data", {{"k", 1}}},
                                     {"extensions", {{"tenant", "acme"}}}},
                                    "id-1");
  ASSERT_TRUE(event) << event.error().to_string();
  EXPECT_EQ(event.value().id, "id-1");
  EXPECT_EQ(event.value().datacontenttype, "application/json");
  EXPECT_EQ(event.value().extensions.at("tenant").text, "acme");
  auto missing = event_from_arguments({{"broker", "b"}, {"type", "t"}}, "x");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().subject, "source");
  auto bad_ext = event_from_arguments(
      {{"broker", "b"}, {"type", "t"}, {"source", "s"}, {"extensions", {{"Bad-Name", "v"}}}}, "x");
  ASSERT_FALSE(bad_ext);
  EXPECT_EQ(bad_ext.error().code, rpc_error::invalid_params);
}

}  // namespace
}  // namespace sluice::mcp
