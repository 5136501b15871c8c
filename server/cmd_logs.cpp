// sluice logs AGENT [--revision R] [--tail BYTES]: the replica log files of an agent, from the server.

#include <iostream>

#include "server/cli_client.hpp"
#include "server/command.hpp"

namespace sluice::cli {
namespace {

int run_logs(const std::vector<std::string>& argv) {
  std::vector<std::string> args = argv;
  auto target = server_of(args);
  const std::string revision = take_option(args, "revision").value_or("");
  const auto tail_bytes = take_int_option(args, "tail", 0, 1LL << 40, "a number of bytes (0: whole logs)");
  const std::string tail = tail_bytes ? std::to_string(*tail_bytes) : "";
  if (args.size() != 1) throw std::runtime_error("usage: sluice logs AGENT [--revision R] [--tail BYTES]");

  std::string path = "/apis/v1/logs/" + escape_path_segment(args[0]);
  std::string query;
  if (!revision.empty()) query += "revision=" + escape_path_segment(revision);
  if (!tail.empty()) query += std::string(query.empty() ? "" : "&") + "tail=" + escape_path_segment(tail);
  if (!query.empty()) path += "?" + query;

  auto client = client_for(target);
  auto res = client.Get(path);
  if (!res || res->status != 200) return report_failure(target, res);
  std::cout << res->body;
  return 0;
}

SLUICE_COMMAND("logs", "AGENT [--revision R] [--tail BYTES]  print the replica logs of an agent", run_logs);

}  // namespace
}  // namespace sluice::cli
