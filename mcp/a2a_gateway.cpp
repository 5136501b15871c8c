#include "mcp/a2a_gateway.hpp"

#include <strings.h>

#include <optional>

#include "core/fs.hpp"
#include "core/http_binding.hpp"
#include "core/log.hpp"
#include "mcp/a2a_events.hpp"
#include "mcp/http_reply.hpp"
#include "mcp/json_rpc.hpp"

namespace sluice::mcp {

namespace {

using json = nlohmann::json;

/// A2A §5.4: the requested protocol version is not supported.
constexpr int version_not_supported = -32009;
constexpr std::size_t max_card_bytes = 1 << 20;
/// A card request that is only about the card (not one that a message waits on).
constexpr std::chrono::milliseconds card_timeout = std::chrono::seconds(30);

// The interface URL's path ("http://host:1/a/b?x" → "/a/b?x").
std::string path_of_url(const std::string& url) {
  auto scheme = url.find("://");
  if (scheme == std::string::npos) return url.empty() || url.front() != '/' ? "/" : url;
  auto slash = url.find('/', scheme + 3);
  return slash == std::string::npos ? "/" : url.substr(slash);
}

// A member that must be a string: empty when it is absent or of another type (cards come from agents).
std::string string_of(const json& object, const char* field) {
  if (!object.is_object()) return {};
  auto it = object.find(field);
  return it != object.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// The gateway relays the JSON-RPC binding only: gRPC and HTTP+JSON (REST) interfaces of a card are
// dropped, or a client that prefers them would call routes /a2a/{agent} does not serve.
bool proxied_binding(const std::string& binding) {
  return strcasecmp(binding.c_str(), "GRPC") != 0 && strcasecmp(binding.c_str(), "HTTP+JSON") != 0;
}

bool supported_version(const std::string& v) {
  return v.empty() || v == "0.3" || v.rfind("0.3.", 0) == 0 || v == "1" || v == "1.0" ||
         v.rfind("1.0.", 0) == 0;
}

// Relays one request and keeps the whole body (cards, SendMessage answers to events).
struct Collected {
  int status = 0;
  std::string content_type;
  std::string body;
  bool too_large = false;
};

asio::awaitable<Result<Collected>> collect(const RelayFn& relay, const std::string& agent,
                                           HttpRequest request, std::size_t limit) {
  auto out = std::make_shared<Collected>();
  std::function<asio::awaitable<bool>(int, const HttpHeaders&)> on_headers =
      [out](int status, const HttpHeaders& headers) -> asio::awaitable<bool> {
    out->status = status;
    for (const auto& [k, v] : headers)
      if (strcasecmp(k.c_str(), "content-type") == 0) out->content_type = v;
    co_return true;
  };
  std::function<asio::awaitable<bool>(std::string_view)> on_chunk =
      [out, limit](std::string_view c) -> asio::awaitable<bool> {
    if (out->body.size() + c.size() > limit) {
      out->too_large = true;
      co_return false;
    }
    out->body.append(c);
    co_return true;
  };
  auto op = relay(agent, std::move(request), on_headers, on_chunk);
  auto result = co_await std::move(op);
  if (!result && out->status == 0) co_return result.error();
  if (out->too_large)
    co_return make_error(agent, "response exceeds " + std::to_string(limit) + " bytes", 502);
  co_return std::move(*out);
}

// Whether a revision that takes traffic has a replica, ready or starting: a card fetched then waits at
// most for that start, and starts nothing.
bool has_replica(const json& described) {
  if (!described.is_object() || !described.contains("revisions") || !described["revisions"].is_array())
    return false;
  for (const auto& r : described["revisions"]) {
    if (!r.is_object()) continue;
    const auto traffic = r.find("traffic");
    const auto replicas = r.find("replicas");
    if (traffic != r.end() && traffic->is_number() && traffic->get<double>() > 0 && replicas != r.end() &&
        replicas->is_number_integer() && replicas->get<int>() > 0)
      return true;
  }
  return false;
}

// The JSON-RPC error of a request that reached no replica (504 when that was a timeout).
HttpServerResponse unavailable(const HttpServerRequest& req, const json& id, const std::string& agent,
                               const Error& error) {
  SLUICE_LOG(mcp, warn, "[agent={}] A2A request failed: {}", agent, error.to_string());
  return json_reply(req, is_timeout_error(error) ? http::status::gateway_timeout : http::status::bad_gateway,
                    make_rpc_error(id, rpc_error::internal_error,
                                   "agent " + agent + " is unavailable: " + error.to_string()));
}

}  // namespace

json rewrite_agent_card(json card, const std::string& base_url) {
  if (!card.is_object()) return card;
  if (card.contains("supportedInterfaces") && card["supportedInterfaces"].is_array()) {
    json kept = json::array();
    for (auto iface : card["supportedInterfaces"]) {
      if (!iface.is_object()) continue;
      if (!proxied_binding(string_of(iface, "protocolBinding"))) continue;
      iface["url"] = base_url;
      kept.push_back(std::move(iface));
    }
    card["supportedInterfaces"] = std::move(kept);
  }
  if (card.contains("url")) card["url"] = base_url;
  // v0.3: `url` is the preferred transport's; at the gateway that is JSON-RPC.
  if (card.contains("preferredTransport") && !proxied_binding(string_of(card, "preferredTransport")))
    card["preferredTransport"] = "JSONRPC";
  if (card.contains("additionalInterfaces") && card["additionalInterfaces"].is_array()) {
    json kept = json::array();
    for (auto iface : card["additionalInterfaces"]) {
      if (!iface.is_object() || !proxied_binding(string_of(iface, "transport"))) continue;
      iface["url"] = base_url;
      kept.push_back(std::move(iface));
    }
    card["additionalInterfaces"] = std::move(kept);
  }
  return card;
}

std::string jsonrpc_path_of(const json& card) {
  if (!card.is_object()) return "/";
  if (card.contains("supportedInterfaces") && card["supportedInterfaces"].is_array())
    for (const auto& iface : card["supportedInterfaces"])
      if (iface.is_object() && strcasecmp(string_of(iface, "protocolBinding").c_str(), "JSONRPC") == 0)
        return path_of_url(string_of(iface, "url"));
  if (card.contains("url") && card["url"].is_string()) return path_of_url(card["url"].get<std::string>());
  return "/";
}

json placeholder_agent_card(const json& agent, const std::string& base_url, bool v0_3) {
  const std::string name = agent.is_object() ? agent.value("name", "") : std::string();
  // The version is the revision a request would reach: the latest ready one, else the newest.
  std::string version = agent.is_object() ? string_of(agent, "latestReadyRevision") : std::string();
  if (version.empty() && agent.is_object() && agent.contains("revisions") && agent["revisions"].is_array() &&
      !agent["revisions"].empty())
    version = string_of(agent["revisions"].back(), "name");
  json card = {
      {"name", name},
      {"description", "A2A agent " + name +
                          " served by Sluice. It has no replica and Sluice has not read its own card yet, "
                          "so this card is Sluice's: the agent's card replaces it once a replica has been "
                          "ready."},
      {"version", version.empty() ? std::string("0") : version},
      {"capabilities",
       {{"extensions", json::array({{{"uri", kPlaceholderCardExtension},
                                     {"description",
                                      "a placeholder that Sluice serves until the agent's own card is "
                                      "read; fetch the card again later"},
                                     {"required", false}}})}}},
      {"defaultInputModes", json::array({"text/plain"})},
      {"defaultOutputModes", json::array({"text/plain"})},
      {"skills", json::array()}};
  if (v0_3) {
    card["protocolVersion"] = "0.3.0";
    card["url"] = base_url;
    card["preferredTransport"] = "JSONRPC";
  } else {
    card["supportedInterfaces"] =
        json::array({{{"url", base_url}, {"protocolBinding", "JSONRPC"}, {"protocolVersion", "1.0"}}});
  }
  return card;
}

A2aGateway::A2aGateway(A2aHooks hooks, std::chrono::milliseconds timeout, std::string cards_file)
    : hooks_(std::move(hooks)), timeout_(timeout), cards_file_(std::move(cards_file)) {
  if (cards_file_.empty()) return;
  auto saved = read_file(cards_file_);
  if (!saved) return;  // none yet
  auto parsed = json::parse(saved.value(), nullptr, false);
  if (!parsed.is_object()) {
    SLUICE_LOG(mcp, warn, "ignoring the saved A2A cards {}: not a JSON object", cards_file_);
    return;
  }
  for (auto& [agent, card] : parsed.items())
    if (card.is_object()) cards_[agent] = std::move(card);
  SLUICE_LOG(mcp, info, "A2A cards of {} agents loaded from {}", cards_.size(), cards_file_);
}

void A2aGateway::save_cards() {
  if (cards_file_.empty()) return;
  std::lock_guard file_lock(cards_file_mu_);
  json all = json::object();
  {
    std::lock_guard lock(mu_);
    for (const auto& [agent, card] : cards_) all[agent] = card;
  }
  auto written = write_file_atomic(cards_file_, all.dump());
  if (!written) SLUICE_LOG(mcp, warn, "cannot save the A2A cards: {}", written.error().to_string());
}

json A2aGateway::describe_a2a_agent(const std::string& agent) const {
  if (!hooks_.describe_agents) return nullptr;
  auto agents = hooks_.describe_agents();
  if (!agents.is_array()) return nullptr;
  for (const auto& a : agents)
    if (a.is_object() && a.value("name", "") == agent && a.value("protocol", "") == "a2a") return a;
  return nullptr;
}

asio::awaitable<HttpServerResponse> A2aGateway::handle(HttpServerRequest& req, RequestContext& ctx) {
  auto path = std::string(split_target(std::string_view(req.target().data(), req.target().size())).first);
  // /a2a/{agent}[/rest]
  std::string rest = path.substr(5);
  auto slash = rest.find('/');
  auto raw_agent = rest.substr(0, slash);
  std::string tail = slash == std::string::npos ? std::string() : rest.substr(slash);
  auto agent = url_decode(raw_agent);
  if (!agent || agent->empty())
    co_return make_error_response(req, http::status::not_found,
                                  "no agent in " + path + " (use /a2a/{agent})");
  const json described = describe_a2a_agent(*agent);
  if (!hooks_.relay || !hooks_.pin || described.is_null())
    co_return json_reply(
        req, http::status::not_found,
        make_rpc_error(nullptr, rpc_error::invalid_request,
                       "no A2A agent named " + *agent + " (an Agent with sluice.dev/protocol: a2a)"));
  if (hooks_.authorize) {
    auto allowed = hooks_.authorize(*agent, "", ctx.principal);
    if (!allowed)
      co_return json_reply(
          req, http::status::forbidden,
          make_rpc_error(nullptr, rpc_error::forbidden, "Forbidden: " + allowed.error().to_string()));
  }
  if (req.method() == http::verb::get &&
      (tail == "/.well-known/agent-card.json" || tail == "/.well-known/agent.json")) {
    auto op = serve_card(req, *agent, described, tail == "/.well-known/agent.json");
    co_return co_await std::move(op);
  }
  if (req.method() == http::verb::post && (tail.empty() || tail == "/")) {
    auto op = relay_rpc(req, ctx, *agent);
    co_return co_await std::move(op);
  }
  if (req.method() == http::verb::post && tail == "/events") {
    auto op = deliver_event(req, ctx, *agent);
    co_return co_await std::move(op);
  }
  co_return make_error_response(req, http::status::not_found,
                                "no route for " + path +
                                    " (A2A: POST /a2a/{agent}, GET /a2a/{agent}/.well-known/agent-card.json, "
                                    "POST /a2a/{agent}/events)");
}

asio::awaitable<Result<json>> A2aGateway::fetch_card(const std::string& agent,
                                                     std::chrono::milliseconds timeout,
                                                     std::shared_ptr<CancelSignal> cancel, bool* answered) {
  for (const char* path : {"/.well-known/agent-card.json", "/.well-known/agent.json"}) {
    HttpRequest request;
    request.method = "GET";
    request.url = path;
    request.headers = {{"Accept", "application/json"}};
    request.timeout = timeout;
    request.cancel = cancel;
    auto op = collect(hooks_.relay, agent, std::move(request), max_card_bytes);
    auto got = co_await std::move(op);
    if (!got) co_return got.error();
    if (answered) *answered = true;
    if (got.value().status == 404) continue;
    if (got.value().status != 200)
      co_return make_error(agent, "the agent card answered HTTP " + std::to_string(got.value().status), 502);
    auto card = json::parse(got.value().body, nullptr, false);
    if (!card.is_object()) co_return make_error(agent, "the agent card is not a JSON object", 502);
    bool changed = false;
    {
      std::lock_guard lock(mu_);
      auto& cached = cards_[agent];
      changed = cached != card;
      cached = card;
      cardless_.erase(agent);
    }
    if (changed) save_cards();
    co_return card;
  }
  co_return make_error(agent, "the agent serves no agent card at /.well-known/agent-card.json", 404);
}

asio::awaitable<Result<std::string>> A2aGateway::rpc_path(const std::string& agent,
                                                          std::shared_ptr<CancelSignal> cancel) {
  {
    std::lock_guard lock(mu_);
    if (auto it = cards_.find(agent); it != cards_.end()) co_return jsonrpc_path_of(it->second);
    if (cardless_.count(agent)) co_return std::string("/");
  }
  // Only the card says where the JSON-RPC endpoint is (A2A §8.3.1). Not read yet, as the agent has not
  // been ready: read it now, which waits for the replica that this request wakes anyway.
  bool answered = false;
  auto op = fetch_card(agent, timeout_, std::move(cancel), &answered);
  auto card = co_await std::move(op);
  if (card) co_return jsonrpc_path_of(card.value());
  // An agent that answers without a card (none, or not JSON) is asked at "/"; one that cannot be
  // reached (it cannot start, the wait timed out, the caller left) fails the request here.
  // It is asked again when one of its revisions becomes ready.
  if (answered) {
    std::lock_guard lock(mu_);
    cardless_.insert(agent);
    co_return std::string("/");
  }
  co_return card.error();
}

asio::awaitable<Status> A2aGateway::refresh_card(std::string agent) {
  if (!hooks_.relay || describe_a2a_agent(agent).is_null()) co_return ok();
  auto op = fetch_card(agent, card_timeout, nullptr);
  auto card = co_await std::move(op);
  if (!card) {
    SLUICE_LOG(mcp, warn, "[agent={}] cannot fetch the agent card: {}", agent, card.error().to_string());
    co_return card.error();
  }
  co_return ok();
}

void A2aGateway::on_revision_change(asio::any_io_executor executor, const std::string& agent,
                                    const std::string&, bool ready) {
  if (!ready) {
    // A deleted agent's card goes with it: an agent created again under its name is another agent,
    // whose card Sluice has not read.
    if (describe_a2a_agent(agent).is_null()) {
      bool erased = false;
      {
        std::lock_guard lock(mu_);
        erased = cards_.erase(agent) > 0;
        cardless_.erase(agent);
      }
      if (erased) save_cards();
    }
    return;
  }
  auto refresh = shared_from_this()->refresh_card(agent);
  asio::co_spawn(executor, discard(std::move(refresh)), asio::detached);
}

asio::awaitable<HttpServerResponse> A2aGateway::serve_card(HttpServerRequest& req, const std::string& agent,
                                                           const json& described, bool v0_3) {
  auto host = header_value(req, "Host");
  auto proto = header_value(req, "X-Forwarded-Proto");
  std::string base = (proto.empty() ? std::string("http") : proto) + "://" + host + "/a2a/" + agent;
  std::optional<json> cached;
  {
    std::lock_guard lock(mu_);
    if (auto it = cards_.find(agent); it != cards_.end()) cached = it->second;
  }
  if (!cached && !has_replica(described)) {
    // Discovery must not start a replica (a GPU process, minutes of cold start) only to read a card.
    // The placeholder is not to be kept: the agent's own card replaces it once a revision is ready.
    auto res = json_reply(req, http::status::ok, placeholder_agent_card(described, base, v0_3));
    res.set(http::field::cache_control, "no-store");
    co_return res;
  }
  if (!cached) {
    auto op = fetch_card(agent, card_timeout, nullptr);
    auto card = co_await std::move(op);
    if (!card) {
      int code = card.error().code >= 400 ? card.error().code : 502;
      co_return make_error_response(req, static_cast<http::status>(code), card.error().to_string());
    }
    cached = std::move(card).value();
  }
  auto res = json_reply(req, http::status::ok, rewrite_agent_card(std::move(*cached), base));
  res.set(http::field::cache_control, "max-age=60");
  co_return res;
}

asio::awaitable<HttpServerResponse> A2aGateway::relay_rpc(HttpServerRequest& req, RequestContext& ctx,
                                                          const std::string& agent) {
  auto version = header_value(req, "A2A-Version");
  json id = nullptr;
  auto body = json::parse(req.body(), nullptr, false);
  if (body.is_object() && body.contains("id")) id = body["id"];
  if (body.is_discarded())
    co_return json_reply(req, http::status::ok,
                         make_rpc_error(nullptr, rpc_error::parse_error, "Parse error"));
  if (!supported_version(version))
    co_return json_reply(req, http::status::ok,
                         make_rpc_error(id, version_not_supported,
                                        "A2A version " + version + " is not supported (1.0 and 0.3 are)"));
  auto cancel = std::make_shared<CancelSignal>();
  ctx.on_cancel([cancel] { cancel->cancel(); });
  auto path_op = rpc_path(agent, cancel);
  auto path = co_await std::move(path_op);
  if (!path) co_return unavailable(req, id, agent, path.error());
  HttpRequest request;
  request.method = "POST";
  request.url = path.value();
  for (const char* name : {"Content-Type", "Accept", "A2A-Version", "A2A-Extensions"}) {
    auto value = header_value(req, name);
    if (!value.empty()) request.headers.emplace_back(name, value);
  }
  request.body = req.body();
  request.timeout = timeout_;
  request.cancel = cancel;

  // Every answer is read as it passes (JSON, or SSE events) for the task ids it names.
  TaskIdReader reader;
  bool started = false;
  std::function<asio::awaitable<bool>(int, const HttpHeaders&)> on_headers =
      [&](int status, const HttpHeaders& headers) -> asio::awaitable<bool> {
    reader.start(headers);
    HttpServerResponse head{static_cast<http::status>(status), req.version()};
    head.set(http::field::server, "sluice");
    for (const auto& [k, v] : headers)
      if (strcasecmp(k.c_str(), "content-type") == 0 || strcasecmp(k.c_str(), "cache-control") == 0 ||
          strcasecmp(k.c_str(), "a2a-version") == 0)
        head.set(k, v);
    head.keep_alive(req.keep_alive());
    started = true;
    auto op = ctx.start_stream(std::move(head));
    co_return co_await std::move(op);
  };
  std::function<asio::awaitable<bool>(std::string_view)> on_chunk =
      [&](std::string_view c) -> asio::awaitable<bool> {
    reader.feed(c);
    auto op = ctx.write_chunk(c);
    co_return co_await std::move(op);
  };
  // A task's requests go to the replica that made it.
  std::string home;
  const auto task = task_of_request(body);
  if (task) home = task_homes_.find(agent, *task).value_or("");
  std::string address;
  ExchangeFn exchange = [&](const ReplicaRef& replica, SendFn send) -> asio::awaitable<Result<int>> {
    address = replica.address;
    auto op = send(request, on_headers, on_chunk);
    co_return co_await std::move(op);
  };
  HttpHeaders routing;
  if (auto key = header_value(req, "X-Sluice-Session-Key"); !key.empty())
    routing.emplace_back("x-sluice-session-key", key);
  auto op = hooks_.pin(agent, routing, cancel, home, exchange);
  Result<int> result = co_await std::move(op);
  if (!result && !started && !home.empty()) {
    // The replica that held the task is gone: ask the agent anywhere (it answers for the task).
    task_homes_.forget(agent, *task);
    auto retry = hooks_.pin(agent, routing, cancel, "", exchange);
    result = co_await std::move(retry);
  }
  if (!address.empty())
    for (const auto& id : reader.finish()) task_homes_.remember(agent, id, address);
  if (started) co_return HttpServerResponse{};
  co_return unavailable(req, id, agent, result ? make_error(agent, "no response") : result.error());
}

asio::awaitable<HttpServerResponse> A2aGateway::deliver_event(HttpServerRequest& req, RequestContext& ctx,
                                                              const std::string& agent) {
  HttpMessage message;
  for (const auto& field : req)
    message.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
  message.body = req.body();
  auto events = decode_http(message);
  if (!events || events.value().size() != 1) {
    std::string why =
        events ? "send exactly one event (binary or structured mode)" : events.error().to_string();
    co_return make_error_response(req, http::status::bad_request, why);
  }
  const CloudEvent& event = events.value().front();
  auto cancel = std::make_shared<CancelSignal>();
  ctx.on_cancel([cancel] { cancel->cancel(); });
  auto path_op = rpc_path(agent, cancel);
  auto path = co_await std::move(path_op);
  if (!path)
    co_return make_error_response(
        req, is_timeout_error(path.error()) ? http::status::gateway_timeout : http::status::bad_gateway,
        "agent " + agent + ": " + path.error().to_string());
  HttpRequest request;
  request.method = "POST";
  request.url = path.value();
  request.headers = {
      {"Content-Type", "application/json"}, {"Accept", "application/json"}, {"A2A-Version", "1.0"}};
  json id = next_id_++;
  request.body = send_message_request(event, id).dump();
  request.timeout = timeout_;
  request.cancel = cancel;
  auto op = collect(hooks_.relay, agent, std::move(request), 16 << 20);
  auto got = co_await std::move(op);
  if (!got)
    co_return make_error_response(req, http::status::bad_gateway,
                                  "agent " + agent + ": " + got.error().to_string());
  if (got.value().status / 100 != 2)
    co_return make_error_response(
        req, static_cast<http::status>(got.value().status >= 400 ? got.value().status : 502),
        "agent " + agent + " answered HTTP " + std::to_string(got.value().status));
  auto response = json::parse(got.value().body, nullptr, false);
  if (!response.is_object() || response.contains("error") || !response.contains("result")) {
    std::string why = response.is_object() && response.contains("error")
                          ? response["error"].dump()
                          : std::string("not a JSON-RPC response");
    co_return make_error_response(req, http::status::bad_gateway,
                                  "agent " + agent + " failed SendMessage: " + why);
  }
  auto reply = reply_from_result(response["result"], event, agent);
  if (!reply) co_return make_error_response(req, http::status::bad_gateway, reply.error().to_string());
  auto encoded = encode_http(reply.value(), HttpMode::Binary);
  HttpServerResponse res{http::status::ok, req.version()};
  res.set(http::field::server, "sluice");
  for (const auto& [k, v] : encoded.headers) res.set(k, v);
  res.keep_alive(req.keep_alive());
  res.body() = std::move(encoded.body);
  res.prepare_payload();
  co_return res;
}

}  // namespace sluice::mcp
