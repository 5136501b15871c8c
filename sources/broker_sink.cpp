#include "sources/broker_sink.hpp"

#include <optional>

#include "core/asio.hpp"
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
  // The publish completes on a log thread: its result is posted back here and wakes the timer. (A timer
  // and redirect_error rather than async_initiate, whose temporaries GCC 12 destroys twice.)
  struct Pending {
    explicit Pending(asio::any_io_executor executor)
        : wake(executor, asio::steady_timer::time_point::max()) {}
    asio::steady_timer wake;
    std::optional<Result<std::uint64_t>> result;
  };
  auto executor = co_await asio::this_coro::executor;
  auto pending = std::make_shared<Pending>(executor);
  publish(broker, std::move(events).value(), [pending, executor](Result<std::uint64_t> r) {
    asio::post(executor, [pending, r = std::move(r)]() mutable {
      pending->result = std::move(r);
      pending->wake.cancel();
    });
  });
  while (!pending->result) {
    boost::system::error_code ec;
    auto token = asio::redirect_error(asio::use_awaitable, ec);
    co_await pending->wake.async_wait(token);
  }
  const Result<std::uint64_t>& published = *pending->result;
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
