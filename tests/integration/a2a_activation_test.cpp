// An A2A agent at zero behind `sluice serve`'s /a2a/{agent}: discovering it (its card) starts no
// replica, and the requests of a client that found it wait through the activation.

#include <gtest/gtest.h>
#include <httplib.h>

#include <csignal>
#include <sstream>
#include <vector>

#include <nlohmann/json.hpp>

#include "mcp/a2a_gateway.hpp"
#include "tests/integration/agents_support.hpp"

namespace sluice::testing {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

bool is_placeholder(const json& card) {
  for (const auto& e : card["capabilities"].value("extensions", json::array()))
    if (e.value("uri", "") == mcp::kPlaceholderCardExtension) return true;
  return false;
}

/// A SendMessage whose text asks the example agent for a task.
json message(int id) {
  return {{"message",
           {{"messageId", "m-" + std::to_string(id)},
            {"role", "ROLE_USER"},
            {"parts", json::array({{{"text", "make a task"}}})}}}};
}

/// One JSON-RPC request to /a2a/{agent}; null unless answered with HTTP 200.
json rpc(SluiceServer& server, const std::string& agent, const std::string& method, const json& params,
         int id) {
  httplib::Client client("127.0.0.1", server.port());
  client.set_read_timeout(60, 0);
  auto res = client.Post("/a2a/" + agent, {{"A2A-Version", "1.0"}},
                         json{{"jsonrpc", "2.0"}, {"id", id}, {"method", method}, {"params", params}}.dump(),
                         "application/json");
  if (!res || res->status != 200) return nullptr;
  return json::parse(res->body, nullptr, false);
}

/// The example A2A agent as `name`, created at zero, its JSON-RPC endpoint at `rpc_path`.
std::string a2a_agent_at_zero(const std::string& name, const std::string& rpc_path = "/") {
  AgentYaml a;
  a.name = name;
  a.program = "a2a_agent";
  a.env = {{"RPC_PATH", rpc_path}};
  a.annotations = {{"sluice.dev/protocol", "a2a"}, {"autoscaling.knative.dev/initial-scale", "0"}};
  return agent_yaml(a);
}

class A2aActivation : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(server_.wait_ready()); }

  void create_at_zero(const std::string& name, const std::string& rpc_path = "/") {
    apply_agent(server_, a2a_agent_at_zero(name, rpc_path));
  }

  httplib::Result get_card(const std::string& agent, const char* file = "agent-card.json") {
    httplib::Client client("127.0.0.1", server_.port());
    return client.Get("/a2a/" + agent + "/.well-known/" + file);
  }

  json send_message(const std::string& agent, int id) {
    return rpc(server_, agent, "SendMessage", message(id), id);
  }

  SluiceServer server_{{"--gpus", "none", "--autoscaler", "allow-zero-initial-scale=true"}};
};

// A2A §8.2: clients discover an agent by its card. Reading the agent's own card needs a replica, so
// until one has been ready the gateway serves a placeholder from what it knows, and starts nothing.
TEST_F(A2aActivation, TheCardOfAnAgentAtZeroStartsNoReplica) {
  create_at_zero("zcard");
  const std::string base = "http://127.0.0.1:" + std::to_string(server_.port()) + "/a2a/zcard";
  auto res = get_card("zcard");
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  ASSERT_EQ(res->status, 200) << res->body;
  EXPECT_EQ(res->get_header_value("Cache-Control"), "no-store");
  json card = json::parse(res->body);
  EXPECT_TRUE(is_placeholder(card)) << card.dump();
  EXPECT_EQ(card["name"], "zcard");
  EXPECT_EQ(card["version"], "zcard-00001");
  ASSERT_EQ(card["supportedInterfaces"].size(), 1u) << card.dump();
  EXPECT_EQ(card["supportedInterfaces"][0],
            json({{"url", base}, {"protocolBinding", "JSONRPC"}, {"protocolVersion", "1.0"}}));
  for (const char* field : {"description", "defaultInputModes", "defaultOutputModes", "skills"})
    EXPECT_TRUE(card.contains(field)) << field << " is required (A2A §4.4.1): " << card.dump();

  // v0.3 clients read agent.json: the same, in v0.3's shape.
  auto old = get_card("zcard", "agent.json");
  ASSERT_TRUE(old && old->status == 200);
  json old_card = json::parse(old->body);
  EXPECT_TRUE(is_placeholder(old_card)) << old_card.dump();
  EXPECT_EQ(old_card["url"], base);
  EXPECT_EQ(old_card["preferredTransport"], "JSONRPC");

  EXPECT_EQ(revision_status(server_, "zcard", "zcard-00001").value("replicas", -1), 0)
      << "fetching the card started a replica";

  // The first message wakes the agent; once a replica has been ready its own card replaces the
  // placeholder, and stays when the agent is back at zero.
  json sent = send_message("zcard", 1);
  ASSERT_TRUE(sent.is_object() && sent.contains("result")) << sent.dump();
  json own;
  ASSERT_TRUE(wait_until(
      [&] {
        auto got = get_card("zcard");
        if (!got || got->status != 200) return false;
        own = json::parse(got->body, nullptr, false);
        return own.is_object() && !is_placeholder(own);
      },
      20s))
      << own.dump();
  EXPECT_EQ(own["skills"][0]["id"], "echo") << own.dump();
  EXPECT_EQ(own["supportedInterfaces"][0]["url"], base);
}

// A streamed message to an agent at zero waits through the activation and streams every update
// (A2A §3.1.2): the task submitted, working, its artifact, completed.
TEST_F(A2aActivation, AStreamedMessageWaitsThroughTheActivation) {
  create_at_zero("zstream");
  httplib::Client client("127.0.0.1", server_.port());
  client.set_read_timeout(60, 0);
  json params = {
      {"message",
       {{"messageId", "m-1"}, {"role", "ROLE_USER"}, {"parts", json::array({{{"text", "a task"}}})}}}};
  auto res = client.Post(
      "/a2a/zstream", {{"A2A-Version", "1.0"}, {"Accept", "text/event-stream"}},
      json{{"jsonrpc", "2.0"}, {"id", 1}, {"method", "SendStreamingMessage"}, {"params", params}}.dump(),
      "application/json");
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  ASSERT_EQ(res->status, 200) << res->body;
  EXPECT_EQ(res->get_header_value("Content-Type").rfind("text/event-stream", 0), 0u) << res->body;
  std::vector<json> events;
  std::istringstream lines(res->body);
  for (std::string line; std::getline(lines, line);)
    if (line.rfind("data: ", 0) == 0) events.push_back(json::parse(line.substr(6), nullptr, false));
  ASSERT_EQ(events.size(), 4u) << res->body;
  EXPECT_EQ(events.back()["result"]["statusUpdate"]["status"]["state"], "TASK_STATE_COMPLETED") << res->body;
}

// A task's replica scaled down meanwhile: its GetTask and CancelTask are asked of a new replica, whose
// answer (TaskNotFound, -32001: the example keeps tasks in memory) is the client's, not a gateway error.
TEST(A2aScaledDown, RequestsForATaskWhoseReplicaIsGoneAreAnsweredByTheAgent) {
  SluiceServer server({"--gpus", "none", "--autoscaler", "allow-zero-initial-scale=true", "--autoscaler",
                       "scale-to-zero-grace-period=1s", "--autoscaler", "stable-window=6s"});
  ASSERT_TRUE(server.wait_ready());
  apply_agent(server, a2a_agent_at_zero("zdown"));
  json sent = rpc(server, "zdown", "SendMessage", message(1), 1);
  ASSERT_TRUE(sent.is_object() && sent.contains("result")) << sent.dump();
  const std::string task = sent["result"]["task"]["id"];
  ASSERT_TRUE(wait_until(
      [&] { return revision_status(server, "zdown", "zdown-00001").value("replicas", -1) == 0; }, 30s))
      << revision_status(server, "zdown", "zdown-00001").dump();
  int id = 10;
  for (const char* method : {"GetTask", "CancelTask"}) {
    json got = rpc(server, "zdown", method, {{"id", task}}, ++id);
    ASSERT_TRUE(got.is_object()) << method << ": no JSON-RPC answer";
    EXPECT_EQ(got["error"]["code"], -32001) << method << ": " << got.dump();
    EXPECT_EQ(got["id"], id) << got.dump();
  }
}

// An agent deleted and created again under its name is another agent: the card Sluice read from the
// first is not the second's.
TEST_F(A2aActivation, ACardGoesWithItsDeletedAgent) {
  create_at_zero("zdel");
  json sent = send_message("zdel", 1);
  ASSERT_TRUE(sent.is_object() && sent.contains("result")) << sent.dump();
  ASSERT_TRUE(wait_until(
      [&] {
        auto got = get_card("zdel");
        return got && got->status == 200 && !is_placeholder(json::parse(got->body, nullptr, false));
      },
      20s));

  std::string out;
  ASSERT_EQ(server_.cli({"delete", "agent", "zdel"}, &out), 0) << out;
  auto gone = get_card("zdel");
  ASSERT_TRUE(gone);
  EXPECT_EQ(gone->status, 404) << gone->body;
  // The runtime reports the removed revision (its metrics go in the same pass).
  ASSERT_TRUE(wait_until(
      [&] {
        httplib::Client client("127.0.0.1", server_.port());
        auto metrics = client.Get("/metrics");
        return metrics && metrics->body.find("revision=\"zdel-00001\"") == std::string::npos;
      },
      20s));

  create_at_zero("zdel");
  auto again = get_card("zdel");
  ASSERT_TRUE(again && again->status == 200);
  json card = json::parse(again->body);
  EXPECT_TRUE(is_placeholder(card)) << again->body;
  EXPECT_EQ(revision_status(server_, "zdel", card["version"]).value("replicas", -1), 0) << again->body;
}

// The cards read from agents outlive a restart: an agent at zero since Sluice started is described
// by its own card, and still starts nothing.
TEST_F(A2aActivation, ACardReadBeforeARestartIsServedAfterIt) {
  create_at_zero("zkept");
  json sent = send_message("zkept", 1);
  ASSERT_TRUE(sent.is_object() && sent.contains("result")) << sent.dump();
  ASSERT_TRUE(wait_until(
      [&] {
        auto got = get_card("zkept");
        return got && got->status == 200 && !is_placeholder(json::parse(got->body, nullptr, false));
      },
      20s));

  server_.process().signal(SIGTERM);
  ASSERT_EQ(server_.process().wait(std::chrono::seconds(30)), 0);
  server_.restart();
  ASSERT_TRUE(server_.wait_ready());
  auto res = get_card("zkept");
  ASSERT_TRUE(res && res->status == 200);
  json card = json::parse(res->body);
  EXPECT_FALSE(is_placeholder(card)) << res->body;
  EXPECT_EQ(card["skills"][0]["id"], "echo") << res->body;
  EXPECT_EQ(card["supportedInterfaces"][0]["url"],
            "http://127.0.0.1:" + std::to_string(server_.port()) + "/a2a/zkept");
  EXPECT_EQ(revision_status(server_, "zkept", "zkept-00001").value("replicas", -1), 0);
}

// Where an agent's JSON-RPC endpoint is, only its card says (A2A §8.3.1). The first requests to an
// agent at zero, before Sluice has read that card, go where the card says, not to "/".
TEST_F(A2aActivation, TheFirstRequestsToAnAgentAtZeroReachItsJsonRpcPath) {
  create_at_zero("zpath", "/rpc");
  json sent = send_message("zpath", 1);
  ASSERT_TRUE(sent.is_object() && sent.contains("result")) << sent.dump();
  EXPECT_EQ(sent["result"]["task"]["status"]["state"], "TASK_STATE_COMPLETED") << sent.dump();

  // A trigger's events reach an A2A agent through /a2a/{agent}/events: the same for them.
  create_at_zero("zevents", "/rpc");
  httplib::Client client("127.0.0.1", server_.port());
  client.set_read_timeout(60, 0);
  auto res = client.Post(
      "/a2a/zevents/events",
      {{"ce-specversion", "1.0"}, {"ce-id", "e-1"}, {"ce-source", "/test"}, {"ce-type", "com.example.ask"}},
      "hello", "text/plain");
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  EXPECT_EQ(res->status, 200) << res->body;
  EXPECT_EQ(res->get_header_value("ce-type"), "dev.sluice.a2a.message") << res->body;
}

}  // namespace
}  // namespace sluice::testing
