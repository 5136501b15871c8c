// slow_agent: a stand-in for a slow inference service.
//
//   PORT        where to listen (sluice sets it; default 8080)
//   STARTUP_MS  sleep this long before listening (model loading), default 0
//   LATENCY_MS  time each request takes, default 100; `?latency_ms=N` overrides it per request
//   `?alloc_mb=N` on a request: allocate and touch N MiB for its duration (to meet a memory limit)
//   THREADS     requests handled at once, default 64
//
// Any request except GET /stats and GET /healthz is "inference": it waits the latency and answers
// {"replica", "revision", "path", "latency_ms", "served"}, except a CloudEvent in binary mode (a trigger's
// delivery, with a ce-specversion header), which is accepted with 202 and no body: a reply body
// that is not an event would count as a failed delivery. GET /stats answers {"in_flight", "served"}.
// SIGTERM: stop accepting, let every request in flight finish, then exit 0 (graceful drain).

#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "agent_server.hpp"

namespace {

using example::env_or;

}  // namespace

int main() {
  const sigset_t signals = example::block_stop_signals();

  const int port = std::atoi(env_or("PORT", "8080").c_str());
  const long startup_ms = std::atol(env_or("STARTUP_MS", "0").c_str());
  const long latency_ms = std::atol(env_or("LATENCY_MS", "100").c_str());
  const int threads = std::max(1, std::atoi(env_or("THREADS", "64").c_str()));
  const std::string revision = env_or("SLUICE_REVISION", "");
  const std::string replica = env_or("SLUICE_REPLICA", "");
  std::atomic<long> in_flight{0}, served{0};

  std::cout << "slow_agent: loading for " << startup_ms << " ms" << std::endl;
  std::this_thread::sleep_for(std::chrono::milliseconds(startup_ms));

  httplib::Server server;
  example::tune(server, static_cast<std::size_t>(threads));
  server.set_post_routing_handler([&](const httplib::Request&, httplib::Response& res) {
    res.set_header("x-sluice-revision", revision);
    res.set_header("x-sluice-replica", replica);
  });
  server.Get("/healthz",
             [](const httplib::Request&, httplib::Response& res) { res.set_content("ok", "text/plain"); });
  server.Get("/stats", [&](const httplib::Request&, httplib::Response& res) {
    nlohmann::json stats = {{"in_flight", in_flight.load()}, {"served", served.load()}};
    res.set_content(stats.dump(), "application/json");
  });
  auto infer = [&](const httplib::Request& req, httplib::Response& res) {
    ++in_flight;
    long latency = latency_ms;
    if (req.has_param("latency_ms")) latency = std::atol(req.get_param_value("latency_ms").c_str());
    std::vector<char> ballast;
    if (req.has_param("alloc_mb")) {
      ballast.resize(static_cast<std::size_t>(std::atol(req.get_param_value("alloc_mb").c_str())) << 20);
      for (std::size_t i = 0; i < ballast.size(); i += 4096) ballast[i] = 1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(latency));
    long n = ++served;
    if (req.has_header("ce-specversion")) {
      res.status = 202;
      --in_flight;
      return;
    }
    nlohmann::json body = {{"replica", replica},
                           {"revision", revision},
                           {"path", req.path},
                           {"latency_ms", latency},
                           {"served", n}};
    res.set_content(body.dump(), "application/json");
    --in_flight;
  };
  server.Get(R"(/.*)", infer);
  server.Post(R"(/.*)", infer);

  const int code = example::serve(server, port, signals, "slow_agent",
                                  " (latency " + std::to_string(latency_ms) + " ms)", [&](int sig) {
                                    std::cout << "slow_agent: signal " << sig << ", draining "
                                              << in_flight.load() << " requests in flight" << std::endl;
                                  });
  // serve() returns once stopped and every request in flight has finished.
  if (code == 0) std::cout << "slow_agent: drained; served " << served.load() << " requests" << std::endl;
  return code;
}
