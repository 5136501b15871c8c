#pragma once
// The data-plane HTTP/1.1 server on Boost.Asio + Beast: one coroutine per connection, keep-alive,
// a body limit, client-disconnect detection (so proxies can cancel upstream work), chunked streaming
// for SSE, and an orderly stop: stop accepting, close connections idle or still receiving a request, let
// requests received whole finish.

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/asio.hpp"
#include "core/io_pool.hpp"
#include "core/principal.hpp"
#include "core/result.hpp"

namespace sluice {

using HttpServerRequest = http::request<http::string_body>;
using HttpServerResponse = http::response<http::string_body>;

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8080;         // 0 picks a free port (see HttpServer::port())
  std::size_t body_limit = 1 << 20;  // larger bodies get 413
  std::size_t header_limit = 64 << 10;
  std::chrono::seconds idle_timeout{75};  // keep-alive connections idle longer are closed
  std::chrono::seconds read_timeout{30};  // a request must arrive within this once started
  bool access_log = false;                // one JSON line per request on the "access" logger
};

/// Per-request context handed to handlers.
class RequestContext : public std::enable_shared_from_this<RequestContext> {
 public:
  RequestContext(beast::tcp_stream& stream, std::string remote)
      : stream_(stream), remote_(std::move(remote)) {}

  const std::string& remote_address() const { return remote_; }
  asio::any_io_executor executor() { return stream_.get_executor(); }

  /// True once the client closed its connection while the request was being handled (seen only after
  /// on_cancel: the connection is watched for handlers that can stop early, not for every request).
  bool cancelled() const { return cancelled_; }
  /// Runs `fn` (on the connection's strand) when the client disconnects; at once if it already has.
  /// The first call starts watching the connection.
  void on_cancel(std::function<void()> fn);

  /// Streaming: sends the status line and headers with chunked transfer encoding. Afterwards the
  /// handler writes chunks and finally returns any response (it is ignored). Returns false when the
  /// client is gone.
  asio::awaitable<bool> start_stream(HttpServerResponse head);
  asio::awaitable<bool> write_chunk(std::string_view data);
  asio::awaitable<bool> end_stream();
  bool streamed() const { return streamed_; }

  /// Internal: called by the server when it sees the client disconnect.
  void fire_cancel();
  /// Internal: whether the connection is being watched (the server ends the watch after the handler).
  bool watching() const { return watching_; }

  /// Set by the guard before the handler runs.
  Principal principal;

 private:
  beast::tcp_stream& stream_;
  std::string remote_;
  bool cancelled_ = false;
  bool watching_ = false;
  std::vector<std::function<void()>> cancel_callbacks_;
  bool streamed_ = false;
  bool stream_ended_ = false;
};

using HttpHandler = std::function<asio::awaitable<HttpServerResponse>(HttpServerRequest&, RequestContext&)>;

/// Runs before every handler: returns a response to answer at once (401, 403), or nothing to go on
/// (after filling ctx.principal). Synchronous: it must not block.
using HttpGuard = std::function<std::optional<HttpServerResponse>(HttpServerRequest&, RequestContext&)>;

/// Told of each response the server gives where no route's handler answered: a request the HTTP layer
/// refuses (413 over the body limit, 431, 400 for a malformed head or body framing, 501 for a transfer
/// coding it cannot undo), one the guard refuses (401, 403), or one whose handler threw (500). `path` is
/// the request's path; "" when its head was not read whole (431), and then no observer is told.
using HttpRefusalObserver = std::function<void(std::string_view path, unsigned status)>;

/// Opens, binds and listens (with SO_REUSEADDR). `option` names the setting in errors ("--listen").
Status open_acceptor(asio::ip::tcp::acceptor& acceptor, const std::string& host, std::uint16_t port,
                     const std::string& option);

/// Builds a response with a body and content type, keep-alive matching the request.
HttpServerResponse make_response(const HttpServerRequest& req, http::status status, std::string body = "",
                                 std::string_view content_type = "text/plain; charset=utf-8");

/// A JSON error body {"error": message} with the status.
HttpServerResponse make_error_response(const HttpServerRequest& req, http::status status,
                                       std::string_view message);

class HttpServer {
 public:
  /// Accepts on the pool's first context and spreads connections over all of them.
  HttpServer(IoPool& pool, HttpServerOptions options);
  ~HttpServer();

  /// Routes by longest matching path prefix ("/" catches everything). Register before start().
  void route(std::string prefix, HttpHandler handler);

  /// Sets the guard every request passes before its handler. Set before start().
  void set_guard(HttpGuard guard) { guard_ = std::move(guard); }

  /// Registers the observer of the refusals (see HttpRefusalObserver) of requests whose path starts with
  /// `prefix`, the longest matching prefix winning: a route that counts its own answers counts these
  /// too, each response once. Register before start().
  void observe_refusals(std::string prefix, HttpRefusalObserver observer);

  /// Binds and starts accepting. Error names the address when binding fails.
  Status start();
  /// The bound port (after start()).
  std::uint16_t port() const { return port_; }

  /// Stops accepting and closes the connections that are idle or still receiving a request (headers or
  /// body: nothing was acknowledged to them); requests received whole run to completion and are
  /// answered (their connections close afterwards). Thread-safe.
  void stop();
  /// Requests being handled right now.
  std::size_t in_flight() const { return in_flight_.load(); }
  /// Open connections.
  std::size_t connections() const { return connections_.load(); }

 private:
  asio::awaitable<void> accept_loop();
  asio::awaitable<void> session(asio::ip::tcp::socket socket);
  const HttpHandler* find_route(std::string_view path) const;
  void report_refusal(std::string_view path, unsigned status) const;

  IoPool& pool_;
  HttpServerOptions options_;
  asio::ip::tcp::acceptor acceptor_;
  std::vector<std::pair<std::string, HttpHandler>> routes_;
  std::vector<std::pair<std::string, HttpRefusalObserver>> refusal_observers_;
  HttpGuard guard_;
  std::uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<std::size_t> in_flight_{0};
  std::atomic<std::size_t> connections_{0};
  struct Tracked;
  std::mutex sessions_mu_;
  std::vector<std::weak_ptr<Tracked>> sessions_;
};

/// Decodes %XX in a URL path segment; nullopt when malformed.
std::optional<std::string> url_decode(std::string_view s);

/// Splits a request target into path and query string.
std::pair<std::string_view, std::string_view> split_target(std::string_view target);

/// The value of `name` in a query string ("a=1&b=2"), decoded; nullopt when absent.
std::optional<std::string> query_param(std::string_view query, std::string_view name);

}  // namespace sluice
