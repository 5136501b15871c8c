// Authentication and EventPolicy authorization of a real `sluice serve`.

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <fstream>

#include "core/auth.hpp"
#include "tests/integration/agents_support.hpp"
#include "tests/integration/broker_support.hpp"
#include "tests/support/open_id_provider.hpp"

namespace sluice::testing {
namespace {

constexpr const char* kAdminToken = "admin-token-0123456789abcdef";
constexpr const char* kCiToken = "ci-token-0123456789abcdef";
constexpr const char* kOtherToken = "other-token-0123456789abcdef";

class Security : public ::testing::Test {
 protected:
  // The request log on and debug logging, so that a token that reached either would be in the output.
  Security()
      : tokens_(write_tokens()),
        server_({"--auth-tokens", tokens_, "--request-log", "--log-level", "debug"}) {}
  void SetUp() override { ASSERT_TRUE(server_.wait_ready()); }

  std::string write_tokens() {
    const std::string path = dir_.path() + "/tokens";
    std::ofstream(path) << "# token subject groups\n"
                        << kAdminToken << " alice admin\n"
                        << kCiToken << " ci-publisher publishers\n"
                        << kOtherToken << " mallory\n";
    return path;
  }

  int publish_as(const std::string& token, const std::string& id, const std::string& type,
                 std::string* body = nullptr) {
    httplib::Client client("127.0.0.1", server_.port());
    httplib::Headers headers{
        {"ce-specversion", "1.0"}, {"ce-id", id}, {"ce-type", type}, {"ce-source", "/t"}};
    if (!token.empty()) headers.emplace("Authorization", "Bearer " + token);
    auto res = client.Post("/brokers/default", headers, "{}", "application/json");
    if (body && res) *body = res->body;
    return res ? res->status : 0;
  }

  int cli_as(const std::string& token, std::vector<std::string> args, std::string* out,
             const std::string& stdin_text = "") {
    if (!token.empty()) {
      args.push_back("--token");
      args.push_back(token);
    }
    return server_.cli(std::move(args), out, stdin_text);
  }

  TempDir dir_;
  std::string tokens_;
  SluiceServer server_;
};

TEST_F(Security, EveryEndpointButTheProbesNeedsAToken) {
  httplib::Client client("127.0.0.1", server_.port());
  EXPECT_EQ(client.Get("/healthz")->status, 200);
  EXPECT_EQ(client.Get("/readyz")->status, 200);
  auto res = client.Get("/apis/v1/brokers");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 401);
  EXPECT_EQ(res->get_header_value("WWW-Authenticate"), "Bearer realm=\"sluice\"");
  EXPECT_EQ(client.Get("/metrics")->status, 401);
  EXPECT_EQ(client.Post("/mcp", R"({"jsonrpc":"2.0","id":1,"method":"ping"})", "application/json")->status,
            401);
  EXPECT_EQ(
      client.Post("/a2a/calc", R"({"jsonrpc":"2.0","id":1,"method":"message/send"})", "application/json")
          ->status,
      401);
  EXPECT_EQ(client.Get("/agents/calc/healthz")->status, 401);
  EXPECT_EQ(client.Get("/apis/v1/logs/calc")->status, 401);

  httplib::Headers wrong{{"Authorization", "Bearer not-a-known-token-at-all"}};
  res = client.Get("/apis/v1/brokers", wrong);
  EXPECT_EQ(res->status, 401);
  EXPECT_NE(res->get_header_value("WWW-Authenticate").find("invalid_token"), std::string::npos);
  EXPECT_EQ(res->body.find("not-a-known-token"), std::string::npos) << "tokens are never echoed";

  httplib::Headers good{{"Authorization", std::string("Bearer ") + kOtherToken}};
  EXPECT_EQ(client.Get("/apis/v1/brokers", good)->status, 200);
  EXPECT_EQ(publish_as("", "1", "t"), 401);
  // Tokens never reach the log, though every request above is in it.
  EXPECT_TRUE(wait_until([&] {
    return server_.process().output().find("\"status\":401") != std::string::npos &&
           server_.process().output().find("\"status\":200") != std::string::npos;
  })) << server_.process().output();
  EXPECT_EQ(server_.process().output().find(kOtherToken), std::string::npos);
  EXPECT_EQ(server_.process().output().find("not-a-known-token"), std::string::npos);
}

TEST_F(Security, ChangingResourcesNeedsTheAdminGroup) {
  std::string out;
  EXPECT_NE(cli_as(kCiToken, {"apply", "-f", "-"}, &out, broker_yaml()), 0);
  EXPECT_NE(out.find("\"ci-publisher\" may not change Broker \"default\" (needs group \"admin\""),
            std::string::npos)
      << out;
  EXPECT_EQ(cli_as(kAdminToken, {"apply", "-f", "-"}, &out, broker_yaml()), 0) << out;
  EXPECT_EQ(cli_as(kCiToken, {"get", "brokers"}, &out), 0) << out;
  EXPECT_NE(out.find("default"), std::string::npos);
  EXPECT_NE(cli_as(kCiToken, {"delete", "broker", "default"}, &out), 0);
  EXPECT_NE(out.find("may not change Broker"), std::string::npos) << out;
}

// An EventPolicy with the verb change lets a team manage its own resources, and only those.
TEST_F(Security, AnEventPolicyLetsATeamChangeItsOwnResources) {
  std::string out;
  ASSERT_EQ(cli_as(kAdminToken, {"apply", "-f", "-"}, &out, broker_yaml()), 0) << out;
  ASSERT_EQ(cli_as(kAdminToken, {"apply", "-f", "-"}, &out,
                   "apiVersion: sluice.dev/v1\nkind: EventPolicy\nmetadata: {name: publishers-own-triggers}\n"
                   "spec:\n"
                   "  to: [{ref: {kind: Trigger, name: \"ci-*\"}}]\n"
                   "  from: [{group: publishers}]\n"),
            0)
      << out;
  auto trigger = [](const std::string& name) {
    return "apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata: {name: " + name +
           "}\nspec:\n  broker: default\n  subscriber: {uri: \"http://127.0.0.1:9/\"}\n";
  };
  EXPECT_EQ(cli_as(kCiToken, {"apply", "-f", "-"}, &out, trigger("ci-builds")), 0) << out;
  EXPECT_NE(cli_as(kCiToken, {"apply", "-f", "-"}, &out, trigger("deploys")), 0);
  EXPECT_NE(out.find("may not change Trigger \"deploys\""), std::string::npos) << out;
  // A request that changes an allowed and a refused resource is refused whole.
  EXPECT_NE(cli_as(kCiToken, {"apply", "-f", "-"}, &out, trigger("ci-tests") + "---\n" + trigger("deploys")),
            0);
  EXPECT_NE(cli_as(kAdminToken, {"get", "trigger", "ci-tests"}, &out), 0) << "nothing was applied: " << out;
  // Granting change on triggers grants nothing else, and not to others.
  EXPECT_NE(cli_as(kCiToken, {"delete", "eventpolicy", "publishers-own-triggers"}, &out), 0);
  EXPECT_NE(cli_as(kOtherToken, {"delete", "trigger", "ci-builds"}, &out), 0);
  EXPECT_NE(out.find("\"mallory\" may not change Trigger \"ci-builds\""), std::string::npos) << out;
  EXPECT_EQ(cli_as(kCiToken, {"delete", "trigger", "ci-builds"}, &out), 0) << out;
  // The grant does not restrict publishing: no policy names the broker for publish.
  EXPECT_EQ(publish_as(kOtherToken, "a", "com.example.x"), 202);
}

TEST_F(Security, EventPoliciesDecideWhoPublishesWhat) {
  std::string out;
  ASSERT_EQ(cli_as(kAdminToken, {"apply", "-f", "-"}, &out, broker_yaml()), 0) << out;
  // No policy names the broker yet: any authenticated caller may publish.
  EXPECT_EQ(publish_as(kOtherToken, "a", "com.example.x"), 202);

  ASSERT_EQ(
      cli_as(kAdminToken, {"apply", "-f", "-"}, &out,
             "apiVersion: eventing.knative.dev/v1alpha1\nkind: EventPolicy\nmetadata: {name: ci}\nspec:\n"
             "  to: [{ref: {apiVersion: eventing.knative.dev/v1, kind: Broker, name: default}}]\n"
             "  from: [{group: publishers}, {sub: \"ops-*\"}]\n"
             "  filters: [{prefix: {type: com.example.}}]\n"),
      0)
      << out;
  std::string body;
  EXPECT_EQ(publish_as(kOtherToken, "b", "com.example.x", &body), 403);
  EXPECT_NE(body.find("mallory"), std::string::npos) << body;
  EXPECT_NE(body.find("default"), std::string::npos) << body;
  EXPECT_EQ(publish_as(kCiToken, "c", "com.example.x"), 202);
  EXPECT_EQ(publish_as(kCiToken, "d", "org.other.x", &body), 403) << "the policy's filter does not match";

  ASSERT_EQ(cli_as(kAdminToken, {"delete", "eventpolicy", "ci"}, &out), 0) << out;
  EXPECT_EQ(publish_as(kOtherToken, "e", "org.other.x"), 202);
  EXPECT_EQ(cli_as(kAdminToken, {"get", "brokers", "default", "-o", "json"}, &out), 0);
  EXPECT_EQ(nlohmann::json::parse(out)["status"]["log"]["endOffset"], 3) << "refused events were not stored";
}

/// One JSON-RPC exchange with the MCP gateway; returns the JSON-RPC message (JSON or SSE answer).
nlohmann::json mcp_call(int port, const std::string& token, std::string& session,
                        const nlohmann::json& message) {
  httplib::Client client("127.0.0.1", port);
  httplib::Headers headers{{"Authorization", "Bearer " + token},
                           {"Accept", "application/json, text/event-stream"},
                           {"MCP-Protocol-Version", "2025-06-18"}};
  if (!session.empty()) headers.emplace("Mcp-Session-Id", session);
  auto res = client.Post("/mcp", headers, message.dump(), "application/json");
  if (!res) return nullptr;
  if (session.empty()) session = res->get_header_value("Mcp-Session-Id");
  std::string body = res->body;
  if (res->get_header_value("Content-Type").rfind("text/event-stream", 0) == 0) {
    auto data = body.rfind("data: ");
    body = data == std::string::npos ? "" : body.substr(data + 6);
  }
  return nlohmann::json::parse(body, nullptr, false);
}

/// A new MCP session as `token` (initialize, initialized) and one tools/call in it: the JSON-RPC answer.
nlohmann::json mcp_tool_call(int port, const std::string& token, const std::string& tool,
                             const nlohmann::json& arguments) {
  std::string session;
  mcp_call(port, token, session,
           {{"jsonrpc", "2.0"},
            {"id", 1},
            {"method", "initialize"},
            {"params",
             {{"protocolVersion", "2025-06-18"},
              {"capabilities", nlohmann::json::object()},
              {"clientInfo", {{"name", "test"}, {"version", "1"}}}}}});
  mcp_call(port, token, session, {{"jsonrpc", "2.0"}, {"method", "notifications/initialized"}});
  return mcp_call(port, token, session,
                  {{"jsonrpc", "2.0"},
                   {"id", 2},
                   {"method", "tools/call"},
                   {"params", {{"name", tool}, {"arguments", arguments}}}});
}

bool refused(const nlohmann::json& answer) {
  return answer.is_object() && (answer.contains("error") || answer["result"].value("isError", false));
}

TEST_F(Security, McpPublishEventObeysEventPolicies) {
  std::string out;
  ASSERT_EQ(
      cli_as(kAdminToken, {"apply", "-f", "-"}, &out,
             broker_yaml() +
                 "---\napiVersion: eventing.knative.dev/v1alpha1\nkind: EventPolicy\nmetadata: {name: ci}\n"
                 "spec:\n  to: [{ref: {kind: Broker, name: default}}]\n  from: [{group: publishers}]\n"),
      0)
      << out;
  auto publish_as_mcp = [&](const std::string& token) {
    return mcp_tool_call(server_.port(), token, "publish_event",
                         {{"broker", "default"}, {"type", "com.example.mcp"}, {"source", "/mcp"}});
  };
  auto denied = publish_as_mcp(kOtherToken);
  EXPECT_TRUE(refused(denied)) << denied;
  EXPECT_NE(denied.dump().find("mallory"), std::string::npos) << denied;
  auto allowed = publish_as_mcp(kCiToken);
  EXPECT_TRUE(allowed.contains("result") && !refused(allowed)) << allowed;
  EXPECT_EQ(cli_as(kAdminToken, {"get", "brokers", "default", "-o", "json"}, &out), 0);
  EXPECT_EQ(nlohmann::json::parse(out)["status"]["log"]["endOffset"], 1)
      << "only the allowed event was stored";
}

// A policy on an agent guards /agents/ (however the name is spelled in the path: the proxy decodes it),
// and with `tools` the agent's MCP tools one by one.
TEST_F(Security, AgentPoliciesDecideWhoCallsWhichAgentAndTool) {
  std::string out;
  ASSERT_EQ(
      cli_as(kAdminToken, {"apply", "-f", "-"}, &out,
             mcp_agent_yaml("calc", "1") +
                 "---\napiVersion: eventing.knative.dev/v1alpha1\nkind: EventPolicy\n"
                 "metadata: {name: calc-users}\nspec:\n"
                 "  to: [{ref: {kind: Agent, name: calc}, tools: [add]}]\n  from: [{group: publishers}]\n"),
      0)
      << out;
  auto get_as = [&](const std::string& token, const std::string& path, std::string* body = nullptr) {
    httplib::Client client("127.0.0.1", server_.port());
    client.set_read_timeout(std::chrono::seconds(30));  // the first request waits for the replica
    auto res = client.Get(path, httplib::Headers{{"Authorization", "Bearer " + token}});
    if (body && res) *body = res->body;
    return res ? res->status : 0;
  };
  EXPECT_EQ(get_as(kCiToken, "/agents/calc/healthz"), 200);
  std::string body;
  for (const std::string path : {"/agents/calc/healthz", "/agents/%63alc/healthz",
                                 "/agents/calc%40latest/healthz", "/agents/calc@latest/healthz"}) {
    EXPECT_EQ(get_as(kOtherToken, path, &body), 403) << path;
    EXPECT_NE(body.find("mallory"), std::string::npos) << path << ": " << body;
  }

  // Its logs: for whoever may call it, and for the admin group.
  EXPECT_EQ(get_as(kCiToken, "/apis/v1/logs/calc"), 200);
  EXPECT_EQ(get_as(kAdminToken, "/apis/v1/logs/calc"), 200);
  EXPECT_EQ(get_as(kOtherToken, "/apis/v1/logs/calc", &body), 403);
  EXPECT_NE(body.find("logs"), std::string::npos) << body;
  EXPECT_EQ(get_as(kOtherToken, "/apis/v1/logs/%63alc"), 403);

  const nlohmann::json two = {{"a", 1}, {"b", 2}};
  auto sum = mcp_tool_call(server_.port(), kCiToken, "calc.add", two);
  EXPECT_TRUE(sum.contains("result") && !refused(sum)) << sum;
  EXPECT_NE(sum.dump().find('3'), std::string::npos) << sum;
  auto other_tool = mcp_tool_call(server_.port(), kCiToken, "calc.echo", {{"text", "hi"}});
  EXPECT_TRUE(refused(other_tool)) << other_tool;
  EXPECT_NE(other_tool.dump().find("calc.echo"), std::string::npos) << other_tool;
  auto other_caller = mcp_tool_call(server_.port(), kOtherToken, "calc.add", two);
  EXPECT_TRUE(refused(other_caller)) << other_caller;
  EXPECT_NE(other_caller.dump().find("mallory"), std::string::npos) << other_caller;
}

TEST_F(Security, InvalidPoliciesAreRejectedWithTheField) {
  std::string out;
  EXPECT_NE(cli_as(kAdminToken, {"apply", "-f", "-"}, &out,
                   "apiVersion: eventing.knative.dev/v1alpha1\nkind: EventPolicy\nmetadata: {name: p}\n"
                   "spec: {to: [{ref: {kind: Gadget, name: x}}], from: [{sub: a}]}\n"),
            0);
  EXPECT_NE(out.find("spec.to[0].ref.kind"), std::string::npos) << out;
  EXPECT_NE(
      cli_as(kAdminToken, {"apply", "-f", "-"}, &out,
             "apiVersion: eventing.knative.dev/v1alpha1\nkind: EventPolicy\nmetadata: {name: p}\nspec: {}\n"),
      0);
  EXPECT_NE(out.find("spec.from"), std::string::npos) << out;
}

/// An HS256 JWT of `claims`, signed with `secret` under key id "hs-1".
std::string hs256_jwt(const nlohmann::json& claims, const std::string& secret) {
  const std::string signing =
      base64url_encode(R"({"alg":"HS256","typ":"JWT","kid":"hs-1"})") + "." + base64url_encode(claims.dump());
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(signing.data()), signing.size(), mac, &length);
  return signing + "." + base64url_encode(std::string(reinterpret_cast<char*>(mac), length));
}

// JWTs end to end: --jwks, --jwt-issuer and --jwt-audience reach the server's authentication, the token's
// groups reach the admin check, and a token the server refuses says why without echoing it.
TEST(SecurityJwt, TokensFromTheConfiguredIssuerAndAudienceAreAccepted) {
  TempDir dir;
  const std::string secret = "a-shared-secret-of-32-bytes-long";
  std::ofstream(dir.path() + "/jwks.json")
      << nlohmann::json{{"keys", {{{"kty", "oct"}, {"kid", "hs-1"}, {"k", base64url_encode(secret)}}}}}
             .dump();
  SluiceServer server({"--jwks", dir.path() + "/jwks.json", "--jwt-issuer", "https://issuer.example",
                       "--jwt-audience", "sluice", "--request-log"});
  ASSERT_TRUE(server.wait_ready());
  const auto now =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
          .count();
  const nlohmann::json good = {{"sub", "ci-bot"},
                               {"iss", "https://issuer.example"},
                               {"aud", "sluice"},
                               {"exp", now + 300},
                               {"groups", {"admin"}}};
  auto status_of = [&](const std::string& token, std::string* body = nullptr) {
    httplib::Client client("127.0.0.1", server.port());
    auto res = client.Get("/apis/v1/brokers", httplib::Headers{{"Authorization", "Bearer " + token}});
    if (body && res) *body = res->body;
    return res ? res->status : 0;
  };
  const std::string token = hs256_jwt(good, secret);
  EXPECT_EQ(status_of(token), 200);
  std::string out;
  EXPECT_EQ(server.cli({"apply", "-f", "-", "--token", token}, &out, broker_yaml()), 0) << out;

  auto with = [&](const char* claim, const nlohmann::json& value) {
    nlohmann::json claims = good;
    claims[claim] = value;
    return hs256_jwt(claims, secret);
  };
  std::string body;
  EXPECT_EQ(status_of(with("iss", "https://elsewhere.example"), &body), 401);
  EXPECT_NE(body.find("iss"), std::string::npos) << body;
  EXPECT_EQ(status_of(with("aud", "someone-else"), &body), 401);
  EXPECT_NE(body.find("aud"), std::string::npos) << body;
  EXPECT_EQ(status_of(with("exp", now - 3600), &body), 401);
  EXPECT_NE(body.find("expired"), std::string::npos) << body;
  EXPECT_EQ(status_of(hs256_jwt(good, "another-secret-of-32-bytes-long!"), &body), 401);
  EXPECT_EQ(body.find(token.substr(0, 20)), std::string::npos) << "the token is not echoed";
  // Without the admin group the same issuer's token may read but not change resources.
  const std::string reader = with("groups", nlohmann::json::array());
  EXPECT_EQ(status_of(reader), 200);
  EXPECT_NE(server.cli({"apply", "-f", "-", "--token", reader}, &out, broker_yaml()), 0);
  EXPECT_NE(out.find("may not change Broker"), std::string::npos) << out;
  EXPECT_EQ(server.process().output().find(token), std::string::npos) << "tokens never reach the log";
}

// --oidc-issuer: the server finds the issuer's keys by OpenID Connect discovery and requires its `iss`.
TEST(SecurityJwt, AnOidcIssuersTokensAreAcceptedThroughDiscovery) {
  const std::string secret = "a-shared-secret-of-32-bytes-long";
  OpenIdProvider provider(
      nlohmann::json{{"keys", {{{"kty", "oct"}, {"kid", "hs-1"}, {"k", base64url_encode(secret)}}}}}.dump());
  SluiceServer server({"--oidc-issuer", provider.issuer()});
  ASSERT_TRUE(server.wait_ready()) << server.process().output();
  const auto now =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
          .count();
  nlohmann::json claims = {{"sub", "ci-bot"}, {"iss", provider.issuer()}, {"exp", now + 300}};
  httplib::Client client("127.0.0.1", server.port());
  auto res = client.Get("/apis/v1/brokers",
                        httplib::Headers{{"Authorization", "Bearer " + hs256_jwt(claims, secret)}});
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200) << res->body;
  claims["iss"] = "https://elsewhere.example";
  res = client.Get("/apis/v1/brokers",
                   httplib::Headers{{"Authorization", "Bearer " + hs256_jwt(claims, secret)}});
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 401);
}

TEST(SecurityStartup, NonLoopbackWithoutAuthenticationRefusesToStart) {
  TempDir dir;
  Process serve(built_program("sluice"), {"serve", "--listen", "0.0.0.0:" + std::to_string(free_port()),
                                          "--data-dir", dir.path() + "/d"});
  EXPECT_EQ(serve.wait(std::chrono::seconds(10)), 1);
  EXPECT_NE(serve.output().find("--allow-unauthenticated"), std::string::npos) << serve.output();

  // Said explicitly, it starts and serves anyone who can connect.
  const int port = free_port();
  Process open(built_program("sluice"), {"serve", "--listen", "0.0.0.0:" + std::to_string(port), "--data-dir",
                                         dir.path() + "/open", "--allow-unauthenticated"});
  EXPECT_TRUE(wait_until([&] {
    httplib::Client client("127.0.0.1", port);
    auto res = client.Get("/apis/v1/brokers");
    return res && res->status == 200;
  })) << open.output();
}

TEST(SecurityStartup, AMalformedTokensFileNamesTheLine) {
  TempDir dir;
  std::ofstream(dir.path() + "/tokens") << "short alice\n";
  Process serve(built_program("sluice"),
                {"serve", "--listen", "127.0.0.1:" + std::to_string(free_port()), "--data-dir",
                 dir.path() + "/d", "--auth-tokens", dir.path() + "/tokens"});
  EXPECT_EQ(serve.wait(std::chrono::seconds(10)), 1);
  EXPECT_NE(serve.output().find("tokens:1"), std::string::npos) << serve.output();
}

}  // namespace
}  // namespace sluice::testing
