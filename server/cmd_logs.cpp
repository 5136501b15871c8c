// sluice logs AGENT [--revision R] [--tail BYTES]: the replica log files of an agent, from the server.

#include <cstdlib>
#include <iostream>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "server/command.hpp"

namespace sluice {
namespace {

std::string escape_segment(const std::string& s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

int run_logs(const std::vector<std::string>& argv) {
  std::vector<std::string> args = argv;
  std::string base = cli::take_option(args, "server").value_or("");
  if (base.empty()) {
    const char* env = std::getenv("SLUICE_SERVER");
    base = env ? env : "http://127.0.0.1:8080";
  }
  while (!base.empty() && base.back() == '/') base.pop_back();
  std::string token = cli::take_option(args, "token").value_or("");
  if (token.empty()) {
    const char* env = std::getenv("SLUICE_TOKEN");
    token = env ? env : "";
  }
  const std::string revision = cli::take_option(args, "revision").value_or("");
  const std::string tail = cli::take_option(args, "tail").value_or("");
  if (args.size() != 1) throw std::runtime_error("usage: sluice logs AGENT [--revision R] [--tail BYTES]");

  std::string path = "/apis/v1/logs/" + escape_segment(args[0]);
  std::string query;
  if (!revision.empty()) query += "revision=" + escape_segment(revision);
  if (!tail.empty()) query += std::string(query.empty() ? "" : "&") + "tail=" + escape_segment(tail);
  if (!query.empty()) path += "?" + query;

  httplib::Client client(base);
  client.set_connection_timeout(std::chrono::seconds(5));
  client.set_read_timeout(std::chrono::seconds(60));
  if (!token.empty()) client.set_bearer_token_auth(token);
  auto res = client.Get(path);
  if (!res) {
    std::cerr << "error: cannot reach sluice at " << base << ": " << httplib::to_string(res.error())
              << " (is `sluice serve` running? set --server or SLUICE_SERVER)\n";
    return 1;
  }
  if (res->status != 200) {
    auto body = nlohmann::json::parse(res->body, nullptr, false);
    if (!body.is_discarded() && body.contains("error"))
      std::cerr << "error: " << body["error"].get<std::string>() << "\n";
    else
      std::cerr << "error: HTTP " << res->status << ": " << res->body << "\n";
    return 1;
  }
  std::cout << res->body;
  return 0;
}

SLUICE_COMMAND("logs", "AGENT [--revision R] [--tail BYTES]  print the replica logs of an agent", run_logs);

}  // namespace
}  // namespace sluice
