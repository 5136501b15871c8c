#pragma once
// Triggers that call MCP tools: a Trigger with `sluice.dev/tool` delivers each event to its MCP Agent
// as a tools/call (the arguments built by core/event_arguments.hpp), through the activator, and turns
// the result into a reply CloudEvent, so that tool results re-enter the broker.
//
// To the trigger's dispatcher this is an ordinary subscriber (ResolvedDestination::send): 200 with the
// reply event when the tool succeeded; 400 when the event cannot be mapped to arguments; 500 with the
// tool's text when the result says isError; 502 when the agent failed the call (JSON-RPC error, HTTP
// error) or could not be reached. The dispatcher retries and dead-letters as for any subscriber.

#include <chrono>
#include <map>
#include <mutex>
#include <string>

#include <nlohmann/json.hpp>

#include "core/event_arguments.hpp"
#include "core/http_client.hpp"
#include "mcp/upstream_client.hpp"

namespace sluice::mcp {

/// The reply's type; its source is /mcp/<agent>, its subject the tool.
inline constexpr const char* tool_result_reply_type = "dev.sluice.mcp.tool.result";

/// The reply CloudEvent for a tools/call result (the result object, unchanged, as JSON data).
CloudEvent reply_from_tool_result(const nlohmann::json& result, const CloudEvent& request_event,
                                  const std::string& agent, const std::string& tool);

struct ToolTarget {
  std::string agent;
  std::string tool;
  EventArguments arguments;
};

class ToolEventBridge {
 public:
  explicit ToolEventBridge(PinFn pin);

  /// Delivers the event that `request` carries (binary or structured mode, as the dispatcher encodes
  /// it). One upstream session per replica is kept (keyed by agent, revision and replica) and opened
  /// again when the replica does not know it.
  asio::awaitable<Result<HttpResponse>> deliver(const ToolTarget& target, HttpRequest request);

 private:
  UpstreamClient upstream_;
  UpstreamSessions store_;
  std::mutex mu_;
  std::map<std::string, UpstreamSession> sessions_;  // by ReplicaRef::key
};

}  // namespace sluice::mcp
