#pragma once
// What to tell a user when OpenSSL refuses: OpenSSL's own reason where it has one, and for a certificate
// or key file the system's reason when the file cannot be read (OpenSSL then names none of its own).

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include <boost/asio/ssl.hpp>
#include <openssl/err.h>

namespace sluice {

/// OpenSSL's reason for an SSL-category error code; nullptr when it has none.
inline const char* openssl_reason(const boost::system::error_code& ec) {
  if (ec.category() != boost::asio::error::get_ssl_category()) return nullptr;
  return ::ERR_reason_error_string(static_cast<unsigned long>(ec.value()));
}

/// Why loading `file` (a PEM certificate, chain or key) failed with `ec`.
inline std::string describe_tls_file_error(const std::string& file, const boost::system::error_code& ec) {
  if (::access(file.c_str(), R_OK) != 0) return std::strerror(errno);
  if (const char* reason = openssl_reason(ec)) return reason;
  return ec.message();
}

}  // namespace sluice
