// Activator overhead: the same requests through `sluice serve`'s /agents/ route and straight to the
// replica, interleaved in one run; and cold start (first request to a revision at zero replicas)
// minus the replica's own startup time (spawn to readiness, as the runtime reports it).
//
//   activator_overhead BUILD_DIR [REQUESTS] [COLD_STARTS]
//
// Starts `BUILD_DIR/sluice serve` on a free port with a temporary data dir and runs BUILD_DIR/echo_agent
// replicas. Prints one line per measure.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include <httplib.h>
#include <nlohmann/json.hpp>

extern char** environ;

namespace {

using Clock = std::chrono::steady_clock;

double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
}

int free_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

bool wait_for(const std::function<bool()>& cond, std::chrono::seconds timeout) {
  auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return false;
}

nlohmann::json get_json(httplib::Client& c, const std::string& path) {
  auto res = c.Get(path);
  if (!res || res->status != 200) return nlohmann::json::object();
  return nlohmann::json::parse(res->body, nullptr, false);
}

std::string agent_yaml(const std::string& name, const std::string& program, bool at_zero) {
  std::string y =
      "apiVersion: sluice.dev/v1\nkind: Agent\nmetadata: {name: " + name + "}\nspec:\n  template:\n";
  if (at_zero) y += "    metadata:\n      annotations: {autoscaling.knative.dev/initial-scale: \"0\"}\n";
  y += "    spec:\n      containers:\n      - command: [\"" + program + "\"]\n";
  y += "        readinessProbe: {httpGet: {path: /healthz}}\n";
  return y;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: activator_overhead BUILD_DIR [REQUESTS] [COLD_STARTS]\n";
    return 2;
  }
  const std::string build = argv[1];
  const int requests = argc > 2 ? std::atoi(argv[2]) : 20000;
  const int cold_starts = argc > 3 ? std::atoi(argv[3]) : 10;
  const std::string data =
      std::filesystem::temp_directory_path() / ("activator-bench-" + std::to_string(getpid()));
  const int port = free_port();
  const std::string sluice = build + "/sluice";
  const std::string listen = "127.0.0.1:" + std::to_string(port);
  std::vector<std::string> args = {sluice,
                                   "serve",
                                   "--listen",
                                   listen,
                                   "--data-dir",
                                   data,
                                   "--gpus",
                                   "none",
                                   "--no-fsync",
                                   "--autoscaler",
                                   "allow-zero-initial-scale=true",
                                   "--log-level",
                                   "warn"};
  std::vector<char*> cargs;
  for (auto& a : args) cargs.push_back(a.data());
  cargs.push_back(nullptr);
  pid_t server = -1;
  if (posix_spawn(&server, sluice.c_str(), nullptr, nullptr, cargs.data(), environ) != 0) {
    std::perror("posix_spawn");
    return 1;
  }
  httplib::Client control("127.0.0.1", port);
  if (!wait_for(
          [&] {
            auto r = control.Get("/readyz");
            return r && r->status == 200;
          },
          std::chrono::seconds(20))) {
    std::cerr << "sluice did not become ready\n";
    kill(server, SIGKILL);
    return 1;
  }
  auto apply = [&](const std::string& yaml) {
    auto r = control.Post("/apis/v1/apply", yaml, "application/yaml");
    if (!r || r->status != 200) std::cerr << "apply failed: " << (r ? r->body : "no response") << "\n";
  };

  // 1. Proxy overhead: interleaved, one keep-alive connection each, sequential requests.
  apply(agent_yaml("echo", build + "/echo_agent", false));
  std::string replica;
  wait_for(
      [&] {
        auto s = get_json(control, "/apis/v1/agents/echo");
        if (!s.contains("status")) return false;
        for (const auto& rev : s["status"]["revisions"])
          for (const auto& rep : rev["replicaStatus"])
            if (rep["state"] == "Ready") replica = rep["address"];
        return !replica.empty();
      },
      std::chrono::seconds(20));
  httplib::Client via("127.0.0.1", port);
  httplib::Client direct("http://" + replica);
  via.set_keep_alive(true);
  direct.set_keep_alive(true);
  std::vector<double> through, straight;
  for (int i = 0; i < requests + 500; ++i) {
    auto t0 = Clock::now();
    auto a = via.Get("/agents/echo/");
    auto t1 = Clock::now();
    auto b = direct.Get("/");
    auto t2 = Clock::now();
    if (!a || a->status != 200 || !b || b->status != 200) {
      std::cerr << "request failed\n";
      break;
    }
    if (i < 500) continue;  // warm-up
    through.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
    straight.push_back(std::chrono::duration<double, std::micro>(t2 - t1).count());
  }
  if (!through.empty()) {
    std::printf(
        "proxy  requests=%zu  direct p50=%.1fus p99=%.1fus  via activator p50=%.1fus p99=%.1fus  "
        "overhead p50=%.1fus p99=%.1fus\n",
        through.size(), percentile(straight, 0.5), percentile(straight, 0.99), percentile(through, 0.5),
        percentile(through, 0.99), percentile(through, 0.5) - percentile(straight, 0.5),
        percentile(through, 0.99) - percentile(straight, 0.99));
  }

  // 2. Cold start: agents created at zero; the first request waits for a replica.
  std::vector<double> total, startup, overhead;
  for (int i = 0; i < cold_starts; ++i) {
    const std::string name = "cold" + std::to_string(i);
    apply(agent_yaml(name, build + "/echo_agent", true));
    httplib::Client c("127.0.0.1", port);
    c.set_read_timeout(30, 0);
    auto t0 = Clock::now();
    auto r = c.Get("/agents/" + name + "/");
    auto t1 = Clock::now();
    if (!r || r->status != 200) {
      std::cerr << "cold request failed\n";
      continue;
    }
    auto s = get_json(control, "/apis/v1/agents/" + name);
    double ready_ms = -1;
    for (const auto& rev : s["status"]["revisions"])
      for (const auto& rep : rev["replicaStatus"]) {
        const std::string reason = rep.value("reason", "");
        auto at = reason.find("passed ");
        if (at != std::string::npos) ready_ms = std::atof(reason.c_str() + at + 7);
      }
    const double ms = std::chrono::duration<double, std::milli>(t1 - t0).count();
    total.push_back(ms);
    startup.push_back(ready_ms);
    overhead.push_back(ms - ready_ms);
  }
  if (!total.empty())
    std::printf(
        "cold   starts=%zu  first response p50=%.1fms  replica startup p50=%.1fms  overhead p50=%.1fms "
        "max=%.1fms\n",
        total.size(), percentile(total, 0.5), percentile(startup, 0.5), percentile(overhead, 0.5),
        *std::max_element(overhead.begin(), overhead.end()));

  kill(server, SIGTERM);
  int status = 0;
  waitpid(server, &status, 0);
  std::filesystem::remove_all(data);
  return 0;
}
