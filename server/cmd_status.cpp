// sluice status [-o json] [-w]: what the dashboard (/ui) shows, in the terminal: brokers with their
// ingress rate and the backlog of each trigger, triggers with delivery counts and latency, agent
// revisions with traffic, replicas by state, GPU placement and autoscaler state, and the recent dead
// letters. The data is GET /apis/v1/overview, the same JSON the dashboard polls.

#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "server/cli_client.hpp"
#include "server/command.hpp"

namespace sluice::cli {
namespace {

using nlohmann::json;

/// True, False, or Unknown while the resource is still starting.
std::string ready_text(const json& item) {
  return item.value("readyStatus", item.value("ready", false) ? "True" : "False");
}

std::string latency_text(const json& latency) {
  auto ms = [](double s) { return fixed(s * 1000.0, s < 0.01 ? 2 : 1) + "ms"; };
  if (latency.value("attempts", 0) == 0) return "-";
  return ms(latency.value("p50Seconds", 0.0)) + "/" + ms(latency.value("p99Seconds", 0.0));
}

std::string placement_text(const json& revision) {
  std::string out;
  for (const auto& p : revision.value("placement", json::array())) {
    if (!p.contains("gpus")) continue;
    std::string gpus;
    for (const auto& g : p["gpus"]) gpus += (gpus.empty() ? "" : ",") + std::to_string(g.get<int>());
    out += (out.empty() ? "" : " ") + p.value("replica", "") + ":gpu" + gpus;
  }
  return out.empty() ? "-" : out;
}

void section(std::ostringstream& out, const char* title, const std::vector<std::vector<std::string>>& rows,
             const char* none) {
  out << title << "\n";
  if (rows.size() == 1)
    out << "  " << none << "\n";
  else
    print_columns(out, rows);
  out << "\n";
}

std::string render(const json& o) {
  std::ostringstream out;
  std::vector<std::vector<std::string>> brokers{
      {"BROKER", "READY", "STORAGE", "EVENTS", "INGRESS/S", "BACKLOG"}};
  for (const auto& b : o.value("brokers", json::array())) {
    std::string backlog;
    for (const auto& t : b.value("triggers", json::array()))
      backlog += (backlog.empty() ? "" : " ") + t.value("name", "") + "=" +
                 std::to_string(t.value("backlog", std::uint64_t{0}));
    brokers.push_back({b.value("name", ""), ready_text(b), b.value("storage", ""),
                       std::to_string(b.value("events", std::uint64_t{0})),
                       fixed(b.value("ingressPerSecond", 0.0), 1), backlog.empty() ? "-" : backlog});
  }
  section(out, "BROKERS", brokers, "none");
  std::vector<std::vector<std::string>> triggers{{"TRIGGER", "BROKER", "READY", "DELIVERED", "FAILED",
                                                  "DEAD-LETTERED", "DROPPED", "BACKLOG", "IN-FLIGHT",
                                                  "LATENCY P50/P99"}};
  for (const auto& t : o.value("triggers", json::array())) {
    auto n = [&](const char* key) { return std::to_string(t.value(key, std::uint64_t{0})); };
    triggers.push_back({t.value("name", ""), t.value("broker", ""), ready_text(t), n("delivered"),
                        n("failedAttempts"), n("deadLettered"), n("dropped"), n("backlog"), n("inFlight"),
                        latency_text(t.value("latency", json::object()))});
  }
  section(out, "TRIGGERS", triggers, "none");
  std::vector<std::vector<std::string>> agents{{"AGENT", "REVISION", "TRAFFIC", "READY", "REPLICAS R/S/D/RES",
                                                "DESIRED", "CONCURRENCY", "PANIC", "GPU"}};
  for (const auto& a : o.value("agents", json::array())) {
    for (const auto& r : a.value("revisions", json::array())) {
      const json replicas = r.value("replicas", json::object());
      const json autoscaler = r.value("autoscaler", json::object());
      auto c = [&](const char* key) { return std::to_string(replicas.value(key, 0)); };
      agents.push_back({a.value("name", ""), r.value("name", ""), std::to_string(r.value("traffic", 0)) + "%",
                        ready_text(r),
                        c("ready") + "/" + c("starting") + "/" + c("draining") + "/" + c("reserve"),
                        std::to_string(r.value("desiredReplicas", 0)),
                        fixed(autoscaler.value("observedStableConcurrency", 0.0), 2),
                        autoscaler.value("panic", false) ? "yes" : "no", placement_text(r)});
    }
  }
  section(out, "AGENTS", agents, "none");
  std::vector<std::vector<std::string>> letters{{"TIME", "TRIGGER", "OUTCOME", "EVENT", "CODE", "DEST"}};
  for (const auto& d : o.value("deadLetters", json::array())) {
    letters.push_back({d.value("time", ""), d.value("broker", "") + "/" + d.value("trigger", ""),
                       d.value("outcome", ""), d.value("id", ""),
                       d.contains("knativeerrorcode") ? std::to_string(d.value("knativeerrorcode", 0))
                                                      : d.value("error", ""),
                       d.value("knativeerrordest", "")});
  }
  section(out, "RECENT DEAD LETTERS", letters, "none");
  return out.str();
}

int run_status(const std::vector<std::string>& argv) {
  auto args = argv;
  auto target = server_of(args);
  const std::string output = take_option(args, "o").value_or(take_option(args, "output").value_or("table"));
  if (output != "table" && output != "json") throw std::runtime_error("-o must be json, got " + output);
  const bool watch = take_flag(args, "w") || take_flag(args, "watch");
  if (!args.empty()) throw std::runtime_error("unexpected argument " + args.front());
  return show(target, "/apis/v1/overview", watch,
              [&](const json& body) { return output == "json" ? body.dump(2) + "\n" : render(body); });
}

SLUICE_COMMAND("status",
               "[-o json] [-w] [--server URL]  what the dashboard shows: brokers (ingress rate, backlog per "
               "trigger), triggers (deliveries, latency), agent revisions (replicas, GPUs, autoscaler), "
               "recent dead letters",
               run_status);

}  // namespace
}  // namespace sluice::cli
