// An agent's card as the A2A gateway serves it: every interface it relays points at the gateway, the
// ones it does not relay (gRPC, HTTP+JSON) are gone, and every other field is as the agent wrote it.

#include <gtest/gtest.h>

#include "mcp/a2a_gateway.hpp"

namespace sluice::mcp {
namespace {

using json = nlohmann::json;

const std::string gateway = "http://127.0.0.1:8080/a2a/echo";

TEST(A2aCard, OnlyTheJsonRpcInterfacesAreKeptAndPointAtTheGateway) {
  json card = json::parse(R"({
    "name": "echo", "version": "1.0.0", "documentationUrl": "http://docs/", "iconUrl": "http://icon/",
    "provider": {"organization": "x", "url": "http://provider/"},
    "supportedInterfaces": [
      {"url": "http://agent:1/rest", "protocolBinding": "HTTP+JSON", "protocolVersion": "1.0"},
      {"url": "http://agent:1/rpc", "protocolBinding": "JSONRPC", "protocolVersion": "1.0"},
      {"url": "agent:2", "protocolBinding": "GRPC", "protocolVersion": "1.0"}],
    "capabilities": {"streaming": true}, "skills": []})");
  json served = rewrite_agent_card(card, gateway);
  ASSERT_EQ(served["supportedInterfaces"].size(), 1u) << served.dump();
  EXPECT_EQ(served["supportedInterfaces"][0]["url"], gateway);
  EXPECT_EQ(served["supportedInterfaces"][0]["protocolBinding"], "JSONRPC");
  EXPECT_EQ(served["supportedInterfaces"][0]["protocolVersion"], "1.0");
  for (const char* field :
       {"name", "version", "documentationUrl", "iconUrl", "provider", "capabilities", "skills"})
    EXPECT_EQ(served[field], card[field]) << field;
  // Where the agent's JSON-RPC endpoint is, read from the card as the agent serves it.
  EXPECT_EQ(jsonrpc_path_of(card), "/rpc");
}

TEST(A2aCard, AVersion03CardPrefersJsonRpcAtTheGateway) {
  json card = json::parse(R"({
    "name": "echo", "protocolVersion": "0.3.0", "url": "http://agent:1/rest", "preferredTransport": "HTTP+JSON",
    "additionalInterfaces": [
      {"url": "http://agent:1/rest", "transport": "HTTP+JSON"},
      {"url": "http://agent:1/rpc", "transport": "JSONRPC"},
      {"url": "agent:2", "transport": "GRPC"}]})");
  json served = rewrite_agent_card(card, gateway);
  EXPECT_EQ(served["url"], gateway);
  EXPECT_EQ(served["preferredTransport"], "JSONRPC");
  ASSERT_EQ(served["additionalInterfaces"].size(), 1u) << served.dump();
  EXPECT_EQ(served["additionalInterfaces"][0], json({{"url", gateway}, {"transport", "JSONRPC"}}));
  EXPECT_EQ(served["protocolVersion"], "0.3.0");

  card["preferredTransport"] = "JSONRPC";
  EXPECT_EQ(rewrite_agent_card(card, gateway)["preferredTransport"], "JSONRPC");
}

// What the gateway serves for an agent it has not read the card of: the required fields of A2A §4.4.1,
// one JSON-RPC interface at the gateway, no optional capability, and the placeholder's mark.
TEST(A2aCard, APlaceholderHasTheRequiredFieldsAndItsMark) {
  json agent = json::parse(R"({"name": "echo", "protocol": "a2a", "latestReadyRevision": "",
    "revisions": [{"name": "echo-00001", "readyReplicas": 0}, {"name": "echo-00002", "readyReplicas": 0}]})");
  json card = placeholder_agent_card(agent, gateway, false);
  EXPECT_EQ(card["name"], "echo");
  EXPECT_EQ(card["version"], "echo-00002");
  EXPECT_EQ(card["supportedInterfaces"],
            json::array({{{"url", gateway}, {"protocolBinding", "JSONRPC"}, {"protocolVersion", "1.0"}}}));
  for (const char* field : {"description", "defaultInputModes", "defaultOutputModes", "skills"})
    EXPECT_TRUE(card.contains(field)) << field;
  EXPECT_FALSE(card["capabilities"].contains("streaming"));
  ASSERT_EQ(card["capabilities"]["extensions"].size(), 1u);
  EXPECT_EQ(card["capabilities"]["extensions"][0]["uri"], kPlaceholderCardExtension);
  EXPECT_EQ(card["capabilities"]["extensions"][0]["required"], false);
  EXPECT_FALSE(card.contains("url"));

  agent["latestReadyRevision"] = "echo-00001";
  json old = placeholder_agent_card(agent, gateway, true);
  EXPECT_EQ(old["version"], "echo-00001");
  EXPECT_EQ(old["url"], gateway);
  EXPECT_EQ(old["preferredTransport"], "JSONRPC");
  EXPECT_EQ(old["protocolVersion"], "0.3.0");
  EXPECT_FALSE(old.contains("supportedInterfaces"));
}

}  // namespace
}  // namespace sluice::mcp
