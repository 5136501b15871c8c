// An A2A agent at zero behind `sluice serve`'s /a2a/{agent}: discovering it (its card) starts no
// replica, and the requests of a client that found it wait through the activation.

#include <gtest/gtest.h>
#include <httplib.h>

#include <csignal>

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

class A2aActivation : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(server_.wait_ready()); }

  /// The example A2A agent as `name`, created at zero, its JSON-RPC endpoint at `rpc_path`.
  void create_at_zero(const std::string& name, const std::string& rpc_path = "/") {
    AgentYaml a;
    a.name = name;
    a.program = "a2a_agent";
    a.env = {{"RPC_PATH", rpc_path}};
    a.annotations = {{"sluice.dev/protocol", "a2a"}, {"autoscaling.knative.dev/initial-scale", "0"}};
    apply_agent(server_, agent_yaml(a));
  }

  httplib::Result get_card(const std::string& agent, const char* file = "agent-card.json") {
    httplib::Client client("127.0.0.1", server_.port());
    return client.Get("/a2a/" + agent + "/.well-known/" + file);
  }

  json send_message(const std::string& agent, int id) {
    httplib::Client client("127.0.0.1", server_.port());
    client.set_read_timeout(60, 0);
    json params = {{"message",
                    {{"messageId", "m-" + std::to_string(id)},
                     {"role", "ROLE_USER"},
                     {"parts", json::array({{{"text", "make a task"}}})}}}};
    auto res = client.Post(
        "/a2a/" + agent, {{"A2A-Version", "1.0"}},
        json{{"jsonrpc", "2.0"}, {"id", id}, {"method", "SendMessage"}, {"params", params}}.dump(),
        "application/json");
    if (!res || res->status != 200) return nullptr;
    return json::parse(res->body, nullptr, false);
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
