// An A2A agent with three replicas behind `sluice serve`'s /a2a/{agent}: a task lives on the replica
// that made it (the example a2a_agent keeps tasks in memory and names its replica in each task's
// metadata), so the gateway sends each task's GetTask to that replica.

#include <gtest/gtest.h>
#include <httplib.h>

#include <map>
#include <set>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/integration/agents_support.hpp"

namespace sluice::testing {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

class A2aReplicas : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_.wait_ready());
    AgentYaml a;
    a.name = "echo";
    a.program = "a2a_agent";
    a.annotations = {{"sluice.dev/protocol", "a2a"},
                     {"autoscaling.knative.dev/min-scale", "3"},
                     {"autoscaling.knative.dev/initial-scale", "3"}};
    apply_agent(server_, agent_yaml(a));
    ASSERT_TRUE(wait_until([&] { return ready_replicas(server_, "echo", "echo-00001") == 3; }, 30s));
  }

  json rpc(const std::string& method, const json& params, int id) {
    httplib::Client client("127.0.0.1", server_.port());
    auto res =
        client.Post("/a2a/echo", {{"A2A-Version", "1.0"}},
                    json{{"jsonrpc", "2.0"}, {"id", id}, {"method", method}, {"params", params}}.dump(),
                    "application/json");
    if (!res || res->status != 200) return nullptr;
    return json::parse(res->body, nullptr, false);
  }

  /// A SendMessage that makes a new task; the answer.
  json make_task(int i) {
    return rpc("SendMessage",
               {{"message",
                 {{"messageId", "m-" + std::to_string(i)},
                  {"role", "ROLE_USER"},
                  {"parts", json::array({{{"text", "make a task"}}})}}}},
               i);
  }

  SluiceServer server_;
};

TEST_F(A2aReplicas, EachTasksRequestsReachTheReplicaThatMadeIt) {
  std::map<std::string, std::string> made_on;  // task id → replica
  for (int i = 0; i < 30; ++i) {
    json sent = make_task(i);
    ASSERT_TRUE(sent.is_object() && sent.contains("result")) << sent.dump();
    const json& task = sent["result"]["task"];
    made_on[task["id"].get<std::string>()] = task["metadata"]["replica"].get<std::string>();
  }
  std::set<std::string> replicas;
  for (const auto& [task, replica] : made_on) replicas.insert(replica);
  EXPECT_GE(replicas.size(), 2u) << "30 tasks should be made on more than one of three replicas";

  int id = 100;
  for (const auto& [task, replica] : made_on) {
    json got = rpc("GetTask", {{"id", task}}, ++id);
    ASSERT_TRUE(got.is_object() && got.contains("result")) << task << ": " << got.dump();
    EXPECT_EQ(got["result"]["id"], task);
    EXPECT_EQ(got["result"]["metadata"]["replica"], replica);
    // CancelTask reaches it too: the example's tasks are finished, so it says it cannot cancel.
    json cancel = rpc("CancelTask", {{"id", task}}, ++id);
    ASSERT_TRUE(cancel.is_object());
    EXPECT_EQ(cancel["error"]["code"], -32002) << cancel.dump();
  }
}

// A message with a taskId continues that task (A2A §3.4.2), so it goes to the task's replica too: the
// example's tasks are finished, so that replica answers UnsupportedOperation (-32004); any other would
// answer TaskNotFound (-32001).
TEST_F(A2aReplicas, AMessageContinuingATaskReachesTheReplicaThatMadeIt) {
  std::vector<std::string> tasks;
  for (int i = 0; i < 12; ++i) {
    json sent = make_task(i);
    ASSERT_TRUE(sent.is_object() && sent.contains("result")) << sent.dump();
    tasks.push_back(sent["result"]["task"]["id"].get<std::string>());
  }
  int id = 100;
  for (const auto& task : tasks) {
    for (const char* method : {"SendMessage", "SendStreamingMessage"}) {
      json got = rpc(method,
                     {{"message",
                       {{"messageId", "more-" + std::to_string(++id)},
                        {"role", "ROLE_USER"},
                        {"taskId", task},
                        {"parts", json::array({{{"text", "and then?"}}})}}}},
                     id);
      ASSERT_TRUE(got.is_object()) << method << " " << task;
      EXPECT_EQ(got["error"]["code"], -32004) << method << " " << task << ": " << got.dump();
    }
  }
}

// JSON-RPC 2.0 error codes from the example agent, through the gateway: params of the wrong shape are
// Invalid params (-32602), never an HTTP 500.
TEST_F(A2aReplicas, TheExampleAgentAnswersBadParamsWithInvalidParams) {
  for (const json& params : {json::array(), json{{"id", 5}}, json{{"message", "text"}},
                             json{{"message", {{"parts", "x"}, {"contextId", 7}}}}}) {
    const std::string method = params.is_object() && params.contains("id") ? "GetTask" : "SendMessage";
    json got = rpc(method, params, 1);
    ASSERT_TRUE(got.is_object()) << params.dump();
    EXPECT_EQ(got["error"]["code"], -32602) << params.dump() << " -> " << got.dump();
    EXPECT_EQ(got["id"], 1) << got.dump();
  }
}

}  // namespace
}  // namespace sluice::testing
