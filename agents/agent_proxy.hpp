#pragma once
// The data path to agents: pick the revision (AgentRuntime::route: tag, sticky key or split), take a
// slot on a replica from the activator (waiting while the revision scales up), then relay the request
// to the replica with the I/O context's own HttpClient, releasing the slot when the exchange ends.
//
// Used by `/agents/{name}[@{tag}]/{path}` (handle()), by triggers with `ref: {kind: Agent}` (send())
// and by the MCP/A2A gateways (relay(), and with_replica() where a conversation must stay on one
// replica: an MCP session lives on the replica that opened it).
//
// Sticky key: the first of the headers `ce-partitionkey`, `x-sluice-session-key`, `mcp-session-id`
// keeps a key on one revision while the split is unchanged.
//
// Errors (Error.code): 404 unknown agent or tag, 503 no routable revision or the activator's buffer is
// full, 504 no replica before the revision's timeoutSeconds, 499 the caller cancelled; transport
// failures towards the replica keep HttpClient's code 0 (the HTTP route answers 502, or 504 on a
// timeout).
//
// A replica that refuses the connection (its process died and the runtime has not noticed yet) does
// not fail the request: as Knative's activator does, the exchange runs again on another replica of the
// same revision, or on the one the runtime restarts, within the same deadline (at most 3 attempts),
// and the refusing replica is passed over meanwhile (ReplicaLease::release_unreachable). A request
// that was sent and then cut off is not sent again: the agent may have acted on it (502, saying so);
// the replica is passed over briefly, as it may be dying (ReplicaLease::release_cut_off).
//
// Threading: call from coroutines on the IoPool's contexts (each has its HttpClient).

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agents/agent_runtime.hpp"
#include "core/asio.hpp"
#include "core/http_client.hpp"
#include "core/http_server.hpp"
#include "core/io_pool.hpp"
#include "core/result.hpp"

namespace sluice::agents {

class AgentProxy {
 public:
  AgentProxy(AgentRuntime& runtime, IoPool& io, HttpClientOptions client_options = {});
  ~AgentProxy();

  using HeadersHandler = std::function<asio::awaitable<bool>(int status, const HttpHeaders&)>;
  using ChunkHandler = std::function<asio::awaitable<bool>(std::string_view chunk)>;

  /// Streams one request to `agent` ("name" or "name@tag"); request.url is the path (and query) on
  /// the replica. Same contract as HttpClient::relay(). The revision's timeoutSeconds bounds the
  /// whole exchange, waiting for a replica included; a positive `limit` bounds it too (the shorter
  /// wins). request.timeout is not read.
  asio::awaitable<Result<int>> relay(std::string agent, HttpRequest request, HeadersHandler on_headers,
                                     ChunkHandler on_chunk,
                                     std::chrono::milliseconds limit = std::chrono::milliseconds(0));

  /// The replica an exchange holds.
  struct ReplicaTarget {
    std::string revision;
    std::string replica;
    std::string address;  // host:port
  };
  /// Sends one request to the held replica (request.url: the path on it), as relay() does.
  using ReplicaSend = std::function<asio::awaitable<Result<int>>(HttpRequest, HeadersHandler, ChunkHandler)>;
  using ReplicaExchange = std::function<asio::awaitable<Result<int>>(const ReplicaTarget&, ReplicaSend)>;

  /// Takes one slot on a replica of `agent` as relay() does (`routing` gives the sticky key,
  /// `cancel` ends the wait) and runs `exchange` with it: every request it sends goes to that replica,
  /// within the revision's deadline, and the slot is held until it returns. When no request of the
  /// exchange reached the replica and one could not connect to it, `exchange` runs again with another
  /// replica (see above), so it must be safe to run again until it has sent something. With `address`
  /// set, the activator is skipped and the requests go straight to that replica (closing what was
  /// opened on it), without retries; the target then names only the address.
  /// A positive `limit` shortens the revision's deadline (see relay()).
  asio::awaitable<Result<int>> with_replica(std::string agent, HttpHeaders routing,
                                            std::shared_ptr<CancelSignal> cancel, std::string address,
                                            ReplicaExchange exchange,
                                            std::chrono::milliseconds limit = std::chrono::milliseconds(0));

  /// One whole exchange (for trigger deliveries); request.url is the path on the replica. As for a
  /// subscriber reached over HTTP, request.timeout bounds the attempt, waiting for a replica included
  /// (the revision's timeoutSeconds too: the shorter wins), and what the activator refuses is an
  /// answer with its HTTP status and message (404, 503, 504; 502 or 504 for a replica's transport
  /// failure), so that the trigger retries it, and dead-letters it with `knativeerrorcode`, exactly as
  /// it would the same answer from `/agents/{name}`. Only a cancellation by the caller stays an error.
  asio::awaitable<Result<HttpResponse>> send(std::string agent, HttpRequest request);

  /// The `/agents/` route: `/agents/{name}[@{tag}]/{path}` to `{path}` on a replica; streams SSE and
  /// chunked responses, buffers the others. The client's disconnect cancels the upstream request.
  /// (Who may call which agent is decided before, by the server's guard.)
  asio::awaitable<HttpServerResponse> handle(HttpServerRequest& req, RequestContext& ctx);

  /// The sticky key of a request's headers, if any.
  static std::optional<std::string> sticky_key(const HttpHeaders& headers);

 private:
  HttpClient* client_for(const asio::any_io_executor& executor) const;

  AgentRuntime& runtime_;
  std::map<const asio::io_context*, std::unique_ptr<HttpClient>> clients_;
};

/// HTTP status for an error of relay()/send().
int http_status_of(const Error& error);

/// True for an HttpClient error that means the request never reached the server: the connection
/// could not be established (refused, connect timeout, unreachable).
bool never_reached_replica(const Error& error);
/// True for an HttpClient error of a request that was sent and then cut off by the server (connection
/// reset, or closed before the end of the response): not sent again, the agent may have acted on it.
bool cut_off_by_replica(const Error& error);

}  // namespace sluice::agents
