#pragma once
// The MCP gateway: one MCP server on the Streamable HTTP transport (POST/GET/DELETE /mcp) whose tools
// are the tools of every MCP agent, named `<agent>.<tool>`, plus built-in tools.
//
// Versions: `initialize` negotiates 2025-11-25, 2025-06-18, 2025-03-26 or 2024-11-05 and opens a
// session (MCP-Session-Id); a request without a session whose MCP-Protocol-Version (or
// `_meta["io.modelcontextprotocol/protocolVersion"]`) is 2026-07-28 takes the sessionless path of that
// revision (server/discover, Mcp-Method/Mcp-Name headers checked against the body).
//
// tools/list answers from the ToolCatalog only (an agent at zero is never woken to list its tools).
// tools/call goes through the activator to one replica of the agent and its own MCP endpoint, over one
// upstream session per client session and replica (a client session keeps to one revision while the
// split is unchanged); progress notifications stream back on the POST's SSE response,
// notifications/cancelled (or the client closing the connection) cancels the call on that replica.

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/asio.hpp"
#include "core/http_server.hpp"
#include "mcp/builtin_tools.hpp"
#include "mcp/json_rpc.hpp"
#include "mcp/session.hpp"
#include "mcp/tool_catalog.hpp"
#include "mcp/upstream_client.hpp"

namespace sluice::mcp {

/// The versions `initialize` negotiates, newest first.
const std::vector<std::string>& session_protocol_versions();
/// True for a listen address or host name that only this machine reaches (localhost, 127.x, ::1).
bool is_loopback_host(std::string_view host);
/// The sessionless revision.
inline constexpr const char* stateless_protocol_version = "2026-07-28";

struct GatewayHooks {
  PinFn pin;                         // empty: no agent tools
  DescribeAgentsFn describe_agents;  // empty: no agents
  PublishFn publish;                 // empty: publish_event fails
  /// Empty: every caller may call every tool; an Error says why not.
  std::function<Status(const std::string& agent, const std::string& tool, const Principal& who)> authorize;
  /// Empty: every caller may publish_event anywhere; an Error (403) says why not.
  std::function<Status(const std::string& broker, const std::vector<CloudEvent>& events,
                       const Principal& who)>
      authorize_publish;
};

struct GatewayOptions {
  /// Origins allowed besides loopback ones and the server's own (Host); "*" allows any.
  std::vector<std::string> allowed_origins;
  /// The server listens on a loopback address only: a request whose Host names another host (DNS
  /// rebinding) is refused with 403, unless an allowed origin has that host.
  bool loopback_listener = false;
  std::size_t page_size = 100;
  std::chrono::seconds session_idle{1800};
  /// Keep-alive comments on the GET stream.
  std::chrono::milliseconds stream_keepalive{15000};
  /// The GET stream is closed after this long (the client reconnects), so shutdown never waits on it.
  std::chrono::milliseconds stream_lifetime{std::chrono::minutes(5)};
  std::string upstream_path = "/mcp";
  std::chrono::milliseconds call_timeout{std::chrono::minutes(5)};
  std::string server_version = "0.1.0";
  /// Where the tool catalog is kept across restarts (loaded at start, written on every change), so
  /// that an agent at zero replicas after a restart still lists its tools; empty: memory only.
  std::string catalog_file;
};

class McpGateway : public std::enable_shared_from_this<McpGateway> {
 public:
  McpGateway(GatewayHooks hooks, GatewayOptions options = {});

  /// The /mcp route.
  asio::awaitable<HttpServerResponse> handle(HttpServerRequest& req, RequestContext& ctx);

  /// A revision became ready (fetch its tools) or went away (forget the agent's tools when the agent
  /// is gone). Thread-safe; the fetch runs on `executor`.
  void on_revision_change(asio::any_io_executor executor, const std::string& agent,
                          const std::string& revision, bool ready);
  /// Fetches an agent's tools into the catalog; notifies sessions when the listing changed.
  asio::awaitable<Status> refresh_agent(std::string agent, std::string revision);

  /// Ends every stream and session (shutdown).
  void stop();
  /// Drops sessions idle longer than options.session_idle.
  std::size_t expire_sessions();

  ToolCatalog& catalog() { return catalog_; }
  SessionStore& sessions() { return sessions_; }
  /// Sends notifications/tools/list_changed to every initialized session.
  void notify_tools_changed();

 private:
  /// Writes the catalog to options_.catalog_file (when set); a failure is logged, the catalog stays.
  void save_catalog();
  /// Writes `catalog` to options_.catalog_file; catalog_file_mu_ held, a failure is logged.
  void write_catalog_locked(const ToolCatalog& catalog);
  /// Sets an agent's tools, saving the catalog before they are listed (a listed tool survives a crash).
  /// True when they changed.
  bool set_agent_tools(const std::string& agent, const std::string& revision, const nlohmann::json& tools);
  struct Call;
  asio::awaitable<HttpServerResponse> handle_post(HttpServerRequest& req, RequestContext& ctx);
  /// A JSON-RPC batch on a session of 2025-03-26 or older (later revisions have no batches).
  asio::awaitable<HttpServerResponse> handle_batch(HttpServerRequest& req, RequestContext& ctx,
                                                   std::shared_ptr<Session> session, nlohmann::json batch);
  asio::awaitable<HttpServerResponse> handle_get(HttpServerRequest& req, RequestContext& ctx);
  asio::awaitable<HttpServerResponse> handle_delete(HttpServerRequest& req, RequestContext& ctx);
  /// GET with Last-Event-ID: the rest of a POST's SSE response stream whose connection dropped.
  asio::awaitable<HttpServerResponse> resume_stream(HttpServerRequest& req, RequestContext& ctx,
                                                    std::shared_ptr<Session> session);
  asio::awaitable<HttpServerResponse> handle_stateless(HttpServerRequest& req, RequestContext& ctx,
                                                       Message msg);
  asio::awaitable<HttpServerResponse> dispatch(HttpServerRequest& req, RequestContext& ctx,
                                               std::shared_ptr<Session> session, const Message& msg,
                                               bool stateless);
  asio::awaitable<HttpServerResponse> call_tool(HttpServerRequest& req, RequestContext& ctx,
                                                std::shared_ptr<Session> session, const Message& msg,
                                                bool stateless);
  HttpServerResponse initialize(HttpServerRequest& req, const Message& msg);
  void handle_notification(Session& session, const Message& msg);
  nlohmann::json list_tools(const Message& msg, bool stateless, int& error_code, std::string& error_message);
  bool origin_allowed(const HttpServerRequest& req) const;
  bool host_allowed(const HttpServerRequest& req) const;
  bool agent_known(const std::string& agent) const;

  GatewayHooks hooks_;
  GatewayOptions options_;
  ToolCatalog catalog_;
  std::mutex catalog_file_mu_;  // one write of options_.catalog_file at a time
  SessionStore sessions_;
  UpstreamClient upstream_;
  std::atomic<bool> stopping_{false};
};

}  // namespace sluice::mcp
