#pragma once
// The publish endpoint: POST /brokers/{broker} with binary, structured or batched CloudEvents.
// 202 only after the events are durable in the broker's log (group commit). Errors: 400 names the
// invalid attribute (or the malformed %-escape of the broker name), 404 unknown broker, 405 wrong
// method, 413 too large, 415 unsupported content type, 429/503 with Retry-After when the log cannot
// take more.

#include "broker/broker_registry.hpp"
#include "core/http_server.hpp"

namespace sluice {

/// Decides whether the request's principal may publish these events to the broker (403 otherwise).
using PublishAuthorizer = std::function<Status(const std::string& broker,
                                               const std::vector<CloudEvent>& events, const Principal& who)>;

class Ingress {
 public:
  explicit Ingress(BrokerRegistry& brokers) : brokers_(brokers) {}

  /// Checked after decoding, before anything is stored.
  void set_authorizer(PublishAuthorizer authorize) { authorize_ = std::move(authorize); }

  /// The handler for the "/brokers/" route.
  asio::awaitable<HttpServerResponse> handle(HttpServerRequest& request, RequestContext& ctx);

  /// Counts in sluice_ingress_requests_total a response to a publish request that handle() did not give
  /// (the HTTP layer or the guard refused it, the server was still recovering): under the broker its
  /// path names when that broker exists, under "" otherwise.
  void count_refused(std::string_view path, unsigned status);

 private:
  struct Prepared;
  Prepared prepare(HttpServerRequest& request, RequestContext& ctx);
  static HttpServerResponse respond(HttpServerRequest& request, const std::string& broker,
                                    const Result<std::uint64_t>& result);

  BrokerRegistry& brokers_;
  PublishAuthorizer authorize_;
};

}  // namespace sluice
