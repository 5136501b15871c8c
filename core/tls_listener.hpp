#pragma once
// TLS for the server's listener: accepts TLS connections (TLS 1.2 and 1.3, certificate chain and key
// in PEM files) and relays the decrypted bytes to the plain HTTP listener on loopback, both ways, until
// either side closes. Everything the HTTP server does (streaming, cancellation on disconnect) works
// unchanged through it.
//
// The certificate and key are read again when either file's modification time changes (checked at
// most every 5 s, on accept): renewed certificates take effect for new connections without a restart;
// a broken pair is logged and the previous one kept.

#include <atomic>
#include <memory>
#include <mutex>
#include <string>

#include <boost/asio/ssl.hpp>

#include "core/asio.hpp"
#include "core/io_pool.hpp"
#include "core/result.hpp"

namespace sluice {

struct TlsListenerOptions {
  std::string host = "0.0.0.0";
  std::uint16_t port = 8443;  // 0 picks a free port
  std::string cert_file;      // PEM certificate chain
  std::string key_file;       // PEM private key
  std::string upstream_host = "127.0.0.1";
  std::uint16_t upstream_port = 0;  // the plain HTTP listener
  std::chrono::seconds handshake_timeout{10};
};

class TlsListener {
 public:
  TlsListener(IoPool& pool, TlsListenerOptions options);
  ~TlsListener();

  /// Loads the certificate and key, binds and starts accepting. Errors name the file or the address.
  Status start();
  std::uint16_t port() const { return port_; }
  /// Stops accepting; relayed connections end when their peers close. Thread-safe.
  void stop();

 private:
  Result<std::shared_ptr<asio::ssl::context>> load_context() const;
  std::shared_ptr<asio::ssl::context> current_context();
  asio::awaitable<void> accept_loop();
  asio::awaitable<void> relay(asio::ip::tcp::socket socket, std::shared_ptr<asio::ssl::context> context);

  IoPool& pool_;
  TlsListenerOptions options_;
  asio::ip::tcp::acceptor acceptor_;
  std::uint16_t port_ = 0;
  std::mutex mu_;
  std::shared_ptr<asio::ssl::context> context_;
  std::int64_t files_mtime_ = 0;
  std::chrono::steady_clock::time_point next_check_{};
  std::atomic<bool> stopping_{false};
};

}  // namespace sluice
