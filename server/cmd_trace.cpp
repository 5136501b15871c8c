// `sluice trace EVENT_ID [-o json]`: the path of one event through Sluice, from the server's own span
// records: publish → each delivery attempt of each trigger → replies published by subscribers, as a
// tree by parent span, with times relative to the first span.

#include <iomanip>
#include <iostream>
#include <map>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "server/cli_client.hpp"
#include "server/command.hpp"

namespace sluice::cli {
namespace {

std::string describe(const nlohmann::json& span) {
  const auto& a = span.value("attributes", nlohmann::json::object());
  const std::string name = span.value("name", "");
  std::string text;
  if (name == "publish") {
    text = "broker " + a.value("broker", "?") + " stored event " + span.value("eventId", "") + " (" +
           a.value("event.type", "") + ")";
  } else if (name == "deliver") {
    const std::string status = a.value("http.status_code", "0");
    text = "trigger " + a.value("trigger", "?") + " → " + a.value("subscriber", "?") + ": " +
           (status == "0" ? std::string("no response") : "HTTP " + status);
  } else if (name == "dead-letter") {
    const std::string status = a.value("http.status_code", "0");
    text = "trigger " + a.value("trigger", "?") + " → dead-letter sink " + a.value("sink", "?") + ": " +
           (status == "0" ? std::string("no response") : "HTTP " + status);
  } else {
    text = name;
  }
  // An error that only repeats the status ("HTTP 500") adds nothing.
  if (span.value("error", false) && a.contains("error") &&
      a.value("error", "") != "HTTP " + a.value("http.status_code", ""))
    text += " (" + a.value("error", "") + ")";
  return text;
}

void print_tree(const nlohmann::json& span,
                const std::map<std::string, std::vector<nlohmann::json>>& children, std::int64_t origin,
                int depth) {
  const double at_ms = static_cast<double>(span.value("startUnixNano", std::int64_t{0}) - origin) / 1e6;
  const double took_ms = static_cast<double>(span.value("endUnixNano", std::int64_t{0}) -
                                             span.value("startUnixNano", std::int64_t{0})) /
                         1e6;
  std::ostringstream line;
  line << std::fixed << std::setprecision(3) << "+" << at_ms << " ms  " << std::string(depth * 2, ' ')
       << (span.value("error", false) ? "✗ " : "✓ ") << span.value("name", "") << "  " << describe(span)
       << "  [" << took_ms << " ms]";
  std::cout << line.str() << "\n";
  auto it = children.find(span.value("spanId", ""));
  if (it == children.end()) return;
  for (const auto& child : it->second) print_tree(child, children, origin, depth + 1);
}

int run_trace(const std::vector<std::string>& argv) {
  auto args = argv;
  auto target = server_of(args);
  const std::string output = take_option(args, "o").value_or(take_option(args, "output").value_or("tree"));
  if (output != "tree" && output != "json") throw std::runtime_error("-o must be json, got " + output);
  for (const auto& arg : args)
    if (arg.size() > 1 && arg[0] == '-')
      throw std::runtime_error("unknown option " + arg + " (see sluice help)");
  if (args.size() != 1) throw std::runtime_error("trace needs exactly one EVENT_ID");
  auto client = client_for(target);
  auto res = client.Get("/apis/v1/traces/" + escape_path_segment(args[0]));
  if (!res || res->status != 200) return report_failure(target, res);
  auto body = nlohmann::json::parse(res->body, nullptr, false);
  if (output == "json") {
    std::cout << body.dump(2) << "\n";
    return 0;
  }
  const auto& spans = body["spans"];
  std::set<std::string> ids;
  for (const auto& s : spans) ids.insert(s.value("spanId", ""));
  std::map<std::string, std::vector<nlohmann::json>> children;
  std::vector<nlohmann::json> roots;
  for (const auto& s : spans) {
    const std::string parent = s.value("parentSpanId", "");
    if (!parent.empty() && ids.count(parent))
      children[parent].push_back(s);
    else
      roots.push_back(s);
  }
  if (spans.empty()) return 0;
  std::cout << "trace " << spans[0].value("traceId", "") << "\n";
  const std::int64_t origin = spans[0].value("startUnixNano", std::int64_t{0});
  for (const auto& root : roots) print_tree(root, children, origin, 0);
  return 0;
}

SLUICE_COMMAND("trace",
               "EVENT_ID [-o json] [--server URL]  the path of one event: publish, deliveries, replies",
               run_trace);

}  // namespace
}  // namespace sluice::cli
