#pragma once
// http(s) URLs as subscribers, sinks and gateways name them: scheme, host, port and request target.

#include <cstdint>
#include <string>
#include <string_view>

#include "core/result.hpp"

namespace sluice {

struct ParsedUrl {
  std::string scheme = "http";  // "http" or "https", lowercase
  std::string host;             // without brackets for IPv6 literals
  std::uint16_t port = 80;      // 443 for https unless given
  std::string target = "/";     // path and query, never empty; the fragment is dropped

  bool tls() const { return scheme == "https"; }
  /// The Host header value: "host" for the scheme's default port, "host:port" otherwise ("[::1]:8080"
  /// for IPv6).
  std::string authority() const;
};

/// Parses an http:// or https:// URL; the error names what is wrong ("missing host", …).
Result<ParsedUrl> parse_url(std::string_view url);

/// Why a TCP connection to the host and port of `url` fails now, as strerror/gai_strerror word it
/// ("Connection refused", "Name or service not known (host)"); empty when it succeeds. Blocking (a
/// connect with a 5 s timeout): for saying why a client library's connection failed.
std::string tcp_connect_failure(const std::string& url);

}  // namespace sluice
