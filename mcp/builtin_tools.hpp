#pragma once
// The gateway's own tools: `publish_event` (a CloudEvent into a broker, through the ingress path) and
// `list_agents` (the agents with their protocol and revisions).

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/asio.hpp"
#include "core/cloud_event.hpp"
#include "core/result.hpp"

namespace sluice::mcp {

using PublishFn = std::function<void(const std::string& broker, std::vector<CloudEvent>,
                                     std::function<void(Result<std::uint64_t>)>)>;
using DescribeAgentsFn = std::function<nlohmann::json()>;

/// The tool definitions, as tools/list shows them.
std::vector<nlohmann::json> builtin_tool_definitions();
bool is_builtin_tool(const std::string& name);

/// Builds the CloudEvent that publish_event's arguments describe; the error names the argument.
Result<CloudEvent> event_from_arguments(const nlohmann::json& arguments, std::string id);

/// Runs a built-in tool; the value is a CallToolResult (`isError: true` for failures of the tool).
/// An Error (code -32602) means the arguments are not what the tool takes.
asio::awaitable<Result<nlohmann::json>> call_builtin_tool(const std::string& name,
                                                          const nlohmann::json& arguments,
                                                          const PublishFn& publish,
                                                          const DescribeAgentsFn& describe_agents);

/// A CallToolResult with one text content and `isError: true`.
nlohmann::json tool_error_result(std::string message);

}  // namespace sluice::mcp
