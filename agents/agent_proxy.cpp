#include "agents/agent_proxy.hpp"

#include <algorithm>
#include <cctype>

#include <nlohmann/json.hpp>

#include "agents/traffic.hpp"
#include "core/log.hpp"
#include "core/request_log.hpp"
#include "core/text.hpp"

namespace sluice::agents {
namespace {

/// Hop-by-hop headers (RFC 9110 §7.6.1) and those the client or server computes itself.
bool hop_by_hop(std::string_view name) {
  static constexpr std::string_view kNames[] = {"connection", "keep-alive", "proxy-connection",
                                                "te",         "trailer",    "transfer-encoding",
                                                "upgrade",    "host",       "content-length"};
  for (auto n : kNames)
    if (iequals(name, n)) return true;
  return false;
}

/// Removes the hop-by-hop headers, those that a Connection header names included (RFC 9110 §7.6.1:
/// `Connection: X-Hop` makes X-Hop meant for this connection only), as Go's ReverseProxy, which
/// Knative's activator uses, does.
void drop_hop_by_hop(HttpHeaders& headers) {
  std::vector<std::string> listed;
  for (const auto& [name, value] : headers) {
    if (!iequals(name, "connection")) continue;
    std::string_view rest = value;
    while (!rest.empty()) {
      const auto comma = rest.find(',');
      const auto option = trim_space(rest.substr(0, comma));
      if (!option.empty()) listed.emplace_back(option);
      rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
    }
  }
  std::erase_if(headers, [&](const auto& h) {
    return hop_by_hop(h.first) || std::any_of(listed.begin(), listed.end(),
                                              [&](const std::string& l) { return iequals(h.first, l); });
  });
}

const std::string* find_header(const HttpHeaders& headers, std::string_view name) {
  for (const auto& [k, v] : headers)
    if (iequals(k, name)) return &v;
  return nullptr;
}

}  // namespace

bool never_reached_replica(const Error& error) {
  // HttpClient's connect() failures; a request that was written and then cut off reads
  // "connection reset by peer", "connection closed …" or "timed out …" instead.
  return error.code == 0 &&
         (error.message.starts_with("connection refused") || error.message.starts_with("connect timed out") ||
          error.message.starts_with("host unreachable"));
}

bool cut_off_by_replica(const Error& error) {
  return error.code == 0 &&
         (error.message.starts_with("connection reset") || error.message.starts_with("connection closed"));
}

int http_status_of(const Error& error) {
  if (error.code >= 400 && error.code < 600) return error.code;
  if (error.code == kActivatorCancelled) return 499;
  return is_timeout_error(error) ? 504 : 502;
}

AgentProxy::AgentProxy(AgentRuntime& runtime, IoPool& io, HttpClientOptions client_options)
    : runtime_(runtime) {
  for (std::size_t i = 0; i < io.size(); ++i)
    clients_.emplace(&io.at(i), std::make_unique<HttpClient>(io.at(i).get_executor(), client_options));
}

AgentProxy::~AgentProxy() = default;

HttpClient* AgentProxy::client_for(const asio::any_io_executor& executor) const {
  const auto* io = executor.target<asio::io_context::executor_type>();
  if (!io) return nullptr;
  auto it = clients_.find(&io->context());
  return it == clients_.end() ? nullptr : it->second.get();
}

std::optional<std::string> AgentProxy::sticky_key(const HttpHeaders& headers) {
  for (std::string_view name : {"ce-partitionkey", "x-sluice-session-key", "mcp-session-id"})
    if (const auto* v = find_header(headers, name); v && !v->empty()) return *v;
  return std::nullopt;
}

asio::awaitable<Result<int>> AgentProxy::relay(std::string agent, HttpRequest request,
                                               HeadersHandler on_headers, ChunkHandler on_chunk,
                                               std::chrono::milliseconds limit) {
  request.timeout = std::chrono::milliseconds(0);  // the revision's timeoutSeconds governs
  // A copy per attempt: the request is sent again to another replica when its own refused the
  // connection, and the client consumes what it sends.
  ReplicaExchange exchange = [&](const ReplicaTarget&, ReplicaSend send) -> asio::awaitable<Result<int>> {
    auto sent = send(request, on_headers, on_chunk);
    co_return co_await std::move(sent);
  };
  HttpHeaders routing;  // the sticky key only, not a copy of every header
  if (auto key = sticky_key(request.headers)) routing.emplace_back("x-sluice-session-key", std::move(*key));
  auto cancel = request.cancel;
  auto result = co_await with_replica(std::move(agent), std::move(routing), std::move(cancel), "",
                                      std::move(exchange), limit);
  co_return result;
}

asio::awaitable<Result<int>> AgentProxy::with_replica(std::string agent, HttpHeaders routing,
                                                      std::shared_ptr<CancelSignal> cancel,
                                                      std::string address, ReplicaExchange exchange,
                                                      std::chrono::milliseconds limit) {
  std::string tag;
  if (auto at = agent.find('@'); at != std::string::npos) {
    tag = agent.substr(at + 1);
    agent.resize(at);
  }
  auto executor = co_await asio::this_coro::executor;
  HttpClient* client = client_for(executor);
  if (!client) co_return make_error("agent " + agent, "called from outside the server's I/O contexts", 500);

  ReplicaTarget target;
  ReplicaLease lease;
  auto deadline = std::chrono::steady_clock::time_point::max();
  const bool pinned = !address.empty();
  if (!pinned) {
    const auto key = sticky_key(routing);
    std::optional<std::uint64_t> hash;
    if (key) hash = traffic_key_hash(*key);
    auto choice = runtime_.route(agent, tag, hash);
    if (!choice) co_return choice.error();
    deadline = std::chrono::steady_clock::now() + choice.value().timeout;
    target.revision = choice.value().revision;
  } else {
    target.address = std::move(address);
  }
  if (limit.count() > 0) deadline = std::min(deadline, std::chrono::steady_clock::now() + limit);

  // Per attempt: whether a request reached the replica (anything but a failed connect), whether one
  // could not connect to it, and whether the replica cut one off.
  bool reached = false;
  bool refused = false;
  bool cut_off = false;

  ReplicaSend send = [&](HttpRequest request, HeadersHandler on_headers,
                         ChunkHandler on_chunk) -> asio::awaitable<Result<int>> {
    std::string path = request.url.empty() ? "/" : request.url;
    if (path.front() != '/') path.insert(path.begin(), '/');
    request.url = "http://" + target.address + path;
    if (deadline != std::chrono::steady_clock::time_point::max()) {  // the shorter of the two
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      const auto bound = std::max(left, std::chrono::milliseconds(1));
      request.timeout = request.timeout.count() > 0 ? std::min(request.timeout, bound) : bound;
    }
    drop_hop_by_hop(request.headers);
    nlohmann::json line;
    if (request_log::enabled()) {
      const auto* traceparent = find_header(request.headers, "traceparent");
      line = {{"kind", "activator"},
              {"method", request.method},
              {"url", request.url},
              {"agent", agent},
              {"revision", target.revision},
              {"replica", target.replica},
              {"request_bytes", request.body.size()},
              {"trace_id", traceparent ? request_log::trace_id_of(*traceparent) : ""}};
    }
    const auto started = std::chrono::steady_clock::now();
    auto result = co_await client->relay(std::move(request), std::move(on_headers), std::move(on_chunk));
    if (!result && never_reached_replica(result.error())) {
      refused = true;
    } else {
      reached = true;
      if (!result && cut_off_by_replica(result.error())) {
        // Sent, then cut off: the agent may have acted on it, so it is not sent again (502).
        cut_off = true;
        auto& error = result.error();
        error.message += " after the request was sent to replica " +
                         (target.replica.empty() ? target.address : target.revision + "/" + target.replica) +
                         " (not retried: the agent may have acted on it)";
      }
    }
    if (request_log::enabled()) {
      line["latency_ms"] =
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
      line["status"] = result ? result.value() : 0;
      line["error"] = result ? "" : result.error().message;
      request_log::write(std::move(line));
    }
    co_return result;
  };
  // Knative's activator retries a request whose connection to the pod could not be established; so
  // does this, on another replica of the same revision (or the one the runtime restarts), within the
  // original deadline. An exchange that got anything through is never run again.
  constexpr int kMaxAttempts = 3;
  for (int attempt = 1;; ++attempt) {
    if (!pinned) {
      std::string revision = target.revision;
      auto acquired =
          co_await runtime_.activator().acquire(std::move(revision), deadline, cancel, attempt > 1);
      if (!acquired) co_return acquired.error();
      lease = std::move(acquired).value();
      target.replica = lease.replica();
      target.address = lease.address();
    }
    reached = false;
    refused = false;
    cut_off = false;
    auto exchanged = exchange(target, send);
    auto result = co_await std::move(exchanged);
    if (pinned || reached || !refused) {
      // A replica that cut a request off may be dying: it is passed over until the runtime knows.
      if (cut_off) {
        lease.release_cut_off();
      } else {
        lease.release();
      }
      co_return result;
    }
    lease.release_unreachable();
    const bool retry = attempt < kMaxAttempts && std::chrono::steady_clock::now() < deadline &&
                       !(cancel && cancel->cancelled());
    SLUICE_LOG(agents, info, "[agent={} rev={} replica={}] could not connect to the replica{}", agent,
               target.revision, target.replica, retry ? "; the request goes to another replica" : "");
    if (!retry) co_return result;
  }
}

asio::awaitable<Result<HttpResponse>> AgentProxy::send(std::string agent, HttpRequest request) {
  auto response = std::make_shared<HttpResponse>();
  HeadersHandler on_headers = [response](int status, const HttpHeaders& headers) -> asio::awaitable<bool> {
    response->status = status;
    response->headers = headers;
    co_return true;
  };
  ChunkHandler on_chunk = [response](std::string_view chunk) -> asio::awaitable<bool> {
    response->body.append(chunk);
    co_return true;
  };
  const auto limit = request.timeout;
  auto status =
      co_await relay(std::move(agent), std::move(request), std::move(on_headers), std::move(on_chunk), limit);
  if (!status) {
    if (status.error().code == kActivatorCancelled) co_return status.error();
    // The answer `/agents/{name}` gives for the same error (handle()).
    HttpResponse refused;
    refused.status = http_status_of(status.error());
    refused.headers.emplace_back("content-type", "application/json");
    refused.body = nlohmann::json{{"error", status.error().to_string()}}.dump();
    co_return refused;
  }
  co_return std::move(*response);
}

asio::awaitable<HttpServerResponse> AgentProxy::handle(HttpServerRequest& req, RequestContext& ctx) {
  const std::string_view whole(req.target().data(), req.target().size());
  const auto split = split_target(whole);
  const std::string_view path = split.first;
  const std::string_view query = split.second;
  constexpr std::string_view kPrefix = "/agents/";
  std::string_view rest = path.substr(std::min(path.size(), kPrefix.size()));
  const auto slash = rest.find('/');
  auto name = url_decode(rest.substr(0, slash));
  if (!name || name->empty())
    co_return make_error_response(req, http::status::not_found, "use /agents/{name}[@{tag}]/{path}");
  std::string target = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
  if (!query.empty()) target += "?" + std::string(query);

  HttpRequest request;
  request.method = std::string(req.method_string());
  request.url = std::move(target);
  for (const auto& field : req)
    request.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
  drop_hop_by_hop(request.headers);
  request.body = std::move(req.body());
  auto signal = std::make_shared<CancelSignal>();
  ctx.on_cancel([signal] { signal->cancel(); });
  request.cancel = signal;

  struct State {
    int status = 0;
    HttpHeaders headers;
    std::string body;
    bool streaming = false;
  };
  auto state = std::make_shared<State>();
  const unsigned version = req.version();
  const bool keep_alive = req.keep_alive();
  HeadersHandler on_headers = [state, &ctx, version, keep_alive](
                                  int status, const HttpHeaders& headers) -> asio::awaitable<bool> {
    state->status = status;
    state->headers = headers;
    drop_hop_by_hop(state->headers);
    const auto* type = find_header(headers, "content-type");
    const bool event_stream = type && type->rfind("text/event-stream", 0) == 0;
    if (!event_stream && find_header(headers, "content-length")) co_return true;
    state->streaming = true;
    HttpServerResponse head{static_cast<http::status>(status), version};
    for (const auto& [k, v] : state->headers) head.set(k, v);
    head.keep_alive(keep_alive);
    co_return co_await ctx.start_stream(std::move(head));
  };
  ChunkHandler on_chunk = [state, &ctx](std::string_view chunk) -> asio::awaitable<bool> {
    if (!state->streaming) {
      state->body.append(chunk);
      co_return true;
    }
    co_return co_await ctx.write_chunk(chunk);
  };
  auto result = co_await relay(*name, std::move(request), std::move(on_headers), std::move(on_chunk));
  if (state->streaming) {
    if (!ctx.cancelled()) co_await ctx.end_stream();
    co_return make_response(req, http::status::ok);
  }
  if (!result) {
    const int status = http_status_of(result.error());
    co_return make_error_response(req, static_cast<http::status>(status), result.error().to_string());
  }
  HttpServerResponse res{static_cast<http::status>(state->status), version};
  for (const auto& [k, v] : state->headers) res.set(k, v);
  res.keep_alive(keep_alive);
  res.body() = std::move(state->body);
  res.prepare_payload();
  co_return res;
}

}  // namespace sluice::agents
