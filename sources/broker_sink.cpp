#include "sources/broker_sink.hpp"

#include "core/async.hpp"
#include "core/http_binding.hpp"

namespace sluice {
namespace {

asio::awaitable<Result<HttpResponse>> publish_request(std::string broker, BrokerPublish publish,
                                                      HttpRequest request) {
  HttpMessage message;
  for (const auto& [name, value] : request.headers) message.headers.emplace_back(name, value);
  message.body = std::move(request.body);
  auto events = decode_http(message);
  if (!events) {
    HttpResponse bad;
    bad.status = events.error().code != 0 ? events.error().code : 400;
    bad.body = events.error().to_string();
    co_return bad;
  }
  auto start = [broker, publish,
                events = std::move(events).value()](std::function<void(Result<std::uint64_t>)> done) mutable {
    publish(broker, std::move(events), std::move(done));
  };
  Result<std::uint64_t> published = co_await await_callback<Result<std::uint64_t>>(start);
  HttpResponse response;
  if (published) {
    response.status = 202;
  } else {
    response.status = published.error().code != 0 ? published.error().code : 503;
    response.body = published.error().to_string();
  }
  co_return response;
}

}  // namespace

SendFunction broker_sink(std::string broker, BrokerPublish publish) {
  return [broker = std::move(broker), publish = std::move(publish)](HttpRequest request) {
    return publish_request(broker, publish, std::move(request));
  };
}

}  // namespace sluice
