#pragma once
// Shared steps of the agents integration tests: Agent manifests for the example agents, requests
// through /agents/, and the agent's status.

#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/support/process.hpp"
#include "tests/support/wait.hpp"

namespace sluice::testing {

struct AgentYaml {
  std::string name;
  std::string program = "echo_agent";
  std::map<std::string, std::string> env;
  std::map<std::string, std::string> annotations;  // spec.template.metadata.annotations
  std::string template_spec;                       // extra lines under spec.template.spec (4 spaces)
  std::string container;                           // extra lines under the container (8 spaces)
  std::string traffic;                             // lines under spec (2 spaces), e.g. "  traffic: […]\n"
};

inline std::string agent_yaml(const AgentYaml& a) {
  std::string y =
      "apiVersion: sluice.dev/v1\nkind: Agent\nmetadata: {name: " + a.name + "}\nspec:\n  template:\n";
  if (!a.annotations.empty()) {
    y += "    metadata:\n      annotations:\n";
    for (const auto& [k, v] : a.annotations) y += "        " + k + ": \"" + v + "\"\n";
  }
  y += "    spec:\n" + a.template_spec + "      containers:\n      - command: [\"" +
       built_program(a.program) + "\"]\n";
  y += "        readinessProbe: {httpGet: {path: /healthz}}\n";
  if (!a.env.empty()) {
    y += "        env:\n";
    for (const auto& [k, v] : a.env) y += "        - {name: " + k + ", value: \"" + v + "\"}\n";
  }
  y += a.container;
  y += a.traffic;
  return y;
}

/// The example MCP agent (build/mcp_agent) as `name`, kept at `min_scale` (and started at it).
inline std::string mcp_agent_yaml(const std::string& name, const std::string& min_scale = "0") {
  AgentYaml a;
  a.name = name;
  a.program = "mcp_agent";
  a.annotations = {{"sluice.dev/protocol", "mcp"},
                   {"autoscaling.knative.dev/min-scale", min_scale},
                   {"autoscaling.knative.dev/initial-scale", min_scale}};
  return agent_yaml(a);
}

inline void apply_agent(SluiceServer& server, const std::string& yaml) {
  std::string out;
  ASSERT_EQ(server.cli({"apply", "-f", "-"}, &out, yaml), 0) << out;
}

inline nlohmann::json agent_status(SluiceServer& server, const std::string& name) {
  httplib::Client client("127.0.0.1", server.port());
  auto res = client.Get("/apis/v1/agents/" + name);
  if (!res || res->status != 200) return nlohmann::json::object();
  auto j = nlohmann::json::parse(res->body, nullptr, false);
  return j.is_discarded() ? nlohmann::json::object() : j.value("status", nlohmann::json::object());
}

/// The status entry of one revision (empty when absent).
inline nlohmann::json revision_status(SluiceServer& server, const std::string& agent,
                                      const std::string& revision) {
  for (const auto& r : agent_status(server, agent).value("revisions", nlohmann::json::array()))
    if (r.value("name", "") == revision) return r;
  return nlohmann::json::object();
}

inline int ready_replicas(SluiceServer& server, const std::string& agent, const std::string& revision) {
  return revision_status(server, agent, revision).value("readyReplicas", -1);
}

/// `slow_agent` (LATENCY_MS) with one replica always up (min-scale 1).
inline AgentYaml warm_slow_agent(const std::string& name, const std::string& latency_ms = "10") {
  AgentYaml a;
  a.name = name;
  a.program = "slow_agent";
  a.env = {{"LATENCY_MS", latency_ms}};
  a.annotations = {{"autoscaling.knative.dev/min-scale", "1"}};
  return a;
}

/// Applies the agent and waits until its first revision has one ready replica.
inline bool start_agent(SluiceServer& server, const AgentYaml& a) {
  std::string out;
  if (server.cli({"apply", "-f", "-"}, &out, agent_yaml(a)) != 0) {
    ADD_FAILURE() << out;
    return false;
  }
  return wait_until([&] { return ready_replicas(server, a.name, a.name + "-00001") == 1; });
}

/// `clients` threads calling `path` until stopped: counts 2xx answers and failures, and keeps the first
/// failures for a test's message.
class Load {
 public:
  Load(SluiceServer& server, std::string path, int clients) {
    for (int i = 0; i < clients; ++i)
      threads_.emplace_back([this, &server, path] {
        httplib::Client client("127.0.0.1", server.port());
        client.set_read_timeout(30, 0);
        while (!stop_) {
          auto res = client.Get(path);
          if (res && res->status / 100 == 2) {
            ++ok_;
            continue;
          }
          ++failed_;
          std::lock_guard lock(mu_);
          if (failures_.size() < 5)
            failures_.push_back(res ? std::to_string(res->status) + " " + res->body
                                    : "transport error " + httplib::to_string(res.error()));
        }
      });
  }
  ~Load() { stop(); }
  void stop() {
    stop_ = true;
    for (auto& t : threads_)
      if (t.joinable()) t.join();
  }
  int ok() const { return ok_; }
  int failed() const { return failed_; }
  std::string failures() const {
    std::lock_guard lock(mu_);
    std::string out;
    for (const auto& f : failures_) out += f + "\n";
    return out;
  }

 private:
  std::atomic<bool> stop_{false};
  std::atomic<int> ok_{0}, failed_{0};
  mutable std::mutex mu_;
  std::vector<std::string> failures_;
  std::vector<std::thread> threads_;
};

struct AgentReply {
  int status = 0;  // 0: transport error
  std::string body;
  std::string revision;  // x-sluice-revision
  std::string replica;   // x-sluice-replica
};

inline AgentReply call_agent(SluiceServer& server, const std::string& path, httplib::Headers headers = {},
                             std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
  httplib::Client client("127.0.0.1", server.port());
  client.set_read_timeout(std::chrono::duration_cast<std::chrono::seconds>(timeout).count(),
                          (timeout.count() % 1000) * 1000);
  auto res = client.Get(path, headers);
  AgentReply r;
  if (!res) return r;
  r.status = res->status;
  r.body = res->body;
  r.revision = res->get_header_value("x-sluice-revision");
  r.replica = res->get_header_value("x-sluice-replica");
  return r;
}

}  // namespace sluice::testing
