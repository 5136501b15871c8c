// The dashboard: GET /apis/v1/overview (server/overview.hpp) sampled every autoscaler tick, and the
// single-page UI at /ui whose files are compiled into the binary (server/ui/, embedded by
// cmake/embed_files.cmake): no CDN, works offline.

#include <memory>
#include <string_view>

#include "core/async.hpp"
#include "core/trace.hpp"
#include "server/overview.hpp"
#include "server/ui_assets.hpp"
#include "server/wiring.hpp"

namespace sluice {
namespace {

constexpr auto kSampleEvery = std::chrono::seconds(2);  // the autoscaler's tick

std::int64_t unix_now_ms() {
  return unix_now_ns() / 1000000;
}

struct Sampler {
  Sampler(asio::io_context& io, asio::thread_pool& blocking_in, Controller& controller_in)
      : timer(io), blocking(blocking_in), controller(controller_in) {}
  asio::steady_timer timer;
  asio::thread_pool& blocking;
  Controller& controller;
  Overview overview;
  std::atomic<bool> stopped{false};
};

// The timer's handler holds the sampler weakly: the route and the shutdown hook decide its lifetime.
void schedule_sample(const std::shared_ptr<Sampler>& sampler) {
  sampler->timer.expires_after(kSampleEvery);
  sampler->timer.async_wait([weak = std::weak_ptr<Sampler>(sampler)](beast::error_code ec) {
    auto s = weak.lock();
    if (ec || !s || s->stopped) return;
    asio::post(s->blocking, [weak] {
      auto s = weak.lock();
      if (!s || s->stopped) return;
      s->overview.sample(s->controller.list("Broker"), s->controller.list("Agent"), unix_now_ms());
      schedule_sample(s);
    });
  });
}

// `s` is owned by the route's handler, which outlives the requests it serves. (A shared_ptr passed by
// value into a coroutine is released twice by GCC 12 in some call shapes: pass a reference.)
asio::awaitable<HttpServerResponse> serve_overview(Sampler& s, HttpServerRequest& req) {
  if (req.method() != http::verb::get && req.method() != http::verb::head)
    co_return make_error_response(req, http::status::method_not_allowed, "use GET /apis/v1/overview");
  auto render = [&s] {
    return s.overview
        .render(s.controller.list("Broker"), s.controller.list("Trigger"), s.controller.list("Agent"),
                DeadLetterJournal::global().recent(), unix_now_ms())
        .dump();
  };
  std::string body = co_await offload(s.blocking, render);
  co_return make_response(req, http::status::ok, std::move(body), "application/json");
}

HttpServerResponse serve_asset(HttpServerRequest& req) {
  auto path = split_target(std::string_view(req.target().data(), req.target().size())).first;
  if (req.method() != http::verb::get && req.method() != http::verb::head)
    return make_error_response(req, http::status::method_not_allowed, "the dashboard is read-only: use GET");
  if (path == "/ui") {
    auto res = make_response(req, http::status::moved_permanently, "");
    res.set(http::field::location, "/ui/");
    return res;
  }
  if (path.rfind("/ui/", 0) != 0)
    return make_error_response(req, http::status::not_found, "no route for " + std::string(path));
  std::string_view file = path.substr(std::string_view("/ui/").size());
  if (file.empty()) file = "index.html";
  const ui::Asset* asset = ui::find_asset(file);
  if (!asset)
    return make_error_response(req, http::status::not_found, "no dashboard file " + std::string(path));
  auto res =
      make_response(req, http::status::ok, std::string(asset->content), std::string(asset->content_type));
  // The files change only with the binary: the browser may keep them but must ask again.
  res.set(http::field::cache_control, "no-cache");
  return res;
}

}  // namespace

void wire_dashboard(ServerParts& parts) {
  auto sampler = std::make_shared<Sampler>(parts.io.at(0), parts.blocking, parts.controller);
  schedule_sample(sampler);
  parts.http.route("/apis/v1/overview", [sampler](HttpServerRequest& req, RequestContext&) {
    return serve_overview(*sampler, req);
  });
  parts.http.route("/ui", [](HttpServerRequest& req, RequestContext&) -> asio::awaitable<HttpServerResponse> {
    co_return serve_asset(req);
  });
  parts.on_shutdown.push_back([sampler] {
    sampler->stopped = true;
    asio::post(sampler->timer.get_executor(), [sampler] { sampler->timer.cancel(); });
  });
}

}  // namespace sluice
