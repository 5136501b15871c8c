#pragma once
// A2A endpoints of agents with protocol a2a, through the activator:
//
//   GET  /a2a/{agent}/.well-known/agent-card.json   the agent's card, its interface URLs rewritten to
//                                                  this gateway (v0.3's agent.json too)
//   POST /a2a/{agent}                                JSON-RPC (SendMessage, SendStreamingMessage as SSE,
//                                                  GetTask, CancelTask, … and the v0.3 names) relayed to
//                                                  the agent's JSON-RPC endpoint, streamed back as it comes;
//                                                  a task's GetTask, CancelTask, … go to the replica
//                                                  whose answer named the task
//   POST /a2a/{agent}/events                         a CloudEvent (any HTTP content mode) delivered as a
//                                                  SendMessage; the answer comes back as a reply CloudEvent
//                                                  (the subscriber URL of triggers that target the agent)
//
// Cards are cached per agent when a revision becomes ready, and kept across restarts. Fetching a card
// never wakes an agent: one that is at zero and whose card is not cached (it was created at zero and
// has not been ready yet) gets a placeholder card that Sluice builds from the Agent (see
// placeholder_agent_card).

#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include "core/asio.hpp"
#include "core/http_server.hpp"
#include "mcp/builtin_tools.hpp"
#include "mcp/task_homes.hpp"
#include "mcp/upstream_client.hpp"

namespace sluice::mcp {

struct A2aHooks {
  RelayFn relay;
  DescribeAgentsFn describe_agents;
  std::function<Status(const std::string& agent, const std::string& tool, const Principal& who)> authorize;
  /// JSON-RPC requests: held replicas, so that a task's later requests go to the replica that made
  /// it (see TaskHomes). Cards and events go through `relay`.
  PinFn pin;
};

/// The card with every interface URL (v1 supportedInterfaces[].url, v0.3 url and
/// additionalInterfaces[].url) pointing at `base_url`; gRPC and HTTP+JSON interfaces are dropped (only
/// JSON-RPC is relayed), and a v0.3 preferredTransport naming one becomes JSONRPC.
nlohmann::json rewrite_agent_card(nlohmann::json card, const std::string& base_url);
/// The path of the card's JSON-RPC interface on the agent ("/" when the card names none).
std::string jsonrpc_path_of(const nlohmann::json& card);

/// Marks a placeholder card (capabilities.extensions[].uri; A2A §4.4.4, not required).
inline constexpr const char* kPlaceholderCardExtension = "https://sluice.dev/a2a/placeholder-card/v1";
/// The card served for an A2A agent whose own card Sluice has not read yet and that has no
/// replica (ready or starting) to read it from: what Sluice knows of the agent (`agent` as describe_agents
/// lists it: its name, its revisions), one JSON-RPC interface at `base_url`, no optional capability
/// (streaming and push notifications are the agent's to declare), marked with kPlaceholderCardExtension. A
/// v0.3 card (`url`, `preferredTransport`, `protocolVersion` 0.3.0) when `v0_3`.
nlohmann::json placeholder_agent_card(const nlohmann::json& agent, const std::string& base_url, bool v0_3);

class A2aGateway : public std::enable_shared_from_this<A2aGateway> {
 public:
  /// `cards_file`: where the cards read from agents are kept across restarts (none when empty), so that
  /// an agent at zero since Sluice started is described by its own card without being woken.
  explicit A2aGateway(A2aHooks hooks, std::chrono::milliseconds timeout = std::chrono::minutes(10),
                      std::string cards_file = "");

  /// The /a2a/ route.
  asio::awaitable<HttpServerResponse> handle(HttpServerRequest& req, RequestContext& ctx);
  /// Caches the agent's card when one of its revisions becomes ready, and forgets it when a revision
  /// is removed and the agent is gone. Thread-safe.
  void on_revision_change(asio::any_io_executor executor, const std::string& agent,
                          const std::string& revision, bool ready);
  asio::awaitable<Status> refresh_card(std::string agent);

 private:
  /// Reads the agent's card through the activator (which may wait for a replica) and caches it;
  /// `answered` (when given) is set once a replica answered, with a card or without one.
  asio::awaitable<Result<nlohmann::json>> fetch_card(const std::string& agent,
                                                     std::chrono::milliseconds timeout,
                                                     std::shared_ptr<CancelSignal> cancel,
                                                     bool* answered = nullptr);
  /// The path of the agent's JSON-RPC endpoint, from its card (read first when not cached yet).
  asio::awaitable<Result<std::string>> rpc_path(const std::string& agent,
                                                std::shared_ptr<CancelSignal> cancel);
  asio::awaitable<HttpServerResponse> serve_card(HttpServerRequest& req, const std::string& agent,
                                                 const nlohmann::json& described, bool v0_3);
  asio::awaitable<HttpServerResponse> relay_rpc(HttpServerRequest& req, RequestContext& ctx,
                                                const std::string& agent);
  asio::awaitable<HttpServerResponse> deliver_event(HttpServerRequest& req, RequestContext& ctx,
                                                    const std::string& agent);
  /// Writes cards_ to cards_file_.
  void save_cards();
  /// The agent as describe_agents lists it; null when there is no A2A agent of that name.
  nlohmann::json describe_a2a_agent(const std::string& agent) const;

  A2aHooks hooks_;
  std::chrono::milliseconds timeout_;
  std::mutex mu_;
  std::map<std::string, nlohmann::json> cards_;  // as the agents serve them
  std::set<std::string> cardless_;  // answered without a usable card: asked at "/" without reading it
  std::string cards_file_;
  std::mutex cards_file_mu_;  // one writer of cards_file_ at a time (taken before mu_)
  TaskHomes task_homes_;
  std::atomic<std::int64_t> next_id_{1};
};

}  // namespace sluice::mcp
