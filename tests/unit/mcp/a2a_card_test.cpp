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

}  // namespace
}  // namespace sluice::mcp
