#include "broker/ingress.hpp"

#include <algorithm>
#include <map>
#include <optional>

#include <boost/container/small_vector.hpp>

#include "core/async.hpp"
#include "core/http_binding.hpp"
#include "core/metrics.hpp"
#include "core/trace.hpp"

namespace sluice {
namespace {

/// The request counter of a broker and status code. Series are looked up once per I/O thread (the
/// registry's lookup builds and sorts labels under a lock). Requests naming no broker count under
/// broker="", so that made-up names cannot grow the series without bound. A deleted broker's series are
/// retired: the cache starts over when the registry's generation changes.
Counter& requests_counter(const std::string& broker, int code) {
  thread_local std::map<std::pair<std::string, int>, Counter*> cache;
  thread_local std::uint64_t generation = 0;
  if (const auto now = MetricsRegistry::global().generation(); now != generation) {
    cache.clear();
    generation = now;
  }
  auto key = std::make_pair(broker, code);
  auto it = cache.find(key);
  if (it == cache.end()) {
    Counter* counter = &MetricsRegistry::global().counter(
        "sluice_ingress_requests_total", "Publish requests by broker and status code.",
        {{"broker", broker}, {"code", std::to_string(code)}});
    it = cache.emplace(std::move(key), counter).first;
  }
  return *it->second;
}

}  // namespace

/// What a publish request becomes before it is stored: the answer (an error), or the events to append.
struct Ingress::Prepared {
  std::optional<HttpServerResponse> answer;
  std::string broker;
  std::shared_ptr<Broker> found;
  std::vector<CloudEvent> events;
};

namespace {

// What follows /brokers/ in a publish path, without one trailing slash: the broker's name, still
// percent-encoded.
std::string_view broker_segment(std::string_view path) {
  std::string_view rest = path.substr(std::min(path.size(), std::string_view("/brokers/").size()));
  if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  return rest;
}

}  // namespace

// Everything before the append runs here, outside the coroutine: a coroutine frame holds every local
// and temporary of its body, and a small frame is what keeps the per-request allocation cheap.
Ingress::Prepared Ingress::prepare(HttpServerRequest& request, RequestContext& ctx) {
  Prepared out;
  auto fail = [&](http::status status, std::string message, const std::string& counted_as) {
    requests_counter(counted_as, static_cast<int>(status)).inc();
    out.answer = make_error_response(request, status, std::move(message));
    return std::move(out);
  };
  auto [path, query] = split_target(std::string_view(request.target().data(), request.target().size()));
  const std::string_view rest = broker_segment(path);
  auto decoded = url_decode(rest);
  if (!decoded)
    return fail(http::status::bad_request,
                "publish to /brokers/{broker}: malformed percent-encoding in \"" + std::string(rest) +
                    "\" (a % must be followed by two hex digits)",
                "");
  if (decoded->empty() || decoded->find('/') != std::string::npos)
    return fail(http::status::not_found,
                "publish to /brokers/{broker}: \"" + std::string(rest) + "\" is not a broker name", "");
  out.broker = std::move(*decoded);
  const std::string& broker = out.broker;
  auto found = brokers_.find(broker);
  if (request.method() != http::verb::post) {
    auto answer = fail(http::status::method_not_allowed, "use POST to publish CloudEvents to a broker",
                       found ? broker : "");
    answer.answer->set(http::field::allow, "POST");
    return answer;
  }
  if (!found) {
    Error error = brokers_.not_found(broker);
    const auto status = static_cast<http::status>(error.code);
    auto answer = fail(status, std::move(error.message), "");
    if (status == http::status::service_unavailable)
      answer.answer->set(http::field::retry_after, std::to_string(BrokerRegistry::kUnavailableRetry.count()));
    return answer;
  }
  if (static_cast<std::int64_t>(request.body().size()) > found->spec.max_event_size &&
      detect_http_mode(std::string_view(request[http::field::content_type])) != HttpMode::Batched)
    return fail(http::status::payload_too_large,
                "event of " + std::to_string(request.body().size()) +
                    " bytes (its body alone) exceeds the broker's maxEventSize of " +
                    std::to_string(found->spec.max_event_size),
                broker);
  const auto body_bytes = static_cast<std::int64_t>(request.body().size());
  boost::container::small_vector<std::pair<std::string_view, std::string_view>, 16> headers;
  for (const auto& field : request) {
    headers.emplace_back(std::string_view(field.name_string().data(), field.name_string().size()),
                         std::string_view(field.value().data(), field.value().size()));
  }
  auto events = decode_http({headers.data(), headers.size()}, std::move(request.body()));
  if (!events) {
    const int code = events.error().code ? events.error().code : 400;
    return fail(static_cast<http::status>(code), events.error().to_string(), broker);
  }
  // An empty batch is a valid request (JSON format §4.3): there is nothing to store, so it is done.
  if (events.value().empty()) {
    requests_counter(broker, 202).inc();
    out.answer = make_response(request, http::status::accepted);
    return out;
  }
  // The W3C traceparent header of the publish request names the publisher's span for events that carry
  // no traceparent extension of their own; its tracestate goes with it (W3C Trace Context §3.3: a
  // participant propagates tracestate along with traceparent), as the CloudEvents distributed tracing
  // extension carries both. Several tracestate headers are one list (§3.3.1, RFC 9110 §5.3).
  if (auto header = request["traceparent"]; !header.empty() && TraceParent::parse(header)) {
    std::string tracestate;
    for (auto [it, end] = request.equal_range("tracestate"); it != end; ++it) {
      auto value = std::string_view(it->value().data(), it->value().size());
      while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
      while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
      if (value.empty()) continue;
      if (!tracestate.empty()) tracestate += ',';
      tracestate += value;
    }
    for (auto& event : events.value()) {
      if (event.extensions.count("traceparent")) continue;
      event.extensions["traceparent"] = AttributeValue::of_string(std::string(header));
      if (!tracestate.empty()) event.extensions["tracestate"] = AttributeValue::of_string(tracestate);
    }
  }
  if (authorize_) {
    if (auto allowed = authorize_(broker, events.value(), ctx.principal); !allowed)
      return fail(http::status::forbidden, allowed.error().message, broker);
  }
  // Requests that can never pass are refused before any tokens are taken; the event tokens of a request
  // the byte quota then refuses are given back.
  const auto n_events = static_cast<double>(events.value().size());
  auto quota = [&] {
    return "ingress quota of " + std::to_string(found->spec.quota_bytes_per_second) + " bytes/s";
  };
  if (found->rate_limit && n_events > found->rate_limit->burst())
    return fail(http::status::payload_too_large,
                "a batch of " + std::to_string(events.value().size()) + " events can never pass broker \"" +
                    broker + "\"'s rate limit's burst of " +
                    std::to_string(static_cast<std::int64_t>(found->rate_limit->burst())) +
                    " events: send smaller batches",
                broker);
  if (found->byte_quota && body_bytes > found->spec.quota_burst_bytes)
    return fail(http::status::payload_too_large,
                "a body of " + std::to_string(body_bytes) + " bytes can never pass broker \"" + broker +
                    "\"'s " + quota() + " (burst " + std::to_string(found->spec.quota_burst_bytes) +
                    " bytes): send smaller batches",
                broker);
  auto too_many = [&](std::string message, std::chrono::milliseconds wait) {
    auto answer = fail(http::status::too_many_requests, std::move(message), broker);
    answer.answer->set(http::field::retry_after,
                       std::to_string(std::max<std::int64_t>(1, (wait.count() + 999) / 1000)));
    return answer;
  };
  if (found->rate_limit) {
    if (auto wait = found->rate_limit->take(n_events))
      return too_many("broker \"" + broker + "\" is over its ingress rate limit of " +
                          std::to_string(static_cast<std::int64_t>(found->spec.rate_limit)) + " events/s",
                      *wait);
  }
  if (found->byte_quota) {
    if (auto wait = found->byte_quota->take(static_cast<double>(body_bytes))) {
      if (found->rate_limit) found->rate_limit->give_back(n_events);
      return too_many("broker \"" + broker + "\" is over its " + quota(), *wait);
    }
  }
  out.events = std::move(events).value();
  out.found = std::move(found);
  return out;
}

asio::awaitable<HttpServerResponse> Ingress::handle(HttpServerRequest& request, RequestContext& ctx) {
  Prepared prepared = prepare(request, ctx);
  if (prepared.answer) co_return std::move(*prepared.answer);
  auto publish = [this, &prepared, home = co_await asio::this_coro::executor](
                     std::function<void(Result<std::uint64_t>)> done) {
    brokers_.publish(std::move(prepared.found), std::move(prepared.events), std::move(done), home);
  };
  // With a home executor the completion runs on this thread, so the coroutine resumes there directly.
  auto result = co_await await_callback_dispatched<Result<std::uint64_t>>(publish);
  co_return respond(request, prepared.broker, result);
}

void Ingress::count_refused(std::string_view path, unsigned status) {
  auto decoded = url_decode(broker_segment(path));
  const bool known = decoded && !decoded->empty() && brokers_.find(*decoded) != nullptr;
  requests_counter(known ? *decoded : std::string(), static_cast<int>(status)).inc();
}

HttpServerResponse Ingress::respond(HttpServerRequest& request, const std::string& broker,
                                    const Result<std::uint64_t>& result) {
  if (!result) {
    const int code = result.error().code ? result.error().code : 503;
    requests_counter(broker, code).inc();
    auto res = make_error_response(request, static_cast<http::status>(code), result.error().to_string());
    if (code == 429 || code == 503) res.set(http::field::retry_after, "1");
    return res;
  }
  requests_counter(broker, 202).inc();
  return make_response(request, http::status::accepted);
}

}  // namespace sluice
