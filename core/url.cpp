#include "core/url.hpp"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <memory>

#include "core/text.hpp"

namespace sluice {

std::string ParsedUrl::authority() const {
  std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  return port == (tls() ? 443 : 80) ? h : h + ":" + std::to_string(port);
}

Result<ParsedUrl> parse_url(std::string_view url) {
  auto error = [&](const std::string& why) {
    return make_error(std::string(url), "invalid URL: " + why + " (expected http[s]://host[:port]/path)");
  };
  auto scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) return error("missing scheme");
  ParsedUrl out;
  std::string_view scheme = url.substr(0, scheme_end);
  if (iequals(scheme, "https")) {
    out.scheme = "https";
    out.port = 443;
  } else if (!iequals(scheme, "http")) {
    return error("unsupported scheme \"" + std::string(scheme) + "\"");
  }
  std::string_view rest = url.substr(scheme_end + 3);
  auto authority_end = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, authority_end);
  std::string_view target = authority_end == std::string_view::npos ? "" : rest.substr(authority_end);
  if (authority.find('@') != std::string_view::npos) return error("user info is not supported");
  std::string_view port_text;
  if (!authority.empty() && authority[0] == '[') {
    auto close = authority.find(']');
    if (close == std::string_view::npos) return error("unterminated IPv6 literal");
    out.host = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') return error("unexpected text after the IPv6 literal");
      port_text = after.substr(1);
      if (port_text.empty()) return error("empty port");
    }
  } else {
    auto colon = authority.rfind(':');
    out.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) {
      port_text = authority.substr(colon + 1);
      if (port_text.empty()) return error("empty port");
    }
  }
  if (out.host.empty()) return error("missing host");
  for (char c : out.host) {
    if (static_cast<unsigned char>(c) <= ' ' || c == '/' || c == '\\' || c == '%') {
      return error("invalid character in host");
    }
  }
  if (!port_text.empty()) {
    unsigned port = 0;
    auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (ec != std::errc() || end != port_text.data() + port_text.size() || port == 0 || port > 65535) {
      return error("invalid port \"" + std::string(port_text) + "\"");
    }
    out.port = static_cast<std::uint16_t>(port);
  }
  target = target.substr(0, target.find('#'));
  for (char c : target) {
    if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f) return error("invalid character in path or query");
  }
  if (target.empty()) {
    out.target = "/";
  } else if (target[0] == '?') {
    out.target = "/" + std::string(target);
  } else {
    out.target = std::string(target);
  }
  return out;
}

std::string tcp_connect_failure(const std::string& url_text) {
  auto parsed = parse_url(url_text);
  if (!parsed) return parsed.error().to_string();
  const ParsedUrl& url = parsed.value();
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (int rc = ::getaddrinfo(url.host.c_str(), std::to_string(url.port).c_str(), &hints, &found); rc != 0)
    return std::string(rc == EAI_SYSTEM ? std::strerror(errno) : ::gai_strerror(rc)) + " (" + url.host + ")";
  std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> addresses(found, ::freeaddrinfo);
  int last = 0;
  for (const addrinfo* a = found; a; a = a->ai_next) {
    int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) {
      last = errno;
      continue;
    }
    int err = 0;
    if (::connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
      err = errno;
      if (err == EINPROGRESS) {
        pollfd p{fd, POLLOUT, 0};
        const int n = ::poll(&p, 1, 5000);  // the client's connection timeout
        socklen_t len = sizeof err;
        if (n == 0)
          err = ETIMEDOUT;
        else if (n < 0)
          err = errno;
        else if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
          err = errno;
      }
    }
    ::close(fd);
    if (err == 0) return "";
    last = err;
  }
  return last ? std::strerror(last) : "no address for " + url.host;
}

}  // namespace sluice
