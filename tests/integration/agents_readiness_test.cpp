// The Ready condition of agents is tri-state, as Knative's: Unknown while a revision is being brought up,
// True once it is ready, False for a failure. `sluice apply --wait` waits through Unknown and stops at
// once, with the reason, at a failure that only a new apply can clear. A real `sluice serve`, real
// replica processes and the real CLI.

#include <chrono>
#include <fstream>
#include <string>

#include "tests/integration/agents_support.hpp"

namespace sluice::testing {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

class AgentsReadiness : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(server_.wait_ready()); }

  json ready_condition(const std::string& agent) {
    for (const auto& c : agent_status(server_, agent).value("conditions", json::array()))
      if (c.value("type", "") == "Ready") return c;
    return json::object();
  }

  /// `sluice apply -f - --wait --timeout 60s`: its exit code, stderr alone in `err`, and how long it took.
  int apply_wait(const std::string& yaml, std::string* err, std::chrono::milliseconds* took) {
    const auto start = std::chrono::steady_clock::now();
    const int rc = run_command(built_program("sluice") + " apply -f - --wait --timeout 60s --server " +
                                   server_.url() + " >/dev/null",
                               err, yaml);
    *took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
    return rc;
  }

  SluiceServer server_{{"--gpus", "none", "--autoscaler", "allow-zero-initial-scale=true"}};
};

/// An agent whose one container runs `sh -c SCRIPT` (what a command that exits at once looks like).
std::string shell_agent_yaml(const std::string& name, const std::string& script) {
  return "apiVersion: sluice.dev/v1\nkind: Agent\nmetadata: {name: " + name +
         "}\nspec:\n  template:\n    spec:\n      containers:\n      - command: [\"/bin/sh\", \"-c\", \"" +
         script + "\"]\n        readinessProbe: {httpGet: {path: /healthz}}\n";
}

/// A replica that takes seconds to listen (a model loading) is starting, not failing: the agent, its
/// revision in `get revisions` and `sluice status` read Unknown, never False, until it is ready.
TEST_F(AgentsReadiness, SlowStartingReplicaReadsUnknownThenTrue) {
  AgentYaml a;
  a.name = "slowstart";
  a.program = "slow_agent";
  a.env = {{"STARTUP_MS", "4000"}, {"LATENCY_MS", "1"}};
  a.annotations = {{"autoscaling.knative.dev/min-scale", "1"}};
  apply_agent(server_, agent_yaml(a));

  json condition = ready_condition("slowstart");
  ASSERT_TRUE(wait_until([&] {
    return (condition = ready_condition("slowstart")).value("status", "") == "Unknown";
  })) << condition.dump();
  EXPECT_EQ(condition.value("reason", ""), "RevisionMissing") << condition.dump();
  EXPECT_EQ(revision_status(server_, "slowstart", "slowstart-00001").value("readyStatus", ""), "Unknown");
  std::string out;
  ASSERT_EQ(server_.cli({"get", "revisions", "slowstart"}, &out), 0) << out;
  EXPECT_NE(out.find(" Unknown "), std::string::npos) << out;
  ASSERT_EQ(server_.cli({"get", "agents"}, &out), 0) << out;
  EXPECT_NE(out.find(" Unknown "), std::string::npos) << out;
  ASSERT_EQ(server_.cli({"status"}, &out), 0) << out;
  EXPECT_NE(out.find(" Unknown "), std::string::npos) << out;

  std::string seen;
  ASSERT_TRUE(wait_until(
      [&] {
        condition = ready_condition("slowstart");
        if (condition.value("status", "") != "Unknown") seen += condition.dump() + "\n";
        return condition.value("status", "") == "True";
      },
      30s, 20ms))
      << condition.dump();
  EXPECT_EQ(seen.find("\"False\""), std::string::npos) << seen;
  EXPECT_EQ(revision_status(server_, "slowstart", "slowstart-00001").value("readyStatus", ""), "True");
}

/// A command that does not exist fails every start: False, with the reason and the command's name.
TEST_F(AgentsReadiness, AgentWhoseCommandIsMissingReadsFalseWithTheReason) {
  AgentYaml a;
  a.name = "missing";
  a.program = "no_such_agent";
  apply_agent(server_, agent_yaml(a));
  json condition;
  ASSERT_TRUE(wait_until(
      [&] { return (condition = ready_condition("missing")).value("status", "") == "False"; }, 20s))
      << condition.dump();
  EXPECT_EQ(condition.value("reason", ""), "RevisionFailed") << condition.dump();
  EXPECT_NE(condition.value("message", "").find("command not found"), std::string::npos) << condition.dump();
  EXPECT_NE(condition.value("message", "").find("no_such_agent"), std::string::npos) << condition.dump();
  std::string out;
  ASSERT_EQ(server_.cli({"get", "revisions", "missing"}, &out), 0) << out;
  EXPECT_NE(out.find(" False "), std::string::npos) << out;
}

/// `apply --wait` on an agent whose command exits at once: exit code 1 long before the 60 s timeout,
/// the agent, the reason and the exit on stderr.
TEST_F(AgentsReadiness, ApplyWaitFailsFastWhenTheAgentCrashLoops) {
  std::string err;
  std::chrono::milliseconds took{};
  EXPECT_EQ(apply_wait(shell_agent_yaml("crasher", "exit 3"), &err, &took), 1) << err;
  EXPECT_LT(took, 20s) << err;
  EXPECT_NE(err.find("agents/crasher failed: RevisionFailed"), std::string::npos) << err;
  EXPECT_NE(err.find("exited with code 3"), std::string::npos) << err;
}

/// A replica not ready within serving.knative.dev/progress-deadline: ProgressDeadlineExceeded at the
/// first deadline, and `apply --wait` stops there.
TEST_F(AgentsReadiness, ApplyWaitFailsFastAtTheProgressDeadline) {
  AgentYaml a;
  a.name = "neverup";
  a.program = "slow_agent";
  a.env = {{"STARTUP_MS", "600000"}};
  a.annotations = {{"serving.knative.dev/progress-deadline", "2s"}};
  std::string err;
  std::chrono::milliseconds took{};
  EXPECT_EQ(apply_wait(agent_yaml(a), &err, &took), 1) << err;
  EXPECT_LT(took, 20s) << err;
  EXPECT_NE(err.find("agents/neverup failed: ProgressDeadlineExceeded"), std::string::npos) << err;
  EXPECT_NE(err.find("progress deadline"), std::string::npos) << err;
}

/// A Ready=False that clears by itself does not end `apply --wait`: an agent whose Secret is not there
/// yet (CreateContainerConfigError) is waited for, and the wait succeeds once the Secret is applied.
TEST_F(AgentsReadiness, ApplyWaitKeepsWaitingForAnAgentWhoseSecretComesLater) {
  AgentYaml a;
  a.name = "keyed";
  a.container = "        env:\n        - {name: API_KEY, valueFrom: {secretKeyRef: {name: later, key: k}}}\n";
  TempDir dir;
  const std::string file = dir.path() + "/agent.yaml";
  {
    std::ofstream out(file);
    out << agent_yaml(a);
  }
  Process wait(built_program("sluice"),
               {"apply", "-f", file, "--wait", "--timeout", "60s", "--server", server_.url()});
  json condition;
  ASSERT_TRUE(wait_until([&] {
    condition = ready_condition("keyed");
    return condition.value("status", "") == "False" &&
           condition.value("reason", "") == "CreateContainerConfigError";
  })) << condition.dump();
  ASSERT_TRUE(wait_until([&] {
    return wait.output().find("CreateContainerConfigError") != std::string::npos;
  })) << wait.output();
  EXPECT_TRUE(wait.running()) << wait.output();
  std::string out;
  ASSERT_EQ(server_.cli({"apply", "-f", "-"}, &out,
                        "apiVersion: v1\nkind: Secret\nmetadata: {name: later}\nstringData: {k: v}\n"),
            0)
      << out;
  EXPECT_EQ(wait.wait(30s), 0) << wait.output();
  EXPECT_NE(wait.output().find("agents/keyed: Ready=True"), std::string::npos) << wait.output();
}

/// A good agent that takes a while to start: `apply --wait` prints Unknown, then True, and succeeds.
TEST_F(AgentsReadiness, ApplyWaitSucceedsForAnAgentThatStartsSlowly) {
  AgentYaml a;
  a.name = "patient";
  a.program = "slow_agent";
  a.env = {{"STARTUP_MS", "2000"}, {"LATENCY_MS", "1"}};
  std::string out;
  EXPECT_EQ(server_.cli({"apply", "-f", "-", "--wait", "--timeout", "60s"}, &out, agent_yaml(a)), 0) << out;
  const auto unknown = out.find("agents/patient: Ready=Unknown");
  const auto ready = out.find("agents/patient: Ready=True");
  EXPECT_NE(unknown, std::string::npos) << out;
  EXPECT_NE(ready, std::string::npos) << out;
  EXPECT_LT(unknown, ready) << out;
  EXPECT_EQ(out.find("Ready=False"), std::string::npos) << out;
}

/// As Knative's: a revision created at zero (initial-scale and min-scale 0) is ready to be activated
/// without a replica, so `apply --wait` succeeds at once and nothing starts.
TEST_F(AgentsReadiness, AgentCreatedAtZeroIsReadyWithoutAReplica) {
  AgentYaml a;
  a.name = "idle";
  a.annotations = {{"autoscaling.knative.dev/initial-scale", "0"}};
  std::string out;
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(server_.cli({"apply", "-f", "-", "--wait", "--timeout", "60s"}, &out, agent_yaml(a)), 0) << out;
  EXPECT_LT(std::chrono::steady_clock::now() - start, 10s) << out;
  EXPECT_NE(out.find("agents/idle: Ready=True"), std::string::npos) << out;
  EXPECT_EQ(ready_condition("idle").value("status", ""), "True");
  auto revision = revision_status(server_, "idle", "idle-00001");
  EXPECT_EQ(revision.value("readyStatus", ""), "True") << revision.dump();
  EXPECT_EQ(revision.value("replicas", -1), 0) << "created at zero, yet a replica started";
  EXPECT_EQ(agent_status(server_, "idle").value("latestReadyRevisionName", ""), "idle-00001");
  EXPECT_EQ(call_agent(server_, "/agents/idle/").status, 200);
}

/// An agent created at zero whose replica, once a request wakes it, cannot start: from True to False
/// with the reason, as any revision whose replicas fail before they were ever ready.
TEST_F(AgentsReadiness, AgentCreatedAtZeroReadsFalseOnceItsWokenReplicaFails) {
  AgentYaml a;
  a.name = "zbroken";
  a.program = "no_such_agent";
  a.annotations = {{"autoscaling.knative.dev/initial-scale", "0"}};
  a.template_spec = "      timeoutSeconds: 2\n";
  apply_agent(server_, agent_yaml(a));
  ASSERT_EQ(ready_condition("zbroken").value("status", ""), "True");
  EXPECT_EQ(call_agent(server_, "/agents/zbroken/").status / 100, 5) << "woken, and it cannot start";
  json condition;
  ASSERT_TRUE(wait_until(
      [&] { return (condition = ready_condition("zbroken")).value("status", "") == "False"; }, 20s))
      << condition.dump();
  EXPECT_EQ(condition.value("reason", ""), "RevisionFailed") << condition.dump();
  EXPECT_NE(condition.value("message", "").find("no_such_agent"), std::string::npos) << condition.dump();
  EXPECT_EQ(revision_status(server_, "zbroken", "zbroken-00001").value("readyStatus", ""), "False");
}

}  // namespace
}  // namespace sluice::testing
