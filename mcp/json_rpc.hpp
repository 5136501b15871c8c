#pragma once
// JSON-RPC 2.0 messages as MCP and A2A use them: parsing with validation (one message per body; MCP
// dropped batches in 2025-06-18), and builders for responses, errors and notifications.

#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include <nlohmann/json.hpp>

namespace sluice::mcp {

/// JSON-RPC 2.0 error codes (spec section 5.1) and MCP's own.
namespace rpc_error {
inline constexpr int parse_error = -32700;
inline constexpr int invalid_request = -32600;
inline constexpr int method_not_found = -32601;
inline constexpr int invalid_params = -32602;
inline constexpr int internal_error = -32603;
/// Implementation-defined server errors live in -32000..-32099.
inline constexpr int forbidden = -32003;
inline constexpr int upstream_unavailable = -32004;
/// MCP 2026-07-28: the Mcp-Method / Mcp-Name headers do not match the body.
inline constexpr int header_mismatch = -32020;
/// MCP 2026-07-28: UnsupportedProtocolVersionError, with data {supported, requested}.
inline constexpr int unsupported_protocol_version = -32022;
}  // namespace rpc_error

enum class MessageKind { request, notification, response, error_response };

struct Message {
  MessageKind kind = MessageKind::request;
  nlohmann::json id;      // string or integer; null for notifications
  std::string method;     // requests and notifications
  nlohmann::json params;  // object, or null when absent
  nlohmann::json result;  // responses
  nlohmann::json error;   // error responses: {code, message, data?}

  bool is_request() const { return kind == MessageKind::request; }
  bool is_notification() const { return kind == MessageKind::notification; }
};

/// Why a body is not a valid message: the JSON-RPC error to answer with, and the request's id when it
/// could be read (null otherwise).
struct RpcFailure {
  int code = rpc_error::invalid_request;
  std::string message;
  nlohmann::json id;
};

using ParsedMessage = std::variant<Message, RpcFailure>;

/// Parses and validates one JSON-RPC 2.0 message. Never throws.
ParsedMessage parse_message(std::string_view body);
/// Validates an already parsed JSON value (an SSE event's data, a test's fixture).
ParsedMessage validate_message(const nlohmann::json& value);

/// An agent's answer to tools/call that may be read or passed on: a response whose result is an object
/// (CallToolResult), or an error response with an integer code and a string message.
bool is_valid_call_response(const nlohmann::json& response);

/// {"jsonrpc":"2.0","id":id,"result":result}
nlohmann::json make_rpc_result(const nlohmann::json& id, nlohmann::json result);
/// {"jsonrpc":"2.0","id":id,"error":{code,message[,data]}}; id null when it is unknown.
nlohmann::json make_rpc_error(const nlohmann::json& id, int code, std::string message,
                              std::optional<nlohmann::json> data = std::nullopt);
nlohmann::json make_rpc_failure(const RpcFailure& failure);
/// {"jsonrpc":"2.0","method":method[,"params":params]}
nlohmann::json make_rpc_notification(std::string method, nlohmann::json params = nullptr);
/// {"jsonrpc":"2.0","id":id,"method":method[,"params":params]}
nlohmann::json make_rpc_request(const nlohmann::json& id, std::string method,
                                nlohmann::json params = nullptr);

/// A stable text key for a request id (ids 1 and "1" differ), for maps of requests in flight.
std::string id_key(const nlohmann::json& id);

}  // namespace sluice::mcp
