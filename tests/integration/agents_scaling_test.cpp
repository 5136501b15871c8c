// The autoscaler driving real replicas of a real `sluice serve`: scale to zero after the grace period
// and a cold start from zero, a load ramp followed by replicas, graceful drain under load with no
// failed request, scale-down with containerConcurrency under a steady stream, reserve instance handover, a
// trigger delivering to `ref: {kind: Agent}`, a trigger backlog scaling an agent from zero, and predictive
// profiles kept across a restart.

#include <signal.h>

#include <atomic>
#include <fstream>
#include <sstream>
#include <thread>

#include "tests/integration/agents_support.hpp"
#include "tests/integration/broker_support.hpp"

namespace sluice::testing {
namespace {

class AgentsScaling : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(server_.wait_ready()); }
  SluiceServer server_{
      {"--gpus", "none", "--autoscaler-tick", "200ms", "--autoscaler", "scale-to-zero-grace-period=1s"}};
};

int replica_count(SluiceServer& server, const std::string& agent, const std::string& revision) {
  return static_cast<int>(
      revision_status(server, agent, revision).value("replicaStatus", nlohmann::json::array()).size());
}

TEST_F(AgentsScaling, ScalesToZeroAfterGraceAndColdStartsOnTheFirstRequest) {
  AgentYaml slow;
  slow.name = "slow";
  slow.program = "slow_agent";
  slow.env = {{"LATENCY_MS", "5"}, {"STARTUP_MS", "300"}};
  slow.annotations = {{"autoscaling.knative.dev/window", "6s"}};
  ASSERT_TRUE(start_agent(server_, slow));
  ASSERT_TRUE(wait_until(
      [&] {
        auto r = revision_status(server_, "slow", "slow-00001");
        return r.value("replicas", -1) == 0 && r.value("replicaStatus", nlohmann::json::array()).empty();
      },
      std::chrono::seconds(15)))
      << agent_status(server_, "slow").dump();
  EXPECT_EQ(agent_status(server_, "slow")["latestReadyRevisionName"], "slow-00001") << "still Ready at zero";

  const auto start = std::chrono::steady_clock::now();
  auto r = call_agent(server_, "/agents/slow/infer");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3));
  EXPECT_EQ(ready_replicas(server_, "slow", "slow-00001"), 1);
}

TEST_F(AgentsScaling, ReplicasFollowALoadRamp) {
  AgentYaml slow;
  slow.name = "slow";
  slow.program = "slow_agent";
  slow.env = {{"LATENCY_MS", "200"}};
  slow.annotations = {{"autoscaling.knative.dev/window", "6s"}, {"autoscaling.knative.dev/target", "2"}};
  ASSERT_TRUE(start_agent(server_, slow));
  Load load(server_, "/agents/slow/infer", 12);
  EXPECT_TRUE(wait_until([&] { return ready_replicas(server_, "slow", "slow-00001") >= 4; },
                         std::chrono::seconds(10)))
      << agent_status(server_, "slow").dump();
  load.stop();
  EXPECT_EQ(load.failed(), 0);
  EXPECT_GT(load.ok(), 0);
}

TEST_F(AgentsScaling, NewRevisionUnderLoadDrainsTheOldOneWithoutFailures) {
  AgentYaml slow;
  slow.name = "slow";
  slow.program = "slow_agent";
  slow.env = {{"LATENCY_MS", "300"}, {"VERSION", "1"}};
  slow.annotations = {{"autoscaling.knative.dev/min-scale", "2"}};
  apply_agent(server_, agent_yaml(slow));
  ASSERT_TRUE(wait_until([&] { return ready_replicas(server_, "slow", "slow-00001") == 2; }));
  Load load(server_, "/agents/slow/infer", 8);
  ASSERT_TRUE(wait_until([&] { return load.ok() >= 16; }));
  slow.env["VERSION"] = "2";
  apply_agent(server_, agent_yaml(slow));
  // The old revision's replicas drain: routing moves, requests in flight finish, then they exit.
  ASSERT_TRUE(wait_until(
      [&] {
        return revision_status(server_, "slow", "slow-00001")
                   .value("replicaStatus", nlohmann::json::array())
                   .empty() &&
               ready_replicas(server_, "slow", "slow-00002") == 2;
      },
      std::chrono::seconds(15)));
  const int before = load.ok();
  ASSERT_TRUE(wait_until([&] { return load.ok() >= before + 8; }));
  load.stop();
  EXPECT_EQ(load.failed(), 0) << "a request was cut off by the drain";
}

TEST_F(AgentsScaling, RequestsWaitingForTheOldRevisionAreServedAfterANewOneTakesOver) {
  AgentYaml slow = warm_slow_agent("queued", "1500");
  slow.annotations["autoscaling.knative.dev/max-scale"] = "1";
  slow.template_spec = "      containerConcurrency: 1\n      timeoutSeconds: 20\n";
  ASSERT_TRUE(start_agent(server_, slow));
  std::vector<std::thread> requests;
  std::vector<int> statuses(3, 0);
  for (int i = 0; i < 3; ++i)
    requests.emplace_back([&, i] { statuses[i] = call_agent(server_, "/agents/queued/infer").status; });
  ASSERT_TRUE(wait_until([&] {
    return revision_status(server_, "queued", "queued-00001")
               .value("requests", nlohmann::json::object())
               .value("waiting", 0) == 2;
  })) << revision_status(server_, "queued", "queued-00001").dump();
  slow.env["VERSION"] = "2";  // takes the traffic while two requests wait for the old revision
  apply_agent(server_, agent_yaml(slow));
  const auto started = std::chrono::steady_clock::now();
  for (auto& t : requests) t.join();
  for (int i = 0; i < 3; ++i) EXPECT_EQ(statuses[i], 200) << "request " << i;
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(15));
  EXPECT_TRUE(wait_until(
      [&] {
        return revision_status(server_, "queued", "queued-00001")
            .value("replicaStatus", nlohmann::json::array())
            .empty();
      },
      std::chrono::seconds(15)))
      << "the old revision drains once its buffer is empty";
}

TEST_F(AgentsScaling, RequestsWaitingAtFullCapacityAreCountedOnce) {
  // One replica taking one request at a time and six clients: six requests in flight or waiting.
  AgentYaml slow = warm_slow_agent("busy", "100");
  slow.annotations["autoscaling.knative.dev/max-scale"] = "1";
  slow.template_spec = "      containerConcurrency: 1\n";
  ASSERT_TRUE(start_agent(server_, slow));
  Load load(server_, "/agents/busy/infer", 6);
  ASSERT_TRUE(wait_until([&] { return load.ok() >= 60; }, std::chrono::seconds(30)));
  const auto autoscaler = revision_status(server_, "busy", "busy-00001")["autoscaler"];
  load.stop();
  EXPECT_EQ(load.failed(), 0);
  EXPECT_GT(autoscaler.value("observedStableConcurrency", 0.0), 3) << autoscaler.dump();
  EXPECT_LT(autoscaler.value("observedStableConcurrency", 100.0), 7.5) << autoscaler.dump();
}

// At shutdown each replica gets its own revision's grace, not the longest one among all agents.
TEST_F(AgentsScaling, ShutdownKillsAReplicaIgnoringSigtermAfterItsOwnRevisionsGrace) {
  ASSERT_TRUE(start_agent(server_, warm_slow_agent("patient")));  // timeoutSeconds 300: grace 6 min
  AgentYaml starting = warm_slow_agent("starting");
  starting.env["STARTUP_MS"] = "60000";  // slow_agent blocks SIGTERM until it listens
  starting.template_spec = "      timeoutSeconds: 1\n";
  apply_agent(server_, agent_yaml(starting));
  ASSERT_TRUE(wait_until([&] {
    auto r = revision_status(server_, "starting", "starting-00001")["replicaStatus"];
    return r.size() == 1 && r[0].value("pid", -1) > 0;
  })) << agent_status(server_, "starting").dump();
  const auto started = std::chrono::steady_clock::now();
  server_.process().signal(SIGTERM);
  EXPECT_EQ(server_.process().wait(std::chrono::seconds(9)), 0) << "not stopped within 9 s";
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(8));
}

// A replica still busy when its drain's grace (timeoutSeconds × 1.2) runs out is killed then, counted from
// the start of the drain. slow_agent finishes what it is doing before it exits on SIGTERM, and this one is
// doing a 60 s request that the activator gave up on after timeoutSeconds (504).
TEST_F(AgentsScaling, ADrainEndsInSigkillWhenTimeoutSecondsTimes1Point2HavePassed) {
  AgentYaml slow = warm_slow_agent("stuck");
  slow.template_spec = "      timeoutSeconds: 4\n";
  ASSERT_TRUE(start_agent(server_, slow));
  const auto started = std::chrono::steady_clock::now();
  std::thread request(
      [&] { EXPECT_EQ(call_agent(server_, "/agents/stuck/infer?latency_ms=60000").status, 504); });
  ASSERT_TRUE(wait_until([&] {
    return revision_status(server_, "stuck", "stuck-00001")
               .value("requests", nlohmann::json::object())
               .value("inFlight", 0) == 1;
  })) << revision_status(server_, "stuck", "stuck-00001").dump();
  slow.env["VERSION"] = "2";  // a new revision takes over and the old one drains
  apply_agent(server_, agent_yaml(slow));
  ASSERT_TRUE(wait_until(
      [&] {
        return revision_status(server_, "stuck", "stuck-00001")
            .value("replicaStatus", nlohmann::json::array())
            .empty();
      },
      std::chrono::seconds(20)));
  const double gone = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  request.join();
  // The drain began after `started`, so the grace ends after 4.8 s; a SIGKILL one grace after the SIGTERM
  // that followed the 504 (at 4 s) would come at 8.8 s.
  EXPECT_GE(gone, 4.8);
  EXPECT_LT(gone, 7.5);
}

TEST_F(AgentsScaling, ReserveInstanceTakesTheFirstRequestAndHandsOver) {
  AgentYaml slow;
  slow.name = "res";
  slow.program = "slow_agent";
  slow.env = {{"LATENCY_MS", "5"}, {"STARTUP_MS", "1500"}};
  slow.annotations = {{"autoscaling.knative.dev/window", "6s"}, {"sluice.dev/reserve-instance", "enable"}};
  slow.template_spec = "      reserve:\n        env: [{name: STARTUP_MS, value: \"0\"}]\n";
  ASSERT_TRUE(start_agent(server_, slow));
  // At zero, only a ready reserve replica runs.
  auto only_the_reserve = [&] {
    auto r = revision_status(server_, "res", "res-00001");
    if (r.value("replicas", -1) != 0 || r.value("reserveReplicas", -1) != 1) return false;
    for (const auto& rep : r["replicaStatus"])
      if (rep["reserve"] == true && rep["state"] == "Ready") return true;
    return false;
  };
  ASSERT_TRUE(wait_until(only_the_reserve, std::chrono::seconds(15))) << agent_status(server_, "res").dump();
  // The first request goes to the reserve at once (the standard replica takes 1.5 s to start).
  const auto start = std::chrono::steady_clock::now();
  auto first = call_agent(server_, "/agents/res/v1/models/infer?latency_ms=5");
  EXPECT_EQ(first.status, 200);
  EXPECT_EQ(nlohmann::json::parse(first.body, nullptr, false).value("path", ""), "/v1/models/infer")
      << "the path after /agents/{name} reaches the agent as it was: " << first.body;
  EXPECT_EQ(first.replica.rfind("r", 0), 0u) << first.replica;
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(1000));
  // A standard replica starts meanwhile; the reserve is drained once it is ready.
  ASSERT_TRUE(wait_until(
      [&] {
        auto r = revision_status(server_, "res", "res-00001");
        return r.value("readyReplicas", 0) >= 1 && r.value("reserveReplicas", -1) == 0;
      },
      std::chrono::seconds(10)))
      << agent_status(server_, "res").dump();
  auto next = call_agent(server_, "/agents/res/infer");
  EXPECT_EQ(next.status, 200);
  EXPECT_NE(next.replica.rfind("r", 0), 0u) << next.replica;
  // Idle again: the standard replica scales to zero and a reserve replica comes back.
  EXPECT_TRUE(wait_until(only_the_reserve, std::chrono::seconds(20))) << agent_status(server_, "res").dump();
  auto again = call_agent(server_, "/agents/res/infer");
  EXPECT_EQ(again.status, 200);
  EXPECT_EQ(again.replica.rfind("r", 0), 0u) << again.replica;
}

TEST_F(AgentsScaling, TriggerBacklogScalesFromZeroPastWhatConcurrencyAsks) {
  AgentYaml slow;
  slow.name = "backlog";
  slow.program = "slow_agent";
  slow.env = {{"LATENCY_MS", "300"}};
  slow.annotations = {{"autoscaling.knative.dev/window", "6s"},
                      {"autoscaling.knative.dev/max-scale", "4"},
                      {"sluice.dev/target-backlog", "5"}};
  apply_agent(server_, agent_yaml(slow));
  ASSERT_TRUE(wait_until(
      [&] {
        auto r = revision_status(server_, "backlog", "backlog-00001");
        return r.value("replicas", -1) == 0 && r.value("replicaStatus", nlohmann::json::array()).empty();
      },
      std::chrono::seconds(15)))
      << agent_status(server_, "backlog").dump();
  // One event in flight at a time: the concurrency signal alone never asks for a second replica.
  apply_yaml(server_,
             broker_yaml() +
                 "---\napiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata: {name: "
                 "to-backlog}\nspec:\n  broker: default\n  delivery: {maxInFlight: 1}\n  subscriber:\n"
                 "    ref: {apiVersion: sluice.dev/v1, kind: Agent, name: backlog}\n");
  for (int i = 0; i < 20; ++i) ASSERT_EQ(publish(server_, "b-" + std::to_string(i), "com.example.t"), 202);
  // 20 waiting events over a target of 5 per replica: scaled out to max-scale.
  EXPECT_TRUE(wait_until([&] { return ready_replicas(server_, "backlog", "backlog-00001") >= 3; },
                         std::chrono::seconds(10)))
      << agent_status(server_, "backlog").dump() << trigger_status(server_, "to-backlog").dump();
  EXPECT_LE(revision_status(server_, "backlog", "backlog-00001").value("replicas", 0), 4);
  EXPECT_TRUE(wait_until(
      [&] { return trigger_status(server_, "to-backlog")["delivery"].value("delivered", 0) == 20; },
      std::chrono::seconds(30)))
      << trigger_status(server_, "to-backlog").dump();
}

TEST_F(AgentsScaling, TriggerDeliversToAnAgentRef) {
  AgentYaml echo;
  echo.name = "echo";
  apply_agent(server_, agent_yaml(echo));
  apply_yaml(server_, broker_yaml() +
                          "---\napiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata: {name: "
                          "to-echo}\nspec:\n  broker: default\n  subscriber:\n    ref: {apiVersion: "
                          "sluice.dev/v1, kind: Agent, name: echo}\n");
  for (int i = 0; i < 5; ++i) ASSERT_EQ(publish(server_, "e-" + std::to_string(i), "com.example.t"), 202);
  ASSERT_TRUE(wait_until([&] {
    return trigger_status(server_, "to-echo")["delivery"].value("delivered", 0) == 5;
  })) << trigger_status(server_, "to-echo").dump();
  auto info = nlohmann::json::parse(call_agent(server_, "/agents/echo/").body, nullptr, false);
  EXPECT_EQ(info.value("events", 0), 5) << info.dump();
}

TEST_F(AgentsScaling, PredictiveProfilesAreWrittenAtStopAndReadBack) {
  AgentYaml a = warm_slow_agent("pred");
  a.annotations["sluice.dev/predictive"] = "enable";
  ASSERT_TRUE(start_agent(server_, a));
  for (int i = 0; i < 3; ++i) ASSERT_EQ(call_agent(server_, "/agents/pred/").status, 200);
  server_.process().signal(SIGTERM);
  ASSERT_EQ(server_.process().wait(std::chrono::seconds(30)), 0) << server_.process().output();
  std::ifstream in(server_.data_dir() + "/autoscaler/pred-00001.predictive.json");
  ASSERT_TRUE(in) << "no profile under " << server_.data_dir() << "/autoscaler";
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_FALSE(nlohmann::json::parse(text.str(), nullptr, false).is_discarded()) << text.str();
  server_.restart();
  ASSERT_TRUE(server_.wait_ready());
  EXPECT_TRUE(wait_until([&] { return ready_replicas(server_, "pred", "pred-00001") == 1; }))
      << agent_status(server_, "pred").dump();
  EXPECT_EQ(server_.process().output().find("predictive"), std::string::npos) << server_.process().output();
}

/// Whether a process runs (an unreaped zombie does not).
bool process_running(int pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text;
  if (!std::getline(stat, text)) return false;
  const auto paren = text.rfind(')');
  return paren != std::string::npos && paren + 2 < text.size() && text[paren + 2] != 'Z';
}

TEST_F(AgentsScaling, ARestartedServerStopsTheReplicasThatAKilledOneLeftRunning) {
  ASSERT_TRUE(start_agent(server_, warm_slow_agent("orphan")));
  const auto replicas = revision_status(server_, "orphan", "orphan-00001")["replicaStatus"];
  ASSERT_EQ(replicas.size(), 1u) << replicas.dump();
  const int pid = replicas[0].value("pid", -1);
  ASSERT_GT(pid, 0) << replicas.dump();
  server_.kill();
  ASSERT_TRUE(process_running(pid)) << "the replica outlives a server killed with SIGKILL";
  server_.restart();
  ASSERT_TRUE(server_.wait_ready());
  const bool stopped = wait_until([&] { return !process_running(pid); }, std::chrono::seconds(10));
  if (!stopped) ::kill(-pid, SIGKILL);
  EXPECT_TRUE(stopped) << "replica pid " << pid << " left running after the restart";
  EXPECT_TRUE(wait_until([&] { return ready_replicas(server_, "orphan", "orphan-00001") == 1; }))
      << agent_status(server_, "orphan").dump();
}

// Scale-down under a steady stream of requests: replicas with containerConcurrency > 1 drain and stop
// while requests keep arriving, and none of those requests fails.
TEST_F(AgentsScaling, NoRequestFailsWhileReplicasWithContainerConcurrencyDrainAndStop) {
  AgentYaml slow;
  slow.name = "slow";
  slow.program = "slow_agent";
  slow.env = {{"LATENCY_MS", "20"}};
  slow.annotations = {{"autoscaling.knative.dev/window", "6s"}, {"autoscaling.knative.dev/min-scale", "1"}};
  slow.template_spec = "      containerConcurrency: 4\n";
  ASSERT_TRUE(start_agent(server_, slow));

  // Two clients in a closed loop keep at most 2 requests in flight, below one replica's target of 2.8
  // (containerConcurrency 4 at 70 %), so the autoscaler wants exactly one replica whatever the load on
  // the machine; with three, a busy machine kept the observed concurrency above 2.8 and two replicas.
  Load steady(server_, "/agents/slow/infer", 2);
  {
    Load burst(server_, "/agents/slow/infer?latency_ms=200", 24);
    ASSERT_TRUE(wait_until([&] { return ready_replicas(server_, "slow", "slow-00001") >= 4; },
                           std::chrono::seconds(20)))
        << agent_status(server_, "slow").dump();
    burst.stop();
    EXPECT_EQ(burst.failed(), 0) << burst.failures();
  }
  // The burst is over; the steady stream goes on while the excess replicas drain and stop.
  ASSERT_TRUE(
      wait_until([&] { return replica_count(server_, "slow", "slow-00001") <= 1; }, std::chrono::seconds(30)))
      << agent_status(server_, "slow").dump();
  const int before = steady.ok();
  ASSERT_TRUE(wait_until([&] { return steady.ok() >= before + 20; }));
  steady.stop();
  EXPECT_EQ(steady.failed(), 0) << steady.failures();
  EXPECT_GT(steady.ok(), 0);
}

}  // namespace
}  // namespace sluice::testing
