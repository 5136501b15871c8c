// Agent resources: the AgentRuntime (revisions, replicas, autoscaler, GPUs) and the AgentProxy (the
// activator's data path) behind `/agents/`, trigger refs, and the gateways' relay hook.

#include <memory>

#include "agents/agent_proxy.hpp"
#include "agents/agent_runtime.hpp"
#include "core/async.hpp"
#include "core/log.hpp"
#include "server/server.hpp"
#include "server/wiring.hpp"

namespace sluice {
namespace {

using agents::AgentProxy;
using agents::AgentRuntime;

/// Events waiting per agent: the backlog of every Trigger whose subscriber, and of every KafkaSource
/// whose sink, is `ref: {kind: Agent|Service}` (a Kafka-backed trigger's or a source's backlog is its
/// consumer group's lag, what KEDA's Kafka scaler reads).
std::map<std::string, double> agent_backlog(Controller& controller) {
  std::map<std::string, double> out;
  const std::pair<const char*, nlohmann::json::json_pointer> feeds[] = {
      {"Trigger", "/spec/subscriber/ref"_json_pointer}, {"KafkaSource", "/spec/sink/ref"_json_pointer}};
  for (const auto& [kind_name, ref_at] : feeds) {
    auto list = controller.list(kind_name);
    for (const auto& item : list.value("items", nlohmann::json::array())) {
      const auto ref = item.value(ref_at, nlohmann::json());
      if (!ref.is_object()) continue;
      const std::string kind = ref.value("kind", "");
      if (kind != "Agent" && kind != "Service") continue;
      const auto backlog = item.value("/status/delivery/backlog"_json_pointer, nlohmann::json());
      if (backlog.is_number()) out[ref.value("name", "")] += backlog.get<double>();
    }
  }
  return out;
}

agents::GpuInventory gpu_inventory(const std::string& spec) {
  if (spec == "none") return {};
  if (spec.empty() || spec == "auto") {
    auto detected = agents::detect_gpus();
    if (!detected) {
      SLUICE_LOG(agents, warn, "nvidia-smi: {}; running without GPUs", detected.error().to_string());
      return {};
    }
    if (!detected.value().empty())
      SLUICE_LOG(agents, info, "GPUs detected by nvidia-smi: {}", detected.value().to_string());
    return detected.value();
  }
  auto parsed = agents::parse_gpu_inventory(spec);
  if (!parsed) {
    SLUICE_LOG(agents, err, "--gpus: {}; running without GPUs", parsed.error().to_string());
    return {};
  }
  return parsed.value();
}

/// Strips the `/agents/NAME` prefix a trigger's request URL carries, leaving the path on the replica.
std::string replica_target(const std::string& url, const std::string& base) {
  if (url.rfind(base, 0) == 0) {
    std::string rest = url.substr(base.size());
    return rest.empty() ? "/" : rest;
  }
  auto parsed = parse_url(url);
  return parsed ? parsed.value().target : "/";
}

asio::awaitable<Result<HttpResponse>> send_to_agent(std::shared_ptr<AgentProxy> proxy, std::string agent,
                                                    std::string base, HttpRequest request) {
  request.url = replica_target(request.url, base);
  co_return co_await proxy->send(std::move(agent), std::move(request));
}

asio::awaitable<HttpServerResponse> serve_logs(ServerParts& parts, std::shared_ptr<AgentRuntime> runtime,
                                               HttpServerRequest& req) {
  const auto target = split_target(std::string_view(req.target().data(), req.target().size()));
  const std::string_view path = target.first;
  const std::string query(target.second);
  const std::string name =
      url_decode(path.substr(std::min(path.size(), std::string_view("/apis/v1/logs/").size()))).value_or("");
  if (name.empty() || name.find('/') != std::string::npos)
    co_return make_error_response(req, http::status::not_found,
                                  "use /apis/v1/logs/{agent}?revision=R&tail=BYTES");
  const std::string revision = query_param(query, "revision").value_or("");
  // A tail that is no byte count ("1Ki", "x") used to read as 1 or 0 (the whole log): refuse it.
  const std::string tail_text = query_param(query, "tail").value_or("0");
  if (tail_text.empty() || tail_text.size() > 15 ||
      tail_text.find_first_not_of("0123456789") != std::string::npos)
    co_return make_error_response(
        req, http::status::bad_request,
        "tail must be a number of bytes (0: whole logs), got \"" + tail_text + "\"");
  const std::size_t tail = static_cast<std::size_t>(std::stoull(tail_text));
  // By reference only: offload() must be given a trivially destructible function (see core/async.hpp).
  AgentRuntime* logs_of = runtime.get();
  auto read = [&] { return logs_of->logs(name, revision, tail); };
  Result<std::string> text = co_await offload(parts.blocking, read);
  if (!text) {
    const auto status = static_cast<http::status>(agents::http_status_of(text.error()));
    const std::string message = text.error().to_string();
    co_return make_error_response(req, status, message);
  }
  std::string body = std::move(text).value();
  co_return make_response(req, http::status::ok, std::move(body));
}

}  // namespace

void wire_agents(ServerParts& parts) {
  agents::AgentRuntimeOptions options;
  options.data_dir = parts.options.data_dir;
  options.gpus = gpu_inventory(parts.options.gpus);
  if (auto config = autoscaler::parse_autoscaler_config(parts.options.autoscaler_config); config) {
    options.autoscaler = config.value();
  } else {
    SLUICE_LOG(agents, err, "--autoscaler: {}; using the defaults", config.error().to_string());
  }
  options.autoscaler_tick = parts.options.autoscaler_tick;
  options.activator.max_buffer = parts.options.agent_max_buffered;
  options.max_inactive_revisions = parts.options.max_inactive_revisions;
  options.metrics = &MetricsRegistry::global();
  options.resolve_secret = parts.resolve_secret;
  auto runtime = std::make_shared<AgentRuntime>(options, parts.clock);
  auto proxy = std::make_shared<AgentProxy>(*runtime, parts.io);

  runtime->set_revision_listener([&parts](const std::string& agent, const std::string& revision, bool ready) {
    for (const auto& listener : parts.on_revision_change) listener(agent, revision, ready);
  });
  runtime->set_backlog_source([&parts] { return agent_backlog(parts.controller); });
  runtime->start();

  parts.controller.handle_kind(
      "Agent", KindHandler{[runtime](const nlohmann::json& m) { return runtime->validate(m); },
                           [runtime](const StoredResource& r) { return runtime->apply(r.manifest); },
                           [runtime](const std::string& name) { runtime->remove(name); },
                           [runtime](const StoredResource& r) { return runtime->status(r.name); },
                           // Replicas stop in on_shutdown, after the triggers that deliver to them.
                           [] {}});

  parts.http.route("/agents/",
                   [proxy](HttpServerRequest& req, RequestContext& ctx) { return proxy->handle(req, ctx); });
  parts.http.route("/apis/v1/logs/", [&parts, runtime](HttpServerRequest& req, RequestContext&) {
    return serve_logs(parts, runtime, req);
  });

  parts.resolve_agent = [&parts, runtime, proxy](const SubscriberRef& ref) -> Result<ResolvedDestination> {
    auto route = runtime->route(ref.name, "", 0);
    if (!route) return route.error();
    // The MCP gateway's wiring takes the refs that name a tool of an MCP agent before they get here.
    if (!ref.tool.empty())
      return make_error("Agent/" + ref.name,
                        std::string(kToolAnnotation) + " needs an MCP agent (sluice.dev/protocol: mcp); " +
                            ref.name + " is not one",
                        0);
    const std::string host = parts.options.host == "0.0.0.0" ? "127.0.0.1" : parts.options.host;
    ResolvedDestination destination;
    destination.url = "http://" + host + ":" + std::to_string(parts.http.port()) + "/agents/" + ref.name;
    destination.send = [proxy, name = ref.name, base = destination.url](HttpRequest request) {
      return send_to_agent(proxy, name, base, std::move(request));
    };
    return destination;
  };
  parts.relay_to_agent = [proxy](const std::string& agent, HttpRequest request,
                                 std::function<asio::awaitable<bool>(int, const HttpHeaders&)> on_headers,
                                 std::function<asio::awaitable<bool>(std::string_view)> on_chunk) {
    return proxy->relay(agent, std::move(request), std::move(on_headers), std::move(on_chunk));
  };
  parts.pin_agent_replica = [proxy](const std::string& agent, const HttpHeaders& routing,
                                    std::shared_ptr<CancelSignal> cancel, std::string address,
                                    mcp::ExchangeFn exchange) {
    agents::AgentProxy::ReplicaExchange held =
        [exchange = std::move(exchange)](
            const agents::AgentProxy::ReplicaTarget& target,
            agents::AgentProxy::ReplicaSend send) -> asio::awaitable<Result<int>> {
      const mcp::ReplicaRef replica{target.revision + "/" + target.replica, target.address};
      auto run = exchange(replica, std::move(send));
      co_return co_await std::move(run);
    };
    return proxy->with_replica(agent, routing, std::move(cancel), std::move(address), std::move(held));
  };
  parts.describe_agents = [runtime] { return runtime->describe(); };
  parts.on_shutdown.push_back([runtime, proxy] { runtime->stop(); });
}

}  // namespace sluice
