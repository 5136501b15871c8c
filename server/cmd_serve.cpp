// sluice serve: runs the broker, triggers, agents and gateways in one process.

#include <sys/resource.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <iostream>
#include <sstream>

#include "agents/gpu.hpp"
#include "agents/process_limits.hpp"
#include "autoscaler/config.hpp"
#include "core/duration.hpp"
#include "core/log.hpp"
#include "core/quantity.hpp"
#include "core/request_log.hpp"
#include "server/command.hpp"
#include "server/config_topic.hpp"
#include "server/server.hpp"

namespace sluice {
namespace {

/// The fields of request log lines (core/request_log.hpp), for --request-log-fields.
constexpr std::array<std::string_view, 18> kRequestLogFields = {
    "kind",          "method",         "path",     "url",      "status",   "latency_ms",
    "request_bytes", "response_bytes", "remote",   "trace_id", "event_id", "broker",
    "trigger",       "agent",          "revision", "replica",  "error",    "cancelled"};

/// Raises the soft limit on open files to the hard one, as Go's runtime (1.19+) does at start: every
/// connection, delivery and log segment holds a descriptor, and the usual soft default of 1024 (systemd's
/// too) would leave a server with a few hundred clients or brokers unable to accept or to roll a segment
/// long before the hard limit.
void raise_open_files_limit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur >= limit.rlim_max) return;
  const rlim_t soft = limit.rlim_cur;
  limit.rlim_cur = limit.rlim_max;
  if (::setrlimit(RLIMIT_NOFILE, &limit) != 0) {
    SLUICE_LOG(server, warn, "cannot raise the open files limit from {} to {}: {}", soft, limit.rlim_max,
               std::strerror(errno));
    return;
  }
  SLUICE_LOG(server, debug, "open files limit raised from {} to {}", soft, limit.rlim_max);
}

/// HOST:PORT (HOST may be [IPv6]).
void parse_listen(const std::string& option, const std::string& value, std::string& host,
                  std::uint16_t& port) {
  auto colon = value.rfind(':');
  if (colon == std::string::npos) throw std::runtime_error(option + " expects HOST:PORT, got " + value);
  host = value.substr(0, colon);
  if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  try {
    const std::string digits = value.substr(colon + 1);
    std::size_t used = 0;
    int number = std::stoi(digits, &used);
    if (used != digits.size() || number < 0 || number > 65535) throw std::out_of_range("port");
    port = static_cast<std::uint16_t>(number);
  } catch (const std::exception&) {
    throw std::runtime_error(option + " expects HOST:PORT with a port 0-65535, got " + value);
  }
}

/// --gpus, --cgroup-parent, --autoscaler KEY=VALUE (repeatable), --autoscaler-tick, --agent-max-buffered:
/// checked here so that a typo stops the server before it starts.
void take_agent_options(std::vector<std::string>& args, ServerOptions& options) {
  // Replicas' memory cgroups are a setting of this process (process_limits); set before any replica.
  if (auto parent = cli::take_option(args, "cgroup-parent"); parent) {
    if (auto st = agents::set_cgroup_parent(*parent); !st) throw std::runtime_error(st.error().to_string());
  }
  if (auto gpus = cli::take_option(args, "gpus")) {
    if (*gpus != "auto" && *gpus != "none") {
      if (auto inventory = agents::parse_gpu_inventory(*gpus); !inventory)
        throw std::runtime_error(inventory.error().to_string() +
                                 " (expected e.g. A100:80Gi,T4:16Gi, auto or none)");
    }
    options.gpus = *gpus;
  }
  while (auto setting = cli::take_option(args, "autoscaler")) {
    auto eq = setting->find('=');
    if (eq == std::string::npos) throw std::runtime_error("--autoscaler expects KEY=VALUE, got " + *setting);
    options.autoscaler_config[setting->substr(0, eq)] = setting->substr(eq + 1);
  }
  if (auto config = autoscaler::parse_autoscaler_config(options.autoscaler_config); !config)
    throw std::runtime_error("--autoscaler " + config.error().to_string());
  if (auto tick = cli::take_option(args, "autoscaler-tick")) {
    auto d = parse_duration(*tick);
    if (!d || d.value().count() <= 0)
      throw std::runtime_error("--autoscaler-tick expects a duration such as 2s");
    options.autoscaler_tick = d.value();
  }
  if (auto n = cli::take_int_option(args, "max-inactive-revisions", -1, 1000000,
                                    "a number (-1: keep every revision)"))
    options.max_inactive_revisions = static_cast<int>(*n);
  if (auto n = cli::take_int_option(args, "agent-max-buffered", 1, 10000000,
                                    "a number of requests between 1 and 10000000"))
    options.agent_max_buffered = static_cast<std::size_t>(*n);
}

int run_serve(const std::vector<std::string>& argv) {
  std::vector<std::string> args = argv;
  ServerOptions options;
  if (auto listen = cli::take_option(args, "listen"))
    parse_listen("--listen", *listen, options.host, options.port);
  if (auto listen = cli::take_option(args, "tls-listen"))
    parse_listen("--tls-listen", *listen, options.tls_host, options.tls_port);
  if (auto file = cli::take_option(args, "tls-cert")) options.tls_cert_file = *file;
  if (auto file = cli::take_option(args, "tls-key")) options.tls_key_file = *file;
  if (auto url = cli::take_option(args, "otlp-endpoint")) options.otlp_endpoint = *url;
  if (auto n = cli::take_int_option(args, "trace-history", 0, 10000000,
                                    "a number of spans from 0 to 10000000 (0: none kept)"))
    options.trace_history = static_cast<std::size_t>(*n);
  if (auto file = cli::take_option(args, "outbound-ca")) options.outbound_ca_file = *file;
  if (auto file = cli::take_option(args, "outbound-cert")) options.outbound_cert_file = *file;
  if (auto file = cli::take_option(args, "outbound-key")) options.outbound_key_file = *file;
  if (options.outbound_cert_file.empty() != options.outbound_key_file.empty())
    throw std::runtime_error("--outbound-cert and --outbound-key go together");
  if (options.tls_host.empty() != options.tls_cert_file.empty() ||
      options.tls_cert_file.empty() != options.tls_key_file.empty())
    throw std::runtime_error("--tls-listen, --tls-cert and --tls-key go together");
  if (auto dir = cli::take_option(args, "data-dir")) options.data_dir = *dir;
  if (auto url = cli::take_option(args, "config-store")) {
    if (auto parsed = parse_config_store_url(*url); !parsed)
      throw std::runtime_error(parsed.error().to_string());
    options.config_store = *url;
  }
  while (auto file = cli::take_option(args, "apply")) options.apply_files.push_back(*file);
  if (auto threads = cli::take_int_option(args, "threads", 0, 1024,
                                          "a number of I/O threads from 1 to 1024 (0: one per core)"))
    options.threads = static_cast<std::size_t>(*threads);
  if (auto max_body = cli::take_option(args, "max-body")) {
    auto bytes = parse_quantity_bytes(*max_body);
    if (!bytes || bytes.value() <= 0) throw std::runtime_error("--max-body expects a size such as 4Mi");
    options.max_body = static_cast<std::size_t>(bytes.value());
  }
  if (auto level = cli::take_option(args, "log-level")) log::set_level(*level);
  options.access_log = cli::take_flag(args, "access-log") || cli::take_flag(args, "request-log");
  std::vector<std::string> request_log_fields;
  if (auto fields = cli::take_option(args, "request-log-fields")) {
    std::istringstream in(*fields);
    for (std::string f; std::getline(in, f, ',');) {
      if (f.empty()) continue;
      if (std::find(kRequestLogFields.begin(), kRequestLogFields.end(), f) == kRequestLogFields.end()) {
        std::string valid;
        for (auto name : kRequestLogFields) valid += (valid.empty() ? "" : ", ") + std::string(name);
        throw std::runtime_error("--request-log-fields: unknown field \"" + f + "\" (valid: " + valid + ")");
      }
      request_log_fields.push_back(f);
    }
  }
  request_log::configure(options.access_log, std::move(request_log_fields));
  if (cli::take_flag(args, "no-fsync")) options.fsync = false;
  if (auto file = cli::take_option(args, "auth-tokens")) options.auth_tokens_file = *file;
  if (auto file = cli::take_option(args, "jwks")) options.jwks_file = *file;
  if (auto issuer = cli::take_option(args, "jwt-issuer")) options.jwt_issuer = *issuer;
  if (auto audience = cli::take_option(args, "jwt-audience")) options.jwt_audience = *audience;
  if (auto issuer = cli::take_option(args, "oidc-issuer")) options.oidc_issuer = *issuer;
  if (auto group = cli::take_option(args, "admin-group")) options.admin_group = *group;
  options.allow_unauthenticated = cli::take_flag(args, "allow-unauthenticated");
  take_agent_options(args, options);
  if (!args.empty()) throw std::runtime_error("unknown argument " + args.front() + " (see sluice help)");
  raise_open_files_limit();
  Server server(options);
  return server.run();
}

SLUICE_COMMAND(
    "serve",
    "[--listen HOST:PORT] [--data-dir DIR] [--config-store kafka://HOST:PORT/TOPIC] [--apply FILE]... "
    "[--threads N] [--max-body 1Mi] "
    "[--log-level info] [--request-log [--request-log-fields F,F...]] [--tls-listen HOST:PORT --tls-cert "
    "FILE --tls-key FILE] [--outbound-ca FILE] [--outbound-cert FILE --outbound-key FILE] "
    "[--otlp-endpoint URL] [--trace-history 100000] [--auth-tokens FILE] [--jwks FILE|URL | --oidc-issuer "
    "URL] [--jwt-issuer I] "
    "[--jwt-audience A] [--admin-group G] [--allow-unauthenticated] [--gpus A100:80Gi,T4:16Gi|auto|none] "
    "[--cgroup-parent auto|none|DIR] "
    "[--autoscaler KEY=VALUE]... [--autoscaler-tick 2s] [--agent-max-buffered 10000] "
    "[--max-inactive-revisions 20]  run the server",
    run_serve);

}  // namespace
}  // namespace sluice
