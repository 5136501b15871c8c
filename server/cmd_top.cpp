// sluice top [--interval 2s] [--iterations N]: the live load of every agent revision in the terminal.
//
// One row per revision that has traffic, replicas or requests: its traffic share, replicas (ready of
// desired, and reserve), requests in flight and waiting for a replica, the concurrency the autoscaler
// observes (stable window, and panic mode), and over the last interval the requests per second, their
// mean time on a replica and the requests refused (503 buffer full, 504 no replica in time). Rates come
// from the activator's counters in the agents' status, so the first frame shows none.

#include <chrono>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <map>
#include <sstream>
#include <thread>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "core/duration.hpp"
#include "server/cli_client.hpp"
#include "server/command.hpp"

namespace sluice::cli {
namespace {

struct Totals {
  std::uint64_t completed = 0;
  std::uint64_t refused = 0;
  double service_seconds = 0;
};

std::string clock_now() {
  std::time_t t = std::time(nullptr);
  char buf[16];
  std::strftime(buf, sizeof buf, "%H:%M:%S", std::localtime(&t));
  return buf;
}

/// One frame; `previous` holds each revision's totals from the last frame and is updated.
std::string render(const nlohmann::json& agents, std::map<std::string, Totals>& previous, double seconds) {
  std::vector<std::vector<std::string>> rows{{"AGENT", "REVISION", "TRAFFIC", "READY", "RESERVE", "IN-FLIGHT",
                                              "WAITING", "CONCURRENCY", "PANIC", "RPS", "LATENCY",
                                              "REFUSED"}};
  std::map<std::string, Totals> now;
  for (const auto& agent : agents.value("items", nlohmann::json::array())) {
    const std::string name = agent.value("metadata", nlohmann::json::object()).value("name", "");
    const auto status = agent.value("status", nlohmann::json::object());
    for (const auto& r : status.value("revisions", nlohmann::json::array())) {
      const std::string revision = r.value("name", "");
      const auto requests = r.value("requests", nlohmann::json::object());
      const auto autoscaler = r.value("autoscaler", nlohmann::json::object());
      Totals t{requests.value("completed", std::uint64_t{0}),
               requests.value("rejected", std::uint64_t{0}) + requests.value("timedOut", std::uint64_t{0}),
               requests.value("serviceSecondsTotal", 0.0)};
      now[revision] = t;
      const int traffic = r.value("traffic", 0);
      const int replicas = r.value("replicas", 0);
      const int reserve = r.value("reserveReplicas", 0);
      const std::size_t in_flight = requests.value("inFlight", std::size_t{0});
      const std::size_t waiting = requests.value("waiting", std::size_t{0});
      auto before = previous.find(revision);
      const bool moved = before != previous.end() &&
                         t.completed + t.refused != before->second.completed + before->second.refused;
      if (traffic == 0 && replicas == 0 && reserve == 0 && in_flight == 0 && waiting == 0 && !moved) continue;
      std::string rps = "-", latency = "-", refused = "-";
      if (before != previous.end() && seconds > 0) {
        const auto done = t.completed - std::min(t.completed, before->second.completed);
        rps = fixed(static_cast<double>(done) / seconds, 1);
        latency = done == 0 ? "-"
                            : fixed((t.service_seconds - before->second.service_seconds) * 1000.0 /
                                        static_cast<double>(done),
                                    0) +
                                  "ms";
        refused = std::to_string(t.refused - std::min(t.refused, before->second.refused));
      }
      std::string concurrency = "-";
      if (autoscaler.contains("observedStableConcurrency"))
        concurrency = fixed(autoscaler.value("observedStableConcurrency", 0.0), 1);
      rows.push_back(
          {name, revision, std::to_string(traffic) + "%",
           std::to_string(r.value("readyReplicas", 0)) + "/" + std::to_string(r.value("desiredReplicas", 0)),
           std::to_string(reserve), std::to_string(in_flight), std::to_string(waiting), concurrency,
           autoscaler.value("panic", false) ? "yes" : "no", rps, latency, refused});
    }
  }
  previous = std::move(now);
  std::ostringstream out;
  if (rows.size() == 1) {
    out << "No agents with traffic or replicas.\n";
  } else {
    print_columns(out, rows);
  }
  return out.str();
}

int run_top(const std::vector<std::string>& argv) {
  std::vector<std::string> args = argv;
  auto target = server_of(args);
  std::chrono::milliseconds interval{2000};
  if (auto value = take_option(args, "interval")) {
    auto d = parse_duration(*value);
    if (!d || d.value().count() <= 0)
      throw std::runtime_error("--interval expects a duration such as 2s, got " + *value);
    interval = d.value();
  }
  const long long iterations =
      take_int_option(args, "iterations", 1, 1LL << 40, "a positive number").value_or(0);
  if (!args.empty()) throw std::runtime_error("unexpected argument " + args.front());
  const bool terminal = ::isatty(STDOUT_FILENO) == 1;
  auto client = client_for(target);
  std::map<std::string, Totals> previous;
  auto last = std::chrono::steady_clock::now();
  for (long long frame = 1;; ++frame) {
    auto res = client.Get("/apis/v1/agents");
    if (!res || res->status != 200) return report_failure(target, res);
    auto body = nlohmann::json::parse(res->body, nullptr, false);
    if (body.is_discarded()) {
      std::cerr << "error: the server's answer to GET /apis/v1/agents is not JSON\n";
      return 1;
    }
    const auto now = std::chrono::steady_clock::now();
    const double seconds = std::chrono::duration<double>(now - last).count();
    last = now;
    std::string text = render(body, previous, frame == 1 ? 0 : seconds);
    // A terminal gets one screen redrawn in place; a pipe gets every frame, one after the other.
    if (terminal) std::cout << "\033[H\033[2J";
    std::cout << "sluice top  " << target.base << "  " << clock_now() << "  every " << interval.count()
              << "ms\n\n"
              << text << (terminal ? "" : "\n") << std::flush;
    if (iterations > 0 && frame >= iterations) return 0;
    std::this_thread::sleep_for(interval);
  }
}

SLUICE_COMMAND(
    "top",
    "[--interval 2s] [--iterations N] [--server URL]  live load of every agent revision: replicas, "
    "requests in flight and waiting, concurrency, rps, latency",
    run_top);

}  // namespace
}  // namespace sluice::cli
