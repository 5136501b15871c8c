#pragma once
// MCP 2026-07-28 `x-mcp-header` annotations (Streamable HTTP transport, "Custom Headers from Tool
// Parameters"): a tool's inputSchema may mark primitive parameters to be mirrored into
// `Mcp-Param-{Name}` request headers. The gateway checks annotations as a client of its agents (a tool
// whose annotations break the rules is left out of the catalog) and checks the headers as a server of
// sessionless tools/call requests (a header that disagrees with the body is a HeaderMismatch).

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/result.hpp"

namespace sluice::mcp {

/// One `x-mcp-header` annotation of an inputSchema.
struct ParamHeader {
  std::string name;               // the annotation's value: the header is `Mcp-Param-{name}`
  std::vector<std::string> path;  // the chain of `properties` keys from the schema root to the parameter
};

/// The annotations of `input_schema`, in schema order. An Error (its message is the reason) when one
/// breaks a constraint: a value that is empty, not an RFC 9110 token or a case-insensitive duplicate; a
/// parameter whose type is not exactly one of string, integer or boolean (null aside); an annotation not
/// statically reachable (under anything but a chain of `properties`: items, oneOf, anyOf, allOf, not,
/// if/then/else, $defs, …).
Result<std::vector<ParamHeader>> param_headers(const nlohmann::json& input_schema);

/// Decodes the `=?base64?{value}?=` form of `Mcp-Name` and `Mcp-Param-*` values; any other value is
/// returned as is. nullopt when the value has the form but its base64 is malformed.
std::optional<std::string> decode_header_value(std::string_view value);

/// Every value a request carries for a header name (case-insensitive), in order.
using HeaderValuesFn = std::function<std::vector<std::string>(const std::string& name)>;

/// Checks the `Mcp-Param-*` headers of a tools/call against its `arguments`: for each annotation, a
/// header must be present exactly when the argument at its path is present and not null, once, with
/// only visible ASCII, space or tab, and (decoded) equal to the argument: a string as is, an integer
/// numerically (`42.0` equals 42; within ±(2^53-1)), a boolean as `true`/`false`. Empty when they match,
/// else why not (for the HeaderMismatch message).
std::string param_header_mismatch(const std::vector<ParamHeader>& headers, const nlohmann::json& arguments,
                                  const HeaderValuesFn& values);

}  // namespace sluice::mcp
