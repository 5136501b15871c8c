#include "core/http_server.hpp"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <utility>

#include <nlohmann/json.hpp>

#include "core/log.hpp"
#include "core/request_log.hpp"

namespace sluice {

struct HttpServer::Tracked {
  explicit Tracked(asio::ip::tcp::socket socket) : stream(std::move(socket)) {}
  beast::tcp_stream stream;
  // A request read whole is being handled or answered: stop() lets it finish. Idle connections and
  // requests still arriving (nothing was acknowledged to them) are closed by stop() at once. Touched
  // only on the connection's strand.
  bool busy = false;
};

namespace {

using asio::redirect_error;
using asio::use_awaitable;

// Watches a connection while its request is being handled: a readable socket that peeks as EOF (or
// an error) means the client went away, which cancels the request's work.
void watch_disconnect(beast::tcp_stream& stream, std::shared_ptr<RequestContext> ctx) {
  stream.socket().async_wait(asio::ip::tcp::socket::wait_read, [&stream, ctx](beast::error_code ec) {
    if (ec) return;  // cancelled: the handler finished
    char byte;
    ssize_t n = ::recv(stream.socket().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
      ctx->fire_cancel();
    } else if (n < 0) {
      watch_disconnect(stream, ctx);
    }
    // n > 0: the client pipelined another request; it is still there.
  });
}

// The answer to a request whose head the parser refused, or whose body is too large: nullopt for errors
// that leave nothing to answer (the peer went away, a timeout).
std::optional<std::pair<http::status, std::string>> parse_refusal(beast::error_code ec,
                                                                  const HttpServerOptions& options) {
  if (ec == http::error::body_limit)
    return std::pair(http::status::payload_too_large,
                     "request body exceeds the limit of " + std::to_string(options.body_limit) + " bytes");
  if (ec == http::error::header_limit)
    return std::pair(
        http::status::request_header_fields_too_large,
        "request headers exceed the limit of " + std::to_string(options.header_limit) + " bytes");
  if (ec == http::error::bad_content_length)
    return std::pair(http::status::bad_request, std::string("malformed Content-Length header"));
  if (ec == http::error::bad_chunk || ec == http::error::bad_chunk_extension)
    return std::pair(http::status::bad_request, std::string("malformed chunked body"));
  if (ec == http::error::bad_transfer_encoding)
    return std::pair(http::status::bad_request,
                     std::string("malformed Transfer-Encoding header, or one sent with Content-Length"));
  if (ec == http::error::bad_line_ending || ec == http::error::bad_method || ec == http::error::bad_target ||
      ec == http::error::bad_version || ec == http::error::bad_field || ec == http::error::bad_value ||
      ec == http::error::bad_obs_fold)
    return std::pair(http::status::bad_request, "malformed request: " + ec.message());
  return std::nullopt;
}

// A head whose body framing cannot be trusted (RFC 9112 §6): a body the server would read with other
// bounds than a proxy in front of it (request smuggling), or a coding it cannot undo. (The parser itself
// refuses Transfer-Encoding together with Content-Length.)
std::optional<std::pair<http::status, std::string>> framing_refusal(const http::request_header<>& head) {
  const auto te = head[http::field::transfer_encoding];
  if (te.empty()) return std::nullopt;
  std::string last;
  std::string unsupported;
  std::size_t chunked = 0;
  for (const auto& coding : http::ext_list{te}) {
    last = std::string(coding.first);
    if (beast::iequals(coding.first, "chunked")) {
      ++chunked;
    } else if (unsupported.empty()) {
      unsupported = last;
    }
  }
  if (last.empty() || !beast::iequals(last, "chunked") || chunked > 1)
    return std::pair(http::status::bad_request,
                     "Transfer-Encoding \"" + std::string(te) +
                         "\": a request's body must be chunked exactly once, as its last coding");
  if (!unsupported.empty())
    return std::pair(http::status::not_implemented,
                     "transfer coding \"" + unsupported + "\" is not supported (only chunked)");
  return std::nullopt;
}

void log_access(const HttpServerRequest& request, unsigned status, std::size_t request_bytes,
                std::size_t response_bytes, std::chrono::steady_clock::time_point started,
                const std::string& remote, bool cancelled) {
  auto micros =
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - started)
          .count();
  nlohmann::json line{{"kind", "http"},
                      {"method", std::string(request.method_string())},
                      {"path", std::string(request.target())},
                      {"status", status},
                      {"latency_ms", static_cast<double>(micros) / 1000.0},
                      {"request_bytes", request_bytes},
                      {"response_bytes", response_bytes},
                      {"remote", remote}};
  if (auto tp = request["traceparent"]; !tp.empty()) line["trace_id"] = request_log::trace_id_of(tp);
  if (cancelled) line["cancelled"] = true;
  request_log::write(std::move(line));
}

}  // namespace

void RequestContext::on_cancel(std::function<void()> fn) {
  if (cancelled_) {
    fn();
    return;
  }
  cancel_callbacks_.push_back(std::move(fn));
  if (!watching_) {
    // Arming a wait re-registers the socket with epoll (a system call), so only requests whose
    // handler can stop early pay for it.
    watching_ = true;
    watch_disconnect(stream_, shared_from_this());
  }
}

void RequestContext::fire_cancel() {
  if (std::exchange(cancelled_, true)) return;
  auto callbacks = std::move(cancel_callbacks_);
  for (auto& fn : callbacks) fn();
}

asio::awaitable<bool> RequestContext::start_stream(HttpServerResponse head) {
  streamed_ = true;
  head.chunked(true);
  http::response_serializer<http::string_body> serializer(head);
  beast::error_code ec;
  co_await http::async_write_header(stream_, serializer, redirect_error(use_awaitable, ec));
  co_return !ec;
}

asio::awaitable<bool> RequestContext::write_chunk(std::string_view data) {
  if (data.empty()) co_return true;  // an empty chunk would end the stream
  beast::error_code ec;
  co_await asio::async_write(stream_, http::make_chunk(asio::buffer(data.data(), data.size())),
                             redirect_error(use_awaitable, ec));
  co_return !ec;
}

asio::awaitable<bool> RequestContext::end_stream() {
  if (stream_ended_) co_return true;
  stream_ended_ = true;
  beast::error_code ec;
  co_await asio::async_write(stream_, http::make_chunk_last(), redirect_error(use_awaitable, ec));
  co_return !ec;
}

HttpServerResponse make_response(const HttpServerRequest& req, http::status status, std::string body,
                                 std::string_view content_type) {
  HttpServerResponse res{status, req.version()};
  res.set(http::field::server, "sluice");
  if (!body.empty() || status != http::status::accepted) res.set(http::field::content_type, content_type);
  res.keep_alive(req.keep_alive());
  res.body() = std::move(body);
  res.prepare_payload();
  return res;
}

HttpServerResponse make_error_response(const HttpServerRequest& req, http::status status,
                                       std::string_view message) {
  std::string body = "{\"error\":\"";
  for (char c : message) {
    switch (c) {
      case '"':
        body += "\\\"";
        break;
      case '\\':
        body += "\\\\";
        break;
      case '\n':
        body += "\\n";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          body += buf;
        } else {
          body += c;
        }
    }
  }
  body += "\"}\n";
  return make_response(req, status, std::move(body), "application/json");
}

HttpServer::HttpServer(IoPool& pool, HttpServerOptions options)
    : pool_(pool), options_(std::move(options)), acceptor_(pool.at(0)) {}

HttpServer::~HttpServer() {
  stop();
}

void HttpServer::route(std::string prefix, HttpHandler handler) {
  routes_.emplace_back(std::move(prefix), std::move(handler));
  std::sort(routes_.begin(), routes_.end(),
            [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
}

const HttpHandler* HttpServer::find_route(std::string_view path) const {
  for (const auto& [prefix, handler] : routes_) {
    if (path.substr(0, prefix.size()) == prefix) return &handler;
  }
  return nullptr;
}

void HttpServer::observe_refusals(std::string prefix, HttpRefusalObserver observer) {
  refusal_observers_.emplace_back(std::move(prefix), std::move(observer));
  std::sort(refusal_observers_.begin(), refusal_observers_.end(),
            [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
}

void HttpServer::report_refusal(std::string_view path, unsigned status) const {
  if (path.empty()) return;
  for (const auto& [prefix, observer] : refusal_observers_) {
    if (path.substr(0, prefix.size()) == prefix) {
      observer(path, status);
      return;
    }
  }
}

Status open_acceptor(asio::ip::tcp::acceptor& acceptor, const std::string& host, std::uint16_t port,
                     const std::string& option) {
  beast::error_code ec;
  auto address = asio::ip::make_address(host, ec);
  if (ec) return make_error(option, "not an IP address: " + host);
  asio::ip::tcp::endpoint endpoint(address, port);
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec)
    return make_error(option, "cannot listen on " + host + ":" + std::to_string(port) + ": " + ec.message());
  return ok();
}

Status HttpServer::start() {
  if (auto st = open_acceptor(acceptor_, options_.host, options_.port, "--listen"); !st) return st;
  port_ = acceptor_.local_endpoint().port();
  asio::co_spawn(acceptor_.get_executor(), accept_loop(), asio::detached);
  return ok();
}

void HttpServer::stop() {
  if (stopping_.exchange(true)) return;
  asio::post(acceptor_.get_executor(), [this] {
    beast::error_code ec;
    acceptor_.close(ec);
  });
  std::lock_guard lock(sessions_mu_);
  for (auto& weak : sessions_) {
    if (auto tracked = weak.lock()) {
      asio::post(tracked->stream.get_executor(), [tracked] {
        if (!tracked->busy) {
          beast::error_code ec;
          tracked->stream.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ec);
          tracked->stream.socket().close(ec);
        }
      });
    }
  }
}

asio::awaitable<void> HttpServer::accept_loop() {
  // At the open files limit every accept fails (each 50 ms) until a descriptor is freed: the first failure
  // is logged, repeats of the same error are counted and logged at most every kRepeatLogInterval, and
  // the count not yet logged is logged once accepting works again.
  constexpr auto kRepeatLogInterval = std::chrono::seconds(10);
  beast::error_code failing;  // the error of the failures in a row, none while accepting works
  std::size_t unlogged = 0;   // failures with that error since its last line
  std::chrono::steady_clock::time_point logged_at;
  while (!stopping_) {
    beast::error_code ec;
    auto socket = co_await acceptor_.async_accept(pool_.next(), redirect_error(use_awaitable, ec));
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor_.is_open()) break;
      const auto now = std::chrono::steady_clock::now();
      if (ec != failing) {
        if (unlogged > 0)
          SLUICE_LOG(http, warn, "accept failed {} more times: {}", unlogged, failing.message());
        SLUICE_LOG(http, warn, "accept failed: {} (repeats are counted, one line every {} s)", ec.message(),
                   kRepeatLogInterval.count());
        failing = ec;
        unlogged = 0;
        logged_at = now;
      } else if (now - logged_at >= kRepeatLogInterval) {
        SLUICE_LOG(http, warn, "accept failed: {} ({} more times since the last line)", ec.message(),
                   unlogged + 1);
        unlogged = 0;
        logged_at = now;
      } else {
        ++unlogged;
      }
      asio::steady_timer backoff(acceptor_.get_executor(), std::chrono::milliseconds(50));
      co_await backoff.async_wait(redirect_error(use_awaitable, ec));
      continue;
    }
    if (failing) {
      SLUICE_LOG(http, info, "accepting again ({} more failed accepts since the last line: {})", unlogged,
                 failing.message());
      failing = {};
      unlogged = 0;
    }
    socket.set_option(asio::ip::tcp::no_delay(true), ec);
    auto executor = socket.get_executor();
    asio::co_spawn(executor, session(std::move(socket)), asio::detached);
  }
}

asio::awaitable<void> HttpServer::session(asio::ip::tcp::socket socket) {
  auto tracked = std::make_shared<Tracked>(std::move(socket));
  {
    std::lock_guard lock(sessions_mu_);
    std::erase_if(sessions_, [](const std::weak_ptr<Tracked>& w) { return w.expired(); });
    sessions_.push_back(tracked);
  }
  ++connections_;
  auto& stream = tracked->stream;
  std::string remote;
  {
    beast::error_code ec;
    auto ep = stream.socket().remote_endpoint(ec);
    if (!ec) remote = ep.address().to_string() + ":" + std::to_string(ep.port());
  }
  beast::flat_buffer buffer;
  bool drain = false;  // the connection ends on a refused request whose rest may still be arriving
  while (!stopping_) {
    http::request_parser<http::string_body> parser;
    parser.body_limit(options_.body_limit);
    parser.header_limit(static_cast<std::uint32_t>(options_.header_limit));
    beast::error_code ec;
    stream.expires_after(options_.idle_timeout);
    co_await http::async_read_header(stream, buffer, parser, redirect_error(use_awaitable, ec));
    // A Content-Length over the body limit, or a body framing that cannot be trusted, is refused here,
    // before any `100 Continue`.
    auto refusal = ec ? parse_refusal(ec, options_) : framing_refusal(parser.get().base());
    if (ec && !refusal) break;
    ++in_flight_;
    HttpServerResponse response;
    bool keep_alive = true;
    if (!ec && !refusal && parser.get()[http::field::expect] == "100-continue") {
      http::response<http::empty_body> cont{http::status::continue_, 11};
      co_await http::async_write(stream, cont, redirect_error(use_awaitable, ec));
    }
    stream.expires_after(options_.read_timeout);
    if (!ec && !refusal) {
      co_await http::async_read(stream, buffer, parser, redirect_error(use_awaitable, ec));
      refusal = parse_refusal(ec, options_);
    }
    if (refusal) {
      // The head may be incomplete (over the header limit): answer HTTP/1.1 then.
      const unsigned version = parser.get().version() ? parser.get().version() : 11;
      HttpServerRequest head{parser.get().base()};
      head.version(version);
      response = make_error_response(head, refusal->first, refusal->second);
      response.keep_alive(false);
      keep_alive = false;
      drain = true;
      // Refused before any route saw it, the request is still logged and counted like the ones routes
      // answer, so that an operator sees clients that hit the limits.
      // (Its latency is not measured: a refusal is answered as soon as it is found.)
      if (options_.access_log || request_log::enabled())
        log_access(head, response.result_int(), parser.get().body().size(), response.body().size(),
                   std::chrono::steady_clock::now(), remote, false);
      report_refusal(split_target(std::string_view(head.target().data(), head.target().size())).first,
                     response.result_int());
    } else if (ec) {
      --in_flight_;
      break;
    } else if (!stream.socket().is_open()) {
      // stop() closed the connection just as the rest of the request arrived: it was never acknowledged.
      --in_flight_;
      break;
    } else {
      tracked->busy = true;
      HttpServerRequest request = parser.release();
      const auto started = std::chrono::steady_clock::now();
      const std::size_t request_bytes = request.body().size();  // handlers may move the body out
      auto ctx = std::make_shared<RequestContext>(stream, remote);
      stream.expires_never();
      auto path = split_target(std::string_view(request.target().data(), request.target().size())).first;
      const HttpHandler* handler = find_route(path);
      std::optional<HttpServerResponse> refused;
      if (guard_) refused = guard_(request, *ctx);
      if (refused) {
        response = std::move(*refused);
        report_refusal(path, response.result_int());
      } else if (!handler) {
        response = make_error_response(request, http::status::not_found, "no route for " + std::string(path));
      } else {
        try {
          response = co_await (*handler)(request, *ctx);
        } catch (const std::exception& e) {
          SLUICE_LOG(http, err, "handler for {} threw: {}", std::string(path), e.what());
          response = make_error_response(request, http::status::internal_server_error, e.what());
          report_refusal(path, response.result_int());
        }
      }
      if (ctx->watching()) {
        beast::error_code cancel_ec;
        stream.socket().cancel(cancel_ec);  // ends the disconnect watch
      }
      if (options_.access_log || request_log::enabled())
        log_access(request, ctx->streamed() ? 200 : response.result_int(), request_bytes,
                   response.body().size(), started, remote, ctx->cancelled());
      if (ctx->cancelled()) {
        --in_flight_;
        break;
      }
      if (ctx->streamed()) {
        bool ended = co_await ctx->end_stream();
        keep_alive = ended && request.keep_alive();
        response = {};
        --in_flight_;
        tracked->busy = false;
        if (!keep_alive) break;
        continue;
      }
      keep_alive = response.keep_alive();
    }
    if (stopping_) {
      response.keep_alive(false);
      keep_alive = false;
    }
    stream.expires_after(options_.read_timeout);
    co_await http::async_write(stream, response, redirect_error(use_awaitable, ec));
    --in_flight_;
    tracked->busy = false;
    if (ec || !keep_alive) break;
  }
  beast::error_code ec;
  stream.socket().shutdown(asio::ip::tcp::socket::shutdown_send, ec);
  if (drain) {
    // Closing with unread request bytes would reset the connection, and the client could lose the answer
    // before reading it: read what the client still sends for a moment (at most kDrainBytes).
    constexpr std::size_t kDrainBytes = 4 << 20;
    stream.expires_after(std::chrono::seconds(1));
    std::vector<char> sink(16 << 10);
    for (std::size_t drained = 0; !ec && drained < kDrainBytes;)
      drained += co_await stream.async_read_some(asio::buffer(sink), redirect_error(use_awaitable, ec));
  }
  stream.socket().close(ec);
  --connections_;
}

std::optional<std::string> url_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%') {
      if (i + 2 >= s.size()) return std::nullopt;
      int hi = hex(s[i + 1]), lo = hex(s[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else if (s[i] == '+') {
      out += ' ';
    } else {
      out += s[i];
    }
  }
  return out;
}

std::pair<std::string_view, std::string_view> split_target(std::string_view target) {
  auto q = target.find('?');
  if (q == std::string_view::npos) return {target, {}};
  return {target.substr(0, q), target.substr(q + 1)};
}

std::optional<std::string> query_param(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    auto amp = query.find('&');
    auto pair = query.substr(0, amp);
    auto eq = pair.find('=');
    auto key = pair.substr(0, eq);
    if (key == name) return url_decode(eq == std::string_view::npos ? "" : pair.substr(eq + 1)).value_or("");
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return std::nullopt;
}

}  // namespace sluice
