// A replica killed with SIGKILL while requests wait for it: a real `sluice serve` and real replica
// processes. The requests that had not reached the replica are served by its restart, as Knative's
// activator retries a request whose connection could not be established; the one that was cut off
// mid-exchange gets 502 and is not sent again.

#include <signal.h>

#include <fstream>
#include <thread>
#include <vector>

#include "tests/integration/agents_support.hpp"

namespace sluice::testing {
namespace {

using namespace std::chrono_literals;

class AgentsReplicaCrash : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(server_.wait_ready()); }
  SluiceServer server_{{"--gpus", "none"}};
};

nlohmann::json requests_of(SluiceServer& server) {
  return revision_status(server, "victim", "victim-00001").value("requests", nlohmann::json::object());
}

TEST_F(AgentsReplicaCrash, RequestsWaitingForAKilledReplicaAreServedByItsRestart) {
  AgentYaml a;
  a.name = "victim";
  a.program = "slow_agent";
  a.env = {{"LATENCY_MS", "10"}};
  // One replica taking one request at a time: the others wait in the activator, and the only replica
  // that can serve them is the restarted one.
  a.annotations = {{"autoscaling.knative.dev/min-scale", "1"}, {"autoscaling.knative.dev/max-scale", "1"}};
  a.template_spec = "      containerConcurrency: 1\n      timeoutSeconds: 30\n";
  ASSERT_TRUE(start_agent(server_, a));
  const int pid = revision_status(server_, "victim", "victim-00001")["replicaStatus"][0].value("pid", 0);
  ASSERT_GT(pid, 0);

  AgentReply held;
  std::thread holder([&] { held = call_agent(server_, "/agents/victim/hold?latency_ms=60000", {}, 40s); });
  ASSERT_TRUE(wait_until([&] { return requests_of(server_).value("inFlight", 0) == 1; }));
  constexpr int kWaiting = 4;
  std::vector<AgentReply> waited(kWaiting);
  std::vector<std::thread> waiters;
  for (int i = 0; i < kWaiting; ++i)
    waiters.emplace_back(
        [&, i] { waited[i] = call_agent(server_, "/agents/victim/queued" + std::to_string(i), {}, 40s); });
  const bool all_waiting = wait_until([&] { return requests_of(server_).value("waiting", 0) == kWaiting; });

  // The slot frees the moment the replica dies (its request is cut off), before the runtime sees the
  // exit: the next waiting request is handed the dead replica and its connection is refused.
  ::kill(pid, SIGKILL);
  holder.join();
  for (auto& t : waiters) t.join();
  ASSERT_TRUE(all_waiting) << requests_of(server_).dump();

  EXPECT_EQ(held.status, 502) << held.body;
  EXPECT_NE(held.body.find("not retried"), std::string::npos) << held.body;
  for (int i = 0; i < kWaiting; ++i) {
    EXPECT_EQ(waited[i].status, 200) << "request " << i << ": " << waited[i].body;
    EXPECT_NE(waited[i].body.find("/queued" + std::to_string(i)), std::string::npos) << waited[i].body;
  }
  const auto replica = revision_status(server_, "victim", "victim-00001")["replicaStatus"][0];
  EXPECT_GE(replica.value("restarts", 0), 1) << replica.dump();
  EXPECT_NE(replica.value("pid", 0), pid) << "served by the restarted process";
}

// The replica's process is gone but the runtime cannot see it yet (the wrapper it runs under exits
// half a second later): requests arriving meanwhile are handed the replica, their connection is
// refused, and they are served by the restarted replica instead of failing with 502.
TEST_F(AgentsReplicaCrash, RequestsRefusedByADeadReplicaGoToItsReplacement) {
  TempDir dir;
  const std::string pid_file = dir.path() + "/agent.pid";
  apply_agent(server_,
              "apiVersion: sluice.dev/v1\nkind: Agent\nmetadata: {name: blind}\nspec:\n  template:\n"
              "    metadata: {annotations: {autoscaling.knative.dev/min-scale: \"1\", "
              "autoscaling.knative.dev/max-scale: \"1\"}}\n"
              "    spec:\n      timeoutSeconds: 30\n      containers:\n"
              "      - command: [/bin/sh, -c, \"" +
                  built_program("slow_agent") + " & echo $! > " + pid_file +
                  "; wait; sleep 0.5; exit 1\"]\n"
                  "        readinessProbe: {httpGet: {path: /healthz}}\n"
                  "        env: [{name: LATENCY_MS, value: \"10\"}]\n");
  ASSERT_TRUE(wait_until([&] { return ready_replicas(server_, "blind", "blind-00001") == 1; }));
  const auto replica = revision_status(server_, "blind", "blind-00001")["replicaStatus"][0];
  const std::string address = replica.value("address", "");
  const auto colon = address.rfind(':');
  ASSERT_NE(colon, std::string::npos) << replica.dump();
  int agent_pid = 0;
  std::ifstream(pid_file) >> agent_pid;
  ASSERT_GT(agent_pid, 0);

  ::kill(agent_pid, SIGKILL);
  httplib::Client direct(address.substr(0, colon), std::stoi(address.substr(colon + 1)));
  ASSERT_TRUE(wait_until([&] { return !direct.Get("/healthz"); })) << "the agent stopped listening";
  constexpr int kRequests = 3;
  std::vector<AgentReply> replies(kRequests);
  std::vector<std::thread> clients;
  for (int i = 0; i < kRequests; ++i)
    clients.emplace_back(
        [&, i] { replies[i] = call_agent(server_, "/agents/blind/after" + std::to_string(i), {}, 40s); });
  for (auto& t : clients) t.join();

  for (int i = 0; i < kRequests; ++i)
    EXPECT_EQ(replies[i].status, 200) << "request " << i << ": " << replies[i].body;
  const auto status = revision_status(server_, "blind", "blind-00001");
  EXPECT_GE(status["requests"].value("retried", 0), 1) << "no request was refused: " << status.dump();
  EXPECT_GE(status["replicaStatus"][0].value("restarts", 0), 1) << status.dump();
}

}  // namespace
}  // namespace sluice::testing
