#include <csignal>
#include <cstdlib>
#include <sstream>

#include "core/log.hpp"
#include "mcp/a2a_gateway.hpp"
#include "mcp/gateway.hpp"
#include "mcp/tool_events.hpp"
#include "core/event_arguments.hpp"
#include "server/server.hpp"
#include "server/wiring.hpp"

namespace sluice {

namespace {

// Comma-separated origins (SLUICE_MCP_ALLOWED_ORIGINS) allowed besides loopback and the server's own.
std::vector<std::string> allowed_origins_from_env() {
  std::vector<std::string> out;
  const char* env = std::getenv("SLUICE_MCP_ALLOWED_ORIGINS");
  if (!env) return out;
  std::stringstream in(env);
  std::string item;
  while (std::getline(in, item, ','))
    if (!item.empty()) out.push_back(item);
  return out;
}

// Timers and signals the gateways own; handlers hold weak references so that the wiring's shutdown
// hook alone decides their lifetime.
struct GatewayTimers {
  GatewayTimers(asio::io_context& io) : expiry(io), signals(io, SIGINT, SIGTERM) {}
  asio::steady_timer expiry;
  asio::signal_set signals;  // a second set: Asio notifies every set registered for a signal
};

void schedule_expiry(std::weak_ptr<GatewayTimers> weak, std::shared_ptr<mcp::McpGateway> gateway) {
  auto timers = weak.lock();
  if (!timers) return;
  timers->expiry.expires_after(std::chrono::seconds(60));
  timers->expiry.async_wait([weak, gateway](beast::error_code ec) {
    if (ec) return;
    if (auto n = gateway->expire_sessions(); n > 0) SLUICE_LOG(mcp, info, "{} idle MCP sessions expired", n);
    schedule_expiry(weak, gateway);
  });
}

// A trigger's events as tools/call on an MCP agent, in process (no HTTP hop back into Sluice).
Result<ResolvedDestination> tool_destination(const std::shared_ptr<mcp::ToolEventBridge>& tools,
                                             const SubscriberRef& ref) {
  mcp::ToolTarget target{ref.name, ref.tool, {}};
  if (!ref.tool_arguments.empty()) {
    auto parsed = EventArguments::parse(ref.tool_arguments, kToolArgumentsAnnotation);
    if (!parsed) return parsed.error();
    target.arguments = std::move(parsed).value();
  }
  ResolvedDestination destination;
  destination.url = "mcp:" + ref.name + "/" + ref.tool;
  destination.send = [tools, target = std::move(target)](HttpRequest request) {
    return tools->deliver(target, std::move(request));
  };
  return destination;
}

}  // namespace

void wire_gateways(ServerParts& parts) {
  mcp::GatewayHooks hooks;
  hooks.pin = parts.pin_agent_replica;
  hooks.describe_agents = parts.describe_agents;
  hooks.publish = parts.publish;
  hooks.authorize = parts.authorize_agent;
  hooks.authorize_publish = parts.authorize_publish;
  mcp::GatewayOptions options;
  options.allowed_origins = allowed_origins_from_env();
  options.loopback_listener = mcp::is_loopback_host(parts.options.host);
  options.catalog_file = parts.options.data_dir + "/mcp-catalog.json";
  auto gateway = std::make_shared<mcp::McpGateway>(hooks, options);
  auto a2a =
      std::make_shared<mcp::A2aGateway>(mcp::A2aHooks{parts.relay_to_agent, parts.describe_agents,
                                                      parts.authorize_agent, parts.pin_agent_replica},
                                        std::chrono::minutes(10), parts.options.data_dir + "/a2a-cards.json");
  if (!parts.relay_to_agent)
    SLUICE_LOG(mcp, info, "no agents runtime: the MCP gateway serves built-in tools only");

  parts.http.route(
      "/mcp", [gateway](HttpServerRequest& req, RequestContext& ctx) { return gateway->handle(req, ctx); });
  parts.http.route("/a2a/",
                   [a2a](HttpServerRequest& req, RequestContext& ctx) { return a2a->handle(req, ctx); });

  // Triggers whose subscriber is an A2A agent deliver through the CloudEvent → SendMessage adapter;
  // those that name an MCP agent's tool (sluice.dev/tool) deliver each event as a tools/call.
  if (parts.resolve_agent && parts.describe_agents) {
    auto inner = parts.resolve_agent;
    auto tools = std::make_shared<mcp::ToolEventBridge>(parts.pin_agent_replica);
    parts.resolve_agent = [inner, tools, &parts](const SubscriberRef& ref) -> Result<ResolvedDestination> {
      std::string protocol;
      auto agents = parts.describe_agents();
      if (agents.is_array())
        for (const auto& a : agents)
          if (a.is_object() && a.value("name", "") == ref.name) protocol = a.value("protocol", "");
      if (!ref.tool.empty()) {
        if (protocol != "mcp") return inner(ref);  // says why it cannot
        return tool_destination(tools, ref);
      }
      if (protocol != "a2a") return inner(ref);
      const std::string host = parts.options.host == "0.0.0.0" ? "127.0.0.1" : parts.options.host;
      ResolvedDestination destination;
      destination.url =
          "http://" + host + ":" + std::to_string(parts.http.port()) + "/a2a/" + ref.name + "/events";
      return destination;
    };
  }

  asio::io_context& io = parts.io.at(0);
  parts.on_revision_change.push_back(
      [gateway, a2a, &io](const std::string& agent, const std::string& revision, bool ready) {
        gateway->on_revision_change(io.get_executor(), agent, revision, ready);
        a2a->on_revision_change(io.get_executor(), agent, revision, ready);
      });

  // Open GET streams would hold shutdown for its grace period: end them as soon as a signal arrives.
  auto timers = std::make_shared<GatewayTimers>(io);
  std::weak_ptr<GatewayTimers> weak = timers;
  timers->signals.async_wait([gateway](beast::error_code ec, int) {
    if (!ec) gateway->stop();
  });
  schedule_expiry(weak, gateway);
  parts.on_shutdown.push_back([gateway, timers] { gateway->stop(); });
}

}  // namespace sluice
