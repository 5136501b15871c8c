// The MCP gateway in front of an agent with several replicas: a real `sluice serve`, the example MCP
// agent (build/mcp_agent) at three replicas, a client session on /mcp. An MCP session lives on the
// replica that opened it, so the gateway keeps one upstream session per client session and replica,
// and closes each on its own replica when the client ends its session.

#include <gtest/gtest.h>
#include <httplib.h>

#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "tests/integration/agents_support.hpp"

namespace sluice::testing {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

class McpReplicas : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_.wait_ready());
    apply_agent(server_, mcp_agent_yaml("calc", "3"));
    ASSERT_TRUE(wait_until([&] { return ready_replicas(server_, "calc", "calc-00001") == 3; }, 30s));
  }

  /// initialize + notifications/initialized; the client session's id.
  std::string open_session() {
    httplib::Client client("127.0.0.1", server_.port());
    auto res = client.Post("/mcp", headers(""),
                           json{{"jsonrpc", "2.0"},
                                {"id", 0},
                                {"method", "initialize"},
                                {"params",
                                 {{"protocolVersion", "2025-06-18"},
                                  {"capabilities", json::object()},
                                  {"clientInfo", {{"name", "test"}, {"version", "1"}}}}}}
                               .dump(),
                           "application/json");
    if (!res || res->status != 200) return "";
    std::string id = res->get_header_value("Mcp-Session-Id");
    auto ack = client.Post("/mcp", headers(id), R"({"jsonrpc":"2.0","method":"notifications/initialized"})",
                           "application/json");
    return ack && ack->status == 202 ? id : "";
  }

  /// tools/call calc.whoami in `session`: {replica, session (upstream), openSessions}; null on failure.
  json whoami(const std::string& session, int id) {
    httplib::Client client("127.0.0.1", server_.port());
    auto res = client.Post("/mcp", headers(session),
                           json{{"jsonrpc", "2.0"},
                                {"id", id},
                                {"method", "tools/call"},
                                {"params", {{"name", "calc.whoami"}, {"arguments", json::object()}}}}
                               .dump(),
                           "application/json");
    if (!res || res->status != 200) return nullptr;
    auto body = json::parse(res->body, nullptr, false);
    if (!body.is_object() || !body.contains("result")) {
      ADD_FAILURE() << res->body;
      return nullptr;
    }
    return body["result"]["structuredContent"];
  }

  static httplib::Headers headers(const std::string& session) {
    httplib::Headers h{{"Accept", "application/json, text/event-stream"},
                       {"MCP-Protocol-Version", "2025-06-18"}};
    if (!session.empty()) h.emplace("Mcp-Session-Id", session);
    return h;
  }

  SluiceServer server_;
};

TEST_F(McpReplicas, OneUpstreamSessionPerClientSessionAndReplica) {
  const std::string first = open_session();
  const std::string second = open_session();
  ASSERT_FALSE(first.empty());
  ASSERT_FALSE(second.empty());

  // Calls spread over the replicas; each replica sees one upstream session per client session.
  std::map<std::string, std::set<std::string>> first_sessions, second_sessions;  // by replica
  for (int i = 1; i <= 40; ++i) {
    json a = whoami(first, i);
    json b = whoami(second, i);
    ASSERT_TRUE(a.is_object() && b.is_object()) << "call " << i;
    first_sessions[a["replica"].get<std::string>()].insert(a["session"].get<std::string>());
    second_sessions[b["replica"].get<std::string>()].insert(b["session"].get<std::string>());
  }
  EXPECT_GE(first_sessions.size(), 2u) << "40 calls should reach more than one of three replicas";
  for (const auto& [replica, ids] : first_sessions) {
    EXPECT_EQ(ids.size(), 1u) << "replica " << replica;
    if (second_sessions.count(replica)) {
      EXPECT_EQ(second_sessions[replica].size(), 1u) << "replica " << replica;
      EXPECT_NE(*ids.begin(), *second_sessions[replica].begin()) << "client sessions share an upstream one";
    }
  }

  // Ending the first client session closes its upstream sessions, each on the replica that holds it:
  // from then on every replica the second session reaches holds only the second session's.
  httplib::Client client("127.0.0.1", server_.port());
  auto ended = client.Delete("/mcp", headers(first));
  ASSERT_TRUE(ended) << httplib::to_string(ended.error());
  ASSERT_EQ(ended->status, 200) << ended->body;
  std::set<std::string> reached;
  for (int i = 100; i < 140; ++i) {
    json b = whoami(second, i);
    ASSERT_TRUE(b.is_object());
    reached.insert(b["replica"].get<std::string>());
    EXPECT_EQ(b["openSessions"], 1) << "replica " << b["replica"];
  }
  EXPECT_GE(reached.size(), 2u);
}

}  // namespace
}  // namespace sluice::testing
