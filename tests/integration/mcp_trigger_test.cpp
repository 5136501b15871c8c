// Triggers that call MCP tools (`sluice.dev/tool`): a real `sluice serve`, the example MCP agent
// (build/mcp_agent) at zero replicas, events published over HTTP; the tool's result comes back into
// the broker as a reply event, and a failing tool is retried and dead-lettered.

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/base64.hpp"
#include "tests/integration/agents_support.hpp"
#include "tests/integration/broker_support.hpp"

namespace sluice::testing {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

/// A trigger on events of `type` that calls `tool` of agent `agent`.
std::string tool_trigger_yaml(const std::string& name, const std::string& type, const std::string& agent,
                              const std::string& tool, const std::string& arguments = "",
                              const std::string& delivery = "") {
  std::string y = "apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata:\n  name: " + name +
                  "\n  annotations:\n    sluice.dev/tool: " + tool + "\n";
  if (!arguments.empty()) y += "    sluice.dev/tool-arguments: '" + arguments + "'\n";
  y += "spec:\n  broker: default\n  filter: {attributes: {type: " + type +
       "}}\n  subscriber: {ref: {apiVersion: sluice.dev/v1, kind: Agent, name: " + agent + "}}\n" + delivery;
  return y;
}

class McpTrigger : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(server_.wait_ready()); }
  SluiceServer server_{{"--autoscaler", "allow-zero-initial-scale=true"}};
};

TEST_F(McpTrigger, EachEventIsAToolCallWhoseResultReentersTheBroker) {
  HttpSink results;
  apply_yaml(server_,
             broker_yaml() + "---\n" + mcp_agent_yaml("calc") + "---\n" +
                 tool_trigger_yaml("sum", "com.example.sum", "calc", "add", R"({"a": "$data.x", "b": 2})") +
                 "---\n" + tool_trigger_yaml("repeat", "com.example.echo", "calc", "echo") + "---\n" +
                 trigger_yaml("results", results.url(),
                              "  filter: {attributes: {type: dev.sluice.mcp.tool.result}}\n"));
  // The agent is at zero: the first event wakes it through the activator.
  EXPECT_EQ(ready_replicas(server_, "calc", "calc-00001"), 0);
  ASSERT_EQ(publish(server_, "sum-1", "com.example.sum", R"({"x": 40})"), 202);
  ASSERT_EQ(publish(server_, "echo-1", "com.example.echo", R"({"text": "hello"})"), 202);
  ASSERT_TRUE(results.wait_for(2, 30s)) << "tool results as reply events";

  std::map<std::string, ReceivedRequest> by_id;
  for (const auto& r : results.requests()) by_id[r.header("ce-id")] = r;
  ASSERT_TRUE(by_id.count("sum-1-result"));
  const auto& sum = by_id["sum-1-result"];
  EXPECT_EQ(sum.header("ce-type"), "dev.sluice.mcp.tool.result");
  EXPECT_EQ(sum.header("ce-source"), "/mcp/calc");
  EXPECT_EQ(sum.header("ce-subject"), "add");
  auto result = json::parse(sum.body);
  EXPECT_EQ(result["structuredContent"]["sum"], 42) << sum.body;
  EXPECT_FALSE(result.value("isError", false));
  // Without a template the event's data are the arguments, unchanged.
  ASSERT_TRUE(by_id.count("echo-1-result"));
  EXPECT_NE(by_id["echo-1-result"].body.find("hello"), std::string::npos) << by_id["echo-1-result"].body;
  EXPECT_EQ(trigger_status(server_, "sum")["delivery"].value("replies", 0), 1);
}

TEST_F(McpTrigger, ToolErrorsAndUnmappableEventsAreRetriedThenDeadLettered) {
  HttpSink dlq;
  const std::string delivery =
      "  delivery: {retry: 1, backoffPolicy: linear, backoffDelay: PT0.01S, "
      "deadLetterSink: {uri: \"" +
      dlq.url() + "\"}}\n";
  apply_yaml(server_, broker_yaml() + "---\n" + mcp_agent_yaml("calc", "1") + "---\n" +
                          tool_trigger_yaml("broken", "com.example.fail", "calc", "fail",
                                            R"({"message": "$subject"})", delivery) +
                          "---\n" +
                          tool_trigger_yaml("sum", "com.example.sum", "calc", "add",
                                            R"({"a": "$data.x", "b": 1})", delivery));
  ASSERT_EQ(publish(server_, "fail-1", "com.example.fail", "{}", {{"subject", "disk full"}}), 202);
  ASSERT_EQ(publish(server_, "sum-bad", "com.example.sum", R"({"y": 1})"), 202);
  ASSERT_TRUE(dlq.wait_for(2, 30s));

  std::map<std::string, ReceivedRequest> by_id;
  for (const auto& r : dlq.requests()) by_id[r.header("ce-id")] = r;
  ASSERT_TRUE(by_id.count("fail-1"));
  EXPECT_EQ(by_id["fail-1"].header("ce-knativeerrorcode"), "500") << "the tool said isError";
  EXPECT_EQ(by_id["fail-1"].header("ce-knativeerrordest"), "mcp:calc/fail");
  auto data = base64_decode(by_id["fail-1"].header("ce-knativeerrordata"));
  ASSERT_TRUE(data);
  EXPECT_NE(data.value().find("disk full"), std::string::npos) << data.value();
  ASSERT_TRUE(by_id.count("sum-bad"));
  EXPECT_EQ(by_id["sum-bad"].header("ce-knativeerrorcode"), "400");
  data = base64_decode(by_id["sum-bad"].header("ce-knativeerrordata"));
  ASSERT_TRUE(data);
  EXPECT_NE(data.value().find("no member \"x\""), std::string::npos) << data.value();
  EXPECT_EQ(trigger_status(server_, "broken")["delivery"].value("failedAttempts", 0), 2);
}

TEST_F(McpTrigger, ToolAnnotationsAreCheckedAtApplyAndAgainstTheAgentsProtocol) {
  std::string out;
  const std::string bad_uri =
      "apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata:\n  name: t\n  annotations: "
      "{sluice.dev/tool: add}\nspec:\n  broker: default\n  subscriber: {uri: http://127.0.0.1:9/}\n";
  EXPECT_NE(server_.cli({"apply", "-f", "-"}, &out, bad_uri), 0);
  EXPECT_NE(out.find("metadata.annotations[sluice.dev/tool]: needs a subscriber {ref: {kind: Agent"),
            std::string::npos)
      << out;
  EXPECT_NE(server_.cli({"apply", "-f", "-"}, &out,
                        tool_trigger_yaml("t", "x", "calc", "add", R"({"a": "$Data"})")),
            0);
  EXPECT_NE(out.find("sluice.dev/tool-arguments"), std::string::npos) << out;
  EXPECT_NE(out.find("\"$Data\""), std::string::npos) << out;
  EXPECT_NE(
      server_.cli({"apply", "-f", "-"}, &out, tool_trigger_yaml("t", "x", "calc", "add", R"(["$data"])")), 0);

  // A tool on an agent that does not speak MCP: every attempt fails and says why.
  HttpSink dlq;
  AgentYaml plain = warm_slow_agent("plain");
  apply_yaml(server_,
             broker_yaml() + "---\n" + agent_yaml(plain) + "---\n" +
                 tool_trigger_yaml("wrong", "com.example.x", "plain", "add", "",
                                   "  delivery: {retry: 0, deadLetterSink: {uri: \"" + dlq.url() + "\"}}\n"));
  ASSERT_EQ(publish(server_, "x-1", "com.example.x"), 202);
  ASSERT_TRUE(dlq.wait_for(1, 20s));
  EXPECT_EQ(dlq.requests()[0].header("ce-knativeerrordest"), "Agent/plain tool add");
}

}  // namespace
}  // namespace sluice::testing
