#include "core/tls_listener.hpp"

#include <sys/socket.h>
#include <sys/stat.h>

#include <array>

#include "core/http_server.hpp"
#include "core/log.hpp"
#include "core/tls_errors.hpp"

namespace sluice {
namespace {

using asio::redirect_error;
using asio::use_awaitable;
using asio::ip::tcp;
using TlsStream = asio::ssl::stream<tcp::socket>;

std::int64_t mtimes(const std::string& a, const std::string& b) {
  std::int64_t sum = 0;
  for (const auto* path : {&a, &b}) {
    struct stat st {};
    if (::stat(path->c_str(), &st) == 0) sum += st.st_mtim.tv_sec * 1'000'000'000LL + st.st_mtim.tv_nsec;
  }
  return sum;
}

/// One relayed connection: both ends live as long as either pump runs.
struct Relay {
  Relay(tcp::socket client, asio::ssl::context& context)
      : tls(std::move(client), context), upstream(tls.get_executor()) {}
  TlsStream tls;
  tcp::socket upstream;
  std::shared_ptr<asio::ssl::context> context;  // the certificate this connection was accepted with

  void close() {
    beast::error_code ec;
    upstream.close(ec);
    tls.lowest_layer().close(ec);
  }
};

asio::awaitable<void> pump_to_upstream(std::shared_ptr<Relay> r) {
  std::array<char, 16384> buf;
  for (;;) {
    beast::error_code ec;
    std::size_t n = co_await r->tls.async_read_some(asio::buffer(buf), redirect_error(use_awaitable, ec));
    if (ec) break;
    co_await asio::async_write(r->upstream, asio::buffer(buf.data(), n), redirect_error(use_awaitable, ec));
    if (ec) break;
  }
  r->close();
}

asio::awaitable<void> pump_to_client(std::shared_ptr<Relay> r) {
  std::array<char, 16384> buf;
  for (;;) {
    beast::error_code ec;
    std::size_t n =
        co_await r->upstream.async_read_some(asio::buffer(buf), redirect_error(use_awaitable, ec));
    if (ec) break;
    co_await asio::async_write(r->tls, asio::buffer(buf.data(), n), redirect_error(use_awaitable, ec));
    if (ec) break;
  }
  beast::error_code ec;
  co_await r->tls.async_shutdown(redirect_error(use_awaitable, ec));
  r->close();
}

/// Whether the connection's first byte, once it arrives, starts a plain HTTP request rather than a TLS
/// record (a handshake record starts with 0x16; a request with its method's first letter).
asio::awaitable<bool> starts_with_plain_http(tcp::socket& socket) {
  beast::error_code ec;
  co_await socket.async_wait(tcp::socket::wait_read, redirect_error(use_awaitable, ec));
  if (ec) co_return false;
  char first = 0;
  const auto n = ::recv(socket.native_handle(), &first, 1, MSG_PEEK | MSG_DONTWAIT);
  co_return n == 1 && first >= 'A' && first <= 'Z';
}

/// What Go's and nginx's HTTPS servers answer to plain HTTP: a 400 that says why, then close. The request
/// is read first and the client's close awaited (bounded by the handshake deadline): closing with unread
/// bytes would reset the connection and could discard the answer before the client reads it.
asio::awaitable<void> refuse_plain_http(tcp::socket& socket) {
  static constexpr std::string_view kBody = "Client sent an HTTP request to an HTTPS server.\n";
  const std::string response =
      "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n"
      "Connection: close\r\nContent-Length: " +
      std::to_string(kBody.size()) + "\r\n\r\n" + std::string(kBody);
  std::array<char, 4096> discard;
  beast::error_code ec;
  co_await socket.async_read_some(asio::buffer(discard), redirect_error(use_awaitable, ec));
  if (ec) co_return;
  co_await asio::async_write(socket, asio::buffer(response), redirect_error(use_awaitable, ec));
  if (ec) co_return;
  socket.shutdown(tcp::socket::shutdown_send, ec);
  while (!ec) co_await socket.async_read_some(asio::buffer(discard), redirect_error(use_awaitable, ec));
}

}  // namespace

TlsListener::TlsListener(IoPool& pool, TlsListenerOptions options)
    : pool_(pool), options_(std::move(options)), acceptor_(pool.at(0)) {}

TlsListener::~TlsListener() = default;

Result<std::shared_ptr<asio::ssl::context>> TlsListener::load_context() const {
  auto context = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_server);
  context->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                       asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                       asio::ssl::context::no_tlsv1_1 | asio::ssl::context::single_dh_use);
  beast::error_code ec;
  context->use_certificate_chain_file(options_.cert_file, ec);
  if (ec)
    return make_error(
        "--tls-cert " + options_.cert_file,
        "cannot load the certificate chain: " + describe_tls_file_error(options_.cert_file, ec));
  context->use_private_key_file(options_.key_file, asio::ssl::context::pem, ec);
  if (ec)
    return make_error("--tls-key " + options_.key_file,
                      "cannot load the private key (it must be PEM and match the certificate in " +
                          options_.cert_file + "): " + describe_tls_file_error(options_.key_file, ec));
  if (SSL_CTX_check_private_key(context->native_handle()) != 1)
    return make_error("--tls-key " + options_.key_file,
                      "does not match the certificate in " + options_.cert_file);
  return context;
}

std::shared_ptr<asio::ssl::context> TlsListener::current_context() {
  std::lock_guard lock(mu_);
  const auto now = std::chrono::steady_clock::now();
  if (now >= next_check_) {
    next_check_ = now + std::chrono::seconds(5);
    const auto mtime = mtimes(options_.cert_file, options_.key_file);
    if (mtime != files_mtime_) {
      auto reloaded = load_context();
      if (reloaded) {
        context_ = std::move(reloaded).value();
        SLUICE_LOG(server, info, "TLS certificate reloaded from {}", options_.cert_file);
      } else {
        SLUICE_LOG(server, err, "keeping the previous TLS certificate: {}", reloaded.error().to_string());
      }
      files_mtime_ = mtime;
    }
  }
  return context_;
}

Status TlsListener::start() {
  auto context = load_context();
  if (!context) return context.error();
  context_ = std::move(context).value();
  files_mtime_ = mtimes(options_.cert_file, options_.key_file);
  next_check_ = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  if (auto st = open_acceptor(acceptor_, options_.host, options_.port, "--tls-listen"); !st) return st;
  port_ = acceptor_.local_endpoint().port();
  asio::co_spawn(acceptor_.get_executor(), accept_loop(), asio::detached);
  return ok();
}

void TlsListener::stop() {
  if (stopping_.exchange(true)) return;
  asio::post(acceptor_.get_executor(), [this] {
    beast::error_code ec;
    acceptor_.close(ec);
  });
}

asio::awaitable<void> TlsListener::accept_loop() {
  while (!stopping_) {
    beast::error_code ec;
    auto socket = co_await acceptor_.async_accept(pool_.next(), redirect_error(use_awaitable, ec));
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor_.is_open()) break;
      asio::steady_timer backoff(acceptor_.get_executor(), std::chrono::milliseconds(50));
      co_await backoff.async_wait(redirect_error(use_awaitable, ec));
      continue;
    }
    auto executor = socket.get_executor();
    auto context = current_context();
    asio::co_spawn(executor, relay(std::move(socket), std::move(context)), asio::detached);
  }
}

asio::awaitable<void> TlsListener::relay(tcp::socket socket, std::shared_ptr<asio::ssl::context> context) {
  auto r = std::make_shared<Relay>(std::move(socket), *context);
  r->context = std::move(context);
  beast::error_code ec;
  asio::steady_timer deadline(r->tls.get_executor(), options_.handshake_timeout);
  deadline.async_wait([r](beast::error_code wait_ec) {
    if (!wait_ec) r->close();  // a client that never finishes its handshake
  });
  if (co_await starts_with_plain_http(r->tls.next_layer())) {
    co_await refuse_plain_http(r->tls.next_layer());
    deadline.cancel();
    r->close();
    co_return;
  }
  co_await r->tls.async_handshake(asio::ssl::stream_base::server, redirect_error(use_awaitable, ec));
  if (ec) {
    deadline.cancel();
    r->close();
    co_return;
  }
  const auto upstream = tcp::endpoint(asio::ip::make_address(options_.upstream_host), options_.upstream_port);
  co_await r->upstream.async_connect(upstream, redirect_error(use_awaitable, ec));
  deadline.cancel();
  if (ec) {
    SLUICE_LOG(server, err, "TLS relay cannot reach the HTTP listener: {}", ec.message());
    r->close();
    co_return;
  }
  beast::error_code nodelay_ec;
  r->upstream.set_option(tcp::no_delay(true), nodelay_ec);
  r->tls.lowest_layer().set_option(tcp::no_delay(true), nodelay_ec);
  asio::co_spawn(r->tls.get_executor(), pump_to_client(r), asio::detached);
  co_await pump_to_upstream(r);
}

}  // namespace sluice
