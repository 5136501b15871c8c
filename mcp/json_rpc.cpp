#include "mcp/json_rpc.hpp"

namespace sluice::mcp {

namespace {

bool valid_id(const nlohmann::json& id) {
  return id.is_string() || id.is_number_integer() || id.is_number_unsigned();
}

RpcFailure failure(int code, std::string message, nlohmann::json id = nullptr) {
  return RpcFailure{code, std::move(message), std::move(id)};
}

}  // namespace

ParsedMessage parse_message(std::string_view body) {
  auto value = nlohmann::json::parse(body, nullptr, false);
  if (value.is_discarded()) return failure(rpc_error::parse_error, "Parse error: the body is not valid JSON");
  return validate_message(value);
}

ParsedMessage validate_message(const nlohmann::json& value) {
  if (value.is_array())
    return failure(rpc_error::invalid_request,
                   "Invalid Request: batches are not supported; send one message");
  if (!value.is_object())
    return failure(rpc_error::invalid_request, "Invalid Request: a message is a JSON object");
  nlohmann::json id = nullptr;
  if (auto it = value.find("id"); it != value.end() && valid_id(*it)) id = *it;
  auto version = value.find("jsonrpc");
  if (version == value.end() || *version != "2.0")
    return failure(rpc_error::invalid_request, "Invalid Request: \"jsonrpc\" must be \"2.0\"", id);

  Message message;
  auto method = value.find("method");
  if (method != value.end()) {
    if (!method->is_string() || method->get_ref<const std::string&>().empty())
      return failure(rpc_error::invalid_request, "Invalid Request: \"method\" must be a non-empty string",
                     id);
    message.method = method->get<std::string>();
    if (auto params = value.find("params"); params != value.end()) {
      if (!params->is_object())
        return failure(rpc_error::invalid_request, "Invalid Request: \"params\" must be an object", id);
      message.params = *params;
    }
    auto raw_id = value.find("id");
    if (raw_id == value.end()) {
      message.kind = MessageKind::notification;
      return message;
    }
    if (!valid_id(*raw_id))
      return failure(rpc_error::invalid_request, "Invalid Request: \"id\" must be a string or an integer");
    message.kind = MessageKind::request;
    message.id = *raw_id;
    return message;
  }

  // A response or an error response from the peer.
  auto raw_id = value.find("id");
  bool has_result = value.contains("result");
  bool has_error = value.contains("error");
  if (has_result == has_error)
    return failure(rpc_error::invalid_request,
                   "Invalid Request: a message needs \"method\", or exactly one of \"result\" and \"error\"",
                   id);
  if (has_result) {
    if (raw_id == value.end() || !valid_id(*raw_id))
      return failure(rpc_error::invalid_request,
                     "Invalid Request: a response needs a string or integer \"id\"");
    message.kind = MessageKind::response;
    message.id = *raw_id;
    message.result = value["result"];
    return message;
  }
  const auto& error = value["error"];
  if (!error.is_object() || !error.contains("code") || !error["code"].is_number_integer() ||
      !error.contains("message") || !error["message"].is_string())
    return failure(rpc_error::invalid_request,
                   "Invalid Request: \"error\" must be an object with an integer \"code\" and a \"message\"",
                   id);
  message.kind = MessageKind::error_response;
  message.id = raw_id != value.end() ? *raw_id : nlohmann::json(nullptr);
  message.error = error;
  return message;
}

nlohmann::json make_rpc_result(const nlohmann::json& id, nlohmann::json result) {
  return nlohmann::json{{"jsonrpc", "2.0"}, {"id", id}, {"result", std::move(result)}};
}

nlohmann::json make_rpc_error(const nlohmann::json& id, int code, std::string message,
                              std::optional<nlohmann::json> data) {
  nlohmann::json error{{"code", code}, {"message", std::move(message)}};
  if (data) error["data"] = std::move(*data);
  return nlohmann::json{{"jsonrpc", "2.0"}, {"id", id}, {"error", std::move(error)}};
}

nlohmann::json make_rpc_failure(const RpcFailure& f) {
  return make_rpc_error(f.id, f.code, f.message);
}

nlohmann::json make_rpc_notification(std::string method, nlohmann::json params) {
  nlohmann::json n{{"jsonrpc", "2.0"}, {"method", std::move(method)}};
  if (!params.is_null()) n["params"] = std::move(params);
  return n;
}

nlohmann::json make_rpc_request(const nlohmann::json& id, std::string method, nlohmann::json params) {
  nlohmann::json r{{"jsonrpc", "2.0"}, {"id", id}, {"method", std::move(method)}};
  if (!params.is_null()) r["params"] = std::move(params);
  return r;
}

std::string id_key(const nlohmann::json& id) {
  return id.dump();
}

bool is_valid_call_response(const nlohmann::json& response) {
  auto checked = validate_message(response);
  const auto* message = std::get_if<Message>(&checked);
  if (!message) return false;
  if (message->kind == MessageKind::response) return message->result.is_object();
  return message->kind == MessageKind::error_response;
}

}  // namespace sluice::mcp
