#pragma once
// The gateway's MCP client towards agents: JSON-RPC over Streamable HTTP (POST with JSON or SSE
// responses), sent through a relay function (the activator in `sluice serve`, a fake in tests), so
// that every request to an agent gets the activator's buffering and scale from zero.

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/asio.hpp"
#include "core/http_client.hpp"
#include "core/result.hpp"
#include "mcp/session.hpp"

namespace sluice::mcp {

/// Streams one HTTP request to an agent (see ServerParts::relay_to_agent); the request's url is the
/// path on the replica.
using RelayFn = std::function<asio::awaitable<Result<int>>(
    const std::string& agent, HttpRequest request,
    std::function<asio::awaitable<bool>(int status, const HttpHeaders&)> on_headers,
    std::function<asio::awaitable<bool>(std::string_view chunk)> on_chunk)>;

/// Called with each message an agent sends before its response (notifications/progress, …).
using UpstreamMessageFn = std::function<asio::awaitable<void>(const nlohmann::json& message)>;

/// The protocol version the gateway asks agents for, and the ones it accepts back.
inline constexpr const char* upstream_protocol_version = "2025-06-18";

struct UpstreamReply {
  int status = 0;
  /// The JSON-RPC response (result or error) to the request; absent for notifications, for HTTP
  /// errors, or when the stream ended without one.
  std::optional<nlohmann::json> response;
  std::string session_id;  // the MCP-Session-Id response header
  std::string body;        // the start of a non-JSON-RPC body (error statuses), for messages
};

class UpstreamClient {
 public:
  explicit UpstreamClient(RelayFn relay, std::string path = "/mcp",
                          std::chrono::milliseconds timeout = std::chrono::minutes(5))
      : relay_(std::move(relay)), path_(std::move(path)), timeout_(timeout) {}

  /// POSTs one message. An Error means the agent could not be reached (or the call was cancelled);
  /// any HTTP status is a reply. `timeout` > 0 replaces the client's for this request.
  asio::awaitable<Result<UpstreamReply>> post(
      const std::string& agent, const UpstreamSession* session, const nlohmann::json& message,
      UpstreamMessageFn on_message, std::shared_ptr<CancelSignal> cancel,
      std::chrono::milliseconds timeout = std::chrono::milliseconds(0));

  /// initialize, then notifications/initialized. Error code: the HTTP status, or the JSON-RPC code.
  asio::awaitable<Result<UpstreamSession>> open_session(const std::string& agent,
                                                        std::shared_ptr<CancelSignal> cancel);
  /// Every page of tools/list, as one array.
  asio::awaitable<Result<nlohmann::json>> list_tools(const std::string& agent,
                                                     const UpstreamSession& session);
  /// DELETE of the agent's session (best effort).
  asio::awaitable<void> close_session(const std::string& agent, const UpstreamSession& session);

  /// A fresh id for a request towards an agent (ids must be unique within an upstream session).
  std::int64_t next_id();

 private:
  RelayFn relay_;
  std::string path_;
  std::chrono::milliseconds timeout_;
  std::atomic<std::int64_t> next_id_{1};
};

}  // namespace sluice::mcp
