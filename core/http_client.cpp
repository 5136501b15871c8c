#include "core/http_client.hpp"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <exception>
#include <limits>
#include <optional>

#include <boost/asio/ssl.hpp>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "core/text.hpp"
#include "core/tls_errors.hpp"

namespace sluice {

namespace {

using tcp = asio::ip::tcp;
using SteadyClock = std::chrono::steady_clock;
using asio::redirect_error;
using asio::use_awaitable;

// Body bytes handed to a sink per read at most.
constexpr std::size_t kChunkSize = 64 << 10;

// Header values must not smuggle a line break into the request (RFC 9110 §5.5).
bool is_field_value(std::string_view s) {
  return std::none_of(s.begin(), s.end(), [](char c) { return c == '\r' || c == '\n' || c == '\0'; });
}

Error transport_error(const std::string& url, std::string message) {
  return make_error(url, std::move(message), 0);
}

// What a failed socket or parser operation means for a user.
std::string describe(const beast::error_code& ec, bool body_started) {
  if (ec == asio::error::connection_refused) return "connection refused";
  if (ec == asio::error::connection_reset || ec == asio::error::connection_aborted) {
    return "connection reset by peer";
  }
  if (ec == asio::error::broken_pipe) return "connection reset by peer (broken pipe)";
  if (ec == http::error::end_of_stream || ec == asio::error::eof || ec == http::error::partial_message) {
    return body_started ? "connection closed during the response body"
                        : "connection closed before the response";
  }
  if (ec == asio::error::host_unreachable || ec == asio::error::network_unreachable)
    return "host unreachable";
  if (ec == asio::ssl::error::stream_truncated)
    return body_started ? "connection closed during the response body (TLS stream truncated)"
                        : "connection closed before the response (TLS stream truncated)";
  if (ec.category() == beast::error_code(http::error::end_of_stream).category())
    return "invalid response: " + ec.message();
  return ec.message();
}

// Errors that a pooled connection closed by the server gives on its first use.
bool is_stale_connection_error(const beast::error_code& ec) {
  return ec == http::error::end_of_stream || ec == asio::error::eof || ec == asio::error::connection_reset ||
         ec == asio::error::connection_aborted || ec == asio::error::broken_pipe ||
         ec == asio::ssl::error::stream_truncated;
}

// OpenSSL's reason for a failed handshake ("certificate verify failed", "wrong version number", …).
std::string describe_tls(const beast::error_code& ec) {
  if (const char* reason = openssl_reason(ec)) return reason;
  return describe(ec, false);
}

}  // namespace

// ---- CancelSignal ----

void CancelSignal::cancel() {
  std::map<std::uint64_t, std::function<void()>> subscribers;
  {
    std::lock_guard lock(mu_);
    if (cancelled_) return;
    cancelled_ = true;
    subscribers.swap(subscribers_);
  }
  for (auto& [id, fn] : subscribers) fn();
}

bool CancelSignal::cancelled() const {
  std::lock_guard lock(mu_);
  return cancelled_;
}

std::uint64_t CancelSignal::subscribe(std::function<void()> fn) {
  {
    std::lock_guard lock(mu_);
    if (!cancelled_) {
      auto id = next_id_++;
      subscribers_.emplace(id, std::move(fn));
      return id;
    }
  }
  fn();
  return 0;
}

void CancelSignal::unsubscribe(std::uint64_t id) {
  std::lock_guard lock(mu_);
  subscribers_.erase(id);
}

// ---- HttpResponse, ParsedUrl ----

const std::string* HttpResponse::header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (iequals(k, name)) return &v;
  }
  return nullptr;
}

Result<std::shared_ptr<asio::ssl::context>> make_client_tls_context(const ClientTlsOptions& options) {
  if (options.cert_file.empty() != options.key_file.empty())
    return make_error(options.cert_file.empty() ? options.key_file : options.cert_file,
                      "a client certificate and its key go together", 400);
  auto context = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
  context->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                       asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                       asio::ssl::context::no_tlsv1_1);
  context->set_verify_mode(asio::ssl::verify_peer);
  beast::error_code ec;
  if (options.ca_file.empty()) {
    context->set_default_verify_paths(ec);
    if (ec) return make_error("TLS", "cannot load the system's CA certificates: " + ec.message(), 500);
  } else {
    context->load_verify_file(options.ca_file, ec);
    if (ec)
      return make_error(options.ca_file,
                        "cannot load CA certificates: " + describe_tls_file_error(options.ca_file, ec), 400);
  }
  if (!options.cert_file.empty()) {
    context->use_certificate_chain_file(options.cert_file, ec);
    if (ec)
      return make_error(
          options.cert_file,
          "cannot load the client certificate: " + describe_tls_file_error(options.cert_file, ec), 400);
    context->use_private_key_file(options.key_file, asio::ssl::context::pem, ec);
    if (ec)
      return make_error(options.key_file,
                        "cannot load the client key: " + describe_tls_file_error(options.key_file, ec), 400);
    if (::SSL_CTX_check_private_key(context->native_handle()) != 1)
      return make_error(options.key_file,
                        "the client key does not match the certificate " + options.cert_file, 400);
  }
  return context;
}

// ---- Sinks: what happens to the response as it arrives ----

class HttpClient::ResponseSink {
 public:
  virtual ~ResponseSink() = default;
  virtual asio::awaitable<bool> on_headers(int status, const HttpHeaders& headers) = 0;
  virtual asio::awaitable<bool> on_chunk(std::string_view chunk) = 0;
  /// Set by a sink that stops the exchange because of an error (rather than by choice).
  std::optional<std::string> failure;
};

namespace {

class CollectSink final : public HttpClient::ResponseSink {
 public:
  CollectSink(HttpResponse& response, std::size_t limit, std::optional<std::size_t> error_prefix)
      : response_(response), limit_(limit), error_prefix_(error_prefix) {}

  asio::awaitable<bool> on_headers(int status, const HttpHeaders& headers) override {
    response_.status = status;
    response_.headers = headers;
    if (error_prefix_ && (status < 200 || status > 299)) {
      prefix_only_ = true;
      limit_ = *error_prefix_;
      co_return true;
    }
    if (const std::string* length = response_.header("content-length")) {
      std::uint64_t n = 0;
      auto [end, ec] = std::from_chars(length->data(), length->data() + length->size(), n);
      if (ec == std::errc() && end == length->data() + length->size()) {
        if (n > limit_) {
          failure = exceeded();
          co_return false;
        }
        response_.body.reserve(static_cast<std::size_t>(n));
      }
    }
    co_return true;
  }

  asio::awaitable<bool> on_chunk(std::string_view chunk) override {
    if (response_.body.size() + chunk.size() > limit_) {
      if (prefix_only_) {
        // Keep the start of an error answer and stop reading: its status is the result.
        response_.body.append(chunk.substr(0, limit_ - response_.body.size()));
        co_return false;
      }
      failure = exceeded();
      co_return false;
    }
    response_.body.append(chunk);
    co_return true;
  }

 private:
  std::string exceeded() const { return "response body exceeds " + std::to_string(limit_) + " bytes"; }
  HttpResponse& response_;
  std::size_t limit_;
  std::optional<std::size_t> error_prefix_;
  bool prefix_only_ = false;  // a non-2xx response with error_prefix_: limit_ is the prefix kept
};

class CallbackSink final : public HttpClient::ResponseSink {
 public:
  CallbackSink(std::function<void(int, const HttpHeaders&)>& on_headers,
               std::function<bool(std::string_view)>& on_chunk)
      : on_headers_(on_headers), on_chunk_(on_chunk) {}

  asio::awaitable<bool> on_headers(int status, const HttpHeaders& headers) override {
    if (on_headers_) on_headers_(status, headers);
    co_return true;
  }
  asio::awaitable<bool> on_chunk(std::string_view chunk) override {
    co_return on_chunk_ ? on_chunk_(chunk) : true;
  }

 private:
  std::function<void(int, const HttpHeaders&)>& on_headers_;
  std::function<bool(std::string_view)>& on_chunk_;
};

class RelaySink final : public HttpClient::ResponseSink {
 public:
  RelaySink(std::function<asio::awaitable<bool>(int, const HttpHeaders&)>& on_headers,
            std::function<asio::awaitable<bool>(std::string_view)>& on_chunk)
      : on_headers_(on_headers), on_chunk_(on_chunk) {}

  asio::awaitable<bool> on_headers(int status, const HttpHeaders& headers) override {
    if (!on_headers_) co_return true;
    co_return co_await on_headers_(status, headers);
  }
  asio::awaitable<bool> on_chunk(std::string_view chunk) override {
    if (!on_chunk_) co_return true;
    co_return co_await on_chunk_(chunk);
  }

 private:
  std::function<asio::awaitable<bool>(int, const HttpHeaders&)>& on_headers_;
  std::function<asio::awaitable<bool>(std::string_view)>& on_chunk_;
};

// Why an exchange was stopped from outside its coroutine.
enum class Trip { None, Timeout, ConnectTimeout, Cancelled };

// Shared between an exchange and the handlers that may stop it (its deadline timer, its CancelSignal).
// Every access happens on the calling coroutine's executor, so no lock is needed; the handlers hold a
// shared_ptr and check `done` because they may run after the exchange finished.
struct ExchangeState {
  bool done = false;
  Trip trip = Trip::None;
  std::uint64_t generation = 0;  // invalidates deadline handlers already queued when re-armed
  tcp::socket* socket = nullptr;
  tcp::resolver* resolver = nullptr;

  void stop(Trip why) {
    if (done || trip != Trip::None) return;
    trip = why;
    beast::error_code ignored;
    if (socket) socket->close(ignored);
    if (resolver) resolver->cancel();
  }
};

}  // namespace

// ---- Connections and the pool ----

struct HttpClient::Connection {
  explicit Connection(asio::any_io_executor executor) : socket(std::move(executor)) {}
  tcp::socket socket;
  // https: the TLS session over `socket` (destroyed first), and the context it was made from.
  std::shared_ptr<asio::ssl::context> tls_context;
  std::unique_ptr<asio::ssl::stream<tcp::socket&>> tls;
  SteadyClock::time_point idle_since;
};

std::unique_ptr<HttpClient::Connection> HttpClient::take_idle(const std::string& key) {
  std::lock_guard lock(mu_);
  auto it = idle_.find(key);
  if (it == idle_.end()) return nullptr;
  auto& connections = it->second;
  auto now = SteadyClock::now();
  while (!connections.empty()) {
    auto connection = std::move(connections.back());
    connections.pop_back();
    if (now - connection->idle_since > options_.idle_timeout) continue;
    // A peer that closed the connection (0) or sent something unasked (> 0) makes it unusable; only
    // "would block" means an idle, open connection.
    char byte;
    ssize_t n = ::recv(connection->socket.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return connection;
  }
  return nullptr;
}

void HttpClient::put_idle(const std::string& key, std::unique_ptr<Connection> connection) {
  std::lock_guard lock(mu_);
  auto& connections = idle_[key];
  if (connections.size() >= options_.max_idle_per_host) return;  // closed by the destructor
  connection->idle_since = SteadyClock::now();
  connections.push_back(std::move(connection));
}

void HttpClient::close_idle() {
  std::map<std::string, std::vector<std::unique_ptr<Connection>>> idle;
  std::lock_guard lock(mu_);
  idle.swap(idle_);
}

std::uint64_t HttpClient::connections_opened() const {
  std::lock_guard lock(mu_);
  return connections_opened_;
}

std::size_t HttpClient::idle_connections() const {
  std::lock_guard lock(mu_);
  std::size_t n = 0;
  for (const auto& [key, connections] : idle_) n += connections.size();
  return n;
}

std::uint64_t HttpClient::stale_retries() const {
  std::lock_guard lock(mu_);
  return stale_retries_;
}

HttpClient::HttpClient(asio::any_io_executor executor, HttpClientOptions options)
    : executor_(std::move(executor)), options_(std::move(options)) {}

HttpClient::~HttpClient() {
  close_idle();
}

Result<std::shared_ptr<asio::ssl::context>> HttpClient::tls_context() {
  std::lock_guard lock(mu_);
  if (!options_.tls) {
    auto made = make_client_tls_context({});
    if (!made) return made.error();
    options_.tls = std::move(made).value();
  }
  return options_.tls;
}

// ---- One exchange ----

struct HttpClient::Exchange {
  struct Attempt {
    std::optional<Result<int>> result;  // empty: retry on a fresh connection
  };

  Exchange(HttpClient& client, HttpRequest& request, ParsedUrl url, ResponseSink& sink,
           asio::any_io_executor caller)
      : client(client),
        request(request),
        url(std::move(url)),
        sink(sink),
        caller(caller),
        timer(caller),
        state(std::make_shared<ExchangeState>()) {}

  ~Exchange() {
    state->done = true;
    state->socket = nullptr;
    state->resolver = nullptr;
    timer.cancel();
    if (request.cancel && subscription != 0) request.cancel->unsubscribe(subscription);
  }

  Error fail(std::string message) const { return transport_error(request.url, std::move(message)); }

  Error trip_error() const {
    switch (state->trip) {
      case Trip::Timeout:
        return fail("timed out after " + std::to_string(request.timeout.count()) + " ms");
      case Trip::ConnectTimeout:
        return fail("connect timed out after " + std::to_string(client.options_.connect_timeout.count()) +
                    " ms");
      case Trip::Cancelled:
      case Trip::None:
        break;
    }
    return fail("cancelled");
  }

  // Closes the socket (or cancels the resolver) at `when`, unless re-armed or finished first.
  void arm(SteadyClock::time_point when, Trip why) {
    auto generation = ++state->generation;
    timer.expires_at(when);
    timer.async_wait([state = state, generation, why](const beast::error_code& ec) {
      if (ec || generation != state->generation) return;
      state->stop(why);
    });
  }

  void arm_exchange_deadline() {
    if (has_deadline) {
      arm(deadline, Trip::Timeout);
    } else {
      ++state->generation;
      timer.cancel();
    }
  }

  // Returns nullopt after subscribing, or the error when the signal already fired.
  std::optional<Error> watch_cancel() {
    if (!request.cancel) return std::nullopt;
    if (request.cancel->cancelled()) return fail("cancelled");
    // The signal may fire on any thread: hop to the caller's executor, where the exchange runs.
    subscription = request.cancel->subscribe(
        [state = state, caller = caller] { asio::post(caller, [state] { state->stop(Trip::Cancelled); }); });
    return std::nullopt;
  }

  std::optional<Error> build_request() {
    auto verb = http::string_to_verb(request.method);
    if (verb == http::verb::unknown) {
      if (!is_token(request.method)) return fail("invalid method \"" + request.method + "\"");
      message.method_string(request.method);
    } else {
      message.method(verb);
    }
    is_head = verb == http::verb::head;
    message.target(url.target);
    message.version(11);
    bool has_host = false;
    bool has_user_agent = false;
    for (const auto& [name, value] : request.headers) {
      if (!is_token(name)) return fail("invalid header name \"" + name + "\"");
      if (!is_field_value(value)) return fail("header " + name + " has a line break in its value");
      if (iequals(name, "content-length") || iequals(name, "transfer-encoding")) continue;
      if (iequals(name, "host")) has_host = true;
      if (iequals(name, "user-agent")) has_user_agent = true;
      if (iequals(name, "connection")) {
        for (std::size_t i = 0; i + 5 <= value.size(); ++i) {
          if (iequals(std::string_view(value).substr(i, 5), "close")) connection_close = true;
        }
      }
      message.insert(name, value);
    }
    if (!has_host) message.set(http::field::host, url.authority());
    if (!has_user_agent && !client.options_.user_agent.empty()) {
      message.set(http::field::user_agent, client.options_.user_agent);
    }
    message.body() = std::move(request.body);
    message.prepare_payload();
    return std::nullopt;
  }

  // Resolves (skipping the resolver for literal addresses and "localhost") and connects, trying each
  // address in turn, within connect_timeout and the exchange deadline.
  asio::awaitable<Result<std::unique_ptr<Connection>>> connect() {
    auto connect_deadline = SteadyClock::now() + client.options_.connect_timeout;
    if (has_deadline && deadline <= connect_deadline) {
      arm(deadline, Trip::Timeout);
    } else {
      arm(connect_deadline, Trip::ConnectTimeout);
    }
    std::vector<tcp::endpoint> endpoints;
    beast::error_code ec;
    auto address = asio::ip::make_address(url.host, ec);
    if (!ec) {
      endpoints.emplace_back(address, url.port);
    } else if (iequals(url.host, "localhost")) {
      endpoints.emplace_back(asio::ip::address_v4::loopback(), url.port);
    } else {
      // Asio runs getaddrinfo on its own resolver thread: the I/O thread does not block.
      tcp::resolver resolver(caller);
      state->resolver = &resolver;
      auto results = co_await resolver.async_resolve(url.host, std::to_string(url.port),
                                                     redirect_error(use_awaitable, ec));
      state->resolver = nullptr;
      if (state->trip != Trip::None) co_return trip_error();
      if (ec) co_return fail("cannot resolve " + url.host + ": " + ec.message());
      for (const auto& entry : results) endpoints.push_back(entry.endpoint());
      if (endpoints.empty()) co_return fail("cannot resolve " + url.host + ": no addresses");
    }
    auto connection = std::make_unique<Connection>(client.executor_);
    WatchSocket watch(*state, &connection->socket);
    for (const auto& endpoint : endpoints) {
      beast::error_code ignored;
      if (connection->socket.is_open()) connection->socket.close(ignored);
      connection->socket.open(endpoint.protocol(), ec);
      if (ec) continue;
      co_await connection->socket.async_connect(endpoint, redirect_error(use_awaitable, ec));
      if (state->trip != Trip::None) co_return trip_error();
      if (!ec) break;
    }
    if (ec) co_return fail(describe(ec, false) + " (" + url.authority() + ")");
    beast::error_code ignored;
    connection->socket.set_option(tcp::no_delay(true), ignored);
    if (url.tls()) {
      auto context = client.tls_context();
      if (!context) co_return fail("TLS: " + context.error().to_string());
      connection->tls_context = std::move(context).value();
      connection->tls =
          std::make_unique<asio::ssl::stream<tcp::socket&>>(connection->socket, *connection->tls_context);
      beast::error_code not_an_address;
      asio::ip::make_address(url.host, not_an_address);
      if (not_an_address) ::SSL_set_tlsext_host_name(connection->tls->native_handle(), url.host.c_str());
      connection->tls->set_verify_callback(asio::ssl::host_name_verification(url.host));
      co_await connection->tls->async_handshake(asio::ssl::stream_base::client,
                                                redirect_error(use_awaitable, ec));
      if (state->trip != Trip::None) co_return trip_error();
      if (ec) co_return fail("TLS handshake failed: " + describe_tls(ec) + " (" + url.authority() + ")");
    }
    {
      std::lock_guard lock(client.mu_);
      ++client.connections_opened_;
    }
    co_return std::move(connection);
  }

  // Points the deadline and cancellation at a socket for one scope; the socket may be gone afterwards.
  struct WatchSocket {
    WatchSocket(ExchangeState& state, tcp::socket* socket) : state(state) { state.socket = socket; }
    ~WatchSocket() { state.socket = nullptr; }
    ExchangeState& state;
  };

  asio::awaitable<Attempt> attempt(bool use_pool) {
    std::unique_ptr<Connection> connection = use_pool ? client.take_idle(pool_key) : nullptr;
    const bool reused = connection != nullptr;
    if (!connection) {
      auto connected = co_await connect();
      if (!connected) co_return Attempt{connected.error()};
      connection = std::move(connected).value();
    }
    WatchSocket watch(*state, &connection->socket);
    arm_exchange_deadline();
    if (state->trip != Trip::None) co_return Attempt{trip_error()};
    if (connection->tls) co_return co_await talk(*connection->tls, connection, reused);
    co_return co_await talk(connection->socket, connection, reused);
  }

  // Writes the request and reads the response on a connection's socket or TLS stream.
  template <class Stream>
  asio::awaitable<Attempt> talk(Stream& stream, std::unique_ptr<Connection>& connection, bool reused) {
    beast::error_code ec;
    co_await http::async_write(stream, message, redirect_error(use_awaitable, ec));
    if (ec) {
      if (state->trip != Trip::None) co_return Attempt{trip_error()};
      if (reused) co_return Attempt{};
      co_return Attempt{fail(describe(ec, false))};
    }

    beast::flat_buffer buffer;
    std::optional<http::response_parser<http::buffer_body>> parser;
    auto fresh_parser = [&] {
      parser.emplace();
      parser->header_limit(client.options_.max_response_header_bytes);
      // send() enforces its limit in its sink. Not boost::none: Beast 1.74 compares the Content-Length
      // with the optional itself, and any number is greater than an empty optional.
      parser->body_limit(std::numeric_limits<std::uint64_t>::max());
      if (is_head) parser->skip(true);
    };
    fresh_parser();
    bool interim_seen = false;
    while (true) {
      co_await http::async_read_header(stream, buffer, *parser, redirect_error(use_awaitable, ec));
      if (ec) {
        if (state->trip != Trip::None) co_return Attempt{trip_error()};
        bool nothing_received = !interim_seen && !parser->got_some() && buffer.size() == 0;
        if (reused && nothing_received && is_stale_connection_error(ec)) co_return Attempt{};
        co_return Attempt{fail(describe(ec, false))};
      }
      int status = parser->get().result_int();
      if (status < 100 || status >= 200 || status == 101) break;
      interim_seen = true;  // 100 Continue, 103 Early Hints: the real response follows
      fresh_parser();
    }

    auto& response = parser->get();
    const int status = response.result_int();
    HttpHeaders headers;
    for (const auto& field : response)
      headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
    if (!co_await sink.on_headers(status, headers)) co_return Attempt{stopped(status)};

    std::unique_ptr<char[]> chunk(new char[kChunkSize]);
    while (!parser->is_done()) {
      response.body().data = chunk.get();
      response.body().size = kChunkSize;
      co_await http::async_read_some(stream, buffer, *parser, redirect_error(use_awaitable, ec));
      if (ec == http::error::need_buffer) ec = {};
      if (ec) {
        if (state->trip != Trip::None) co_return Attempt{trip_error()};
        co_return Attempt{fail(describe(ec, true))};
      }
      std::size_t n = kChunkSize - response.body().size;
      if (n > 0 && !co_await sink.on_chunk(std::string_view(chunk.get(), n)))
        co_return Attempt{stopped(status)};
    }

    bool reusable = parser->keep_alive() && !connection_close && buffer.size() == 0 && status != 101 &&
                    state->trip == Trip::None && connection->socket.is_open();
    if (reusable) client.put_idle(pool_key, std::move(connection));
    co_return Attempt{Result<int>(status)};
  }

  // A sink stopped the exchange: the connection is dropped (closing it) with the attempt.
  Result<int> stopped(int status) const {
    if (sink.failure) return fail(*sink.failure);
    return status;
  }

  asio::awaitable<Result<int>> run() {
    if (auto error = build_request()) co_return *error;
    if (auto error = watch_cancel()) co_return *error;
    has_deadline = request.timeout.count() > 0;
    deadline = SteadyClock::now() + request.timeout;
    pool_key = url.scheme + "://" + url.host + ":" + std::to_string(url.port);
    // A stale pooled connection is retried once, on a fresh connection.
    auto first = co_await attempt(client.options_.max_idle_per_host > 0);
    if (first.result) co_return std::move(*first.result);
    {
      std::lock_guard lock(client.mu_);
      ++client.stale_retries_;
    }
    auto second = co_await attempt(false);
    if (second.result) co_return std::move(*second.result);
    co_return fail("connection closed before the response");
  }

  HttpClient& client;
  HttpRequest& request;
  ParsedUrl url;
  ResponseSink& sink;
  asio::any_io_executor caller;
  asio::steady_timer timer;
  std::shared_ptr<ExchangeState> state;
  std::uint64_t subscription = 0;
  http::request<http::string_body> message;
  bool is_head = false;
  bool connection_close = false;
  bool has_deadline = false;
  SteadyClock::time_point deadline;
  std::string pool_key;
};

asio::awaitable<Result<int>> HttpClient::exchange(HttpRequest& request, ResponseSink& sink) {
  auto url = parse_url(request.url);
  if (!url) co_return url.error();
  auto caller = co_await asio::this_coro::executor;
  std::optional<Error> internal;
  try {
    Exchange exchange(*this, request, std::move(url).value(), sink, caller);
    co_return co_await exchange.run();
  } catch (const std::exception& e) {
    // Allocation failures, or an exception thrown by a stream()/relay() callback.
    internal = transport_error(request.url, std::string("internal error: ") + e.what());
  } catch (...) {
    internal = transport_error(request.url, "internal error");
  }
  co_return *internal;
}

asio::awaitable<Result<HttpResponse>> HttpClient::send(HttpRequest request) {
  HttpResponse response;
  CollectSink sink(response, options_.max_response_body_bytes, request.error_body_prefix);
  auto status = co_await exchange(request, sink);
  if (!status) co_return status.error();
  co_return response;
}

asio::awaitable<Result<int>> HttpClient::stream(
    HttpRequest request, std::function<void(int status, const HttpHeaders&)> on_headers,
    std::function<bool(std::string_view chunk)> on_chunk) {
  CallbackSink sink(on_headers, on_chunk);
  co_return co_await exchange(request, sink);
}

asio::awaitable<Result<int>> HttpClient::relay(
    HttpRequest request, std::function<asio::awaitable<bool>(int status, const HttpHeaders&)> on_headers,
    std::function<asio::awaitable<bool>(std::string_view chunk)> on_chunk) {
  RelaySink sink(on_headers, on_chunk);
  co_return co_await exchange(request, sink);
}

bool is_timeout_error(const Error& error) {
  return error.code == 0 &&
         (error.message.starts_with("timed out") || error.message.starts_with("connect timed out"));
}

bool is_cancelled_error(const Error& error) {
  return error.code == 0 && error.message == "cancelled";
}

}  // namespace sluice
