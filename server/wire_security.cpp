// Authentication of every request (bearer tokens, JWTs) and authorization by EventPolicy resources:
// who may publish to which broker, call which agent or tool, and change resources (the control API asks
// authorize_change for each resource a request changes).

#include <atomic>
#include <chrono>
#include <optional>

#include "core/auth.hpp"
#include "core/log.hpp"
#include "server/event_policy.hpp"
#include "server/server.hpp"
#include "server/wiring.hpp"

namespace sluice {
namespace {

/// The first path segment after `prefix`, URL-decoded as the proxy and the gateways decode it (as it is
/// when it does not decode, so that it is still checked); nullopt when `path` does not start with `prefix`.
std::optional<std::string> segment_after(std::string_view path, std::string_view prefix) {
  if (path.rfind(prefix, 0) != 0) return std::nullopt;
  const auto rest = path.substr(prefix.size());
  const auto segment = rest.substr(0, rest.find('/'));
  return url_decode(segment).value_or(std::string(segment));
}

/// The agent a path addresses: /agents/{name}[@tag]/… or /a2a/{name}[@tag]/…, with the @tag dropped (a
/// policy naming "summarizer" also guards "/agents/%73ummarizer/" and "/agents/summarizer%40stable/");
/// empty for other paths.
std::string agent_of(std::string_view path) {
  for (std::string_view prefix : {"/agents/", "/a2a/"})
    if (auto name = segment_after(path, prefix)) return name->substr(0, name->find('@'));
  return "";
}

/// The agent of /apis/v1/logs/{agent}; empty for other paths.
std::string logs_agent_of(std::string_view path) {
  return segment_after(path, "/apis/v1/logs/").value_or("");
}

struct Security {
  std::unique_ptr<Authenticator> auth;
  PolicyEngine policies;
  std::string admin_group;
  std::atomic<std::int64_t> next_reload_ms{0};

  void maybe_reload() {
    const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::steady_clock::now().time_since_epoch())
                         .count();
    auto due = next_reload_ms.load();
    if (now < due || !next_reload_ms.compare_exchange_strong(due, now + 5000)) return;
    auth->reload_if_changed();
  }

  std::optional<HttpServerResponse> guard(HttpServerRequest& req, RequestContext& ctx) {
    const auto path = split_target(std::string_view(req.target().data(), req.target().size())).first;
    // The dashboard's files hold no data (it asks /apis/v1/overview with the user's token).
    const bool dashboard_file = path == "/ui" || path.rfind("/ui/", 0) == 0;
    if (path == "/healthz" || path == "/readyz" || dashboard_file || !auth->enabled()) return std::nullopt;
    maybe_reload();
    const auto header = req[http::field::authorization];
    auto who = auth->authenticate(std::string_view(header.data(), header.size()));
    if (!who) {
      auto res = make_error_response(req, http::status::unauthorized, who.error().message);
      res.set(http::field::www_authenticate, header.empty()
                                                 ? "Bearer realm=\"sluice\""
                                                 : "Bearer realm=\"sluice\", error=\"invalid_token\"");
      return res;
    }
    ctx.principal = std::move(who).value();
    if (auto agent = agent_of(path); !agent.empty()) {
      if (auto allowed = policies.authorize_agent(agent, "", ctx.principal); !allowed)
        return make_error_response(req, http::status::forbidden, allowed.error().message);
    }
    // An agent's logs are for whoever may call it, and for the admin group.
    if (auto agent = logs_agent_of(path); !agent.empty() && !ctx.principal.in_group(admin_group)) {
      if (auto allowed = policies.authorize_agent(agent, "", ctx.principal); !allowed)
        return make_error_response(req, http::status::forbidden,
                                   allowed.error().message + " (nor read its logs)");
    }
    return std::nullopt;
  }
};

}  // namespace

Status wire_security(ServerParts& parts, Ingress& ingress) {
  const auto& options = parts.options;
  AuthOptions auth_options;
  auth_options.tokens_file = options.auth_tokens_file;
  auth_options.jwks_file = options.jwks_file;
  auth_options.issuer = options.jwt_issuer;
  auth_options.audience = options.jwt_audience;
  auth_options.oidc_issuer = options.oidc_issuer;
  auto auth = Authenticator::create(auth_options, parts.clock);
  if (!auth) return auth.error();
  const bool exposed =
      !is_loopback(options.host) || (!options.tls_host.empty() && !is_loopback(options.tls_host));
  if (!auth.value()->enabled() && exposed && !options.allow_unauthenticated)
    return make_error(
        !is_loopback(options.host) ? "--listen " + options.host : "--tls-listen " + options.tls_host,
        "serving a non-loopback address without authentication: give --auth-tokens FILE or "
        "--jwks FILE|URL or --oidc-issuer URL, or --allow-unauthenticated to accept anyone who can connect");
  auto security = std::make_shared<Security>();
  security->auth = std::move(auth).value();
  security->admin_group = options.admin_group;
  if (security->auth->enabled())
    SLUICE_LOG(server, info, "authentication on ({}{}{}); resources change with group \"{}\"",
               options.auth_tokens_file.empty() ? "" : "tokens " + options.auth_tokens_file,
               options.jwks_file.empty() ? "" : " JWKS " + options.jwks_file,
               options.oidc_issuer.empty() ? "" : " OIDC issuer " + options.oidc_issuer, options.admin_group);

  parts.http.set_guard(
      [security](HttpServerRequest& req, RequestContext& ctx) { return security->guard(req, ctx); });
  ingress.set_authorizer(
      [security](const std::string& broker, const std::vector<CloudEvent>& events, const Principal& who) {
        return security->auth->enabled() ? security->policies.authorize_publish(broker, events, who) : ok();
      });
  parts.authorize_publish = [security](const std::string& broker, const std::vector<CloudEvent>& events,
                                       const Principal& who) {
    return security->auth->enabled() ? security->policies.authorize_publish(broker, events, who) : ok();
  };
  parts.authorize_agent = [security](const std::string& agent, const std::string& tool,
                                     const Principal& who) {
    return security->auth->enabled() ? security->policies.authorize_agent(agent, tool, who) : ok();
  };
  parts.authorize_change = [security](const std::string& kind, const std::string& name,
                                      const Principal& who) {
    return security->auth->enabled()
               ? security->policies.authorize_change(kind, name, who, security->admin_group)
               : ok();
  };
  parts.controller.handle_kind(
      "EventPolicy", KindHandler{[](const nlohmann::json& manifest) -> Status {
                                   auto policy = parse_event_policy(manifest);
                                   return policy ? ok() : Status(policy.error());
                                 },
                                 [security](const StoredResource& r) -> Status {
                                   auto policy = parse_event_policy(r.manifest);
                                   if (!policy) return policy.error();
                                   security->policies.put(std::move(policy).value());
                                   return ok();
                                 },
                                 [security](const std::string& name) { security->policies.remove(name); },
                                 [security](const StoredResource&) {
                                   return nlohmann::json{{"enforced", security->auth->enabled()}};
                                 },
                                 nullptr});
  return ok();
}

bool is_loopback(const std::string& host) {
  if (host == "localhost") return true;
  const std::string bare =
      host.size() > 2 && host.front() == '[' && host.back() == ']' ? host.substr(1, host.size() - 2) : host;
  boost::system::error_code ec;
  const auto address = asio::ip::make_address(bare, ec);
  return !ec && address.is_loopback();
}

}  // namespace sluice
