#include "server/cli_client.hpp"

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

std::string transport_error_text(const Target& t, httplib::Error error) {
  switch (error) {
    case httplib::Error::Connection: {
      std::string why = tcp_connect_failure(t.base);
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
