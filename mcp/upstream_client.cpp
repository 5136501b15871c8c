#include "mcp/upstream_client.hpp"

#include <strings.h>

#include "core/log.hpp"
#include "mcp/json_rpc.hpp"
#include "mcp/sse.hpp"

namespace sluice::mcp {

namespace {

const std::string* find_header(const HttpHeaders& headers, std::string_view name) {
  for (const auto& [k, v] : headers)
    if (k.size() == name.size() && strncasecmp(k.data(), name.data(), name.size()) == 0) return &v;
  return nullptr;
}

constexpr std::size_t max_error_body = 4096;
constexpr std::size_t max_json_body = 16 << 20;

// What one POST's response body turns into, fed chunk by chunk.
struct ReplyReader {
  const nlohmann::json* request_id = nullptr;  // null for notifications
  UpstreamMessageFn on_message;
  UpstreamReply reply;
  bool sse = false;
  bool json = false;
  SseParser parser;
  std::string body;

  asio::awaitable<bool> handle(const nlohmann::json& message) {
    bool is_response = !message.contains("method") && message.contains("id");
    if (is_response && request_id && message["id"] == *request_id) {
      reply.response = message;
      co_return false;  // the response ends this exchange
    }
    if (!is_response && on_message) co_await on_message(message);
    co_return true;
  }

  asio::awaitable<bool> chunk(std::string_view bytes) {
    if (sse) {
      auto events = parser.feed(bytes);
      if (parser.failed()) co_return false;
      for (auto& event : events) {
        if (event.data.empty() || (!event.event.empty() && event.event != "message")) continue;
        auto value = nlohmann::json::parse(event.data, nullptr, false);
        if (value.is_discarded() || !value.is_object()) continue;
        bool more = co_await handle(value);
        if (!more) co_return false;
      }
      co_return true;
    }
    std::size_t limit = json ? max_json_body : max_error_body;
    body.append(bytes.substr(0, limit > body.size() ? limit - body.size() : 0));
    co_return body.size() < limit || !json;
  }
};

// Why an answer to initialize is no InitializeResult; empty when it is one.
std::string initialize_failure(const std::optional<nlohmann::json>& response) {
  if (!response) return "no response";
  if (response->contains("error")) return (*response)["error"].dump();
  auto result = response->find("result");
  if (result == response->end() || !result->is_object())
    return "the result is not an object: " + response->dump();
  return {};
}

// The version an agent chose; ours when it names none (or names it with something that is no string).
std::string negotiated_version(const nlohmann::json& result) {
  auto version = result.find("protocolVersion");
  if (version == result.end() || !version->is_string()) return std::string(upstream_protocol_version);
  return version->get<std::string>();
}

}  // namespace

std::int64_t UpstreamClient::next_id() {
  return next_id_++;
}

asio::awaitable<Result<UpstreamReply>> UpstreamClient::post(
    const SendFn& send, const UpstreamSession* session, const nlohmann::json& message,
    UpstreamMessageFn on_message, std::shared_ptr<CancelSignal> cancel, std::chrono::milliseconds timeout) {
  HttpRequest request;
  request.method = "POST";
  request.url = path_;
  request.headers = {{"Content-Type", "application/json"}, {"Accept", "application/json, text/event-stream"}};
  if (session && !session->id.empty()) request.headers.emplace_back("Mcp-Session-Id", session->id);
  if (session && !session->protocol_version.empty())
    request.headers.emplace_back("MCP-Protocol-Version", session->protocol_version);
  request.body = message.dump();
  request.timeout = timeout.count() > 0 ? timeout : timeout_;
  request.cancel = std::move(cancel);

  auto reader = std::make_shared<ReplyReader>();
  if (message.contains("id") && message.contains("method")) reader->request_id = &message["id"];
  reader->on_message = std::move(on_message);
  std::function<asio::awaitable<bool>(int, const HttpHeaders&)> on_headers =
      [reader](int status, const HttpHeaders& headers) -> asio::awaitable<bool> {
    reader->reply.status = status;
    if (auto* sid = find_header(headers, "mcp-session-id")) reader->reply.session_id = *sid;
    const std::string* type = find_header(headers, "content-type");
    std::string_view content_type = type ? std::string_view(*type) : std::string_view{};
    reader->sse = status / 100 == 2 && content_type.rfind("text/event-stream", 0) == 0;
    reader->json = status / 100 == 2 && content_type.rfind("application/json", 0) == 0;
    co_return true;
  };
  std::function<asio::awaitable<bool>(std::string_view)> on_chunk =
      [reader](std::string_view bytes) -> asio::awaitable<bool> {
    bool more = co_await reader->chunk(bytes);
    co_return more;
  };
  auto op = send(std::move(request), on_headers, on_chunk);
  auto result = co_await std::move(op);
  if (!result && !reader->reply.response) co_return result.error();
  if (reader->json) {
    auto value = nlohmann::json::parse(reader->body, nullptr, false);
    if (value.is_object()) {
      auto handled = reader->handle(value);
      co_await std::move(handled);
    }
  } else if (!reader->sse) {
    reader->reply.body = std::move(reader->body);
  }
  co_return std::move(reader->reply);
}

asio::awaitable<Result<UpstreamSession>> UpstreamClient::open_session(const std::string& agent,
                                                                      const ReplicaRef& replica,
                                                                      const SendFn& send,
                                                                      std::shared_ptr<CancelSignal> cancel) {
  auto init = make_rpc_request(next_id(), "initialize",
                               {{"protocolVersion", upstream_protocol_version},
                                {"capabilities", nlohmann::json::object()},
                                {"clientInfo", {{"name", "sluice-gateway"}, {"version", "0.1.0"}}}});
  auto op = post(send, nullptr, init, nullptr, cancel);
  auto reply = co_await std::move(op);
  if (!reply) co_return reply.error();
  auto& r = reply.value();
  if (r.status / 100 != 2)
    co_return sluice::make_error(
        agent, "initialize answered HTTP " + std::to_string(r.status) + ": " + r.body, r.status);
  if (auto why = initialize_failure(r.response); !why.empty())
    co_return sluice::make_error(agent, "initialize failed: " + why, rpc_error::internal_error);
  UpstreamSession session;
  session.id = r.session_id;
  session.address = replica.address;
  session.protocol_version = negotiated_version((*r.response)["result"]);
  auto initialized = make_rpc_notification("notifications/initialized");
  auto op2 = post(send, &session, initialized, nullptr, cancel);
  auto ack = co_await std::move(op2);
  if (!ack) co_return ack.error();
  co_return session;
}

asio::awaitable<Result<nlohmann::json>> UpstreamClient::list_tools(const std::string& agent,
                                                                   const SendFn& send,
                                                                   const UpstreamSession& session) {
  nlohmann::json tools = nlohmann::json::array();
  std::string cursor;
  for (int page = 0; page < 100; ++page) {
    nlohmann::json params = nlohmann::json::object();
    if (!cursor.empty()) params["cursor"] = cursor;
    auto request = make_rpc_request(next_id(), "tools/list", params);
    auto op = post(send, &session, request, nullptr, nullptr);
    auto reply = co_await std::move(op);
    if (!reply) co_return reply.error();
    auto& r = reply.value();
    if (r.status / 100 != 2)
      co_return sluice::make_error(agent, "tools/list answered HTTP " + std::to_string(r.status), r.status);
    if (!r.response || !r.response->contains("result") || !(*r.response)["result"].contains("tools"))
      co_return sluice::make_error(
          agent, "tools/list failed: " + (r.response ? r.response->dump() : std::string("no response")),
          rpc_error::internal_error);
    const auto& result = (*r.response)["result"];
    for (const auto& tool : result["tools"]) tools.push_back(tool);
    cursor = result.contains("nextCursor") && result["nextCursor"].is_string()
                 ? result["nextCursor"].get<std::string>()
                 : std::string();
    if (cursor.empty()) break;
  }
  co_return tools;
}

asio::awaitable<void> UpstreamClient::delete_session(const SendFn& send, const UpstreamSession& session) {
  if (session.id.empty()) co_return;
  HttpRequest request;
  request.method = "DELETE";
  request.url = path_;
  request.headers = {{"Mcp-Session-Id", session.id}};
  if (!session.protocol_version.empty())
    request.headers.emplace_back("MCP-Protocol-Version", session.protocol_version);
  request.timeout = std::chrono::seconds(5);
  std::function<asio::awaitable<bool>(int, const HttpHeaders&)> on_headers =
      [](int, const HttpHeaders&) -> asio::awaitable<bool> { co_return true; };
  std::function<asio::awaitable<bool>(std::string_view)> on_chunk =
      [](std::string_view) -> asio::awaitable<bool> { co_return true; };
  auto op = send(std::move(request), on_headers, on_chunk);
  co_await std::move(op);
}

asio::awaitable<void> UpstreamClient::close_session(std::string agent, UpstreamSession session) {
  if (session.id.empty() || session.address.empty()) co_return;
  ExchangeFn exchange = [&](const ReplicaRef&, SendFn send) -> asio::awaitable<Result<int>> {
    auto deleted = delete_session(send, session);
    co_await std::move(deleted);
    co_return 0;
  };
  auto pinned = pin_(agent, {}, nullptr, session.address, exchange);
  co_await std::move(pinned);
}

asio::awaitable<Result<nlohmann::json>> UpstreamClient::fetch_tools(std::string agent) {
  Result<nlohmann::json> tools = sluice::make_error(agent, "no replica");
  ExchangeFn exchange = [&](const ReplicaRef& replica, SendFn send) -> asio::awaitable<Result<int>> {
    auto open = open_session(agent, replica, send, nullptr);
    auto session = co_await std::move(open);
    if (!session) {
      tools = session.error();
      co_return 0;
    }
    auto list = list_tools(agent, send, session.value());
    tools = co_await std::move(list);
    auto deleted = delete_session(send, session.value());
    co_await std::move(deleted);
    co_return 0;
  };
  auto pinned = pin_(agent, {}, nullptr, "", exchange);
  auto held = co_await std::move(pinned);
  if (!held) co_return held.error();
  co_return tools;
}

asio::awaitable<Result<UpstreamReply>> UpstreamClient::call(
    std::string agent, HttpHeaders routing, const UpstreamSessions& sessions, std::string method,
    nlohmann::json params, UpstreamMessageFn on_message, std::shared_ptr<CancelSignal> cancel,
    std::chrono::milliseconds timeout, UpstreamSession* used) {
  Result<UpstreamReply> reply = sluice::make_error(agent, "not called");
  ExchangeFn exchange = [&](const ReplicaRef& replica, SendFn send) -> asio::awaitable<Result<int>> {
    std::optional<UpstreamSession> session;
    std::int64_t id = 0;
    for (int attempt = 0; attempt < 2; ++attempt) {
      session = sessions.find(replica.key);
      if (!session) {
        auto open = open_session(agent, replica, send, cancel);
        auto opened = co_await std::move(open);
        if (!opened) {
          reply = opened.error();
          co_return 0;
        }
        session = std::move(opened).value();
        sessions.keep(replica.key, *session);
      }
      id = next_id();
      auto request = make_rpc_request(id, method, params);
      auto post_op = post(send, &*session, request, on_message, cancel, timeout);
      reply = co_await std::move(post_op);
      // A replica that does not know the session (it restarted, or expired it) answers 404: open a
      // new one, once.
      if (reply && reply.value().status == 404 && !session->id.empty() && !(cancel && cancel->cancelled())) {
        sessions.drop(replica.key, session->id);
        continue;
      }
      break;
    }
    if (used && session) *used = *session;
    if (cancel && cancel->cancelled() && session && id != 0) {
      // MCP cancellation: tell the replica that runs the request, while this exchange still holds it.
      auto note = make_rpc_notification("notifications/cancelled",
                                        {{"requestId", id}, {"reason", "cancelled by the client"}});
      auto post_op = post(send, &*session, note, nullptr, nullptr);
      auto sent = co_await std::move(post_op);
      SLUICE_LOG(mcp, info, "[agent={} replica={}] {} cancelled; the replica was told: {}", agent,
                 replica.key, method, sent ? "yes" : sent.error().to_string());
    }
    co_return 0;
  };
  auto pinned = pin_(agent, routing, cancel, "", exchange);
  auto held = co_await std::move(pinned);
  if (!held) co_return held.error();
  co_return reply;
}

}  // namespace sluice::mcp
