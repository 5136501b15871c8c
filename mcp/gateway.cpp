#include "mcp/gateway.hpp"

#include <strings.h>

#include "core/fs.hpp"
#include "core/log.hpp"
#include "mcp/http_reply.hpp"
#include "mcp/param_headers.hpp"
#include "mcp/sse.hpp"

namespace sluice::mcp {

namespace {

using json = nlohmann::json;

constexpr const char* session_header = "Mcp-Session-Id";
constexpr const char* version_header = "MCP-Protocol-Version";
constexpr const char* stateless_meta_version = "io.modelcontextprotocol/protocolVersion";

// A member that must be a string: empty when it is absent or of another type (never throws).
std::string string_member(const json& object, const char* key) {
  if (!object.is_object()) return {};
  auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : std::string();
}

bool has_header(const HttpServerRequest& req, std::string_view name) {
  return req.find(beast::string_view(name.data(), name.size())) != req.end();
}

bool contains_icase(std::string_view haystack, std::string_view needle) {
  if (needle.size() > haystack.size()) return false;
  for (std::size_t i = 0; i + needle.size() <= haystack.size(); ++i)
    if (strncasecmp(haystack.data() + i, needle.data(), needle.size()) == 0) return true;
  return false;
}

bool accepts(const HttpServerRequest& req, std::string_view type) {
  auto accept = header_value(req, "Accept");
  if (accept.empty()) return false;
  return contains_icase(accept, type) || contains_icase(accept, "*/*") ||
         (type.rfind("application/", 0) == 0 && contains_icase(accept, "application/*"));
}

HttpServerResponse rpc_error_reply(const HttpServerRequest& req, http::status status, const json& id,
                                   int code, std::string message) {
  return json_reply(req, status, make_rpc_error(id, code, std::move(message)));
}

/// A stream that cannot be resumed: 409 while it is still open elsewhere, else 400 (an id never sent or
/// no longer kept).
HttpServerResponse resume_error_reply(const HttpServerRequest& req, const Error& error) {
  const bool conflict = error.code == 409;
  return rpc_error_reply(req, conflict ? http::status::conflict : http::status::bad_request, nullptr,
                         rpc_error::invalid_request,
                         (conflict ? "Conflict: " : "Bad Request: ") + error.message);
}

HttpServerResponse sse_head(const HttpServerRequest& req) {
  HttpServerResponse head{http::status::ok, req.version()};
  head.set(http::field::server, "sluice");
  head.set(http::field::content_type, "text/event-stream");
  head.set(http::field::cache_control, "no-cache");
  head.keep_alive(req.keep_alive());
  return head;
}

std::string host_of_origin(std::string_view origin) {
  auto scheme = origin.find("://");
  if (scheme == std::string_view::npos) return {};
  auto rest = origin.substr(scheme + 3);
  if (!rest.empty() && rest.front() == '[') {
    auto close = rest.find(']');
    return close == std::string_view::npos ? std::string() : std::string(rest.substr(0, close + 1));
  }
  return std::string(rest.substr(0, rest.find_first_of(":/")));
}

// The name in a Host header, without its port ("[::1]" keeps its brackets).
std::string host_name(std::string_view host) {
  if (!host.empty() && host.front() == '[') {
    auto close = host.find(']');
    return close == std::string_view::npos ? std::string() : std::string(host.substr(0, close + 1));
  }
  return std::string(host.substr(0, host.find(':')));
}

json server_info(const GatewayOptions& options) {
  return {{"name", "sluice"}, {"title", "Sluice MCP gateway"}, {"version", options.server_version}};
}

// co_spawn's detached completion needs a default-constructible value.
// The status an agent's HTTP path answers a failed exchange with (see "Calling an agent"): the agent's
// own HTTP error (to initialize), the activator's 503 or 504, 504 for a timeout, 502 otherwise.
int failure_status(const Error& error) {
  if (error.code >= 400 && error.code < 600) return error.code;
  return is_timeout_error(error) ? 504 : 502;
}

// `logging`: the agents' notifications/message are relayed on their calls' streams, filtered by the
// session's logging/setLevel (the sessionless revision has no logging/setLevel).
json capabilities(bool stateless) {
  json out = {{"tools", {{"listChanged", true}}}};
  if (!stateless) out["logging"] = json::object();
  return out;
}

}  // namespace

bool is_loopback_host(std::string_view host) {
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (host == "localhost" || host == "::1") return true;
  if (host.rfind("127.", 0) != 0) return false;
  return host.find_first_not_of("0123456789.") == std::string_view::npos;
}

const std::vector<std::string>& session_protocol_versions() {
  static const std::vector<std::string> versions{"2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"};
  return versions;
}

McpGateway::McpGateway(GatewayHooks hooks, GatewayOptions options)
    : hooks_(std::move(hooks)),
      options_(std::move(options)),
      upstream_(hooks_.pin, options_.upstream_path, options_.call_timeout) {
  catalog_.set_builtins(builtin_tool_definitions());
  if (options_.catalog_file.empty()) return;
  auto saved = read_file(options_.catalog_file);
  if (!saved) return;  // none yet
  auto parsed = json::parse(saved.value(), nullptr, false);
  if (!parsed.is_object()) {
    SLUICE_LOG(mcp, warn, "ignoring the saved tool catalog {}: not a JSON object", options_.catalog_file);
    return;
  }
  catalog_.load(parsed);
  SLUICE_LOG(mcp, info, "tool catalog of {} agents loaded from {}", catalog_.agents().size(),
             options_.catalog_file);
}

void McpGateway::save_catalog() {
  if (options_.catalog_file.empty()) return;
  std::lock_guard lock(catalog_file_mu_);
  write_catalog_locked(catalog_);
}

void McpGateway::write_catalog_locked(const ToolCatalog& catalog) {
  auto written = write_file_atomic(options_.catalog_file, catalog.to_json().dump());
  if (!written) SLUICE_LOG(mcp, warn, "cannot save the tool catalog: {}", written.error().to_string());
}

bool McpGateway::origin_allowed(const HttpServerRequest& req) const {
  if (!has_header(req, "Origin")) return true;
  auto origin = header_value(req, "Origin");
  for (const auto& allowed : options_.allowed_origins)
    if (allowed == "*" || allowed == origin) return true;
  if (is_loopback_host(host_of_origin(origin))) return true;
  auto own = header_value(req, "Host");
  return !own.empty() && (origin == "http://" + own || origin == "https://" + own);
}

// DNS rebinding (2025-11-25 transport, "Security Warning"): a page of another site whose name was made to
// resolve to 127.0.0.1 reaches a loopback listener with its own name in Host (and Origin). Only a client
// of this machine that named it as loopback, or as an allowed origin's host, gets through.
bool McpGateway::host_allowed(const HttpServerRequest& req) const {
  if (!options_.loopback_listener || !has_header(req, "Host")) return true;
  auto name = host_name(header_value(req, "Host"));
  if (is_loopback_host(name)) return true;
  for (const auto& allowed : options_.allowed_origins)
    if (allowed == "*" || strcasecmp(host_of_origin(allowed).c_str(), name.c_str()) == 0) return true;
  return false;
}

bool McpGateway::agent_known(const std::string& agent) const {
  if (catalog_.has_agent(agent)) return true;
  if (!hooks_.describe_agents) return false;
  auto agents = hooks_.describe_agents();
  if (!agents.is_array()) return false;
  for (const auto& a : agents)
    if (a.is_object() && a.value("name", "") == agent && a.value("protocol", "") == "mcp") return true;
  return false;
}

asio::awaitable<HttpServerResponse> McpGateway::handle(HttpServerRequest& req, RequestContext& ctx) {
  auto path = split_target(std::string_view(req.target().data(), req.target().size())).first;
  if (path != "/mcp" && path != "/mcp/")
    co_return make_error_response(req, http::status::not_found, "no route for " + std::string(path));
  if (!host_allowed(req)) {
    SLUICE_LOG(mcp, warn, "rejected a request for host {}", header_value(req, "Host"));
    co_return rpc_error_reply(req, http::status::forbidden, nullptr, rpc_error::invalid_request,
                              "Forbidden: host " + header_value(req, "Host") +
                                  " is not this loopback server (DNS rebinding); use localhost or 127.0.0.1");
  }
  if (!origin_allowed(req)) {
    SLUICE_LOG(mcp, warn, "rejected a request from origin {}", header_value(req, "Origin"));
    co_return rpc_error_reply(req, http::status::forbidden, nullptr, rpc_error::invalid_request,
                              "Forbidden: origin " + header_value(req, "Origin") + " is not allowed");
  }
  if (req.method() == http::verb::post) {
    auto op = handle_post(req, ctx);
    co_return co_await std::move(op);
  }
  if (req.method() == http::verb::get) {
    auto op = handle_get(req, ctx);
    co_return co_await std::move(op);
  }
  if (req.method() == http::verb::delete_) {
    auto op = handle_delete(req, ctx);
    co_return co_await std::move(op);
  }
  auto res = rpc_error_reply(req, http::status::method_not_allowed, nullptr, rpc_error::invalid_request,
                             "Method Not Allowed: use POST, GET or DELETE");
  res.set(http::field::allow, "GET, POST, DELETE");
  co_return res;
}

asio::awaitable<HttpServerResponse> McpGateway::handle_post(HttpServerRequest& req, RequestContext& ctx) {
  auto content_type = header_value(req, "Content-Type");
  if (!contains_icase(content_type, "application/json"))
    co_return rpc_error_reply(req, http::status::unsupported_media_type, nullptr, rpc_error::invalid_request,
                              "Unsupported Media Type: the body must be application/json");
  if (!accepts(req, "application/json") && !accepts(req, "text/event-stream"))
    co_return rpc_error_reply(req, http::status::not_acceptable, nullptr, rpc_error::invalid_request,
                              "Not Acceptable: Accept must list application/json and text/event-stream");
  if (auto first = req.body().find_first_not_of(" \t\r\n");
      first != std::string::npos && req.body()[first] == '[' && has_header(req, session_header)) {
    auto session = sessions_.find(header_value(req, session_header));
    auto batch = json::parse(req.body(), nullptr, false);
    if (session && session->protocol_version() <= "2025-03-26" && batch.is_array()) {
      auto op = handle_batch(req, ctx, std::move(session), std::move(batch));
      co_return co_await std::move(op);
    }
  }
  auto parsed = parse_message(req.body());
  if (auto* failure = std::get_if<RpcFailure>(&parsed))
    co_return json_reply(req, http::status::bad_request, make_rpc_failure(*failure));
  Message msg = std::get<Message>(std::move(parsed));

  const bool has_session = has_header(req, session_header);
  const auto header_version = header_value(req, version_header);
  bool meta_stateless = msg.params.is_object() && msg.params.contains("_meta") &&
                        msg.params["_meta"].is_object() &&
                        msg.params["_meta"].contains(stateless_meta_version);
  if (!has_session && msg.method != "initialize" &&
      (header_version == stateless_protocol_version || meta_stateless)) {
    auto op = handle_stateless(req, ctx, std::move(msg));
    co_return co_await std::move(op);
  }
  if (msg.is_request() && msg.method == "initialize") co_return initialize(req, msg);

  if (!has_session)
    co_return rpc_error_reply(req, http::status::bad_request, msg.id, rpc_error::invalid_request,
                              "Bad Request: Mcp-Session-Id header is required (send initialize first)");
  auto session_id = header_value(req, session_header);
  if (!SessionStore::valid_id(session_id))
    co_return rpc_error_reply(req, http::status::bad_request, msg.id, rpc_error::invalid_request,
                              "Bad Request: Mcp-Session-Id must be visible ASCII");
  auto session = sessions_.find(session_id);
  if (!session)
    co_return rpc_error_reply(req, http::status::not_found, msg.id, -32001,
                              "Session not found: start a new one with initialize");
  if (!header_version.empty()) {
    const auto& known = session_protocol_versions();
    if (std::find(known.begin(), known.end(), header_version) == known.end())
      co_return rpc_error_reply(req, http::status::bad_request, msg.id, rpc_error::invalid_request,
                                "Bad Request: unsupported MCP-Protocol-Version " + header_version);
  }
  session->touch(std::chrono::steady_clock::now());

  if (msg.is_notification()) {
    handle_notification(*session, msg);
    co_return make_response(req, http::status::accepted);
  }
  if (!msg.is_request()) co_return make_response(req, http::status::accepted);  // responses: we ask nothing
  auto op = dispatch(req, ctx, session, msg, false);
  co_return co_await std::move(op);
}

// MCP 2025-03-26 and 2024-11-05 servers must accept JSON-RPC batches (2025-06-18 removed them). The
// requests run one after another as if the client accepted JSON only (no progress is streamed), and
// their responses come back in one array; a batch of notifications and responses only gets 202.
asio::awaitable<HttpServerResponse> McpGateway::handle_batch(HttpServerRequest& req, RequestContext& ctx,
                                                             std::shared_ptr<Session> session, json batch) {
  if (batch.empty())
    co_return rpc_error_reply(req, http::status::bad_request, nullptr, rpc_error::invalid_request,
                              "Invalid Request: a batch holds at least one message");
  if (auto version = header_value(req, version_header); !version.empty()) {
    const auto& known = session_protocol_versions();
    if (std::find(known.begin(), known.end(), version) == known.end())
      co_return rpc_error_reply(req, http::status::bad_request, nullptr, rpc_error::invalid_request,
                                "Bad Request: unsupported MCP-Protocol-Version " + version);
  }
  session->touch(std::chrono::steady_clock::now());
  HttpServerRequest single = req;
  single.set(http::field::accept, "application/json");
  json responses = json::array();
  for (const auto& element : batch) {
    auto parsed = validate_message(element);
    if (auto* failure = std::get_if<RpcFailure>(&parsed)) {
      responses.push_back(make_rpc_failure(*failure));
      continue;
    }
    const Message& msg = std::get<Message>(parsed);
    if (msg.is_notification()) {
      handle_notification(*session, msg);
      continue;
    }
    if (!msg.is_request()) continue;
    if (msg.method == "initialize") {
      responses.push_back(make_rpc_error(msg.id, rpc_error::invalid_request,
                                         "Invalid Request: initialize must not be part of a batch"));
      continue;
    }
    auto op = dispatch(single, ctx, session, msg, false);
    auto res = co_await std::move(op);
    if (res.body().empty()) continue;  // a cancelled call is not answered
    auto answer = json::parse(res.body(), nullptr, false);
    if (!answer.is_discarded()) responses.push_back(std::move(answer));
  }
  if (responses.empty()) co_return make_response(req, http::status::accepted);
  co_return json_reply(req, http::status::ok, responses);
}

HttpServerResponse McpGateway::initialize(HttpServerRequest& req, const Message& msg) {
  if (!msg.params.is_object() || !msg.params.contains("protocolVersion") ||
      !msg.params["protocolVersion"].is_string())
    return rpc_error_reply(req, http::status::ok, msg.id, rpc_error::invalid_params,
                           "Invalid params: initialize needs a string \"protocolVersion\"");
  std::string requested = msg.params["protocolVersion"].get<std::string>();
  const auto& known = session_protocol_versions();
  std::string version =
      std::find(known.begin(), known.end(), requested) != known.end() ? requested : known.front();
  json client_info = msg.params.is_object() ? msg.params.value("clientInfo", json::object()) : json::object();
  auto session = sessions_.create(version, client_info, std::chrono::steady_clock::now());
  if (!session)
    return rpc_error_reply(req, http::status::service_unavailable, msg.id, rpc_error::internal_error,
                           "too many sessions: try again later");
  SLUICE_LOG(mcp, info, "[session={}] initialize: version {} client {}", session->id(), version,
             client_info.dump());
  json result = {{"protocolVersion", version},
                 {"capabilities", capabilities(false)},
                 {"serverInfo", server_info(options_)},
                 {"instructions",
                  "Tools are named <agent>.<tool>: they run on Sluice's MCP agents (started on demand). "
                  "publish_event publishes a CloudEvent to a broker; list_agents lists the agents."}};
  auto res = json_reply(req, http::status::ok, make_rpc_result(msg.id, std::move(result)));
  res.set(session_header, session->id());
  return res;
}

void McpGateway::handle_notification(Session& session, const Message& msg) {
  if (msg.method == "notifications/initialized") {
    session.mark_initialized();
  } else if (msg.method == "notifications/cancelled") {
    if (msg.params.is_object() && msg.params.contains("requestId")) {
      bool found = session.cancel_call(msg.params["requestId"]);
      SLUICE_LOG(mcp, debug, "[session={}] cancelled request {} ({})", session.id(),
                 msg.params["requestId"].dump(), found ? "in flight" : "not in flight");
    }
  }
}

json McpGateway::list_tools(const Message& msg, bool stateless, int& error_code, std::string& error_message) {
  std::string cursor;
  if (msg.params.is_object() && msg.params.contains("cursor")) {
    if (!msg.params["cursor"].is_string()) {
      error_code = rpc_error::invalid_params;
      error_message = "Invalid params: cursor must be a string";
      return nullptr;
    }
    cursor = msg.params["cursor"].get<std::string>();
  }
  auto page = catalog_.page(cursor, options_.page_size);
  if (!page) {
    error_code = rpc_error::invalid_params;
    error_message = "Invalid params: " + page.error().to_string();
    return nullptr;
  }
  json result = {{"tools", std::move(page.value().tools)}};
  if (!page.value().next_cursor.empty()) result["nextCursor"] = page.value().next_cursor;
  if (stateless) {
    result["ttlMs"] = 60000;
    result["cacheScope"] = "public";
  }
  return result;
}

asio::awaitable<HttpServerResponse> McpGateway::dispatch(HttpServerRequest& req, RequestContext& ctx,
                                                         std::shared_ptr<Session> session, const Message& msg,
                                                         bool stateless) {
  auto reply = [&](json result) {
    if (stateless && result.is_object()) result["resultType"] = "complete";
    return json_reply(req, http::status::ok, make_rpc_result(msg.id, std::move(result)));
  };
  if (msg.method == "ping" && !stateless) co_return reply(json::object());
  if (msg.method == "server/discover") {
    json versions = session_protocol_versions();
    versions.insert(versions.begin(), stateless_protocol_version);
    co_return reply({{"supportedVersions", versions},
                     {"capabilities", capabilities(true)},
                     {"_meta", {{"io.modelcontextprotocol/serverInfo", server_info(options_)}}},
                     {"ttlMs", 60000},
                     {"cacheScope", "public"}});
  }
  if (msg.method == "logging/setLevel" && !stateless) {
    auto rank = log_level_rank(string_member(msg.params, "level"));
    if (rank < 0)
      co_return rpc_error_reply(req, http::status::ok, msg.id, rpc_error::invalid_params,
                                "Invalid params: level must be one of debug, info, notice, warning, error, "
                                "critical, alert, emergency");
    session->set_log_level(rank);
    co_return reply(json::object());
  }
  if (msg.method == "tools/list") {
    int code = 0;
    std::string message;
    auto result = list_tools(msg, stateless, code, message);
    if (code != 0) co_return rpc_error_reply(req, http::status::ok, msg.id, code, message);
    co_return reply(std::move(result));
  }
  if (msg.method == "tools/call") {
    auto op = call_tool(req, ctx, std::move(session), msg, stateless);
    co_return co_await std::move(op);
  }
  co_return rpc_error_reply(req, stateless ? http::status::not_found : http::status::ok, msg.id,
                            rpc_error::method_not_found, "Method not found: " + msg.method);
}

asio::awaitable<HttpServerResponse> McpGateway::call_tool(HttpServerRequest& req, RequestContext& ctx,
                                                          std::shared_ptr<Session> session,
                                                          const Message& msg, bool stateless) {
  auto fail = [&](int code, std::string message) {
    return rpc_error_reply(req, http::status::ok, msg.id, code, std::move(message));
  };
  const json& params = msg.params;
  if (!params.is_object() || !params.contains("name") || !params["name"].is_string())
    co_return fail(rpc_error::invalid_params, "Invalid params: tools/call needs a string \"name\"");
  std::string name = params["name"].get<std::string>();
  json arguments = params.value("arguments", json::object());
  if (!arguments.is_object() && !arguments.is_null())
    co_return fail(rpc_error::invalid_params, "Invalid params: tools/call \"arguments\" must be an object");
  auto stamp = [stateless](json result) {
    if (stateless && result.is_object()) result["resultType"] = "complete";
    return result;
  };

  if (is_builtin_tool(name)) {
    // publish_event obeys the same EventPolicies as the publish endpoint.
    PublishFn publish = hooks_.publish;
    if (hooks_.publish && hooks_.authorize_publish) {
      publish = [this, who = ctx.principal](const std::string& broker, std::vector<CloudEvent> events,
                                            std::function<void(Result<std::uint64_t>)> done) {
        if (auto allowed = hooks_.authorize_publish(broker, events, who); !allowed) {
          done(allowed.error());
          return;
        }
        hooks_.publish(broker, std::move(events), std::move(done));
      };
    }
    auto op = call_builtin_tool(name, arguments, publish, hooks_.describe_agents);
    auto result = co_await std::move(op);
    if (!result) co_return fail(rpc_error::invalid_params, "Invalid params: " + result.error().to_string());
    co_return json_reply(req, http::status::ok, make_rpc_result(msg.id, stamp(std::move(result).value())));
  }
  auto split = ToolCatalog::split_name(name);
  if (!split || !agent_known(split->first) ||
      (catalog_.has_agent(split->first) && !catalog_.has_tool(split->first, split->second)))
    co_return fail(rpc_error::invalid_params, "Unknown tool: " + name);
  const std::string agent = split->first;
  const std::string tool = split->second;
  if (!hooks_.pin) co_return fail(rpc_error::internal_error, "agents are not available in this server");
  if (hooks_.authorize) {
    auto allowed = hooks_.authorize(agent, tool, ctx.principal);
    if (!allowed) co_return fail(rpc_error::forbidden, "Forbidden: " + allowed.error().to_string());
  }

  auto cancel = std::make_shared<CancelSignal>();
  if (!session->begin_call(msg.id, cancel))
    co_return fail(rpc_error::invalid_request,
                   "Invalid Request: a request with this id is already in flight");
  // Closing the response stream cancels a 2026-07-28 call; on the session path a disconnect is not a
  // cancellation (2025-11-25 transport): the call runs to its end, and notifications/cancelled cancels.
  if (stateless) ctx.on_cancel([cancel] { cancel->cancel(); });
  const bool want_sse = accepts(req, "text/event-stream");
  bool streaming = false;
  bool client_gone = false;
  // On a session, the SSE response is resumable (2025-11-25 "Resumability and Redelivery"): its events
  // carry ids and are kept until the response reaches the client. The sessionless revision has no
  // resumption.
  std::shared_ptr<ResponseStream> resumable;
  auto self = shared_from_this();
  auto executor = co_await asio::this_coro::executor;

  UpstreamMessageFn on_message = [&](const json& m) -> asio::awaitable<void> {
    std::string method = string_member(m, "method");
    if (method == "notifications/tools/list_changed") {
      auto refresh = self->refresh_agent(agent, catalog_.revision_of(agent).value_or(""));
      asio::co_spawn(executor, discard(std::move(refresh)), asio::detached);
      co_return;
    }
    if (!want_sse || client_gone || (method != "notifications/progress" && method != "notifications/message"))
      co_return;
    if (method == "notifications/message" && session->log_level() > 0 && m.contains("params") &&
        log_level_rank(string_member(m["params"], "level")) < session->log_level())
      co_return;
    if (!streaming) {
      streaming = true;
      auto head = sse_head(req);
      if (!session->id().empty()) head.set(session_header, session->id());
      auto start = ctx.start_stream(std::move(head));
      if (!co_await std::move(start)) client_gone = true;
      if (!stateless) {
        resumable = session->open_response_stream();
        if (!client_gone) ctx.on_cancel([stream = resumable] { stream->detach(); });
        // The priming event (an id, empty data) lets the client resume even before the first message;
        // clients of older revisions may not accept empty data.
        if (!client_gone && session->protocol_version() >= "2025-11-25") {
          auto priming = resumable->priming_event();
          auto write = ctx.write_chunk(priming);
          if (!co_await std::move(write)) client_gone = true;
        }
        if (client_gone) resumable->detach();
      }
    }
    auto event = resumable ? resumable->record(m.dump()) : format_sse(m.dump());
    if (client_gone || event.empty()) co_return;
    auto write = ctx.write_chunk(event);
    if (!co_await std::move(write)) {
      client_gone = true;
      if (resumable) resumable->detach();
    }
  };

  json forwarded = params;
  forwarded["name"] = tool;
  // One upstream session per client session and replica, kept in the session (a stateless request's
  // own Session lives for this call only: its upstream sessions are closed after it).
  const std::string prefix = agent + " ";
  UpstreamSessions store;
  store.find = [&](const std::string& replica) { return session->upstream(prefix + replica); };
  store.keep = [&](const std::string& replica, UpstreamSession s) {
    session->set_upstream(prefix + replica, std::move(s));
  };
  store.drop = [&](const std::string& replica, const std::string& id) {
    session->drop_upstream(prefix + replica, id);
  };
  // A client session keeps to one revision while the traffic split is unchanged.
  HttpHeaders routing;
  if (!session->id().empty()) routing.emplace_back("x-sluice-session-key", session->id());
  auto call = upstream_.call(agent, std::move(routing), store, "tools/call", std::move(forwarded), on_message,
                             cancel);
  Result<UpstreamReply> reply = co_await std::move(call);
  session->end_call(msg.id);
  if (stateless) {
    for (const auto& [key, upstream] : session->upstreams()) {
      auto close = upstream_.close_session(agent, upstream);
      co_await std::move(close);
    }
  }

  if (cancel->cancelled()) {
    // The client cancelled (notifications/cancelled or a closed connection): the agent was told, and
    // no response is sent (MCP cancellation: the receiver does not answer a cancelled request).
    if (resumable) {
      resumable->finish();
      session->drop_response_stream(resumable->id());
    }
    // A client that takes JSON only (a batch's request) gets no body.
    if (!want_sse) co_return make_response(req, http::status::accepted);
    if (!streaming && !ctx.cancelled()) {
      auto head = sse_head(req);
      auto start = ctx.start_stream(std::move(head));
      co_await std::move(start);
    }
    co_return HttpServerResponse{};
  }

  json response;
  if (!reply) {
    SLUICE_LOG(mcp, warn, "[agent={}] tools/call {} failed: {}", agent, tool, reply.error().to_string());
    json data = {{"agent", agent}, {"status", failure_status(reply.error())}};
    response =
        make_rpc_error(msg.id, rpc_error::upstream_unavailable,
                       "agent " + agent + " is unavailable: " + reply.error().to_string(), std::move(data));
  } else if (reply.value().status / 100 != 2) {
    const auto& r = reply.value();
    response = make_rpc_error(msg.id, rpc_error::upstream_unavailable,
                              "agent " + agent + " answered HTTP " + std::to_string(r.status) +
                                  (r.body.empty() ? std::string() : ": " + r.body),
                              json{{"agent", agent}, {"status", r.status}});
  } else if (!reply.value().response) {
    response =
        make_rpc_error(msg.id, rpc_error::internal_error,
                       "agent " + agent + " ended the call without a response", json{{"agent", agent}});
  } else if (!is_valid_call_response(*reply.value().response)) {
    SLUICE_LOG(mcp, warn, "[agent={}] tools/call {} answered with an invalid response: {}", agent, tool,
               reply.value().response->dump());
    response = make_rpc_error(msg.id, rpc_error::internal_error,
                              "agent " + agent + " answered tools/call with an invalid JSON-RPC response",
                              json{{"agent", agent}});
  } else {
    response = std::move(*reply.value().response);
    response["id"] = msg.id;
    if (response.contains("result")) response["result"] = stamp(std::move(response["result"]));
  }
  if (streaming) {
    auto event = resumable ? resumable->record(response.dump()) : format_sse(response.dump());
    bool delivered = false;
    if (!client_gone && !event.empty()) {
      auto write = ctx.write_chunk(event);
      delivered = co_await std::move(write);
    }
    if (resumable) {
      resumable->finish();
      // Kept for a resume until the response reaches the client, on this connection or a GET.
      if (delivered)
        session->drop_response_stream(resumable->id());
      else if (!client_gone && !event.empty())
        resumable->detach();
    }
    co_return HttpServerResponse{};
  }
  co_return json_reply(req, http::status::ok, response);
}

asio::awaitable<HttpServerResponse> McpGateway::handle_stateless(HttpServerRequest& req, RequestContext& ctx,
                                                                 Message msg) {
  auto mismatch = [&](std::string why) {
    return rpc_error_reply(req, http::status::bad_request, msg.id, rpc_error::header_mismatch,
                           "Header mismatch: " + why);
  };
  std::string body_version;
  if (msg.params.is_object() && msg.params.contains("_meta") && msg.params["_meta"].is_object())
    body_version = string_member(msg.params["_meta"], stateless_meta_version);
  auto header_version = header_value(req, version_header);
  if (header_version.empty()) co_return mismatch("the MCP-Protocol-Version header is required");
  if (body_version != header_version)
    co_return mismatch("MCP-Protocol-Version header value '" + header_version +
                       "' does not match body value '" + body_version + "'");
  if (header_version != stateless_protocol_version) {
    json versions = session_protocol_versions();
    versions.insert(versions.begin(), stateless_protocol_version);
    co_return json_reply(req, http::status::bad_request,
                         make_rpc_error(msg.id, rpc_error::unsupported_protocol_version,
                                        "Unsupported protocol version: " + header_version,
                                        json{{"supported", versions}, {"requested", header_version}}));
  }
  if (msg.is_notification() || !msg.is_request()) co_return make_response(req, http::status::accepted);
  if (!has_header(req, "Mcp-Method")) co_return mismatch("the Mcp-Method header is required");
  if (auto m = header_value(req, "Mcp-Method"); m != msg.method)
    co_return mismatch("Mcp-Method header value '" + m + "' does not match body value '" + msg.method + "'");
  if (msg.method == "tools/call") {
    std::string body_name = string_member(msg.params, "name");
    if (!has_header(req, "Mcp-Name")) co_return mismatch("the Mcp-Name header is required for tools/call");
    auto name = decode_header_value(header_value(req, "Mcp-Name"));
    if (!name) co_return mismatch("Mcp-Name header value is not valid base64 inside =?base64?…?=");
    if (*name != body_name)
      co_return mismatch("Mcp-Name header value '" + *name + "' does not match body value '" + body_name +
                         "'");
    // Mcp-Param-{Name} headers of the tool's x-mcp-header parameters (the catalog holds only tools whose
    // annotations are valid); a tool the catalog does not list expects none.
    if (auto schema = catalog_.input_schema(body_name)) {
      auto annotated = param_headers(*schema);
      json arguments = msg.params.is_object() ? msg.params.value("arguments", json::object()) : json();
      HeaderValuesFn values = [&req](const std::string& name) {
        std::vector<std::string> out;
        for (auto [it, end] = req.equal_range(beast::string_view(name.data(), name.size())); it != end; ++it)
          out.emplace_back(it->value());
        return out;
      };
      if (annotated)
        if (auto why = param_header_mismatch(annotated.value(), arguments, values); !why.empty())
          co_return mismatch(std::move(why));
    }
  }
  json client_info = msg.params["_meta"].value("io.modelcontextprotocol/clientInfo", json::object());
  auto session = std::make_shared<Session>(std::string(), stateless_protocol_version, client_info,
                                           std::chrono::steady_clock::now());
  auto op = dispatch(req, ctx, session, msg, true);
  co_return co_await std::move(op);
}

asio::awaitable<HttpServerResponse> McpGateway::handle_get(HttpServerRequest& req, RequestContext& ctx) {
  if (!accepts(req, "text/event-stream"))
    co_return rpc_error_reply(req, http::status::not_acceptable, nullptr, rpc_error::invalid_request,
                              "Not Acceptable: the GET stream is text/event-stream");
  if (!has_header(req, session_header)) {
    auto res =
        rpc_error_reply(req, http::status::method_not_allowed, nullptr, rpc_error::invalid_request,
                        "Method Not Allowed: GET needs an Mcp-Session-Id (there is no sessionless stream)");
    res.set(http::field::allow, "POST");
    co_return res;
  }
  auto session = sessions_.find(header_value(req, session_header));
  if (!session)
    co_return rpc_error_reply(req, http::status::not_found, nullptr, -32001,
                              "Session not found: start a new one with initialize");
  std::shared_ptr<Mailbox> mailbox;
  if (has_header(req, "Last-Event-ID")) {
    auto last = header_value(req, "Last-Event-ID");
    auto event_id = ResponseStream::parse_event_id(last);
    if (!event_id || event_id->first != Session::get_stream_id) {
      auto op = resume_stream(req, ctx, std::move(session));
      co_return co_await std::move(op);
    }
    auto resumed = session->resume_stream(event_id->second);
    if (!resumed) co_return resume_error_reply(req, resumed.error());
    mailbox = std::move(resumed).value();
  } else {
    mailbox = session->open_stream();
    if (!mailbox)
      co_return rpc_error_reply(req, http::status::conflict, nullptr, rpc_error::invalid_request,
                                "Conflict: this session already has a GET stream open");
  }
  session->touch(std::chrono::steady_clock::now());
  auto head = sse_head(req);
  head.set(session_header, session->id());
  auto start = ctx.start_stream(std::move(head));
  bool open = co_await std::move(start);
  ctx.on_cancel([mailbox] { mailbox->wake(); });
  if (open) {
    std::string retry = "retry: 1000\n\n";
    auto write = ctx.write_chunk(retry);
    open = co_await std::move(write);
  }
  const auto deadline = std::chrono::steady_clock::now() + options_.stream_lifetime;
  while (open && !ctx.cancelled() && !stopping_ && std::chrono::steady_clock::now() < deadline) {
    auto wait = mailbox->wait(options_.stream_keepalive);
    auto messages = co_await std::move(wait);
    if (!messages) break;
    if (ctx.cancelled()) break;
    if (messages->empty()) {
      std::string keepalive = ": keepalive\n\n";
      auto write = ctx.write_chunk(keepalive);
      open = co_await std::move(write);
      continue;
    }
    for (const auto& event : *messages) {
      auto write = ctx.write_chunk(event);
      open = co_await std::move(write);
      if (!open) break;
    }
  }
  session->close_stream();
  co_return HttpServerResponse{};
}

asio::awaitable<HttpServerResponse> McpGateway::resume_stream(HttpServerRequest& req, RequestContext& ctx,
                                                              std::shared_ptr<Session> session) {
  auto last = header_value(req, "Last-Event-ID");
  auto event_id = ResponseStream::parse_event_id(last);
  auto stream = event_id ? session->response_stream(event_id->first) : nullptr;
  if (!stream)
    co_return rpc_error_reply(req, http::status::bad_request, nullptr, rpc_error::invalid_request,
                              "Bad Request: Last-Event-ID '" + last +
                                  "' names no response stream of this session that can be resumed");
  auto resumed = stream->resume(event_id->second);
  if (!resumed) co_return resume_error_reply(req, resumed.error());
  session->touch(std::chrono::steady_clock::now());
  auto follow = resumed.value().follow;
  auto head = sse_head(req);
  head.set(session_header, session->id());
  auto start = ctx.start_stream(std::move(head));
  bool open = co_await std::move(start);
  ctx.on_cancel([follow] { follow->wake(); });
  for (const auto& event : resumed.value().replay) {
    if (!open) break;
    auto write = ctx.write_chunk(event);
    open = co_await std::move(write);
  }
  bool ended = false;
  while (open && !ctx.cancelled() && !stopping_) {
    auto wait = follow->wait(options_.stream_keepalive);
    auto events = co_await std::move(wait);
    if (!events) {
      ended = true;
      break;
    }
    if (ctx.cancelled()) break;
    if (events->empty()) {
      std::string keepalive = ": keepalive\n\n";
      auto write = ctx.write_chunk(keepalive);
      open = co_await std::move(write);
      continue;
    }
    for (const auto& event : *events) {
      auto write = ctx.write_chunk(event);
      open = co_await std::move(write);
      if (!open) break;
    }
  }
  // The response reached the client: nothing is left to resume. Otherwise another GET may resume.
  if (ended && open)
    session->drop_response_stream(stream->id());
  else
    stream->detach_follower(follow);
  co_return HttpServerResponse{};
}

asio::awaitable<HttpServerResponse> McpGateway::handle_delete(HttpServerRequest& req, RequestContext&) {
  if (!has_header(req, session_header))
    co_return rpc_error_reply(req, http::status::bad_request, nullptr, rpc_error::invalid_request,
                              "Bad Request: DELETE needs an Mcp-Session-Id header");
  auto session = sessions_.remove(header_value(req, session_header));
  if (!session) co_return rpc_error_reply(req, http::status::not_found, nullptr, -32001, "Session not found");
  SLUICE_LOG(mcp, info, "[session={}] ended by the client", session->id());
  for (const auto& [key, upstream] : session->upstreams()) {
    auto close = upstream_.close_session(key.substr(0, key.find(' ')), upstream);
    co_await std::move(close);
  }
  co_return make_response(req, http::status::ok);
}

void McpGateway::notify_tools_changed() {
  auto note = make_rpc_notification("notifications/tools/list_changed");
  for (auto& session : sessions_.all())
    if (session->initialized()) session->notify(note);
}

void McpGateway::on_revision_change(asio::any_io_executor executor, const std::string& agent,
                                    const std::string& revision, bool ready) {
  if (stopping_) return;
  if (ready) {
    auto refresh = shared_from_this()->refresh_agent(agent, revision);
    asio::co_spawn(executor, discard(std::move(refresh)), asio::detached);
    return;
  }
  // A revision went away: the agent's tools stay listed while the agent exists (at zero replicas it is
  // still callable); they go when the agent is deleted.
  if (!hooks_.describe_agents) return;
  auto agents = hooks_.describe_agents();
  bool exists = false;
  if (agents.is_array())
    for (const auto& a : agents)
      if (a.is_object() && a.value("name", "") == agent && a.value("protocol", "") == "mcp") exists = true;
  if (!exists && catalog_.remove_agent(agent)) {
    save_catalog();
    SLUICE_LOG(mcp, info, "[agent={}] tools removed from the catalog", agent);
    notify_tools_changed();
  }
}

bool McpGateway::set_agent_tools(const std::string& agent, const std::string& revision,
                                 const nlohmann::json& tools) {
  if (options_.catalog_file.empty()) return catalog_.set_agent(agent, revision, tools);
  std::lock_guard lock(catalog_file_mu_);
  ToolCatalog staged;
  staged.load(catalog_.to_json());
  if (staged.set_agent(agent, revision, tools)) write_catalog_locked(staged);
  return catalog_.set_agent(agent, revision, tools);
}

asio::awaitable<Status> McpGateway::refresh_agent(std::string agent, std::string revision) {
  if (!hooks_.pin) co_return sluice::make_error(agent, "no relay to agents");
  if (hooks_.describe_agents) {
    auto agents = hooks_.describe_agents();
    bool mcp_agent = false;
    if (agents.is_array())
      for (const auto& a : agents)
        if (a.is_object() && a.value("name", "") == agent && a.value("protocol", "") == "mcp")
          mcp_agent = true;
    if (!mcp_agent) co_return ok();
  }
  auto fetch = upstream_.fetch_tools(agent);
  auto tools = co_await std::move(fetch);
  if (!tools) {
    SLUICE_LOG(mcp, warn, "[agent={} rev={}] cannot list tools: {}", agent, revision,
               tools.error().to_string());
    co_return tools.error();
  }
  bool changed = set_agent_tools(agent, revision, tools.value());
  SLUICE_LOG(mcp, info, "[agent={} rev={}] {} tools cached{}", agent, revision, tools.value().size(),
             changed ? " (changed)" : "");
  if (changed) notify_tools_changed();
  co_return ok();
}

void McpGateway::stop() {
  stopping_ = true;
  for (auto& session : sessions_.all()) sessions_.remove(session->id());
}

std::size_t McpGateway::expire_sessions() {
  return sessions_.expire(options_.session_idle, std::chrono::steady_clock::now());
}

}  // namespace sluice::mcp
