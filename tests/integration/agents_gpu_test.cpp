// GPU placement of real replicas with a configured inventory (`--gpus`): whole GPUs, memory shares,
// class fallback, preemption by priority, and Unschedulable.

#include "tests/integration/agents_support.hpp"

namespace sluice::testing {
namespace {

class AgentsGpu : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(server_.wait_ready()); }
  SluiceServer server_{{"--gpus", "A100:80Gi,T4:16Gi"}};
};

AgentYaml gpu_agent(const std::string& name, const std::string& limits, const std::string& classes = "",
                    const std::string& priority = "") {
  AgentYaml a;
  a.name = name;
  a.program = "gpu_agent";
  if (!classes.empty()) a.annotations["sluice.dev/gpu-classes"] = classes;
  if (!priority.empty()) a.annotations["sluice.dev/priority"] = priority;
  a.container = "        resources: {limits: {" + limits + "}}\n";
  return a;
}

nlohmann::json gpu_info(SluiceServer& server, const std::string& agent) {
  auto r = call_agent(server, "/agents/" + agent + "/");
  auto j = nlohmann::json::parse(r.body, nullptr, false);
  return j.is_discarded() ? nlohmann::json::object() : j;
}

TEST_F(AgentsGpu, WholeGpusSharesAndClassFallback) {
  apply_agent(server_, agent_yaml(gpu_agent("big", "nvidia.com/gpu: 1", "H100,A100")));
  apply_agent(server_, agent_yaml(gpu_agent("small", "sluice.dev/gpu-memory: 8Gi", "T4")));
  ASSERT_TRUE(wait_until([&] { return ready_replicas(server_, "big", "big-00001") == 1; }));
  ASSERT_TRUE(wait_until([&] { return ready_replicas(server_, "small", "small-00001") == 1; }));
  EXPECT_EQ(gpu_info(server_, "big")["cuda_visible_devices"], "0");
  auto small = gpu_info(server_, "small");
  EXPECT_EQ(small["cuda_visible_devices"], "1");
  EXPECT_EQ(small["sluice_gpu_memory"], "8589934592");
  auto rep = revision_status(server_, "small", "small-00001")["replicaStatus"][0];
  EXPECT_EQ(rep["gpuClass"], "T4");
}

TEST_F(AgentsGpu, HigherPriorityPreemptsAndTheVictimIsUnschedulable) {
  apply_agent(server_, agent_yaml(gpu_agent("low", "nvidia.com/gpu: 1", "A100", "0")));
  ASSERT_TRUE(wait_until([&] { return ready_replicas(server_, "low", "low-00001") == 1; }));
  apply_agent(server_, agent_yaml(gpu_agent("high", "nvidia.com/gpu: 1", "A100", "10")));
  ASSERT_TRUE(wait_until([&] { return ready_replicas(server_, "high", "high-00001") == 1; },
                         std::chrono::seconds(15)))
      << agent_status(server_, "high").dump() << agent_status(server_, "low").dump();
  EXPECT_EQ(gpu_info(server_, "high")["cuda_visible_devices"], "0");
  ASSERT_TRUE(wait_until([&] {
    auto r = revision_status(server_, "low", "low-00001");
    return r.value("readyReplicas", -1) == 0 && r.value("reason", "").rfind("Unschedulable", 0) == 0;
  })) << agent_status(server_, "low").dump();
}

TEST_F(AgentsGpu, ImpossibleRequestIsUnschedulable) {
  apply_agent(server_, agent_yaml(gpu_agent("greedy", "nvidia.com/gpu: 2", "A100")));
  ASSERT_TRUE(wait_until([&] {
    httplib::Client client("127.0.0.1", server_.port());
    auto res = client.Get("/apis/v1/agents/greedy");
    if (!res) return false;
    auto j = nlohmann::json::parse(res->body, nullptr, false);
    const auto& ready = j["status"]["conditions"][0];
    return ready.value("status", "") == "False" && ready.value("reason", "") == "Unschedulable";
  })) << agent_status(server_, "greedy").dump();
}

}  // namespace
}  // namespace sluice::testing
