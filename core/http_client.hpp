#pragma once
// The data-plane HTTP/1.1 client on Boost.Asio + Beast, used by trigger deliveries, the activator proxy
// and the MCP gateway: C++20 coroutines, keep-alive connection pooling per host:port, one deadline per
// exchange, cancellation, and streaming of response bodies (SSE, proxying).
//
// Threading: send()/stream()/relay() may be called concurrently from coroutines on any executor. A
// request's I/O runs in the calling coroutine; its timeout and cancellation are delivered by posting to
// the calling coroutine's executor, so that executor must not run handlers of one coroutine concurrently
// (a strand, as HttpServer sessions use, or a single-threaded io_context). Callbacks of stream()/relay()
// run in the calling coroutine. The client must outlive the requests it runs.
//
// Cancellation: Boost 1.74's Asio (1.18) has no per-operation cancellation slots, so a request is
// cancelled through a CancelSignal in HttpRequest::cancel. Cancelling closes the request's socket and the
// awaiting coroutine resumes promptly with the error "cancelled". For the activator:
//
//   auto signal = std::make_shared<CancelSignal>();
//   ctx.on_cancel([signal] { signal->cancel(); });   // the downstream client went away
//   request.cancel = signal;
//   co_await client.relay(std::move(request), ...);
//
// TLS: https:// URLs are spoken over TLS 1.2 or 1.3 with the server's certificate verified against
// HttpClientOptions::tls (the system's CAs by default) and its name checked against the URL's host
// (SNI sent for names). Pooled connections are kept per scheme, host and port.
//
// Errors: every failure is an Error with `code` 0, `subject` the request URL, and a message that starts
// with what happened: "connection refused", "connect timed out after N ms", "timed out after N ms",
// "TLS handshake failed: …" (an untrusted certificate or a name mismatch among others),
// "connection reset by peer", "connection closed before the response", "cancelled", "response body
// exceeds N bytes", "cannot resolve HOST: …", "invalid URL …", "invalid response: …". Any HTTP status is a
// success at this level. Nothing throws out of these coroutines.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/asio.hpp"
#include "core/result.hpp"
#include "core/url.hpp"

namespace boost::asio::ssl {
class context;
}

namespace sluice {

using HttpHeaders = std::vector<std::pair<std::string, std::string>>;

/// A one-shot cancellation signal shared between whoever decides to give up (a client disconnect, a
/// shutdown) and the requests that use it. Thread-safe.
class CancelSignal {
 public:
  /// Cancels every request using this signal, now and later. Idempotent. Subscribers run on the
  /// calling thread, outside the signal's lock.
  void cancel();
  bool cancelled() const;

  /// Runs `fn` at cancel(), or right away (on this thread) if already cancelled. Returns an id for
  /// unsubscribe(). `fn` may still run shortly after unsubscribe() when cancel() races with it.
  std::uint64_t subscribe(std::function<void()> fn);
  void unsubscribe(std::uint64_t id);

 private:
  mutable std::mutex mu_;
  bool cancelled_ = false;
  std::uint64_t next_id_ = 1;
  std::map<std::uint64_t, std::function<void()>> subscribers_;
};

struct HttpRequest {
  std::string method = "POST";
  /// http://host[:port]/path?query (IPv6 literals in brackets).
  std::string url;
  /// Sent as given, in order; Content-Length and Transfer-Encoding are computed by the client, and
  /// Host and User-Agent are added when absent. "Connection: close" keeps the connection out of the pool.
  HttpHeaders headers;
  std::string body;
  /// Covers the whole exchange: resolve, connect, write, and reading the whole response (for stream()
  /// and relay(): until the last chunk). Zero or negative: no deadline (long-lived SSE streams).
  std::chrono::milliseconds timeout{30000};
  /// Optional: cancelling it ends the request with "cancelled".
  std::shared_ptr<CancelSignal> cancel;
  /// send() only: when set, a response whose status is not 2xx keeps at most this many bytes of its
  /// body and reading stops there (the connection is closed, not pooled), so an error answer of any size
  /// is returned with its status rather than failing with "response body exceeds N bytes".
  std::optional<std::size_t> error_body_prefix;
};

struct HttpResponse {
  int status = 0;
  /// In the order received, names as sent by the server.
  HttpHeaders headers;
  std::string body;

  /// The first header with this name (case-insensitive), or nullptr.
  const std::string* header(std::string_view name) const;
};

/// TLS for https:// requests: whom to trust and what to present.
struct ClientTlsOptions {
  /// PEM CA certificates to trust; empty: the system's (/etc/ssl/certs).
  std::string ca_file;
  /// A client certificate chain and its key (PEM) for servers that ask for one; both or neither.
  std::string cert_file;
  std::string key_file;
};

/// A TLS 1.2+ client context that verifies the server's certificate chain (and, per request, its
/// name). Errors name the file that cannot be used.
Result<std::shared_ptr<boost::asio::ssl::context>> make_client_tls_context(const ClientTlsOptions& options);

struct HttpClientOptions {
  /// Idle keep-alive connections kept per host:port; 0 disables pooling.
  std::size_t max_idle_per_host = 32;
  /// send() fails with "response body exceeds N bytes" beyond this (stream() and relay() have no limit;
  /// an error answer cut by HttpRequest::error_body_prefix is returned instead).
  std::size_t max_response_body_bytes = 16 << 20;
  /// Response status line and headers larger than this are an invalid response.
  std::uint32_t max_response_header_bytes = 64 << 10;
  /// Bounds each connection attempt (within the request's own timeout).
  std::chrono::milliseconds connect_timeout{5000};
  /// Pooled connections idle longer than this are closed instead of reused (servers drop idle
  /// keep-alive connections too: cpp-httplib after 5 s, Go after 90 s).
  std::chrono::milliseconds idle_timeout{4000};
  /// Sent when the request has no User-Agent header.
  std::string user_agent = "sluice";
  /// For https:// URLs; null: make_client_tls_context({}) on first use (the system's CAs).
  std::shared_ptr<boost::asio::ssl::context> tls;
};

class HttpClient {
 public:
  /// `executor` owns the client's sockets; requests run on their caller's executor (see above).
  explicit HttpClient(asio::any_io_executor executor, HttpClientOptions options = {});
  /// Closes idle connections. Requests must have finished.
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  /// Sends a request and reads the whole response (up to max_response_body_bytes).
  asio::awaitable<Result<HttpResponse>> send(HttpRequest request);

  /// Streaming: calls `on_headers(status, headers)` once, then `on_chunk(bytes)` for body bytes as they
  /// arrive (chunked or not). Returning false from on_chunk stops early and closes the connection; the
  /// result is still the status. Returns the status, or an error (which may come after on_headers).
  /// Interim 1xx responses are skipped.
  asio::awaitable<Result<int>> stream(HttpRequest request,
                                      std::function<void(int status, const HttpHeaders&)> on_headers,
                                      std::function<bool(std::string_view chunk)> on_chunk);

  /// Like stream(), for proxies: each handler is awaited before more is read, so a slow downstream
  /// slows the upstream (back-pressure), and handlers can co_await writes of their own. Returning
  /// false from either handler stops and closes the connection.
  asio::awaitable<Result<int>> relay(
      HttpRequest request, std::function<asio::awaitable<bool>(int status, const HttpHeaders&)> on_headers,
      std::function<asio::awaitable<bool>(std::string_view chunk)> on_chunk);

  /// Closes every idle pooled connection (in-flight ones are unaffected).
  void close_idle();

  /// Counters for tests and metrics: connections opened so far, idle connections now, and requests
  /// retried on a fresh connection after a stale pooled one failed.
  std::uint64_t connections_opened() const;
  std::size_t idle_connections() const;
  std::uint64_t stale_retries() const;

  class ResponseSink;  // internal

 private:
  struct Connection;
  struct Exchange;
  asio::awaitable<Result<int>> exchange(HttpRequest& request, ResponseSink& sink);
  std::unique_ptr<Connection> take_idle(const std::string& key);
  void put_idle(const std::string& key, std::unique_ptr<Connection> connection);
  Result<std::shared_ptr<boost::asio::ssl::context>> tls_context();

  asio::any_io_executor executor_;
  HttpClientOptions options_;
  mutable std::mutex mu_;
  std::map<std::string, std::vector<std::unique_ptr<Connection>>> idle_;
  std::uint64_t connections_opened_ = 0;
  std::uint64_t stale_retries_ = 0;
};

/// True for the errors of a request that ran out of time (connect or whole exchange).
bool is_timeout_error(const Error& error);
/// True for the error of a cancelled request.
bool is_cancelled_error(const Error& error);

}  // namespace sluice
