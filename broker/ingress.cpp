#include "broker/ingress.hpp"

#include "core/trace.hpp"

#include "core/async.hpp"
#include "core/http_binding.hpp"
#include "core/metrics.hpp"

namespace sluice {
namespace {

void count(const std::string& broker, int code) {
  MetricsRegistry::global()
      .counter("sluice_ingress_requests_total", "Publish requests by broker and status code.",
               {{"broker", broker}, {"code", std::to_string(code)}})
      .inc();
}

}  // namespace

asio::awaitable<HttpServerResponse> Ingress::handle(HttpServerRequest& request, RequestContext& ctx) {
  auto [path, query] = split_target(std::string_view(request.target().data(), request.target().size()));
  std::string_view rest = path.substr(std::string_view("/brokers/").size());
  if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  auto decoded = url_decode(rest);
  if (!decoded || decoded->empty() || decoded->find('/') != std::string::npos) {
    co_return make_error_response(
        request, http::status::not_found,
        "publish to /brokers/{broker}: \"" + std::string(rest) + "\" is not a broker name");
  }
  const std::string broker = *decoded;
  if (request.method() != http::verb::post) {
    count(broker, 405);
    auto res = make_error_response(request, http::status::method_not_allowed,
                                   "use POST to publish CloudEvents to a broker");
    res.set(http::field::allow, "POST");
    co_return res;
  }
  auto found = brokers_.find(broker);
  if (!found) {
    count(broker, 404);
    co_return make_error_response(request, http::status::not_found, "no broker named \"" + broker + "\"");
  }
  if (static_cast<std::int64_t>(request.body().size()) > found->spec.max_event_size &&
      !std::string_view(request[http::field::content_type]).starts_with("application/cloudevents-batch")) {
    count(broker, 413);
    co_return make_error_response(request, http::status::payload_too_large,
                                  "event of " + std::to_string(request.body().size()) +
                                      " bytes exceeds the broker's maxEventSize of " +
                                      std::to_string(found->spec.max_event_size));
  }
  HttpMessage message;
  message.headers.reserve(16);
  for (const auto& field : request) {
    message.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
  }
  message.body = std::move(request.body());
  auto events = decode_http(message);
  if (!events) {
    int code = events.error().code ? events.error().code : 400;
    count(broker, code);
    co_return make_error_response(request, static_cast<http::status>(code), events.error().to_string());
  }
  if (events.value().empty()) {
    count(broker, 400);
    co_return make_error_response(request, http::status::bad_request, "the batch holds no events");
  }
  // The W3C traceparent header of the publish request names the publisher's span for events that carry
  // no traceparent extension of their own.
  if (auto header = request["traceparent"]; !header.empty() && TraceParent::parse(header)) {
    for (auto& event : events.value())
      if (!event.extensions.count("traceparent"))
        event.extensions["traceparent"] = AttributeValue::of_string(std::string(header));
  }
  if (authorize_) {
    if (auto allowed = authorize_(broker, events.value(), ctx.principal); !allowed) {
      count(broker, 403);
      co_return make_error_response(request, http::status::forbidden, allowed.error().message);
    }
  }
  if (found->rate_limit) {
    if (auto wait = found->rate_limit->take(static_cast<double>(events.value().size()))) {
      count(broker, 429);
      auto res = make_error_response(request, http::status::too_many_requests,
                                     "broker \"" + broker + "\" is over its ingress rate limit of " +
                                         std::to_string(static_cast<std::int64_t>(found->spec.rate_limit)) +
                                         " events/s");
      res.set(http::field::retry_after, std::to_string((wait->count() + 999) / 1000));
      co_return res;
    }
  }
  auto publish = [this, &broker, &events](std::function<void(Result<std::uint64_t>)> done) {
    brokers_.publish(broker, std::move(events).value(), std::move(done));
  };
  auto result = co_await await_callback<Result<std::uint64_t>>(publish);
  if (!result) {
    int code = result.error().code ? result.error().code : 503;
    count(broker, code);
    auto res = make_error_response(request, static_cast<http::status>(code), result.error().to_string());
    if (code == 429 || code == 503) res.set(http::field::retry_after, "1");
    co_return res;
  }
  count(broker, 202);
  co_return make_response(request, http::status::accepted);
}

}  // namespace sluice
