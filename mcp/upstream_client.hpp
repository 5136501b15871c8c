#pragma once
// The gateway's MCP client towards agents: JSON-RPC over Streamable HTTP (POST with JSON or SSE
// responses), sent through a pin function (the activator in `sluice serve`, a fake in tests), so that
// every request to an agent gets the activator's buffering and scale from zero.
//
// An MCP session lives on the replica that opened it, so every exchange holds one replica for all
// its requests (initialize, the call, notifications/cancelled), and callers keep one upstream
// session per replica (UpstreamSessions, keyed by ReplicaRef::key).

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

/// The replica an exchange holds: `key` names it among the agent's replicas for as long as it lives.
struct ReplicaRef {
  std::string key;
  std::string address;  // host:port
};
/// Sends one request to the held replica; request.url is the path on it.
using SendFn = std::function<asio::awaitable<Result<int>>(
    HttpRequest request, std::function<asio::awaitable<bool>(int status, const HttpHeaders&)> on_headers,
    std::function<asio::awaitable<bool>(std::string_view chunk)> on_chunk)>;
using ExchangeFn = std::function<asio::awaitable<Result<int>>(const ReplicaRef& replica, SendFn send)>;
/// Holds one replica of `agent` (see AgentProxy::with_replica: `routing` headers give the sticky key,
/// `cancel` ends the wait for a replica, a non-empty `address` goes straight to that replica) while
/// `exchange` runs.
using PinFn = std::function<asio::awaitable<Result<int>>(const std::string& agent, const HttpHeaders& routing,
                                                         std::shared_ptr<CancelSignal> cancel,
                                                         std::string address, ExchangeFn exchange)>;

/// Where a caller keeps its upstream sessions, by replica key.
struct UpstreamSessions {
  std::function<std::optional<UpstreamSession>(const std::string& replica)> find;
  std::function<void(const std::string& replica, UpstreamSession session)> keep;
  /// Forgets the session of `replica` if it is still `id`.
  std::function<void(const std::string& replica, const std::string& id)> drop;
};

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
  explicit UpstreamClient(PinFn pin, std::string path = "/mcp",
                          std::chrono::milliseconds timeout = std::chrono::minutes(5))
      : pin_(std::move(pin)), path_(std::move(path)), timeout_(timeout) {}

  /// One JSON-RPC request (`method`, `params`) on one replica of `agent`, in the session `sessions`
  /// keeps for that replica (opened on first use, and opened again, once, when the replica answers
  /// 404). Messages before the response go to `on_message`. When `cancel` fires during the call, the
  /// replica is sent notifications/cancelled for it before its slot is released. `used`, when given,
  /// receives the session the call went through. An Error means the agent could not be reached (or
  /// the call was cancelled); any HTTP status is a reply. `timeout` > 0 replaces the client's.
  asio::awaitable<Result<UpstreamReply>> call(
      std::string agent, HttpHeaders routing, const UpstreamSessions& sessions, std::string method,
      nlohmann::json params, UpstreamMessageFn on_message, std::shared_ptr<CancelSignal> cancel,
      std::chrono::milliseconds timeout = std::chrono::milliseconds(0), UpstreamSession* used = nullptr);

  /// Every page of tools/list of one replica of `agent`, in a session opened and closed for it.
  asio::awaitable<Result<nlohmann::json>> fetch_tools(std::string agent);

  /// DELETE of a session, on the replica that holds it (best effort).
  asio::awaitable<void> close_session(std::string agent, UpstreamSession session);

 private:
  /// POSTs one message to the held replica.
  asio::awaitable<Result<UpstreamReply>> post(
      const SendFn& send, const UpstreamSession* session, const nlohmann::json& message,
      UpstreamMessageFn on_message, std::shared_ptr<CancelSignal> cancel,
      std::chrono::milliseconds timeout = std::chrono::milliseconds(0));
  /// initialize, then notifications/initialized. Error code: the HTTP status, or the JSON-RPC code.
  asio::awaitable<Result<UpstreamSession>> open_session(const std::string& agent, const ReplicaRef& replica,
                                                        const SendFn& send,
                                                        std::shared_ptr<CancelSignal> cancel);
  asio::awaitable<Result<nlohmann::json>> list_tools(const std::string& agent, const SendFn& send,
                                                     const UpstreamSession& session);
  asio::awaitable<void> delete_session(const SendFn& send, const UpstreamSession& session);
  std::int64_t next_id();

  PinFn pin_;
  std::string path_;
  std::chrono::milliseconds timeout_;
  std::atomic<std::int64_t> next_id_{1};
};

}  // namespace sluice::mcp
