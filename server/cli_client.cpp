#include "server/cli_client.hpp"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <memory>
#include <thread>

#include <nlohmann/json.hpp>

#include "core/url.hpp"
#include "server/command.hpp"

namespace sluice::cli {

Target server_of(std::vector<std::string>& args) {
  Target t;
  t.base = take_option(args, "server").value_or("");
  if (t.base.empty()) {
    // An empty variable counts as unset, as an empty --server does.
    const char* env = std::getenv("SLUICE_SERVER");
    t.base = env && *env ? env : "http://127.0.0.1:8080";
  }
  while (!t.base.empty() && t.base.back() == '/') t.base.pop_back();
  t.token = take_option(args, "token").value_or("");
  if (t.token.empty()) {
    const char* env = std::getenv("SLUICE_TOKEN");
    t.token = env ? env : "";
  }
  return t;
}

httplib::Client client_for(const Target& t) {
  httplib::Client client(t.base);
  client.set_connection_timeout(std::chrono::seconds(5));
  client.set_read_timeout(std::chrono::seconds(60));
  if (!t.token.empty()) client.set_bearer_token_auth(t.token);
  return client;
}

namespace {

/// Why a TCP connection to the URL's host and port fails now, as strerror/gai_strerror word it; empty
/// when it succeeds.
std::string connect_failure(const std::string& base) {
  auto parsed = parse_url(base);
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

}  // namespace

std::string transport_error_text(const Target& t, httplib::Error error) {
  switch (error) {
    case httplib::Error::Connection: {
      std::string why = connect_failure(t.base);
      return why.empty() ? "could not connect" : why;
    }
    case httplib::Error::ConnectionTimeout:
      return "Connection timed out";
    case httplib::Error::Read:
      return "no answer (the connection closed, or nothing came within 60s)";
    case httplib::Error::Write:
      return "the request could not be sent (the connection closed)";
    case httplib::Error::SSLConnection:
      return "the TLS handshake failed";
    case httplib::Error::SSLServerVerification:
      return "the server's TLS certificate could not be verified";
    default:
      return httplib::to_string(error);
  }
}

int report_failure(const Target& t, const httplib::Result& res) {
  if (!res) {
    // A certificate the CLI does not trust is no sign of a server that is down: say how to trust it.
    const char* next_step = res.error() == httplib::Error::SSLServerVerification
                                ? " (to trust a private CA, set SSL_CERT_FILE to its PEM file)"
                                : " (is `sluice serve` running? set --server or SLUICE_SERVER)";
    std::cerr << "error: cannot reach sluice at " << t.base << ": " << transport_error_text(t, res.error())
              << next_step << "\n";
    return 1;
  }
  auto body = nlohmann::json::parse(res->body, nullptr, false);
  // A server with authentication on: say how the CLI sends a token (the server's message speaks HTTP).
  const std::string hint = res->status != 401 ? ""
                           : t.token.empty()  ? " (give --token TOKEN or set SLUICE_TOKEN)"
                                              : " (the token from --token or SLUICE_TOKEN was refused)";
  if (!body.is_discarded() && body.is_object() && body.contains("error") && body["error"].is_string())
    std::cerr << "error: " << body["error"].get<std::string>() << hint << "\n";
  else
    std::cerr << "error: HTTP " << res->status << ": " << res->body << hint << "\n";
  return 1;
}

std::string escape_path_segment(const std::string& segment) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : segment) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    }
  }
  return out;
}

void print_columns(std::ostream& out, const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::size_t> widths;
  for (const auto& row : rows) {
    if (widths.size() < row.size()) widths.resize(row.size(), 0);
    for (std::size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  }
  for (const auto& row : rows) {
    for (std::size_t i = 0; i < row.size(); ++i) {
      out << row[i];
      if (i + 1 < row.size()) out << std::string(widths[i] - row[i].size() + 3, ' ');
    }
    out << "\n";
  }
}

std::string fixed(double value, int decimals) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, value);
  return buf;
}

int show(const Target& target, const std::string& path, bool watch,
         const std::function<std::string(const nlohmann::json&)>& render) {
  auto client = client_for(target);
  std::string shown;
  for (;;) {
    auto res = client.Get(path);
    if (!res || res->status != 200) return report_failure(target, res);
    auto body = nlohmann::json::parse(res->body, nullptr, false);
    if (body.is_discarded()) {
      std::cerr << "error: the server's answer to GET " << path << " is not JSON\n";
      return 1;
    }
    std::string text = render(body);
    if (text != shown) {
      if (!shown.empty()) std::cout << "\n";
      std::cout << text << std::flush;
      shown = std::move(text);
    }
    if (!watch) return 0;
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
}

}  // namespace sluice::cli
