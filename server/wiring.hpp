#pragma once
// What each kind's wiring gets from the server: the shared parts of one `sluice serve` process, and the
// hooks one kind offers another (a Trigger's subscriber `ref: {kind: Agent}` resolves through the
// agents' wiring). Each kind is wired in its own file (wire_triggers.cpp, wire_agents.cpp,
// wire_sources.cpp): it registers a KindHandler with the controller, its HTTP routes, and its hooks.

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "broker/broker_registry.hpp"
#include "core/asio.hpp"
#include "core/clock.hpp"
#include "core/http_server.hpp"
#include "core/io_pool.hpp"
#include "server/controller.hpp"
#include "trigger/dispatcher.hpp"

namespace sluice {

struct ServerOptions;

struct ServerParts {
  const ServerOptions& options;
  IoPool& io;
  asio::thread_pool& blocking;  // for work that blocks (fsync, process spawn, file reads)
  Clock& clock;
  BrokerRegistry& brokers;
  Controller& controller;
  HttpServer& http;
  /// Publishes events to a broker through the ingress path (normalisation, durability). Thread-safe.
  std::function<void(const std::string& broker, std::vector<CloudEvent>, std::function<void(Result<std::uint64_t>)>)>
      publish;

  /// Set by the agents' wiring: where a `ref: {kind: Agent, name}` leads (through the activator).
  SubscriberResolver resolve_agent;
  /// Called in reverse order of registration at shutdown, after the controller stopped every kind.
  std::vector<std::function<void()>> on_shutdown;
};

void wire_triggers(ServerParts& parts);
void wire_agents(ServerParts& parts);
void wire_sources(ServerParts& parts);

}  // namespace sluice
