#include "mcp/tool_events.hpp"

#include "core/http_binding.hpp"
#include "core/log.hpp"
#include "mcp/json_rpc.hpp"

namespace sluice::mcp {
namespace {

using nlohmann::json;

HttpResponse answer(int status, std::string body, HttpHeaders headers = {{"Content-Type", "text/plain"}}) {
  HttpResponse out;
  out.status = status;
  out.headers = std::move(headers);
  out.body = std::move(body);
  return out;
}

/// The text parts of a tool result's content, joined: what a failed tool said.
std::string text_of(const json& result) {
  std::string out;
  auto content = result.find("content");
  if (content != result.end() && content->is_array())
    for (const auto& part : *content)
      if (part.is_object() && part.contains("type") && part["type"] == "text" && part.contains("text") &&
          part["text"].is_string())
        out += (out.empty() ? "" : "\n") + part["text"].get<std::string>();
  return out.empty() ? result.dump() : out;
}

}  // namespace

CloudEvent reply_from_tool_result(const json& result, const CloudEvent& request_event,
                                  const std::string& agent, const std::string& tool) {
  CloudEvent reply;
  reply.id = request_event.id + "-result";
  reply.type = tool_result_reply_type;
  reply.source = "/mcp/" + agent;
  reply.subject = tool;
  reply.datacontenttype = "application/json";
  reply.data = result.dump();
  return reply;
}

ToolEventBridge::ToolEventBridge(PinFn pin) : upstream_(std::move(pin)) {
  store_.find = [this](const std::string& replica) -> std::optional<UpstreamSession> {
    std::lock_guard lock(mu_);
    auto it = sessions_.find(replica);
    if (it == sessions_.end()) return std::nullopt;
    return it->second;
  };
  store_.keep = [this](const std::string& replica, UpstreamSession session) {
    std::lock_guard lock(mu_);
    sessions_[replica] = std::move(session);
  };
  store_.drop = [this](const std::string& replica, const std::string& id) {
    std::lock_guard lock(mu_);
    if (auto it = sessions_.find(replica); it != sessions_.end() && it->second.id == id) sessions_.erase(it);
  };
}

asio::awaitable<Result<HttpResponse>> ToolEventBridge::deliver(const ToolTarget& target,
                                                               HttpRequest request) {
  HttpMessage message{std::move(request.headers), std::move(request.body)};
  auto events = decode_http(message);
  if (!events || events.value().size() != 1)
    co_return answer(400, events ? "expected exactly one event" : events.error().to_string());
  const CloudEvent& event = events.value().front();
  auto arguments = target.arguments.build(event);
  if (!arguments) co_return answer(400, arguments.error().to_string());

  const json params = {{"name", target.tool}, {"arguments", std::move(arguments).value()}};
  // A partition key keeps its events on one revision while the traffic split is unchanged.
  HttpHeaders routing;
  if (auto key = event.extensions.find("partitionkey"); key != event.extensions.end())
    routing.emplace_back("ce-partitionkey", key->second.to_header_string());
  // The trigger's attempt timeout (delivery.timeout) bounds the call.
  auto call = upstream_.call(target.agent, routing, store_, "tools/call", params, nullptr, request.cancel,
                             request.timeout);
  Result<UpstreamReply> reply = co_await std::move(call);
  const std::string what = "agent " + target.agent + " tool " + target.tool;
  if (!reply) co_return answer(502, what + ": " + reply.error().to_string());
  const UpstreamReply& r = reply.value();
  if (r.status / 100 != 2)
    co_return answer(
        502, what + " answered HTTP " + std::to_string(r.status) + (r.body.empty() ? "" : ": " + r.body));
  if (!r.response) co_return answer(502, what + " ended the call without a response");
  if (!is_valid_call_response(*r.response))
    co_return answer(502, what + " answered with an invalid JSON-RPC response: " + r.response->dump());
  if (r.response->contains("error"))
    co_return answer(502, what + " failed: " + (*r.response)["error"]["message"].get<std::string>());
  const json result = (*r.response)["result"];
  if (result.contains("isError") && result["isError"] == true) co_return answer(500, text_of(result));
  auto encoded =
      encode_http(reply_from_tool_result(result, event, target.agent, target.tool), HttpMode::Binary);
  co_return answer(200, std::move(encoded.body), std::move(encoded.headers));
}

}  // namespace sluice::mcp
