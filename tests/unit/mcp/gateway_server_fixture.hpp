#pragma once
// What the MCP gateway's HTTP tests share: the gateway at /mcp and the A2A endpoints at /a2a/ on a real
// HttpServer with one I/O thread, agents reached through a relay the test gives, and the client calls
// the tests make.

#include <gtest/gtest.h>
#include <httplib.h>

#include <memory>
#include <string>
#include <thread>

#include "mcp/a2a_gateway.hpp"
#include "mcp/gateway.hpp"
#include "tests/support/wait.hpp"

namespace sluice::mcp {

class GatewayServerTest : public ::testing::Test {
 protected:
  using json = nlohmann::json;

  /// A pin hook that holds one replica per agent ("AGENT/0") for an exchange, whose sends go to `relay`.
  static PinFn pin_through(RelayFn relay) {
    return [relay](const std::string& agent, const HttpHeaders&, std::shared_ptr<CancelSignal>, std::string,
                   ExchangeFn exchange) -> asio::awaitable<Result<int>> {
      const ReplicaRef replica{agent + "/0", agent};  // outlives the exchange (held by reference)
      SendFn send = [relay, agent](HttpRequest request,
                                   std::function<asio::awaitable<bool>(int, const HttpHeaders&)> on_headers,
                                   std::function<asio::awaitable<bool>(std::string_view)> on_chunk) {
        return relay(agent, std::move(request), std::move(on_headers), std::move(on_chunk));
      };
      auto run = exchange(replica, send);
      co_return co_await std::move(run);
    };
  }

  /// Starts both gateways on a server on pool_ (which the caller made, for its relay to use).
  void serve(GatewayHooks hooks, GatewayOptions options, A2aHooks a2a_hooks) {
    gateway_ = std::make_shared<McpGateway>(std::move(hooks), options);
    a2a_ = std::make_shared<A2aGateway>(std::move(a2a_hooks));
    HttpServerOptions server_options;
    server_options.port = 0;
    server_ = std::make_unique<HttpServer>(*pool_, server_options);
    server_->route(
        "/mcp", [this](HttpServerRequest& req, RequestContext& ctx) { return gateway_->handle(req, ctx); });
    server_->route("/a2a/",
                   [this](HttpServerRequest& req, RequestContext& ctx) { return a2a_->handle(req, ctx); });
    ASSERT_TRUE(server_->start());
    runner_ = std::thread([this] { pool_->run(); });
  }

  void TearDown() override {
    if (gateway_) gateway_->stop();
    if (server_) {
      server_->stop();
      testing::wait_until([&] { return server_->in_flight() == 0; }, std::chrono::seconds(5));
    }
    if (pool_) pool_->stop();
    if (runner_.joinable()) runner_.join();
  }

  httplib::Headers headers(const std::string& session = "") {
    httplib::Headers h{{"Accept", "application/json, text/event-stream"}};
    if (!session.empty()) h.emplace("Mcp-Session-Id", session);
    return h;
  }

  httplib::Result post(const json& body, const std::string& session = "", httplib::Headers extra = {}) {
    httplib::Client cli("127.0.0.1", server_->port());
    cli.set_read_timeout(20, 0);
    auto h = headers(session);
    h.insert(extra.begin(), extra.end());
    return cli.Post("/mcp", h, body.dump(), "application/json");
  }

  /// initialize and notifications/initialized: the session's id.
  std::string initialize(const std::string& version = "2025-11-25") {
    auto res = post({{"jsonrpc", "2.0"},
                     {"id", 1},
                     {"method", "initialize"},
                     {"params",
                      {{"protocolVersion", version},
                       {"capabilities", json::object()},
                       {"clientInfo", {{"name", "test"}, {"version", "1"}}}}}});
    EXPECT_TRUE(res);
    if (!res) return {};
    EXPECT_EQ(res->status, 200);
    std::string session = res->get_header_value("Mcp-Session-Id");
    auto ack = post({{"jsonrpc", "2.0"}, {"method", "notifications/initialized"}}, session);
    EXPECT_TRUE(ack && ack->status == 202);
    return session;
  }

  /// A request on the session: the JSON-RPC message it got, with HTTP 200.
  json call(const std::string& session, json id, const std::string& method, json params = json::object()) {
    auto res = post({{"jsonrpc", "2.0"}, {"id", id}, {"method", method}, {"params", params}}, session);
    EXPECT_TRUE(res);
    if (!res) return nullptr;
    EXPECT_EQ(res->status, 200) << res->body;
    return json::parse(res->body, nullptr, false);
  }

  std::unique_ptr<IoPool> pool_;
  std::shared_ptr<McpGateway> gateway_;
  std::shared_ptr<A2aGateway> a2a_;
  std::unique_ptr<HttpServer> server_;
  std::thread runner_;
};

}  // namespace sluice::mcp
