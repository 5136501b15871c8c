#pragma once
// What each kind's wiring gets from the server: the shared parts of one `sluice serve` process, and the
// hooks one kind offers another (a Trigger's subscriber `ref: {kind: Agent}` resolves through the
// agents' wiring). Each kind is wired in its own file (wire_triggers.cpp, wire_agents.cpp,
// wire_sources.cpp, wire_gateways.cpp): it registers a KindHandler with the controller, its HTTP routes, and
// its hooks.

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "broker/broker_registry.hpp"
#include "broker/ingress.hpp"
#include "core/asio.hpp"
#include "core/clock.hpp"
#include "core/http_client.hpp"
#include "core/secret_ref.hpp"
#include "core/http_server.hpp"
#include "core/io_pool.hpp"
#include "mcp/upstream_client.hpp"
#include "server/control_api.hpp"
#include "server/controller.hpp"
#include "trigger/dispatcher.hpp"

namespace sluice {

struct ServerOptions;

struct ServerParts {
  ServerParts(const ServerOptions& options_in, IoPool& io_in, asio::thread_pool& blocking_in, Clock& clock_in,
              BrokerRegistry& brokers_in, Controller& controller_in, HttpServer& http_in)
      : options(options_in),
        io(io_in),
        blocking(blocking_in),
        clock(clock_in),
        brokers(brokers_in),
        controller(controller_in),
        http(http_in) {}

  const ServerOptions& options;
  IoPool& io;
  asio::thread_pool& blocking;  // for work that blocks (fsync, process spawn, file reads)
  Clock& clock;
  BrokerRegistry& brokers;
  Controller& controller;
  HttpServer& http;
  /// For requests to URLs outside the process (trigger subscribers, dead letter sinks, sinks of
  /// sources): the outbound TLS settings (--outbound-ca, --outbound-cert, --outbound-key).
  HttpClientOptions outbound;
  /// Publishes events to a broker through the ingress path (normalisation, durability). Thread-safe.
  std::function<void(const std::string& broker, std::vector<CloudEvent>,
                     std::function<void(Result<std::uint64_t>)>)>
      publish;

  /// Set by the agents' wiring: where a `ref: {kind: Agent, name}` leads (through the activator).
  SubscriberResolver resolve_agent;
  /// Set by the agents' wiring: streams one request to an agent through the activator (revision by
  /// traffic split, or `agent@tag`; buffering and scale from zero included), for the MCP and A2A
  /// gateways. Same contract as HttpClient::relay(); the request's target is the path on the replica.
  std::function<asio::awaitable<Result<int>>(
      const std::string& agent, HttpRequest request,
      std::function<asio::awaitable<bool>(int status, const HttpHeaders&)> on_headers,
      std::function<asio::awaitable<bool>(std::string_view chunk)> on_chunk)>
      relay_to_agent;
  /// Set by the agents' wiring: holds one replica of an agent for several requests (an MCP session
  /// lives on the replica that opened it); see AgentProxy::with_replica.
  mcp::PinFn pin_agent_replica;
  /// Set by the agents' wiring: every agent with its protocol and revisions, as
  /// [{name, protocol, revisions: [{name, ready, replicas, readyReplicas, traffic}], latestReadyRevision}].
  std::function<nlohmann::json()> describe_agents;
  /// Called by the agents' wiring whenever a revision of an agent becomes ready or goes away (the MCP
  /// gateway refreshes its tool catalog then). Several listeners may register.
  std::vector<std::function<void(const std::string& agent, const std::string& revision, bool ready)>>
      on_revision_change;
  /// Set by the security wiring: whether a caller may call an agent (and one of its MCP tools, when
  /// `tool` is not empty); an Error (code 403) says why not. Empty: everyone may. The agents' and the
  /// gateways' wiring call it with RequestContext::principal.
  std::function<Status(const std::string& agent, const std::string& tool, const Principal& who)>
      authorize_agent;
  /// Set by the security wiring: whether a caller may publish these events to a broker (the MCP
  /// gateway's publish_event asks; the publish endpoint asks through Ingress). Empty: everyone may.
  std::function<Status(const std::string& broker, const std::vector<CloudEvent>& events,
                       const Principal& who)>
      authorize_publish;
  /// Set by the security wiring: whether a caller may create, replace or delete a resource through the
  /// control API (the admin group, or an EventPolicy with the verb change). Empty: everyone may.
  ControlApi::ChangeAuthorizer authorize_change;
  /// Set by the secrets' wiring: the value of `key` in the Secret `name` (secretKeyRef), read when used.
  SecretResolver resolve_secret;
  /// Called in reverse order of registration at shutdown, after the controller stopped every kind.
  std::vector<std::function<void()>> on_shutdown;
};

void wire_triggers(ServerParts& parts);
void wire_agents(ServerParts& parts);
void wire_sources(ServerParts& parts);
void wire_gateways(ServerParts& parts);  // /mcp and /a2a
void wire_secrets(ServerParts& parts);
void wire_dashboard(ServerParts& parts);  // /ui and /apis/v1/overview
/// Authentication and EventPolicy authorization; an error (bad credentials file, or a non-loopback
/// listener without authentication) stops the server.
Status wire_security(ServerParts& parts, Ingress& ingress);
/// Whether a --listen host is a loopback address ("localhost", 127.0.0.0/8, ::1, [::1]); a name such as
/// "127.example.com" is not.
bool is_loopback(const std::string& host);

}  // namespace sluice
