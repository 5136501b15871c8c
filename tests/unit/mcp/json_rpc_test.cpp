#include "mcp/json_rpc.hpp"

#include <gtest/gtest.h>

namespace sluice::mcp {
namespace {

RpcFailure failure_of(std::string_view body) {
  auto parsed = parse_message(body);
  EXPECT_TRUE(std::holds_alternative<RpcFailure>(parsed)) << body;
  return std::holds_alternative<RpcFailure>(parsed) ? std::get<RpcFailure>(parsed) : RpcFailure{};
}

Message message_of(std::string_view body) {
  auto parsed = parse_message(body);
  EXPECT_TRUE(std::holds_alternative<Message>(parsed)) << body;
  return std::holds_alternative<Message>(parsed) ? std::get<Message>(parsed) : Message{};
}

TEST(JsonRpc, ParsesRequestsNotificationsAndResponses) {
  auto request = message_of(R"({"jsonrpc":"2.0","id":7,"method":"tools/list","params":{"cursor":"x"}})");
  EXPECT_EQ(request.kind, MessageKind::request);
  EXPECT_EQ(request.id, 7);
  EXPECT_EQ(request.method, "tools/list");
  EXPECT_EQ(request.params["cursor"], "x");

  auto string_id = message_of(R"({"jsonrpc":"2.0","id":"abc","method":"ping"})");
  EXPECT_EQ(string_id.id, "abc");
  EXPECT_TRUE(string_id.params.is_null());

  auto note = message_of(R"({"jsonrpc":"2.0","method":"notifications/initialized"})");
  EXPECT_EQ(note.kind, MessageKind::notification);

  auto response = message_of(R"({"jsonrpc":"2.0","id":1,"result":{}})");
  EXPECT_EQ(response.kind, MessageKind::response);

  auto error = message_of(R"({"jsonrpc":"2.0","id":1,"error":{"code":-32601,"message":"no"}})");
  EXPECT_EQ(error.kind, MessageKind::error_response);
  EXPECT_EQ(error.error["code"], -32601);
}

TEST(JsonRpc, ParseErrorForInvalidJson) {
  auto f = failure_of("{\"jsonrpc\":");
  EXPECT_EQ(f.code, rpc_error::parse_error);
  EXPECT_TRUE(f.id.is_null());
}

TEST(JsonRpc, InvalidRequests) {
  EXPECT_EQ(failure_of("[]").code, rpc_error::invalid_request);  // batches were removed in 2025-06-18
  EXPECT_EQ(failure_of("42").code, rpc_error::invalid_request);
  EXPECT_EQ(failure_of(R"({"id":1,"method":"ping"})").code, rpc_error::invalid_request);
  EXPECT_EQ(failure_of(R"({"jsonrpc":"1.0","id":1,"method":"ping"})").code, rpc_error::invalid_request);
  EXPECT_EQ(failure_of(R"({"jsonrpc":"2.0","id":1,"method":""})").code, rpc_error::invalid_request);
  EXPECT_EQ(failure_of(R"({"jsonrpc":"2.0","id":1,"method":5})").code, rpc_error::invalid_request);
  EXPECT_EQ(failure_of(R"({"jsonrpc":"2.0","id":null,"method":"ping"})").code, rpc_error::invalid_request);
  EXPECT_EQ(failure_of(R"({"jsonrpc":"2.0","id":1.5,"method":"ping"})").code, rpc_error::invalid_request);
  EXPECT_EQ(failure_of(R"({"jsonrpc":"2.0","id":{},"method":"ping"})").code, rpc_error::invalid_request);
  EXPECT_EQ(failure_of(R"({"jsonrpc":"2.0","id":1,"method":"ping","params":[1]})").code,
            rpc_error::invalid_request);
  EXPECT_EQ(failure_of(R"({"jsonrpc":"2.0","id":1})").code, rpc_error::invalid_request);
  EXPECT_EQ(failure_of(R"({"jsonrpc":"2.0","id":1,"result":1,"error":{}})").code, rpc_error::invalid_request);
  EXPECT_EQ(failure_of(R"({"jsonrpc":"2.0","id":1,"error":{"code":"x","message":"m"}})").code,
            rpc_error::invalid_request);
}

TEST(JsonRpc, FailureKeepsAReadableId) {
  auto f = failure_of(R"({"jsonrpc":"2.0","id":9,"method":"ping","params":"x"})");
  EXPECT_EQ(f.id, 9);
  EXPECT_EQ(make_rpc_failure(f)["id"], 9);
}

TEST(JsonRpc, Builders) {
  EXPECT_EQ(make_rpc_result(1, {{"a", 1}}).dump(), R"({"id":1,"jsonrpc":"2.0","result":{"a":1}})");
  auto error = make_rpc_error(nullptr, rpc_error::invalid_params, "bad", nlohmann::json{{"x", 1}});
  EXPECT_TRUE(error["id"].is_null());
  EXPECT_EQ(error["error"]["code"], -32602);
  EXPECT_EQ(error["error"]["data"]["x"], 1);
  EXPECT_FALSE(make_rpc_notification("n").contains("params"));
  EXPECT_EQ(make_rpc_request("r", "m", {{"p", true}})["params"]["p"], true);
  EXPECT_NE(id_key(1), id_key("1"));
}

}  // namespace
}  // namespace sluice::mcp
