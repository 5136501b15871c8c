// The MCP gateway and the A2A endpoints against malformed input: requests whose members have the wrong
// JSON types, and agents (answered in process, no HTTP hop) that break the protocol. Every such case is
// a JSON-RPC error, never an HTTP 500 or a malformed message passed on to the client.

#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <thread>

#include "mcp/a2a_gateway.hpp"
#include "mcp/gateway.hpp"
#include "mcp/tool_events.hpp"
#include "tests/support/wait.hpp"
#include "tests/unit/mcp/gateway_server_fixture.hpp"

namespace sluice::mcp {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;
using testing::wait_until;

using HeadersFn = std::function<asio::awaitable<bool>(int, const HttpHeaders&)>;
using ChunkFn = std::function<asio::awaitable<bool>(std::string_view)>;

asio::awaitable<Result<int>> answer(int status, HttpHeaders headers, std::string body, HeadersFn on_headers,
                                    ChunkFn on_chunk) {
  auto head = on_headers(status, headers);
  if (!co_await std::move(head)) co_return status;
  if (!body.empty()) {
    auto chunk = on_chunk(body);
    co_await std::move(chunk);
  }
  co_return status;
}

const std::vector<std::string>& odd_tools() {
  static const std::vector<std::string> names{"string_result",    "string_error", "rpc_error",
                                              "odd_notification", "fine",         "logs"};
  return names;
}

struct Canned {
  int status = 200;
  HttpHeaders headers;
  std::string body;
};

// An MCP agent "odd" whose initialize answer depends on `init_mode`, and whose tools break the protocol
// in the way their names say. (Plain function: GCC 12 cannot keep initializer lists in coroutines.)
Canned odd_agent(const std::string& init_mode, const HttpRequest& request) {
  const HttpHeaders json_type{{"Content-Type", "application/json"}};
  if (request.method != "POST") return {200, {}, ""};
  auto message = json::parse(request.body);
  if (!message.contains("id")) return {202, {}, ""};
  const json id = message["id"];
  const std::string method = message["method"];
  if (method == "initialize") {
    if (init_mode == "http_error") return {400, json_type, R"({"error":"not today"})"};
    json result = {{"protocolVersion", "2025-11-25"}, {"capabilities", json::object()}};
    if (init_mode == "number_version") result["protocolVersion"] = 5;
    if (init_mode == "string_result") result = "x";
    return {200,
            {{"Content-Type", "application/json"}, {"Mcp-Session-Id", "odd-session"}},
            make_rpc_result(id, result).dump()};
  }
  if (method == "tools/list") {
    json tools = json::array();
    for (const auto& name : odd_tools())
      tools.push_back({{"name", name}, {"inputSchema", {{"type", "object"}}}});
    return {200, json_type, make_rpc_result(id, {{"tools", tools}}).dump()};
  }
  const std::string tool = message["params"]["name"];
  json reply = make_rpc_result(id, {{"content", json::array({{{"type", "text"}, {"text", "ok"}}})}});
  if (tool == "string_result") reply = {{"jsonrpc", "2.0"}, {"id", id}, {"result", "str"}};
  if (tool == "string_error") reply = {{"jsonrpc", "2.0"}, {"id", id}, {"error", "oops"}};
  if (tool == "rpc_error") reply = make_rpc_error(id, -32000, "the agent refused", json{{"why", "test"}});
  if (tool == "odd_notification")
    return {200,
            {{"Content-Type", "text/event-stream"}},
            "data: " + json{{"jsonrpc", "2.0"}, {"method", 5}}.dump() + "\n\n" + "data: " + reply.dump() +
                "\n\n"};
  if (tool == "logs") {
    std::string stream;
    for (const char* level : {"debug", "info", "error"})
      stream += "data: " +
                make_rpc_notification("notifications/message", {{"level", level}, {"data", level}}).dump() +
                "\n\n";
    return {200, {{"Content-Type", "text/event-stream"}}, stream + "data: " + reply.dump() + "\n\n"};
  }
  return {200, json_type, reply.dump()};
}

// An A2A agent "card" whose card has an interface with a protocolBinding that is no string, and that
// refuses every JSON-RPC request.
Canned card_agent(const HttpRequest& request) {
  const HttpHeaders json_type{{"Content-Type", "application/json"}};
  json card = {
      {"name", "card"},
      {"supportedInterfaces", json::array({{{"url", "http://x/"}, {"protocolBinding", 5}},
                                           {{"url", "http://x/rpc"}, {"protocolBinding", "JSONRPC"}}})}};
  if (request.method == "GET") return {200, json_type, card.dump()};
  return {200, json_type, make_rpc_error(nullptr, rpc_error::invalid_request, "bad").dump()};
}

// An A2A agent "badcard" whose card endpoint fails (HTTP 500); its JSON-RPC answers say at which path
// they were asked.
Canned badcard_agent(const HttpRequest& request) {
  if (request.method == "GET") return {500, {{"Content-Type", "text/plain"}}, "card store down"};
  return {200,
          {{"Content-Type", "application/json"}},
          json{{"jsonrpc", "2.0"}, {"id", 1}, {"result", {{"path", request.url}}}}.dump()};
}

asio::awaitable<int> delivery_status(ToolEventBridge& bridge, const ToolTarget& target, HttpRequest request) {
  auto op = bridge.deliver(target, std::move(request));
  auto response = co_await std::move(op);
  co_return response ? response.value().status : 0;
}

class GatewayProtocolTest : public GatewayServerTest {
 protected:
  void SetUp() override {
    pool_ = std::make_unique<IoPool>(1);
    RelayFn relay = [this](const std::string& agent, HttpRequest request, HeadersFn on_headers,
                           ChunkFn on_chunk) -> asio::awaitable<Result<int>> {
      ++relayed_;
      Canned canned = agent == "card"      ? card_agent(request)
                      : agent == "badcard" ? badcard_agent(request)
                                           : odd_agent(init_mode_, request);
      co_return co_await answer(canned.status, std::move(canned.headers), std::move(canned.body),
                                std::move(on_headers), std::move(on_chunk));
    };
    PinFn pin = pin_through(relay);
    DescribeAgentsFn describe = [] {
      return json::array(
          {{{"name", "odd"}, {"protocol", "mcp"}},
           {{"name", "card"},
            {"protocol", "a2a"},
            {"revisions", json::array({{{"name", "card-00001"}, {"traffic", 100}, {"replicas", 1}}})}},
           {{"name", "badcard"}, {"protocol", "a2a"}}});
    };
    pin_ = pin;
    GatewayOptions options;
    options.loopback_listener = true;  // the test server listens on 127.0.0.1
    serve(GatewayHooks{pin, describe, nullptr, nullptr, nullptr}, options,
          A2aHooks{relay, describe, nullptr, pin});
  }

  // A tools/call on the session: the JSON-RPC message it got, with HTTP 200.
  json call_tool(const std::string& session, json id, json params) {
    return call(session, std::move(id), "tools/call", std::move(params));
  }

  // A trigger's delivery of one event as a tools/call of `tool` on the agent "odd": the status it gets.
  int deliver_to_tool(ToolEventBridge& bridge, const std::string& tool) {
    ToolTarget target{"odd", tool, {}};
    HttpRequest request;
    request.headers = {{"ce-specversion", "1.0"},
                       {"ce-id", "e-1"},
                       {"ce-type", "t"},
                       {"ce-source", "/s"},
                       {"Content-Type", "application/json"}};
    request.body = "{}";
    return asio::co_spawn(pool_->at(0), delivery_status(bridge, target, std::move(request)), asio::use_future)
        .get();
  }

  std::string init_mode_ = "ok";
  PinFn pin_;
  std::atomic<int> relayed_{0};
};

TEST_F(GatewayProtocolTest, InitializeWithANonStringProtocolVersionIsInvalidParams) {
  auto res = post({{"jsonrpc", "2.0"},
                   {"id", "i"},
                   {"method", "initialize"},
                   {"params", {{"protocolVersion", 5}, {"capabilities", json::object()}}}});
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200) << res->body;
  auto body = json::parse(res->body, nullptr, false);
  EXPECT_EQ(body["id"], "i");
  EXPECT_EQ(body["error"]["code"], rpc_error::invalid_params);
  EXPECT_TRUE(res->get_header_value("Mcp-Session-Id").empty());
}

// DNS rebinding: another site's name resolved to 127.0.0.1 reaches the loopback listener with that name
// in Host and Origin; the server's "own" origin is then the attacker's.
TEST_F(GatewayProtocolTest, ALoopbackListenerRefusesRequestsForAnotherHost) {
  json ping = {{"jsonrpc", "2.0"}, {"id", 1}, {"method", "ping"}};
  auto rebound = post(ping, "", {{"Host", "evil.example.com"}, {"Origin", "http://evil.example.com"}});
  ASSERT_TRUE(rebound);
  EXPECT_EQ(rebound->status, 403) << rebound->body;
  auto no_origin = post(ping, "", {{"Host", "evil.example.com:8080"}});
  ASSERT_TRUE(no_origin);
  EXPECT_EQ(no_origin->status, 403) << no_origin->body;
  for (std::string host : {"localhost", "127.0.0.1", "[::1]"}) {
    std::string with_port = host + ":" + std::to_string(server_->port());
    auto local = post({{"jsonrpc", "2.0"},
                       {"id", 1},
                       {"method", "initialize"},
                       {"params", {{"protocolVersion", "2025-11-25"}, {"capabilities", json::object()}}}},
                      "", {{"Host", with_port}, {"Origin", "http://" + with_port}});
    ASSERT_TRUE(local);
    EXPECT_EQ(local->status, 200) << host << ": " << local->body;
  }
}

TEST_F(GatewayProtocolTest, LoggingSetLevelFiltersTheAgentsLogMessages) {
  auto init = post({{"jsonrpc", "2.0"},
                    {"id", 1},
                    {"method", "initialize"},
                    {"params", {{"protocolVersion", "2025-11-25"}, {"capabilities", json::object()}}}});
  ASSERT_TRUE(init);
  EXPECT_TRUE(json::parse(init->body)["result"]["capabilities"].contains("logging")) << init->body;
  auto session = initialize();
  auto bad = call(session, 2, "logging/setLevel", {{"level", "loud"}});
  EXPECT_EQ(bad["error"]["code"], rpc_error::invalid_params) << bad.dump();
  auto set = call(session, 3, "logging/setLevel", {{"level", "warning"}});
  EXPECT_EQ(set["result"], json::object()) << set.dump();
  auto res = post({{"jsonrpc", "2.0"},
                   {"id", 4},
                   {"method", "tools/call"},
                   {"params", {{"name", "odd.logs"}, {"arguments", json::object()}}}},
                  session);
  ASSERT_TRUE(res);
  EXPECT_EQ(res->get_header_value("Content-Type"), "text/event-stream");
  EXPECT_NE(res->body.find(R"("level":"error")"), std::string::npos) << res->body;
  EXPECT_EQ(res->body.find(R"("level":"info")"), std::string::npos) << res->body;
  EXPECT_EQ(res->body.find(R"("level":"debug")"), std::string::npos) << res->body;
  EXPECT_NE(res->body.find(R"("text":"ok")"), std::string::npos) << res->body;
}

// The session's GET stream: what `GET /mcp` (with `Last-Event-ID` when given) sends until `until`
// appears; the client then closes the connection.
std::string read_get_stream(int port, const std::string& session, const std::string& last_event_id,
                            const std::string& until, int& status) {
  httplib::Client cli("127.0.0.1", port);
  cli.set_read_timeout(10, 0);
  httplib::Headers h{{"Accept", "text/event-stream"}, {"Mcp-Session-Id", session}};
  if (!last_event_id.empty()) h.emplace("Last-Event-ID", last_event_id);
  std::string stream;
  auto res = cli.Get("/mcp", h, [&](const char* data, size_t n) {
    stream.append(data, n);
    return stream.find(until) == std::string::npos;
  });
  status = res ? res->status : (res.error() == httplib::Error::Canceled ? 200 : 0);
  return stream;
}

TEST_F(GatewayProtocolTest, TheGetStreamHasEventIdsAndResumesAfterLastEventId) {
  auto session = initialize();
  gateway_->notify_tools_changed();
  gateway_->notify_tools_changed();
  int status = 0;
  auto first = read_get_stream(server_->port(), session, "", "id: 0-2\n", status);
  EXPECT_EQ(status, 200);
  EXPECT_NE(first.find("id: 0-1\ndata: "), std::string::npos) << first;
  EXPECT_NE(first.find("notifications/tools/list_changed"), std::string::npos) << first;
  auto held = gateway_->sessions().find(session);
  ASSERT_TRUE(held);
  ASSERT_TRUE(wait_until([&] { return !held->stream_open(); }, 5s));
  // The client saw 0-1 only: 0-2 is sent again, then 0-3, sent while no stream was open.
  gateway_->notify_tools_changed();
  auto resumed = read_get_stream(server_->port(), session, "0-1", "id: 0-3\n", status);
  EXPECT_EQ(status, 200);
  EXPECT_NE(resumed.find("id: 0-2\n"), std::string::npos) << resumed;
  EXPECT_EQ(resumed.find("id: 0-1\n"), std::string::npos) << resumed;
  EXPECT_LT(resumed.find("id: 0-2\n"), resumed.find("id: 0-3\n")) << resumed;
  ASSERT_TRUE(wait_until([&] { return !held->stream_open(); }, 5s));
  httplib::Client cli("127.0.0.1", server_->port());
  auto unknown = cli.Get(
      "/mcp", {{"Accept", "text/event-stream"}, {"Mcp-Session-Id", session}, {"Last-Event-ID", "0-9"}});
  ASSERT_TRUE(unknown);
  EXPECT_EQ(unknown->status, 400) << unknown->body;
}

TEST_F(GatewayProtocolTest, SessionsOf2025_03_26AcceptJsonRpcBatches) {
  auto session = initialize("2025-03-26");
  json batch = json::array({{{"jsonrpc", "2.0"}, {"id", 1}, {"method", "ping"}},
                            {{"jsonrpc", "2.0"}, {"method", "notifications/progress"}},
                            {{"jsonrpc", "2.0"},
                             {"id", "c"},
                             {"method", "tools/call"},
                             {"params", {{"name", "odd.logs"}, {"arguments", json::object()}}}},
                            5,
                            {{"jsonrpc", "2.0"},
                             {"id", 2},
                             {"method", "initialize"},
                             {"params", {{"protocolVersion", "2025-03-26"}}}}});
  auto res = post(batch, session);
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200) << res->body;
  EXPECT_EQ(res->get_header_value("Content-Type"), "application/json");
  auto answers = json::parse(res->body, nullptr, false);
  ASSERT_TRUE(answers.is_array()) << res->body;
  ASSERT_EQ(answers.size(), 4u) << res->body;
  EXPECT_EQ(answers[0]["id"], 1);
  EXPECT_EQ(answers[0]["result"], json::object());
  EXPECT_EQ(answers[1]["id"], "c");
  EXPECT_EQ(answers[1]["result"]["content"][0]["text"], "ok") << answers[1].dump();
  EXPECT_EQ(answers[2]["error"]["code"], rpc_error::invalid_request);
  EXPECT_EQ(answers[3]["id"], 2);
  EXPECT_EQ(answers[3]["error"]["code"], rpc_error::invalid_request);

  auto notes = post(json::array({{{"jsonrpc", "2.0"}, {"method", "notifications/initialized"}}}), session);
  ASSERT_TRUE(notes);
  EXPECT_EQ(notes->status, 202) << notes->body;
  auto empty = post(json::array(), session);
  ASSERT_TRUE(empty);
  EXPECT_EQ(empty->status, 400);
  // 2025-06-18 removed batches.
  auto later =
      post(json::array({{{"jsonrpc", "2.0"}, {"id", 1}, {"method", "ping"}}}), initialize("2025-06-18"));
  ASSERT_TRUE(later);
  EXPECT_EQ(later->status, 400);
  EXPECT_EQ(json::parse(later->body)["error"]["code"], rpc_error::invalid_request);
}

TEST_F(GatewayProtocolTest, SessionlessMembersOfTheWrongTypeAreHeaderMismatches) {
  httplib::Headers list{{"MCP-Protocol-Version", "2026-07-28"}, {"Mcp-Method", "tools/list"}};
  auto version = post({{"jsonrpc", "2.0"},
                       {"id", 1},
                       {"method", "tools/list"},
                       {"params", {{"_meta", {{"io.modelcontextprotocol/protocolVersion", 5}}}}}},
                      "", list);
  ASSERT_TRUE(version);
  EXPECT_EQ(version->status, 400) << version->body;
  EXPECT_EQ(json::parse(version->body, nullptr, false)["error"]["code"], rpc_error::header_mismatch);

  httplib::Headers call{
      {"MCP-Protocol-Version", "2026-07-28"}, {"Mcp-Method", "tools/call"}, {"Mcp-Name", "odd.fine"}};
  auto name = post(
      {{"jsonrpc", "2.0"},
       {"id", 2},
       {"method", "tools/call"},
       {"params", {{"name", 5}, {"_meta", {{"io.modelcontextprotocol/protocolVersion", "2026-07-28"}}}}}},
      "", call);
  ASSERT_TRUE(name);
  EXPECT_EQ(name->status, 400) << name->body;
  EXPECT_EQ(json::parse(name->body, nullptr, false)["error"]["code"], rpc_error::header_mismatch);
}

TEST_F(GatewayProtocolTest, SessionlessToolCallsCheckMcpParamHeaders) {
  // The agent lists `fine` with an x-mcp-header parameter (the catalog keeps it: the annotation is valid).
  json schema = {{"type", "object"},
                 {"properties",
                  {{"region", {{"type", "string"}, {"x-mcp-header", "Region"}}},
                   {"opts",
                    {{"type", "object"},
                     {"properties", {{"limit", {{"type", "integer"}, {"x-mcp-header", "Limit"}}}}}}}}}};
  gateway_->catalog().set_agent("odd", "odd-1", json::array({{{"name", "fine"}, {"inputSchema", schema}}}));
  auto call = [&](json arguments, httplib::Headers params) {
    httplib::Headers h{
        {"MCP-Protocol-Version", "2026-07-28"}, {"Mcp-Method", "tools/call"}, {"Mcp-Name", "odd.fine"}};
    h.insert(params.begin(), params.end());
    return post({{"jsonrpc", "2.0"},
                 {"id", 5},
                 {"method", "tools/call"},
                 {"params",
                  {{"name", "odd.fine"},
                   {"arguments", std::move(arguments)},
                   {"_meta", {{"io.modelcontextprotocol/protocolVersion", "2026-07-28"}}}}}},
                "", h);
  };
  auto expect_mismatch = [](const httplib::Result& res, const char* what) {
    ASSERT_TRUE(res) << what;
    EXPECT_EQ(res->status, 400) << what << ": " << res->body;
    auto body = json::parse(res->body, nullptr, false);
    EXPECT_EQ(body["error"]["code"], rpc_error::header_mismatch) << what << ": " << res->body;
    EXPECT_EQ(body["id"], 5);
  };
  expect_mismatch(call({{"region", "us-west1"}}, {}), "missing header");
  expect_mismatch(call({{"region", "us-west1"}}, {{"Mcp-Param-Region", "eu-west1"}}), "different value");
  expect_mismatch(call(json::object(), {{"Mcp-Param-Region", "us-west1"}}), "header without a value");
  expect_mismatch(call({{"region", "a"}, {"opts", {{"limit", 3}}}},
                       {{"Mcp-Param-Region", "a"}, {"Mcp-Param-Limit", "4"}}),
                  "nested integer");
  EXPECT_EQ(relayed_.load(), 0);  // refused before the agent is called

  auto matching = call({{"region", "Hello, 世界"}, {"opts", {{"limit", 3}}}},
                       {{"mcp-param-region", "=?base64?SGVsbG8sIOS4lueVjA==?="}, {"Mcp-Param-Limit", "3"}});
  ASSERT_TRUE(matching);
  EXPECT_EQ(matching->status, 200) << matching->body;
  EXPECT_EQ(json::parse(matching->body, nullptr, false)["result"]["content"][0]["text"], "ok")
      << matching->body;
  // No value, no header: nothing to check.
  auto bare = call({{"opts", json::object()}}, {});
  ASSERT_TRUE(bare);
  EXPECT_EQ(bare->status, 200) << bare->body;
}

TEST_F(GatewayProtocolTest, AnUnsupportedSessionlessVersionIsUnsupportedProtocolVersionError) {
  httplib::Headers h{{"MCP-Protocol-Version", "2099-01-01"}, {"Mcp-Method", "tools/list"}};
  auto res = post({{"jsonrpc", "2.0"},
                   {"id", 7},
                   {"method", "tools/list"},
                   {"params", {{"_meta", {{"io.modelcontextprotocol/protocolVersion", "2099-01-01"}}}}}},
                  "", h);
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 400);
  auto body = json::parse(res->body, nullptr, false);
  EXPECT_EQ(body["id"], 7);
  EXPECT_EQ(body["error"]["code"], -32022);
  EXPECT_EQ(body["error"]["data"]["requested"], "2099-01-01");
  EXPECT_EQ(body["error"]["data"]["supported"][0], "2026-07-28");
}

TEST_F(GatewayProtocolTest, ToolCallArgumentsMustBeAnObject) {
  auto session = initialize();
  auto r = call_tool(session, 3, {{"name", "odd.fine"}, {"arguments", "text"}});
  EXPECT_EQ(r["error"]["code"], rpc_error::invalid_params);
  EXPECT_EQ(relayed_.load(), 0);  // refused before the agent is called
  auto fine = call_tool(session, 4, {{"name", "odd.fine"}, {"arguments", json::object()}});
  EXPECT_EQ(fine["result"]["content"][0]["text"], "ok");
}

TEST_F(GatewayProtocolTest, MalformedAgentAnswersBecomeInternalErrors) {
  auto session = initialize();
  for (const char* tool : {"string_result", "string_error"}) {
    auto r = call_tool(session, tool, {{"name", std::string("odd.") + tool}, {"arguments", json::object()}});
    EXPECT_EQ(r["id"], tool);
    EXPECT_EQ(r["error"]["code"], rpc_error::internal_error) << tool << ": " << r.dump();
    EXPECT_EQ(r["error"]["data"]["agent"], "odd");
  }
  // A well-formed JSON-RPC error from the agent is passed on unchanged.
  auto refused = call_tool(session, "e", {{"name", "odd.rpc_error"}, {"arguments", json::object()}});
  EXPECT_EQ(refused["error"]["code"], -32000);
  EXPECT_EQ(refused["error"]["data"]["why"], "test");
  // A notification with a method that is no string does not end the call.
  auto noted = call_tool(session, "n", {{"name", "odd.odd_notification"}, {"arguments", json::object()}});
  EXPECT_EQ(noted["result"]["content"][0]["text"], "ok") << noted.dump();
}

TEST_F(GatewayProtocolTest, AMalformedInitializeResultFromTheAgentFailsTheCallAsJsonRpc) {
  for (const char* mode : {"number_version", "string_result"}) {
    init_mode_ = mode;
    auto session = initialize();
    auto r = call_tool(session, 9, {{"name", "odd.fine"}, {"arguments", json::object()}});
    if (std::string(mode) == "number_version") {
      // A version that is no string: the gateway keeps its own, and the call goes through.
      EXPECT_EQ(r["result"]["content"][0]["text"], "ok") << mode << ": " << r.dump();
    } else {
      EXPECT_EQ(r["error"]["code"], rpc_error::upstream_unavailable) << mode << ": " << r.dump();
      EXPECT_EQ(r["error"]["data"]["status"], 502);
    }
  }
}

TEST_F(GatewayProtocolTest, AnUnavailableAgentNamesTheHttpStatus) {
  init_mode_ = "http_error";
  auto session = initialize();
  auto r = call_tool(session, 10, {{"name", "odd.fine"}, {"arguments", json::object()}});
  EXPECT_EQ(r["error"]["code"], rpc_error::upstream_unavailable) << r.dump();
  EXPECT_EQ(r["error"]["data"]["agent"], "odd");
  EXPECT_EQ(r["error"]["data"]["status"], 400);
}

TEST_F(GatewayProtocolTest, A2aCardsAndRequestsWithMembersOfTheWrongType) {
  httplib::Client cli("127.0.0.1", server_->port());
  auto card = cli.Get("/a2a/card/.well-known/agent-card.json");
  ASSERT_TRUE(card);
  EXPECT_EQ(card->status, 200) << card->body;
  auto interfaces = json::parse(card->body, nullptr, false)["supportedInterfaces"];
  ASSERT_EQ(interfaces.size(), 2u);
  EXPECT_EQ(interfaces[1]["url"], "http://127.0.0.1:" + std::to_string(server_->port()) + "/a2a/card");

  // A method that is no string is the agent's to refuse; the gateway relays it.
  auto odd = cli.Post("/a2a/card", R"({"jsonrpc":"2.0","id":1,"method":5,"params":{}})", "application/json");
  ASSERT_TRUE(odd);
  EXPECT_EQ(odd->status, 200) << odd->body;
  EXPECT_EQ(json::parse(odd->body, nullptr, false)["error"]["code"], rpc_error::invalid_request);
}

// Its card tells where an agent's JSON-RPC endpoint is; an agent that answers without a usable card
// is asked at "/" (the request is not failed for the card).
TEST_F(GatewayProtocolTest, A2aRequestsToAnAgentWhoseCardFailsGoToTheRoot) {
  httplib::Client cli("127.0.0.1", server_->port());
  auto res = cli.Post("/a2a/badcard", R"({"jsonrpc":"2.0","id":1,"method":"SendMessage","params":{}})",
                      "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200) << res->body;
  EXPECT_EQ(json::parse(res->body, nullptr, false)["result"]["path"], "/") << res->body;

  // Its card is not read again for every request: the next one is relayed alone.
  const int before = relayed_.load();
  auto next = cli.Post("/a2a/badcard", R"({"jsonrpc":"2.0","id":2,"method":"SendMessage","params":{}})",
                       "application/json");
  ASSERT_TRUE(next);
  EXPECT_EQ(json::parse(next->body, nullptr, false)["result"]["path"], "/") << next->body;
  EXPECT_EQ(relayed_.load() - before, 1);
}

TEST_F(GatewayProtocolTest, TriggerDeliveriesFailOnMalformedToolAnswers) {
  ToolEventBridge bridge(pin_);
  EXPECT_EQ(deliver_to_tool(bridge, "fine"), 200);
  EXPECT_EQ(deliver_to_tool(bridge, "string_result"), 502);
  EXPECT_EQ(deliver_to_tool(bridge, "string_error"), 502);
  EXPECT_EQ(deliver_to_tool(bridge, "rpc_error"), 502);
}

}  // namespace
}  // namespace sluice::mcp
