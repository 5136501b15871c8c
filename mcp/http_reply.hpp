#pragma once
// HTTP helpers shared by the MCP and A2A gateways.

#include <string>
#include <string_view>
#include <utility>

#include <nlohmann/json.hpp>

#include "core/asio.hpp"
#include "core/http_server.hpp"
#include "core/result.hpp"

namespace sluice::mcp {

/// The value of the request's header `name`, or "" when it has none.
inline std::string header_value(const HttpServerRequest& req, std::string_view name) {
  auto it = req.find(beast::string_view(name.data(), name.size()));
  return it == req.end() ? std::string() : std::string(it->value());
}

/// `body` as an application/json response with `status`.
inline HttpServerResponse json_reply(const HttpServerRequest& req, http::status status,
                                     const nlohmann::json& body) {
  return make_response(req, status, body.dump(), "application/json");
}

/// Awaits `op` and drops its status, for co_spawn(..., asio::detached), which takes a void coroutine.
inline asio::awaitable<void> discard(asio::awaitable<Status> op) {
  co_await std::move(op);
}

}  // namespace sluice::mcp
