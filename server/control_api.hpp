#pragma once
// The control-plane REST API under /apis/v1:
//   GET    /apis/v1/{plural}            list, with status
//   GET    /apis/v1/{plural}/{name}     one, with status
//   PUT    /apis/v1/{plural}/{name}     create or replace (JSON or YAML manifest)
//   POST   /apis/v1/{plural}            create or replace (name from the manifest)
//   DELETE /apis/v1/{plural}/{name}
//   POST   /apis/v1/apply               multi-document YAML/JSON, validated whole, then applied
//
// Every change (PUT, POST, DELETE) asks the change authorizer about each resource it touches first; one
// refusal refuses the request whole (403), and nothing changes.

#include "core/http_server.hpp"
#include "server/controller.hpp"

namespace sluice {

class ControlApi {
 public:
  ControlApi(Controller& controller, asio::thread_pool& blocking)
      : controller_(controller), blocking_(blocking) {}

  asio::awaitable<HttpServerResponse> handle(HttpServerRequest& request, RequestContext& ctx);

  /// Whether `who` may create, replace or delete the resource `kind`/`name`; an Error (403) says why
  /// not. Unset: everyone may. Set before the server serves.
  using ChangeAuthorizer =
      std::function<Status(const std::string& kind, const std::string& name, const Principal& who)>;
  void set_change_authorizer(ChangeAuthorizer authorize) { authorize_change_ = std::move(authorize); }

 private:
  asio::awaitable<HttpServerResponse> apply(HttpServerRequest& request, const RequestContext& ctx,
                                            const KindInfo* expected_kind, const std::string& expected_name);
  Status may_change(const std::string& kind, const std::string& name, const RequestContext& ctx) const {
    return authorize_change_ ? authorize_change_(kind, name, ctx.principal) : ok();
  }
  Controller& controller_;
  asio::thread_pool& blocking_;
  ChangeAuthorizer authorize_change_;
};

/// Responds with a JSON body.
HttpServerResponse json_response(const HttpServerRequest& req, http::status status,
                                 const nlohmann::json& body);

}  // namespace sluice
