#include "server/control_api.hpp"

#include "broker/broker_spec.hpp"
#include "core/async.hpp"
#include "core/manifest.hpp"

namespace sluice {

HttpServerResponse json_response(const HttpServerRequest& req, http::status status,
                                 const nlohmann::json& body) {
  return make_response(req, status, body.dump(2) + "\n", "application/json");
}

namespace {

http::status status_of(const Error& e, http::status fallback = http::status::bad_request) {
  return e.code >= 400 && e.code < 600 ? static_cast<http::status>(e.code) : fallback;
}

}  // namespace

asio::awaitable<HttpServerResponse> ControlApi::handle(HttpServerRequest& request, RequestContext& ctx) {
  auto [path, query] = split_target(std::string_view(request.target().data(), request.target().size()));
  std::string_view rest = path.substr(std::string_view("/apis/v1/").size());
  if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  auto slash = rest.find('/');
  std::string plural(rest.substr(0, slash));
  // The name is percent-decoded, as the publish path's broker name is: /brokers/b%31 and
  // /apis/v1/brokers/b%31 name the same broker.
  std::string name;
  if (slash != std::string_view::npos) {
    auto decoded = url_decode(rest.substr(slash + 1));
    if (!decoded)
      co_return make_error_response(request, http::status::bad_request,
                                    "malformed percent-encoding in " + std::string(path));
    name = std::move(*decoded);
  }
  // Every 405 says in Allow which methods the path takes.
  auto not_allowed = [&request](std::string message, const char* allow) {
    auto res = make_error_response(request, http::status::method_not_allowed, message);
    res.set(http::field::allow, allow);
    return res;
  };
  if (plural == "apply") {
    if (request.method() != http::verb::post) co_return not_allowed("use POST /apis/v1/apply", "POST");
    co_return co_await apply(request, ctx, nullptr, "");
  }
  const KindInfo* kind = nullptr;
  for (const auto& k : known_kinds())
    if (k.plural == plural) kind = &k;
  if (!kind) {
    std::string known;
    for (const auto& k : known_kinds()) known += (known.empty() ? "" : ", ") + k.plural;
    co_return make_error_response(request, http::status::not_found,
                                  "unknown resource type \"" + plural + "\" (known: " + known + ")");
  }
  if (name.find('/') != std::string::npos)
    co_return make_error_response(request, http::status::not_found, "no such path " + std::string(path));
  const char* allow = name.empty() ? "GET, POST" : "GET, PUT, DELETE";
  switch (request.method()) {
    case http::verb::get: {
      auto read = [&]() -> std::optional<nlohmann::json> {
        if (name.empty()) return controller_.list(kind->kind);
        return controller_.describe(kind->kind, name);
      };
      auto result = co_await offload(blocking_, read);
      if (!result)
        co_return make_error_response(request, http::status::not_found,
                                      not_found_error(kind->kind, name).message);
      co_return json_response(request, http::status::ok, *result);
    }
    case http::verb::put:
      if (name.empty()) co_return not_allowed("PUT needs a name: /apis/v1/" + plural + "/{name}", allow);
      co_return co_await apply(request, ctx, kind, name);
    case http::verb::post:
      if (!name.empty())
        co_return not_allowed("POST to /apis/v1/" + plural + " (the name comes from the manifest)", allow);
      co_return co_await apply(request, ctx, kind, "");
    case http::verb::delete_: {
      if (name.empty()) co_return not_allowed("DELETE needs a name: /apis/v1/" + plural + "/{name}", allow);
      if (auto allowed = may_change(kind->kind, name, ctx); !allowed)
        co_return make_error_response(request, http::status::forbidden, allowed.error().message);
      auto remove = [&] { return controller_.remove(kind->kind, name); };
      auto st = co_await offload(blocking_, remove);
      if (!st) co_return make_error_response(request, status_of(st.error()), st.error().to_string());
      co_return json_response(request, http::status::ok,
                              {{"kind", kind->kind}, {"name", name}, {"action", "deleted"}});
    }
    default:
      co_return not_allowed("use " + std::string(allow) + " on " + std::string(path), allow);
  }
}

asio::awaitable<HttpServerResponse> ControlApi::apply(HttpServerRequest& request, const RequestContext& ctx,
                                                      const KindInfo* expected_kind,
                                                      const std::string& expected_name) {
  auto manifests = parse_manifests(request.body());
  if (!manifests)
    co_return make_error_response(request, http::status::bad_request, manifests.error().to_string());
  auto docs = std::move(manifests).value();
  if (docs.empty())
    co_return make_error_response(request, http::status::bad_request, "no manifest in the request");
  if (expected_kind) {
    if (docs.size() != 1)
      co_return make_error_response(request, http::status::bad_request,
                                    "one manifest expected here; use POST /apis/v1/apply for several");
    auto& doc = docs.front();
    if (!doc.contains("kind")) doc["kind"] = expected_kind->kind;
    if (!doc.contains("apiVersion")) doc["apiVersion"] = expected_kind->api_versions.front();
    if (!expected_name.empty()) {
      if (!doc.contains("metadata")) doc["metadata"] = nlohmann::json::object();
      if (!doc["metadata"].contains("name")) doc["metadata"]["name"] = expected_name;
      if (doc["metadata"]["name"] != expected_name)
        co_return make_error_response(request, http::status::bad_request,
                                      "metadata.name " + doc["metadata"]["name"].dump() +
                                          " does not match the path's name \"" + expected_name + "\"");
    }
    auto kind = resolve_manifest_kind(doc);
    if (kind && kind.value() != expected_kind)
      co_return make_error_response(
          request, http::status::bad_request,
          "kind " + kind.value()->kind + " sent to /apis/v1/" + expected_kind->plural);
  }
  // Documents whose kind or name is wrong are refused by the controller's validation; every other one
  // must be allowed before anything is applied.
  for (auto& doc : docs) {
    auto kind = resolve_manifest_kind(doc);
    auto name = manifest_name(doc);
    if (!kind || !name) continue;
    if (auto allowed = may_change(kind.value()->kind, name.value(), ctx); !allowed)
      co_return make_error_response(request, http::status::forbidden, allowed.error().message);
  }
  auto apply_all = [&] { return controller_.apply(std::move(docs)); };
  auto result = co_await offload(blocking_, apply_all);
  if (!result) co_return make_error_response(request, status_of(result.error()), result.error().to_string());
  co_return json_response(request, http::status::ok, {{"applied", result.value()}});
}

}  // namespace sluice
