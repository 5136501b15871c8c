#include "server/server.hpp"

#include <sys/stat.h>

#include <iostream>

#include "core/async.hpp"
#include "core/fs.hpp"
#include "core/log.hpp"
#include "core/manifest.hpp"
#include "core/metrics.hpp"
#include "core/trace.hpp"

namespace sluice {

Server::Server(ServerOptions options)
    : options_(std::move(options)), io_(options_.threads), clock_(RealClock::instance()), brokers_(clock_) {
  Tracer::global().set_history(options_.trace_history);
}

Server::~Server() {
  // The kinds' handlers (held by the controller) refer to parts_: release them first.
  controller_.reset();
}

asio::awaitable<HttpServerResponse> Server::handle_probe(HttpServerRequest& req, RequestContext&) {
  auto path = split_target(std::string_view(req.target().data(), req.target().size())).first;
  if (req.method() != http::verb::get && req.method() != http::verb::head) {
    auto res = make_error_response(req, http::status::method_not_allowed, "use GET for " + std::string(path));
    res.set(http::field::allow, "GET, HEAD");
    co_return res;
  }
  if (path == "/healthz") co_return make_response(req, http::status::ok, "ok\n");
  if (path == "/readyz") {
    if (ready_ && !stopping_) co_return make_response(req, http::status::ok, "ready\n");
    co_return make_response(req, http::status::service_unavailable,
                            stopping_ ? "stopping\n" : "recovering\n");
  }
  if (path == "/metrics")
    co_return make_response(req, http::status::ok, MetricsRegistry::global().render(),
                            "text/plain; version=0.0.4; charset=utf-8");
  co_return make_error_response(req, http::status::not_found, "no route for " + std::string(path));
}

void Server::wire_routes() {
  auto probe = [this](HttpServerRequest& req, RequestContext& ctx) { return handle_probe(req, ctx); };
  // Like every 503, the one answered before recovery is done says when to retry.
  auto recovering = [](HttpServerRequest& req) {
    auto res = make_error_response(req, http::status::service_unavailable, "recovering; retry shortly");
    res.set(http::field::retry_after, "1");
    return res;
  };
  http_->route("/healthz", probe);
  http_->route("/readyz", probe);
  http_->route("/metrics", probe);
  http_->route(
      "/brokers/",
      [this, recovering](HttpServerRequest& req, RequestContext& ctx) -> asio::awaitable<HttpServerResponse> {
        if (!ready_) {
          ingress_->count_refused(
              split_target(std::string_view(req.target().data(), req.target().size())).first, 503);
          co_return recovering(req);
        }
        co_return co_await ingress_->handle(req, ctx);
      });
  http_->observe_refusals(
      "/brokers/", [this](std::string_view path, unsigned status) { ingress_->count_refused(path, status); });
  http_->route(
      "/apis/v1/traces/", [](HttpServerRequest& req, RequestContext&) -> asio::awaitable<HttpServerResponse> {
        auto path = split_target(std::string_view(req.target().data(), req.target().size())).first;
        auto id = url_decode(path.substr(std::string_view("/apis/v1/traces/").size()));
        if (!id || id->empty())
          co_return make_error_response(req, http::status::not_found, "use /apis/v1/traces/{event id}");
        auto spans = Tracer::global().spans_of_event(*id);
        if (spans.empty())
          co_return make_error_response(
              req, http::status::not_found,
              "no spans recorded for event \"" + *id + "\" (recent events only, kept in memory)");
        auto out = nlohmann::json::array();
        for (const auto& span : spans) out.push_back(Tracer::to_json(span));
        co_return make_response(req, http::status::ok,
                                nlohmann::json{{"eventId", *id}, {"spans", out}}.dump(), "application/json");
      });
  http_->route(
      "/apis/v1/",
      [this, recovering](HttpServerRequest& req, RequestContext& ctx) -> asio::awaitable<HttpServerResponse> {
        if (!ready_) co_return recovering(req);
        co_return co_await control_->handle(req, ctx);
      });
}

void Server::schedule_periodic(asio::steady_timer& timer, std::chrono::seconds every,
                               std::function<void()> work) {
  timer.expires_after(every);
  timer.async_wait([this, &timer, every, work = std::move(work)](beast::error_code ec) mutable {
    if (ec || stopping_) return;
    asio::post(blocking_, work);
    schedule_periodic(timer, every, std::move(work));
  });
}

int Server::run() {
  // Everything under the data dir (resources, secrets, logs) is private to the server's user.
  ::umask(077);
  if (auto st = make_dirs(options_.data_dir); !st) {
    std::cerr << "sluice serve: --data-dir " << options_.data_dir << ": " << st.error().to_string() << "\n";
    return 1;
  }
  // Two servers on one data dir would overwrite each other's resources, cursors and logs.
  auto lock = lock_dir(options_.data_dir, "another sluice serve is using this data dir; stop it first");
  if (!lock) {
    std::cerr << "sluice serve: --data-dir " << options_.data_dir << ": " << lock.error().to_string() << "\n";
    return 1;
  }
  data_dir_lock_ = std::move(lock).value();
  ControllerOptions copts;
  copts.data_dir = options_.data_dir;
  copts.config_store = options_.config_store;
  copts.fsync = options_.fsync;
  controller_ = std::make_unique<Controller>(copts, clock_, brokers_);
  ingress_ = std::make_unique<Ingress>(brokers_);
  control_ = std::make_unique<ControlApi>(*controller_, blocking_);
  HttpServerOptions hopts;
  hopts.host = options_.host;
  hopts.port = options_.port;
  hopts.body_limit = options_.max_body;
  hopts.access_log = options_.access_log;
  http_ = std::make_unique<HttpServer>(io_, hopts);
  parts_ = std::make_unique<ServerParts>(options_, io_, blocking_, clock_, brokers_, *controller_, *http_);
  if (!options_.outbound_ca_file.empty() || !options_.outbound_cert_file.empty()) {
    auto tls = make_client_tls_context(
        {options_.outbound_ca_file, options_.outbound_cert_file, options_.outbound_key_file});
    if (!tls) {
      std::cerr << "sluice serve: outbound TLS: " << tls.error().to_string() << "\n";
      return 1;
    }
    parts_->outbound.tls = std::move(tls).value();
  }
  parts_->publish = [this](const std::string& broker, std::vector<CloudEvent> events,
                           std::function<void(Result<std::uint64_t>)> done) {
    brokers_.publish(broker, std::move(events), std::move(done));
  };
  if (auto st = wire_security(*parts_, *ingress_); !st) {
    std::cerr << "sluice serve: " << st.error().to_string() << "\n";
    return 1;
  }
  control_->set_change_authorizer(parts_->authorize_change);
  wire_secrets(*parts_);
  controller_->set_secret_resolver(parts_->resolve_secret);
  // Agents first: triggers resolve `ref: {kind: Agent}` through them.
  wire_agents(*parts_);
  wire_triggers(*parts_);
  wire_sources(*parts_);
  wire_gateways(*parts_);
  wire_dashboard(*parts_);
  wire_routes();
  if (auto st = http_->start(); !st) {
    std::cerr << "sluice serve: " << st.error().to_string() << "\n";
    return 1;
  }
  SLUICE_LOG(server, info, "listening on http://{}:{} (data dir {})", options_.host, http_->port(),
             options_.data_dir);
  if (!options_.tls_host.empty()) {
    TlsListenerOptions topts;
    topts.host = options_.tls_host;
    topts.port = options_.tls_port;
    topts.cert_file = options_.tls_cert_file;
    topts.key_file = options_.tls_key_file;
    topts.upstream_host = options_.host == "0.0.0.0" ? "127.0.0.1"
                          : options_.host == "::"    ? "::1"
                                                     : options_.host;
    topts.upstream_port = http_->port();
    tls_ = std::make_unique<TlsListener>(io_, topts);
    if (auto st = tls_->start(); !st) {
      std::cerr << "sluice serve: " << st.error().to_string() << "\n";
      return 1;
    }
    SLUICE_LOG(server, info, "listening on https://{}:{}", options_.tls_host, tls_->port());
  }

  signals_.async_wait([this](beast::error_code ec, int sig) {
    if (!ec) {
      SLUICE_LOG(server, info, "signal {}: shutting down", sig);
      stop();
    }
  });

  // Recovery runs off the I/O threads; /healthz answers meanwhile and /readyz says "recovering".
  std::atomic<int> exit_code{0};
  asio::post(blocking_, [this, &exit_code] {
    if (auto st = controller_->recover(); !st) {
      SLUICE_LOG(server, critical, "recovery failed: {}", st.error().to_string());
      exit_code = 1;
      stop();
      return;
    }
    for (const auto& file : options_.apply_files) {
      auto text = read_file(file);
      auto docs = text ? parse_manifests(text.value()) : Result<std::vector<nlohmann::json>>(text.error());
      auto applied =
          docs ? controller_->apply(std::move(docs).value()) : Result<nlohmann::json>(docs.error());
      if (!applied) {
        SLUICE_LOG(server, critical, "--apply {}: {}", file, applied.error().to_string());
        exit_code = 1;
        stop();
        return;
      }
      SLUICE_LOG(server, info, "--apply {}: {}", file, applied.value().dump());
    }
    ready_ = true;
    SLUICE_LOG(server, info, "ready");
  });
  if (!options_.otlp_endpoint.empty()) Tracer::global().export_to(options_.otlp_endpoint);
  housekeeping_timer_ = std::make_unique<asio::steady_timer>(io_.at(0));
  schedule_periodic(*housekeeping_timer_, std::chrono::seconds(30), [this] { controller_->housekeeping(); });
  retry_timer_ = std::make_unique<asio::steady_timer>(io_.at(0));
  schedule_periodic(*retry_timer_, BrokerRegistry::kUnavailableRetry,
                    [this] { controller_->retry_unavailable_brokers(); });

  io_.run();
  blocking_.join();
  Tracer::global().stop_export();
  return exit_code.load();
}

void Server::stop() {
  if (stopping_.exchange(true)) return;
  http_->stop();
  if (tls_) tls_->stop();
  asio::post(io_.at(0), [this] {
    if (housekeeping_timer_) housekeeping_timer_->cancel();
    if (retry_timer_) retry_timer_->cancel();
  });
  signals_.cancel();
  // Dispatchers finish in-flight deliveries, logs are flushed; then in-flight requests drain.
  asio::post(blocking_, [this] {
    auto deadline = std::chrono::steady_clock::now() + options_.shutdown_grace;
    while (http_->in_flight() > 0 && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    controller_->shutdown();
    for (auto it = parts_->on_shutdown.rbegin(); it != parts_->on_shutdown.rend(); ++it) (*it)();
    SLUICE_LOG(server, info, "stopped");
    io_.stop();
  });
}

}  // namespace sluice
