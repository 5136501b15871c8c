// The MCP gateway of a real `sluice serve` in front of the example MCP agent (build/mcp_agent), with a
// client session on /mcp:
//   - at three replicas: an MCP session lives on the replica that opened it, so the gateway keeps one
//     upstream session per client session and replica, and closes each on its own replica when the
//     client ends its session;
//   - across a restart: the tool catalog is kept in the data dir, so an agent back at zero replicas
//     still lists its tools without being woken.

#include <gtest/gtest.h>
#include <httplib.h>

#include <algorithm>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "tests/integration/agents_support.hpp"

namespace sluice::testing {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

class McpGateway : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(server_.wait_ready()); }

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

  /// One JSON-RPC request in `session`: its result (null on failure).
  json rpc(const std::string& session, int id, const std::string& method, const json& params) {
    httplib::Client client("127.0.0.1", server_.port());
    client.set_read_timeout(60s);
    auto res =
        client.Post("/mcp", headers(session),
                    json{{"jsonrpc", "2.0"}, {"id", id}, {"method", method}, {"params", params}}.dump(),
                    "application/json");
    if (!res || res->status != 200) return nullptr;
    auto body = json::parse(res->body, nullptr, false);
    if (!body.is_object() || !body.contains("result")) {
      ADD_FAILURE() << res->body;
      return nullptr;
    }
    return body["result"];
  }

  /// tools/call calc.whoami in `session`: {replica, session (upstream), openSessions}; null on failure.
  json whoami(const std::string& session, int id) {
    json result = rpc(session, id, "tools/call", {{"name", "calc.whoami"}, {"arguments", json::object()}});
    return result.is_object() ? result["structuredContent"] : json(nullptr);
  }

  /// Every tool name tools/list gives, sorted.
  std::vector<std::string> tool_names(const std::string& session) {
    json result = rpc(session, 900, "tools/list", json::object());
    std::vector<std::string> names;
    if (result.is_object())
      for (const auto& tool : result["tools"]) names.push_back(tool["name"].get<std::string>());
    std::sort(names.begin(), names.end());
    return names;
  }

  static httplib::Headers headers(const std::string& session) {
    httplib::Headers h{{"Accept", "application/json, text/event-stream"},
                       {"MCP-Protocol-Version", "2025-06-18"}};
    if (!session.empty()) h.emplace("Mcp-Session-Id", session);
    return h;
  }

  SluiceServer server_{{"--autoscaler", "allow-zero-initial-scale=true"}};
};

TEST_F(McpGateway, OneUpstreamSessionPerClientSessionAndReplica) {
  apply_agent(server_, mcp_agent_yaml("calc", "3"));
  ASSERT_TRUE(wait_until([&] { return ready_replicas(server_, "calc", "calc-00001") == 3; }, 30s));
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
  // (The fewest seen per replica: the gateway's own catalog fetch may hold a second one for a moment.)
  std::map<std::string, int> fewest_open;  // by replica
  for (int i = 100; i < 140; ++i) {
    json b = whoami(second, i);
    ASSERT_TRUE(b.is_object());
    auto [it, first_seen] =
        fewest_open.emplace(b["replica"].get<std::string>(), b["openSessions"].get<int>());
    if (!first_seen) it->second = std::min(it->second, b["openSessions"].get<int>());
  }
  EXPECT_GE(fewest_open.size(), 2u);
  for (const auto& [replica, open] : fewest_open) EXPECT_EQ(open, 1) << "replica " << replica;
}

TEST_F(McpGateway, TheToolCatalogOutlivesARestartWithoutWakingTheAgent) {
  apply_agent(server_, mcp_agent_yaml("calc", "0"));  // at zero, and started at zero
  std::string session = open_session();
  ASSERT_FALSE(session.empty());
  // A call wakes it; its revision's tools are fetched once it is ready.
  json sum = rpc(session, 1, "tools/call", {{"name", "calc.add"}, {"arguments", {{"a", 1}, {"b", 2}}}});
  ASSERT_TRUE(sum.is_object());
  EXPECT_EQ(sum["structuredContent"]["sum"], 3);
  ASSERT_TRUE(wait_until([&] {
    auto names = tool_names(session);
    return std::count(names.begin(), names.end(), "calc.add") == 1;
  }));

  server_.kill();
  server_.restart();
  ASSERT_TRUE(server_.wait_ready());
  session = open_session();
  ASSERT_FALSE(session.empty());
  auto names = tool_names(session);
  EXPECT_EQ(std::count(names.begin(), names.end(), "calc.add"), 1) << "the catalog was not kept";
  EXPECT_EQ(std::count(names.begin(), names.end(), "calc.whoami"), 1);
  EXPECT_EQ(ready_replicas(server_, "calc", "calc-00001"), 0) << "listing woke the agent";
}

}  // namespace
}  // namespace sluice::testing
