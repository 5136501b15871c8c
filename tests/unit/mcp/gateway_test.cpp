// The MCP gateway and the A2A endpoints served by a real HttpServer, with a relay that reaches the
// example agents (real processes) directly instead of through the activator.

#include "mcp/gateway.hpp"

#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <thread>

#include "mcp/a2a_gateway.hpp"
#include "mcp/sse.hpp"
#include "tests/unit/mcp/gateway_server_fixture.hpp"
#include "tests/support/process.hpp"
#include "tests/support/wait.hpp"

namespace sluice::mcp {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;
using testing::built_program;
using testing::free_port;
using testing::Process;
using testing::wait_until;

class GatewayTest : public GatewayServerTest {
 protected:
  void SetUp() override {
    mcp_port_ = free_port();
    a2a_port_ = free_port();
    mcp_agent_ =
        std::make_unique<Process>(built_program("mcp_agent"), std::vector<std::string>{},
                                  std::map<std::string, std::string>{{"PORT", std::to_string(mcp_port_)}});
    a2a_agent_ =
        std::make_unique<Process>(built_program("a2a_agent"), std::vector<std::string>{},
                                  std::map<std::string, std::string>{{"PORT", std::to_string(a2a_port_)}});
    for (int port : {mcp_port_, a2a_port_}) {
      httplib::Client probe("127.0.0.1", port);
      ASSERT_TRUE(wait_until([&] { return static_cast<bool>(probe.Get("/healthz")); }, 10s));
    }
    pool_ = std::make_unique<IoPool>(1);
    client_ = std::make_unique<HttpClient>(pool_->at(0).get_executor());
    RelayFn relay =
        [this](
            const std::string& agent, HttpRequest request,
            std::function<asio::awaitable<bool>(int, const HttpHeaders&)> on_headers,
            std::function<asio::awaitable<bool>(std::string_view)> on_chunk) -> asio::awaitable<Result<int>> {
      int port = agent == "calc" ? mcp_port_ : agent == "echo" ? a2a_port_ : 0;
      if (port == 0) co_return make_error(agent, "no such agent");
      ++relayed_;
      request.url = "http://127.0.0.1:" + std::to_string(port) + request.url;
      auto op = client_->relay(std::move(request), on_headers, on_chunk);
      co_return co_await std::move(op);
    };
    PinFn pin = pin_through(relay);  // one replica per agent: every exchange holds it
    DescribeAgentsFn describe = [] {
      return json::array(
          {{{"name", "calc"}, {"protocol", "mcp"}},
           {{"name", "echo"},
            {"protocol", "a2a"},
            {"revisions", json::array({{{"name", "echo-00001"}, {"traffic", 100}, {"replicas", 1}}})}}});
    };
    PublishFn publish = [this](const std::string& broker, std::vector<CloudEvent> events,
                               std::function<void(Result<std::uint64_t>)> done) {
      if (broker != "default") return done(make_error(broker, "unknown broker", 404));
      published_ += events.size();
      done(std::uint64_t{1});
    };
    GatewayOptions options;
    options.page_size = 3;
    options.stream_keepalive = 200ms;
    serve(GatewayHooks{pin, describe, publish, nullptr, nullptr}, options,
          A2aHooks{relay, describe, nullptr, pin});
  }

  void make_calc_ready() {
    gateway_->on_revision_change(pool_->at(0).get_executor(), "calc", "calc-00001", true);
    ASSERT_TRUE(wait_until([&] { return gateway_->catalog().has_agent("calc"); }, 10s));
  }

  json agent_cancellations(const std::string& session) {
    auto r =
        call(session, "c", "tools/call", {{"name", "calc.cancellations"}, {"arguments", json::object()}});
    return r["result"]["structuredContent"];
  }

  int mcp_port_ = 0;
  int a2a_port_ = 0;
  std::unique_ptr<Process> mcp_agent_;
  std::unique_ptr<Process> a2a_agent_;
  std::unique_ptr<HttpClient> client_;
  std::atomic<int> relayed_{0};
  std::atomic<std::size_t> published_{0};
};

TEST_F(GatewayTest, InitializeNegotiatesTheVersionAndOpensASession) {
  auto res = post({{"jsonrpc", "2.0"},
                   {"id", 1},
                   {"method", "initialize"},
                   {"params",
                    {{"protocolVersion", "2025-03-26"},
                     {"capabilities", json::object()},
                     {"clientInfo", {{"name", "t"}, {"version", "1"}}}}}});
  ASSERT_TRUE(res);
  auto body = json::parse(res->body);
  EXPECT_EQ(body["result"]["protocolVersion"], "2025-03-26");
  EXPECT_TRUE(body["result"]["capabilities"]["tools"]["listChanged"]);
  EXPECT_EQ(res->get_header_value("Mcp-Session-Id").size(), 32u);

  auto newer = post({{"jsonrpc", "2.0"},
                     {"id", 1},
                     {"method", "initialize"},
                     {"params",
                      {{"protocolVersion", "2099-01-01"},
                       {"capabilities", json::object()},
                       {"clientInfo", {{"name", "t"}, {"version", "1"}}}}}});
  EXPECT_EQ(json::parse(newer->body)["result"]["protocolVersion"], "2025-11-25");
}

TEST_F(GatewayTest, RequestsNeedAKnownSession) {
  json ping = {{"jsonrpc", "2.0"}, {"id", 2}, {"method", "ping"}};
  EXPECT_EQ(post(ping)->status, 400);
  EXPECT_EQ(post(ping, "unknown-session")->status, 404);
  auto session = initialize();
  EXPECT_EQ(call(session, 2, "ping")["result"], json::object());
  EXPECT_EQ(post(ping, session, {{"MCP-Protocol-Version", "1999-01-01"}})->status, 400);
  EXPECT_EQ(post(ping, session, {{"MCP-Protocol-Version", "2025-11-25"}})->status, 200);

  httplib::Client cli("127.0.0.1", server_->port());
  EXPECT_EQ(cli.Delete("/mcp", headers(session))->status, 200);
  EXPECT_EQ(post(ping, session)->status, 404);
  EXPECT_EQ(cli.Delete("/mcp", headers(session))->status, 404);
}

TEST_F(GatewayTest, RejectsForeignOriginsAndBadRequests) {
  auto session = initialize();
  json ping = {{"jsonrpc", "2.0"}, {"id", 3}, {"method", "ping"}};
  auto foreign = post(ping, session, {{"Origin", "http://evil.example"}});
  EXPECT_EQ(foreign->status, 403);
  EXPECT_TRUE(json::parse(foreign->body)["id"].is_null());
  EXPECT_EQ(post(ping, session, {{"Origin", "http://localhost:3000"}})->status, 200);

  httplib::Client cli("127.0.0.1", server_->port());
  auto bad_json = cli.Post("/mcp", headers(session), "{oops", "application/json");
  EXPECT_EQ(bad_json->status, 400);
  EXPECT_EQ(json::parse(bad_json->body)["error"]["code"], rpc_error::parse_error);
  auto bad_request = cli.Post("/mcp", headers(session), R"({"jsonrpc":"2.0","id":1})", "application/json");
  EXPECT_EQ(json::parse(bad_request->body)["error"]["code"], rpc_error::invalid_request);
  EXPECT_EQ(cli.Post("/mcp", headers(session), "x", "text/plain")->status, 415);
  EXPECT_EQ(call(session, 4, "resources/list")["error"]["code"], rpc_error::method_not_found);
  auto note = post({{"jsonrpc", "2.0"}, {"method", "notifications/whatever"}}, session);
  EXPECT_EQ(note->status, 202);
  EXPECT_TRUE(note->body.empty());
  EXPECT_EQ(cli.Put("/mcp", headers(session), "{}", "application/json")->status, 405);
}

TEST_F(GatewayTest, ListingNeverWakesAnAgentAndShowsItsToolsOnceARevisionIsReady) {
  auto session = initialize();
  auto before = call(session, 5, "tools/list");
  EXPECT_EQ(before["result"]["tools"].size(), 2u);  // the built-ins
  EXPECT_EQ(relayed_.load(), 0);

  make_calc_ready();
  std::vector<std::string> names;
  std::string cursor;
  for (int page = 0; page < 10; ++page) {
    json params = json::object();
    if (!cursor.empty()) params["cursor"] = cursor;
    auto r = call(session, 6 + page, "tools/list", params);
    EXPECT_LE(r["result"]["tools"].size(), 3u);
    for (const auto& t : r["result"]["tools"]) names.push_back(t["name"]);
    cursor = r["result"].value("nextCursor", "");
    if (cursor.empty()) break;
  }
  EXPECT_EQ(names, (std::vector<std::string>{"calc.add", "calc.cancellations", "calc.echo", "calc.fail",
                                             "calc.slow", "calc.whoami", "list_agents", "publish_event"}));
  EXPECT_EQ(call(session, 20, "tools/list", {{"cursor", "garbage"}})["error"]["code"],
            rpc_error::invalid_params);
}

TEST_F(GatewayTest, CallsToolsThroughTheRelayAndMapsFailures) {
  make_calc_ready();
  auto session = initialize();
  auto add = call(session, 7, "tools/call", {{"name", "calc.add"}, {"arguments", {{"a", 2}, {"b", 3}}}});
  EXPECT_EQ(add["id"], 7);
  EXPECT_EQ(add["result"]["structuredContent"]["sum"], 5.0);
  auto fail = call(session, 8, "tools/call", {{"name", "calc.fail"}, {"arguments", {{"message", "boom"}}}});
  EXPECT_TRUE(fail["result"]["isError"]);
  EXPECT_EQ(fail["result"]["content"][0]["text"], "boom");
  EXPECT_EQ(call(session, 9, "tools/call", {{"name", "calc.nope"}})["error"]["code"],
            rpc_error::invalid_params);
  EXPECT_EQ(call(session, 10, "tools/call", {{"name", "ghost.tool"}})["error"]["code"],
            rpc_error::invalid_params);
  EXPECT_EQ(call(session, 11, "tools/call", {{"arguments", json::object()}})["error"]["code"],
            rpc_error::invalid_params);

  auto published =
      call(session, 12, "tools/call",
           {{"name", "publish_event"},
            {"arguments", {{"broker", "default"}, {"type", "t"}, {"source", "/s"}, {"data", {{"x", 1}}}}}});
  EXPECT_FALSE(published["result"]["isError"]);
  EXPECT_EQ(published["result"]["structuredContent"]["id"].get<std::string>().size(), 36u);
  EXPECT_EQ(published_.load(), 1u);
  auto unknown_broker =
      call(session, 13, "tools/call",
           {{"name", "publish_event"}, {"arguments", {{"broker", "nope"}, {"type", "t"}, {"source", "/s"}}}});
  EXPECT_TRUE(unknown_broker["result"]["isError"]);
  auto agents = call(session, 14, "tools/call", {{"name", "list_agents"}});
  EXPECT_EQ(agents["result"]["structuredContent"]["agents"].size(), 2u);
}

TEST_F(GatewayTest, ReopensTheUpstreamSessionWhenTheAgentForgetsIt) {
  make_calc_ready();
  auto session = initialize();
  EXPECT_EQ(call(session, 1, "tools/call",
                 {{"name", "calc.echo"}, {"arguments", {{"text", "a"}}}})["result"]["content"][0]["text"],
            "a");
  // The agent restarts: its sessions are gone and it answers 404 to the old one.
  mcp_agent_->signal(SIGKILL);
  mcp_agent_->wait();
  mcp_agent_ =
      std::make_unique<Process>(built_program("mcp_agent"), std::vector<std::string>{},
                                std::map<std::string, std::string>{{"PORT", std::to_string(mcp_port_)}});
  httplib::Client probe("127.0.0.1", mcp_port_);
  ASSERT_TRUE(wait_until([&] { return static_cast<bool>(probe.Get("/healthz")); }, 10s));
  EXPECT_EQ(call(session, 2, "tools/call",
                 {{"name", "calc.echo"}, {"arguments", {{"text", "b"}}}})["result"]["content"][0]["text"],
            "b");
}

TEST_F(GatewayTest, StreamsProgressBackOnTheResponse) {
  make_calc_ready();
  auto session = initialize();
  auto res = post({{"jsonrpc", "2.0"},
                   {"id", 30},
                   {"method", "tools/call"},
                   {"params",
                    {{"name", "calc.slow"},
                     {"arguments", {{"steps", 3}, {"delay_ms", 20}}},
                     {"_meta", {{"progressToken", "tok"}}}}}},
                  session);
  ASSERT_TRUE(res);
  EXPECT_EQ(res->get_header_value("Content-Type"), "text/event-stream");
  SseParser parser;
  auto events = parser.feed(res->body);
  ASSERT_EQ(events.size(), 5u) << res->body;
  // 2025-11-25: a priming event (an id, empty data) first, then every event with an id of this stream.
  EXPECT_EQ(events[0].id, "1-0");
  EXPECT_EQ(events[0].data, "");
  for (int i = 1; i <= 3; ++i) {
    EXPECT_EQ(events[i].id, "1-" + std::to_string(i));
    auto progress = json::parse(events[i].data);
    EXPECT_EQ(progress["method"], "notifications/progress");
    EXPECT_EQ(progress["params"]["progressToken"], "tok");
    EXPECT_EQ(progress["params"]["progress"], i);
  }
  EXPECT_EQ(events[4].id, "1-4");
  auto result = json::parse(events[4].data);
  EXPECT_EQ(result["id"], 30);
  EXPECT_EQ(result["result"]["structuredContent"]["steps"], 3);

  // Clients of older revisions get ids but no priming event (they may not accept empty data).
  auto old_session = initialize("2025-06-18");
  auto old = post({{"jsonrpc", "2.0"},
                   {"id", 31},
                   {"method", "tools/call"},
                   {"params",
                    {{"name", "calc.slow"},
                     {"arguments", {{"steps", 1}, {"delay_ms", 20}}},
                     {"_meta", {{"progressToken", "tok"}}}}}},
                  old_session, {{"MCP-Protocol-Version", "2025-06-18"}});
  ASSERT_TRUE(old);
  SseParser old_parser;
  auto old_events = old_parser.feed(old->body);
  ASSERT_EQ(old_events.size(), 2u) << old->body;
  EXPECT_EQ(old_events[0].id, "1-1");
  EXPECT_EQ(json::parse(old_events[1].data)["id"], 31);
}

TEST_F(GatewayTest, NotificationsCancelledEndsTheUpstreamCall) {
  make_calc_ready();
  auto session = initialize();
  std::atomic<bool> progressed{false};
  std::string body;
  std::thread caller([&] {
    httplib::Client cli("127.0.0.1", server_->port());
    cli.set_read_timeout(20, 0);
    json request = {{"jsonrpc", "2.0"},
                    {"id", "slow-1"},
                    {"method", "tools/call"},
                    {"params",
                     {{"name", "calc.slow"},
                      {"arguments", {{"steps", 100}, {"delay_ms", 50}}},
                      {"_meta", {{"progressToken", 1}}}}}};
    httplib::Request req;
    req.method = "POST";
    req.path = "/mcp";
    req.headers = headers(session);
    req.body = request.dump();
    req.set_header("Content-Type", "application/json");
    req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
      body.append(data, n);
      progressed = true;
      return true;
    };
    cli.send(req);
  });
  ASSERT_TRUE(wait_until([&] { return progressed.load(); }, 10s));
  auto started = std::chrono::steady_clock::now();
  auto cancel = post({{"jsonrpc", "2.0"},
                      {"method", "notifications/cancelled"},
                      {"params", {{"requestId", "slow-1"}, {"reason", "test"}}}},
                     session);
  EXPECT_EQ(cancel->status, 202);
  caller.join();
  EXPECT_LT(std::chrono::steady_clock::now() - started, 3s);
  EXPECT_EQ(body.find("\"result\""), std::string::npos) << "a cancelled request gets no response";
  ASSERT_TRUE(wait_until([&] { return agent_cancellations(session)["count"] == 1; }, 5s));
}

// A client that hangs up on a slow tools/call after its first progress notification.
void hang_up_on_slow_call(int port, const httplib::Headers& headers, const json& request) {
  httplib::Client cli("127.0.0.1", port);
  httplib::Request req;
  req.method = "POST";
  req.path = "/mcp";
  req.headers = headers;
  req.body = request.dump();
  req.set_header("Content-Type", "application/json");
  req.content_receiver = [&](const char*, size_t, uint64_t, uint64_t) { return false; };  // hang up
  cli.send(req);
}

TEST_F(GatewayTest, ClientDisconnectDoesNotCancelASessionCall) {
  // 2025-11-25 Streamable HTTP: a disconnect is not a cancellation (notifications/cancelled is).
  make_calc_ready();
  auto session = initialize();
  json request = {{"jsonrpc", "2.0"},
                  {"id", 41},
                  {"method", "tools/call"},
                  {"params",
                   {{"name", "calc.slow"},
                    {"arguments", {{"steps", 6}, {"delay_ms", 50}}},
                    {"_meta", {{"progressToken", 1}}}}}};
  hang_up_on_slow_call(server_->port(), headers(session), request);
  // The id is free again once the call has ended; it ended without being cancelled.
  ASSERT_TRUE(wait_until(
      [&] {
        auto again = call(session, 41, "tools/call", {{"name", "calc.echo"}, {"arguments", {{"text", "x"}}}});
        return again.contains("result");
      },
      5s));
  EXPECT_EQ(agent_cancellations(session)["count"], 0);
}

TEST_F(GatewayTest, AGetWithLastEventIdResumesAResponseStreamWhoseConnectionDropped) {
  // 2025-11-25 "Resumability and Redelivery": the call runs on after the client hangs up, and a GET
  // with the priming event's id as Last-Event-ID gets every event after it, the response last.
  make_calc_ready();
  auto session = initialize();
  json request = {{"jsonrpc", "2.0"},
                  {"id", 44},
                  {"method", "tools/call"},
                  {"params",
                   {{"name", "calc.slow"},
                    {"arguments", {{"steps", 5}, {"delay_ms", 100}}},
                    {"_meta", {{"progressToken", 1}}}}}};
  hang_up_on_slow_call(server_->port(), headers(session), request);

  auto resume = [&](const std::string& last_event_id) {
    httplib::Client cli("127.0.0.1", server_->port());
    cli.set_read_timeout(20, 0);
    auto h = headers(session);
    h.emplace("Last-Event-ID", last_event_id);
    return cli.Get("/mcp", h);
  };
  int status = 0;
  std::string content_type;
  std::string body;
  // Until the gateway has seen the POST connection go, the stream is still connected (409).
  ASSERT_TRUE(wait_until(
      [&] {
        auto res = resume("1-0");
        if (!res) return false;
        status = res->status;
        content_type = res->get_header_value("Content-Type");
        body = res->body;
        return status != 409;
      },
      5s));
  ASSERT_EQ(status, 200) << body;
  EXPECT_EQ(content_type, "text/event-stream");
  SseParser parser;
  std::vector<SseEvent> events;
  for (auto& e : parser.feed(body))
    if (!e.data.empty() || !e.id.empty()) events.push_back(e);
  ASSERT_EQ(events.size(), 6u) << body;
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(events[i].id, "1-" + std::to_string(i + 1));
    EXPECT_EQ(json::parse(events[i].data)["params"]["progress"], i + 1);
  }
  EXPECT_EQ(events[5].id, "1-6");
  auto response = json::parse(events[5].data);
  EXPECT_EQ(response["id"], 44);
  EXPECT_EQ(response["result"]["structuredContent"]["steps"], 5);

  // Delivered: nothing is left to resume; an id of no stream is refused the same way.
  auto again = resume("1-0");
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 400) << again->body;
  auto unknown = resume("garbage");
  ASSERT_TRUE(unknown);
  EXPECT_EQ(unknown->status, 400);
}

TEST_F(GatewayTest, ClientDisconnectCancelsASessionlessCall) {
  // 2026-07-28: closing the response stream is how a client cancels.
  make_calc_ready();
  auto session = initialize();
  json request = {
      {"jsonrpc", "2.0"},
      {"id", 42},
      {"method", "tools/call"},
      {"params",
       {{"name", "calc.slow"},
        {"arguments", {{"steps", 100}, {"delay_ms", 50}}},
        {"_meta", {{"progressToken", 1}, {"io.modelcontextprotocol/protocolVersion", "2026-07-28"}}}}}};
  auto h = headers();
  h.emplace("MCP-Protocol-Version", "2026-07-28");
  h.emplace("Mcp-Method", "tools/call");
  h.emplace("Mcp-Name", "calc.slow");
  hang_up_on_slow_call(server_->port(), h, request);
  ASSERT_TRUE(wait_until([&] { return agent_cancellations(session)["count"] == 1; }, 5s));
}

TEST_F(GatewayTest, ToolListChangesReachTheGetStream) {
  auto session = initialize();
  std::atomic<bool> open{false};
  std::string stream;
  std::mutex mu;
  std::thread listener([&] {
    httplib::Client cli("127.0.0.1", server_->port());
    cli.set_read_timeout(10, 0);
    httplib::Headers h{{"Accept", "text/event-stream"}, {"Mcp-Session-Id", session}};
    cli.Get("/mcp", h, [&](const char* data, size_t n) {
      std::lock_guard lock(mu);
      stream.append(data, n);
      open = true;
      return stream.find("list_changed") == std::string::npos;
    });
  });
  ASSERT_TRUE(wait_until([&] { return open.load(); }, 5s));
  httplib::Client cli("127.0.0.1", server_->port());
  EXPECT_EQ(cli.Get("/mcp", {{"Accept", "text/event-stream"}, {"Mcp-Session-Id", session}})->status, 409);
  make_calc_ready();
  listener.join();
  std::lock_guard lock(mu);
  EXPECT_NE(stream.find("notifications/tools/list_changed"), std::string::npos) << stream;
}

TEST_F(GatewayTest, SessionlessRevisionChecksHeadersAgainstTheBody) {
  make_calc_ready();
  auto meta = json{{"io.modelcontextprotocol/protocolVersion", "2026-07-28"},
                   {"io.modelcontextprotocol/clientInfo", {{"name", "t"}, {"version", "1"}}},
                   {"io.modelcontextprotocol/clientCapabilities", json::object()}};
  httplib::Headers v{{"MCP-Protocol-Version", "2026-07-28"}, {"Mcp-Method", "server/discover"}};
  auto discover = post(
      {{"jsonrpc", "2.0"}, {"id", 1}, {"method", "server/discover"}, {"params", {{"_meta", meta}}}}, "", v);
  ASSERT_EQ(discover->status, 200);
  EXPECT_EQ(json::parse(discover->body)["result"]["supportedVersions"][0], "2026-07-28");

  httplib::Headers wrong{{"MCP-Protocol-Version", "2026-07-28"}, {"Mcp-Method", "tools/list"}};
  auto mismatch =
      post({{"jsonrpc", "2.0"}, {"id", 2}, {"method", "server/discover"}, {"params", {{"_meta", meta}}}}, "",
           wrong);
  EXPECT_EQ(mismatch->status, 400);
  EXPECT_EQ(json::parse(mismatch->body)["error"]["code"], rpc_error::header_mismatch);

  httplib::Headers call_headers{
      {"MCP-Protocol-Version", "2026-07-28"}, {"Mcp-Method", "tools/call"}, {"Mcp-Name", "calc.add"}};
  auto add = post({{"jsonrpc", "2.0"},
                   {"id", 3},
                   {"method", "tools/call"},
                   {"params", {{"name", "calc.add"}, {"arguments", {{"a", 1}, {"b", 1}}}, {"_meta", meta}}}},
                  "", call_headers);
  ASSERT_EQ(add->status, 200) << add->body;
  auto result = json::parse(add->body)["result"];
  EXPECT_EQ(result["structuredContent"]["sum"], 2.0);
  EXPECT_EQ(result["resultType"], "complete");
  httplib::Headers wrong_name{
      {"MCP-Protocol-Version", "2026-07-28"}, {"Mcp-Method", "tools/call"}, {"Mcp-Name", "calc.echo"}};
  EXPECT_EQ(post({{"jsonrpc", "2.0"},
                  {"id", 4},
                  {"method", "tools/call"},
                  {"params", {{"name", "calc.add"}, {"_meta", meta}}}},
                 "", wrong_name)
                ->status,
            400);
}

TEST_F(GatewayTest, A2aCardIsRewrittenAndMessagesAreRelayed) {
  httplib::Client cli("127.0.0.1", server_->port());
  auto card = cli.Get("/a2a/echo/.well-known/agent-card.json");
  ASSERT_TRUE(card);
  ASSERT_EQ(card->status, 200) << card->body;
  auto c = json::parse(card->body);
  EXPECT_EQ(c["supportedInterfaces"][0]["url"],
            "http://127.0.0.1:" + std::to_string(server_->port()) + "/a2a/echo");
  EXPECT_EQ(c["supportedInterfaces"][0]["protocolBinding"], "JSONRPC");

  json send = {
      {"jsonrpc", "2.0"},
      {"id", 1},
      {"method", "SendMessage"},
      {"params", {{"message", {{"messageId", "m1"}, {"role", "ROLE_USER"}, {"parts", {{{"text", "hi"}}}}}}}}};
  auto res = cli.Post("/a2a/echo", {{"A2A-Version", "1.0"}}, send.dump(), "application/json");
  ASSERT_TRUE(res);
  auto body = json::parse(res->body);
  EXPECT_EQ(body["result"]["message"]["parts"][0]["text"], "echo: hi");

  send["method"] = "SendStreamingMessage";
  auto streamed = cli.Post("/a2a/echo", {{"A2A-Version", "1.0"}, {"Accept", "text/event-stream"}},
                           send.dump(), "application/json");
  ASSERT_TRUE(streamed);
  EXPECT_EQ(streamed->get_header_value("Content-Type"), "text/event-stream");
  SseParser parser;
  auto events = parser.feed(streamed->body);
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(json::parse(events[3].data)["result"]["statusUpdate"]["status"]["state"], "TASK_STATE_COMPLETED");

  auto old_version = cli.Post("/a2a/echo", {{"A2A-Version", "9.9"}}, send.dump(), "application/json");
  EXPECT_EQ(json::parse(old_version->body)["error"]["code"], -32009);
  EXPECT_EQ(cli.Get("/a2a/calc/.well-known/agent-card.json")->status, 404);  // an MCP agent
  EXPECT_EQ(cli.Get("/a2a/nobody/.well-known/agent-card.json")->status, 404);
}

TEST_F(GatewayTest, A2aEventsBecomeMessagesAndRepliesBecomeEvents) {
  httplib::Client cli("127.0.0.1", server_->port());
  httplib::Headers h{
      {"ce-id", "e1"}, {"ce-source", "/test"}, {"ce-type", "com.example.ask"}, {"ce-specversion", "1.0"}};
  auto res = cli.Post("/a2a/echo/events", h, R"({"question":"why"})", "application/json");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  EXPECT_EQ(res->get_header_value("ce-type"), "dev.sluice.a2a.message");
  EXPECT_EQ(res->get_header_value("ce-source"), "/a2a/echo");
  auto reply = json::parse(res->body);
  EXPECT_EQ(reply["parts"][0]["data"]["question"], "why");
  EXPECT_EQ(cli.Post("/a2a/echo/events", "not an event", "text/plain")->status, 400);
}

// A task that ends failed is no answer to the event: the delivery fails (and the trigger retries).
TEST_F(GatewayTest, A2aEventsWhoseTaskFailedAreFailedDeliveries) {
  httplib::Client cli("127.0.0.1", server_->port());
  httplib::Headers h{
      {"ce-id", "e2"}, {"ce-source", "/test"}, {"ce-type", "com.example.ask"}, {"ce-specversion", "1.0"}};
  auto done = cli.Post("/a2a/echo/events", h, "make a task", "text/plain");
  ASSERT_TRUE(done);
  ASSERT_EQ(done->status, 200) << done->body;
  EXPECT_EQ(done->get_header_value("ce-type"), "dev.sluice.a2a.task");
  auto failed = cli.Post("/a2a/echo/events", h, "please fail", "text/plain");
  ASSERT_TRUE(failed);
  EXPECT_EQ(failed->status, 502) << failed->body;
  EXPECT_NE(failed->body.find("TASK_STATE_FAILED"), std::string::npos) << failed->body;
}

}  // namespace
}  // namespace sluice::mcp
