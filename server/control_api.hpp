#pragma once
// The control-plane REST API under /apis/v1:
//   GET    /apis/v1/{plural}            list, with status
//   GET    /apis/v1/{plural}/{name}     one, with status
//   PUT    /apis/v1/{plural}/{name}     create or replace (JSON or YAML manifest)
//   POST   /apis/v1/{plural}            create or replace (name from the manifest)
//   DELETE /apis/v1/{plural}/{name}
//   POST   /apis/v1/apply               multi-document YAML/JSON, validated whole, then applied

#include "core/http_server.hpp"
#include "server/controller.hpp"

namespace sluice {

class ControlApi {
 public:
  ControlApi(Controller& controller, asio::thread_pool& blocking)
      : controller_(controller), blocking_(blocking) {}

  asio::awaitable<HttpServerResponse> handle(HttpServerRequest& request, RequestContext& ctx);

 private:
  asio::awaitable<HttpServerResponse> apply(HttpServerRequest& request, const KindInfo* expected_kind,
                                            const std::string& expected_name);
  Controller& controller_;
  asio::thread_pool& blocking_;
};

/// Responds with a JSON body.
HttpServerResponse json_response(const HttpServerRequest& req, http::status status,
                                 const nlohmann::json& body);

}  // namespace sluice
