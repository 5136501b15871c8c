#pragma once
// Wiring of one `sluice serve` process: the HTTP server and its routes, the controller, the brokers,
// the triggers' dispatchers and the agents, on one io_context run by a thread per core.

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "broker/broker_registry.hpp"
#include "broker/ingress.hpp"
#include "core/asio.hpp"
#include "core/clock.hpp"
#include "core/trace.hpp"
#include "core/fs.hpp"
#include "core/http_server.hpp"
#include "core/io_pool.hpp"
#include "core/tls_listener.hpp"
#include "server/control_api.hpp"
#include "server/controller.hpp"
#include "server/wiring.hpp"

namespace sluice {

struct ServerOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8080;
  std::string data_dir = "./sluice-data";
  std::string config_store;  // kafka://… to share resources with other nodes (server/config_topic.hpp)
  std::vector<std::string> apply_files;  // applied once recovery is done
  std::size_t threads = 0;               // 0: one per core
  std::size_t max_body = 1 << 20;        // largest request body (events, batches, manifests)
  bool access_log = false;
  bool fsync = true;
  std::chrono::seconds shutdown_grace{30};
  // Authentication (see core/auth.hpp); off when neither file is given.
  std::string auth_tokens_file;
  std::string jwks_file;
  std::string jwt_issuer;
  std::string jwt_audience;
  std::string oidc_issuer;
  std::string admin_group = "admin";   // may change resources through /apis/v1
  bool allow_unauthenticated = false;  // serve a non-loopback address without authentication
  // A TLS listener in front of the HTTP one (see core/tls_listener.hpp); off when tls_host is empty.
  std::string tls_host;
  std::uint16_t tls_port = 8443;
  std::string tls_cert_file;
  std::string tls_key_file;
  // Outbound https (trigger subscribers, dead letter sinks): CAs to trust instead of the system's, and
  // a client certificate for servers that ask for one.
  std::string outbound_ca_file;
  std::string outbound_cert_file;
  std::string outbound_key_file;
  // Agents: GPU inventory ("A100:80Gi,T4:16Gi", "auto" = nvidia-smi, "none"), config-autoscaler keys
  // ("stable-window" → "60s", …) and how often the autoscaler decides.
  std::string gpus = "auto";
  std::map<std::string, std::string> autoscaler_config;
  std::chrono::milliseconds autoscaler_tick{2000};
  /// Requests the activator lets wait per revision (sluice.dev/max-buffered-requests overrides it).
  std::size_t agent_max_buffered = 10000;
  /// Inactive revisions kept per agent (Knative's max-non-active-revisions); negative: all.
  int max_inactive_revisions = 20;
  std::string otlp_endpoint;  // OTLP/HTTP collector base URL for spans; empty: spans stay in memory only
  std::size_t trace_history = Tracer::kDefaultHistory;  // spans kept in memory for `sluice trace`
};

class Server {
 public:
  explicit Server(ServerOptions options);
  ~Server();

  /// Binds, recovers the stored resources, applies `apply_files`, and serves until stop().
  /// Returns the process exit code.
  int run();
  /// Orderly shutdown (thread-safe, also from a signal handler's asio callback).
  void stop();

 private:
  void wire_routes();
  asio::awaitable<HttpServerResponse> handle_probe(HttpServerRequest& req, RequestContext& ctx);
  /// Runs `work` on the blocking pool every `every` until stop().
  void schedule_periodic(asio::steady_timer& timer, std::chrono::seconds every, std::function<void()> work);

  ServerOptions options_;
  UniqueFd data_dir_lock_;  // flock of DATA_DIR/LOCK while the server runs
  IoPool io_;
  asio::thread_pool blocking_{2};
  Clock& clock_;
  BrokerRegistry brokers_;
  std::unique_ptr<Controller> controller_;
  std::unique_ptr<HttpServer> http_;
  std::unique_ptr<TlsListener> tls_;
  std::unique_ptr<Ingress> ingress_;
  std::unique_ptr<ControlApi> control_;
  std::unique_ptr<ServerParts> parts_;
  std::atomic<bool> ready_{false};
  std::atomic<bool> stopping_{false};
  std::unique_ptr<asio::steady_timer> housekeeping_timer_;  // log retention
  std::unique_ptr<asio::steady_timer> retry_timer_;         // Kafka brokers whose cluster did not answer
  asio::signal_set signals_{io_.at(0), SIGINT, SIGTERM};
};

}  // namespace sluice
