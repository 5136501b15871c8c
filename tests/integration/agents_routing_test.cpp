// Agents of a real `sluice serve` with real replica processes: revisions, traffic split, tags,
// sticky keys, numbering across restarts, readiness gating, crash restart, timeouts, cancellation.

#include <signal.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>
#include <vector>

#include "agents/process_limits.hpp"
#include "tests/integration/agents_support.hpp"

namespace sluice::testing {
namespace {

class AgentsRouting : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(server_.wait_ready()); }
  SluiceServer server_{{"--gpus", "none"}};
};

AgentYaml echo(const std::string& version) {
  AgentYaml a;
  a.name = "echo";
  a.env = {{"VERSION", version}};
  return a;
}

TEST_F(AgentsRouting, RevisionsSplitTagsAndStickyKeys) {
  apply_agent(server_, agent_yaml(echo("a")));
  ASSERT_TRUE(wait_until([&] { return ready_replicas(server_, "echo", "echo-00001") == 1; }));
  auto v2 = echo("b");
  v2.traffic =
      "  traffic:\n  - {revisionName: echo-00001, percent: 30, tag: stable}\n"
      "  - {latestRevision: true, percent: 70, tag: candidate}\n";
  apply_agent(server_, agent_yaml(v2));
  ASSERT_TRUE(wait_until([&] { return ready_replicas(server_, "echo", "echo-00002") == 1; }));

  std::map<std::string, int> seen;
  const int n = 600;
  for (int i = 0; i < n; ++i) {
    auto r = call_agent(server_, "/agents/echo/");
    ASSERT_EQ(r.status, 200) << r.body;
    ++seen[r.revision];
  }
  EXPECT_NEAR(seen["echo-00001"] / double(n), 0.30, 0.07) << seen["echo-00001"];
  EXPECT_NEAR(seen["echo-00002"] / double(n), 0.70, 0.07) << seen["echo-00002"];

  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(call_agent(server_, "/agents/echo@stable/").revision, "echo-00001");
    EXPECT_EQ(call_agent(server_, "/agents/echo@candidate/").revision, "echo-00002");
  }
  EXPECT_EQ(call_agent(server_, "/agents/echo@nope/").status, 404);
  EXPECT_EQ(call_agent(server_, "/agents/nobody/").status, 404);

  // A key keeps going to one revision.
  for (const std::string key : {"k1", "k2", "k3", "k4"}) {
    const auto first = call_agent(server_, "/agents/echo/", {{"ce-partitionkey", key}}).revision;
    for (int i = 0; i < 15; ++i)
      EXPECT_EQ(call_agent(server_, "/agents/echo/", {{"ce-partitionkey", key}}).revision, first) << key;
  }

  auto status = agent_status(server_, "echo");
  EXPECT_EQ(status["latestCreatedRevisionName"], "echo-00002");
  EXPECT_EQ(status["revisions"].size(), 2u);
  EXPECT_EQ(revision_status(server_, "echo", "echo-00001")["traffic"], 30);

  // As Knative's route: traffic naming a revision that does not exist makes the agent not ready and
  // leaves the traffic that was served in place, rather than failing every request.
  v2.traffic =
      "  traffic:\n  - {revisionName: echo-00009, percent: 30}\n  - {latestRevision: true, percent: 70}\n";
  apply_agent(server_, agent_yaml(v2));
  ASSERT_TRUE(wait_until([&] {
    status = agent_status(server_, "echo");
    return status.dump().find("TrafficNotRoutable") != std::string::npos;
  })) << status.dump();
  EXPECT_NE(status.dump().find("echo-00009"), std::string::npos) << status.dump();
  std::set<std::string> revisions;
  for (int i = 0; i < 40; ++i) {
    auto r = call_agent(server_, "/agents/echo/");
    ASSERT_EQ(r.status, 200) << r.body;
    revisions.insert(r.revision);
  }
  EXPECT_EQ(revisions, (std::set<std::string>{"echo-00001", "echo-00002"}));
  EXPECT_EQ(call_agent(server_, "/agents/echo@stable/").revision, "echo-00001");
  EXPECT_EQ(revision_status(server_, "echo", "echo-00001")["traffic"], 30) << status.dump();
}

TEST_F(AgentsRouting, TrafficNamingAMissingRevisionOnANewAgentShowsNoTrafficServed) {
  // Nothing was routed before, so nothing is served (503) and status.traffic, which says what is
  // served, is empty rather than the spec's unroutable targets.
  auto fresh = echo("a");
  fresh.traffic = "  traffic:\n  - {revisionName: echo-00005, percent: 100}\n";
  apply_agent(server_, agent_yaml(fresh));
  nlohmann::json status;
  ASSERT_TRUE(wait_until([&] {
    status = agent_status(server_, "echo");
    return status.dump().find("TrafficNotRoutable") != std::string::npos &&
           ready_replicas(server_, "echo", "echo-00001") == 1;
  })) << status.dump();
  EXPECT_EQ(call_agent(server_, "/agents/echo/").status, 503);
  status = agent_status(server_, "echo");
  EXPECT_EQ(status["traffic"], nlohmann::json::array()) << status.dump();
  EXPECT_EQ(revision_status(server_, "echo", "echo-00001")["traffic"], 0) << status.dump();
}

// RFC 9110 §7.6.1: a header that the Connection header names is meant for this hop only, and the
// proxy does not pass it on. The echo agent refuses an event without ce-type, so it shows whether
// ce-type reached it.
TEST_F(AgentsRouting, HeadersThatConnectionNamesAreNotPassedToTheReplica) {
  apply_agent(server_, agent_yaml(echo("a")));
  ASSERT_TRUE(wait_until([&] { return ready_replicas(server_, "echo", "echo-00001") == 1; }));
  httplib::Client client("127.0.0.1", server_.port());
  const auto post = [&](const std::string& connection) {
    httplib::Headers headers{{"ce-specversion", "1.0"},
                             {"ce-id", "1"},
                             {"ce-source", "/test"},
                             {"ce-type", "t"},
                             {"Connection", connection}};
    auto res = client.Post("/agents/echo/", headers, "{}", "application/json");
    return res ? res->status : 0;
  };
  EXPECT_EQ(post("keep-alive"), 200);
  EXPECT_EQ(post("keep-alive, ce-type"), 400);
  EXPECT_EQ(post("CE-Type"), 400);
}

TEST_F(AgentsRouting, NewRevisionThatFailsKeepsTrafficAndMakesTheAgentNotReady) {
  apply_agent(server_, agent_yaml(echo("a")));
  ASSERT_TRUE(wait_until([&] { return ready_replicas(server_, "echo", "echo-00001") == 1; }));
  const auto ready_condition = [&] {
    return agent_status(server_, "echo").value("conditions", nlohmann::json::array()).at(0);
  };
  ASSERT_EQ(ready_condition()["status"], "True");
  auto broken = echo("b");
  broken.program = "no_such_agent";
  apply_agent(server_, agent_yaml(broken));
  // As Knative's Configuration: the latest created revision failing makes the agent not ready and
  // says why, while the last ready revision keeps all the traffic.
  nlohmann::json condition;
  ASSERT_TRUE(wait_until([&] {
    condition = ready_condition();
    return condition["status"] == "False";
  })) << condition.dump();
  // A command that cannot start fails every restart: False (RevisionFailed), not Unknown.
  EXPECT_EQ(condition["reason"], "RevisionFailed");
  const std::string message = condition.value("message", "");
  EXPECT_NE(message.find("echo-00002"), std::string::npos) << message;
  EXPECT_NE(message.find("no_such_agent"), std::string::npos) << message;
  for (int i = 0; i < 20; ++i) {
    auto r = call_agent(server_, "/agents/echo/");
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.revision, "echo-00001");
  }
  EXPECT_EQ(agent_status(server_, "echo")["latestReadyRevisionName"], "echo-00001");

  apply_agent(server_, agent_yaml(echo("c")));
  ASSERT_TRUE(wait_until([&] { return ready_condition()["status"] == "True"; })) << ready_condition().dump();
  EXPECT_EQ(call_agent(server_, "/agents/echo/").revision, "echo-00003");
}

TEST_F(AgentsRouting, RevisionNumbersSurviveRestarts) {
  apply_agent(server_, agent_yaml(echo("a")));
  apply_agent(server_, agent_yaml(echo("b")));
  ASSERT_TRUE(wait_until([&] { return ready_replicas(server_, "echo", "echo-00002") == 1; }));
  server_.process().signal(SIGTERM);
  ASSERT_EQ(server_.process().wait(std::chrono::seconds(15)), 0);
  server_.restart();
  ASSERT_TRUE(server_.wait_ready());
  apply_agent(server_, agent_yaml(echo("b")));  // unchanged template: no new revision
  EXPECT_EQ(agent_status(server_, "echo")["latestCreatedRevisionName"], "echo-00002");
  apply_agent(server_, agent_yaml(echo("c")));
  EXPECT_TRUE(
      wait_until([&] { return agent_status(server_, "echo")["latestReadyRevisionName"] == "echo-00003"; }));
  EXPECT_EQ(call_agent(server_, "/agents/echo/").revision, "echo-00003");
}

// As Knative's Revision: one that has been ready stays ready at zero replicas, across a restart too, so
// an idle agent does not read "not ready" after the server restarts and its latest ready revision keeps
// the traffic.
TEST(AgentsRestart, ARevisionThatWasReadyIsStillReadyAtZeroAfterARestart) {
  SluiceServer server({"--gpus", "none", "--autoscaler", "allow-zero-initial-scale=true"});
  ASSERT_TRUE(server.wait_ready());
  AgentYaml idle;
  idle.name = "idle";
  idle.annotations = {{"autoscaling.knative.dev/initial-scale", "0"}};
  apply_agent(server, agent_yaml(idle));
  EXPECT_EQ(call_agent(server, "/agents/idle/").status, 200);
  ASSERT_TRUE(
      wait_until([&] { return revision_status(server, "idle", "idle-00001").value("ready", false); }));

  server.process().signal(SIGTERM);
  ASSERT_EQ(server.process().wait(std::chrono::seconds(15)), 0);
  server.restart();
  ASSERT_TRUE(server.wait_ready());
  nlohmann::json status;
  ASSERT_TRUE(wait_until([&] {
    status = agent_status(server, "idle");
    return status.contains("conditions");
  })) << status.dump();
  EXPECT_EQ(status["conditions"].at(0)["status"], "True") << status.dump();
  EXPECT_EQ(status.value("latestReadyRevisionName", ""), "idle-00001") << status.dump();
  auto revision = revision_status(server, "idle", "idle-00001");
  EXPECT_TRUE(revision.value("ready", false)) << revision.dump();
  EXPECT_EQ(revision.value("replicas", -1), 0) << "nothing woke it";
  auto r = call_agent(server, "/agents/idle/");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.revision, "idle-00001");
}

TEST_F(AgentsRouting, FirstRequestWaitsForReadinessThenTimesOut) {
  AgentYaml slow;
  slow.name = "slow";
  slow.program = "slow_agent";
  slow.env = {{"STARTUP_MS", "1500"}, {"LATENCY_MS", "10"}};
  apply_agent(server_, agent_yaml(slow));
  const auto start = std::chrono::steady_clock::now();
  auto r = call_agent(server_, "/agents/slow/infer");
  const auto waited = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_GE(waited, std::chrono::milliseconds(1000)) << "served before the replica was ready";

  // A revision that takes longer to start than its timeout answers 504.
  AgentYaml late = slow;
  late.name = "late";
  late.env = {{"STARTUP_MS", "4000"}};
  late.template_spec = "      timeoutSeconds: 1\n";
  apply_agent(server_, agent_yaml(late));
  auto t = call_agent(server_, "/agents/late/infer");
  EXPECT_EQ(t.status, 504) << t.body;
}

TEST_F(AgentsRouting, CrashedReplicaIsRestarted) {
  apply_agent(server_, agent_yaml(echo("a")));
  ASSERT_TRUE(wait_until([&] { return ready_replicas(server_, "echo", "echo-00001") == 1; }));
  const int pid = revision_status(server_, "echo", "echo-00001")["replicaStatus"][0]["pid"];
  ASSERT_GT(pid, 0);
  ::kill(pid, SIGKILL);
  ASSERT_TRUE(wait_until(
      [&] {
        auto r = revision_status(server_, "echo", "echo-00001")["replicaStatus"][0];
        return r.value("restarts", 0) >= 1 && r.value("state", "") == "Ready";
      },
      std::chrono::seconds(10)));
  EXPECT_EQ(call_agent(server_, "/agents/echo/").status, 200);
  std::string logs;
  ASSERT_EQ(server_.cli({"logs", "echo", "--revision", "echo-00001"}, &logs), 0) << logs;
  EXPECT_NE(logs.find("==> echo-00001/1 <=="), std::string::npos) << logs;
  EXPECT_NE(logs.find("attempt 2"), std::string::npos) << logs;
}

// A replica that crashes as soon as it starts is restarted with a growing backoff (not in a tight loop),
// its status says why, requests to it end with an error within timeoutSeconds instead of hanging, and
// the server and other agents go on working.
TEST_F(AgentsRouting, AReplicaCrashingInALoopIsBackedOffAndHarmsNothingElse) {
  apply_agent(server_,
              "apiVersion: sluice.dev/v1\nkind: Agent\nmetadata: {name: crashy}\nspec:\n  template:\n"
              "    metadata: {annotations: {autoscaling.knative.dev/min-scale: \"1\"}}\n"
              "    spec:\n      timeoutSeconds: 2\n      containers:\n"
              "      - command: [/bin/sh, -c, \"echo loading; exit 3\"]\n");
  ASSERT_TRUE(start_agent(server_, echo("a")));
  const auto started = std::chrono::steady_clock::now();
  ASSERT_TRUE(wait_until(
      [&] {
        auto r = revision_status(server_, "crashy", "crashy-00001")["replicaStatus"][0];
        return r.value("restarts", 0) >= 2;
      },
      std::chrono::seconds(15)))
      << agent_status(server_, "crashy").dump();
  // Like Kubernetes' lastState: how the last attempt ended, also while the next one starts.
  auto rev = revision_status(server_, "crashy", "crashy-00001");
  EXPECT_EQ(rev["replicaStatus"][0].value("lastFailure", ""), "exited with code 3") << rev.dump();
  EXPECT_NE(rev.value("reason", "").find("exited with code 3"), std::string::npos) << rev.dump();

  const auto asked = std::chrono::steady_clock::now();
  auto reply = call_agent(server_, "/agents/crashy/");
  EXPECT_TRUE(reply.status == 503 || reply.status == 504) << reply.status << " " << reply.body;
  EXPECT_LT(std::chrono::steady_clock::now() - asked, std::chrono::seconds(4));
  EXPECT_EQ(call_agent(server_, "/agents/echo/").status, 200) << "other agents are not affected";
  httplib::Client client("127.0.0.1", server_.port());
  EXPECT_EQ(client.Get("/healthz")->status, 200);

  // Backoff 1 s, 2 s, 4 s …: about 4 attempts in the first 8 s, not hundreds.
  ASSERT_TRUE(
      wait_until([&] { return std::chrono::steady_clock::now() - started >= std::chrono::seconds(8); },
                 std::chrono::seconds(10)));
  const int restarts =
      revision_status(server_, "crashy", "crashy-00001")["replicaStatus"][0].value("restarts", 0);
  EXPECT_GE(restarts, 2);
  EXPECT_LE(restarts, 5);
}

TEST_F(AgentsRouting, ClientCancellationFreesTheSlot) {
  AgentYaml slow;
  slow.name = "slow";
  slow.program = "slow_agent";
  slow.env = {{"LATENCY_MS", "10"}};
  slow.template_spec = "      containerConcurrency: 1\n";
  ASSERT_TRUE(start_agent(server_, slow));
  // The client gives up after 300 ms on an 8 s request: the one slot must come back at once.
  auto gave_up = call_agent(server_, "/agents/slow/x?latency_ms=8000", {}, std::chrono::milliseconds(300));
  EXPECT_EQ(gave_up.status, 0);
  const auto start = std::chrono::steady_clock::now();
  auto next = call_agent(server_, "/agents/slow/x?latency_ms=10");
  EXPECT_EQ(next.status, 200);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3));
}

TEST_F(AgentsRouting, AnAgentsOwnBufferBoundAnswers503BeyondIt) {
  AgentYaml slow = warm_slow_agent("bounded");
  slow.annotations.insert(
      {{"autoscaling.knative.dev/max-scale", "1"}, {"sluice.dev/max-buffered-requests", "1"}});
  slow.template_spec = "      containerConcurrency: 1\n";
  ASSERT_TRUE(start_agent(server_, slow));
  // One request on the only slot for 2 s, one waiting in the buffer, and no room for a third.
  std::vector<AgentReply> replies(3);
  std::vector<std::thread> clients;
  for (auto& reply : replies)
    clients.emplace_back([&] { reply = call_agent(server_, "/agents/bounded/x?latency_ms=2000"); });
  for (auto& c : clients) c.join();
  std::vector<int> statuses;
  for (const auto& r : replies) statuses.push_back(r.status);
  std::sort(statuses.begin(), statuses.end());
  EXPECT_EQ(statuses, (std::vector<int>{200, 200, 503}));
  for (const auto& r : replies) {
    if (r.status == 503) {
      EXPECT_NE(r.body.find("1 requests waiting"), std::string::npos) << r.body;
    }
  }
}

TEST_F(AgentsRouting, StatusCountsRequestsAndTopShowsTheLoad) {
  ASSERT_TRUE(start_agent(server_, warm_slow_agent("busy", "100")));
  for (int i = 0; i < 4; ++i) ASSERT_EQ(call_agent(server_, "/agents/busy/x").status, 200);
  // The slot is released just after the reply goes out.
  nlohmann::json requests;
  EXPECT_TRUE(wait_until([&] {
    requests = revision_status(server_, "busy", "busy-00001")["requests"];
    return requests.value("completed", 0) == 4;
  })) << requests.dump();
  EXPECT_GE(requests.value("serviceSecondsTotal", 0.0), 0.4) << requests.dump();
  EXPECT_EQ(requests.value("inFlight", -1), 0) << requests.dump();
  // The same counters on /metrics, refreshed every second.
  const std::string completed =
      R"(sluice_activator_requests_total{agent="busy",outcome="completed",revision="busy-00001"} 4)";
  std::string metrics;
  EXPECT_TRUE(wait_until([&] {
    httplib::Client client("127.0.0.1", server_.port());
    auto res = client.Get("/metrics");
    metrics = res ? res->body : "";
    return metrics.find(completed) != std::string::npos;
  })) << metrics;
  EXPECT_NE(metrics.find(R"(sluice_agent_replicas{agent="busy",revision="busy-00001",state="ready"} 1)"),
            std::string::npos)
      << metrics;

  // Requests keep coming while top takes two frames a second apart.
  std::atomic<bool> stop{false};
  std::thread load([&] {
    while (!stop) call_agent(server_, "/agents/busy/x");
  });
  std::string out;
  const int rc = server_.cli({"top", "--iterations", "2", "--interval", "1s"}, &out);
  stop = true;
  load.join();
  ASSERT_EQ(rc, 0) << out;
  const auto second = out.rfind("sluice top");
  ASSERT_NE(second, std::string::npos) << out;
  const std::string frame = out.substr(second);
  EXPECT_NE(frame.find("RPS"), std::string::npos) << out;
  const auto row = frame.find("busy-00001");
  ASSERT_NE(row, std::string::npos) << out;
  std::istringstream fields(frame.substr(frame.rfind('\n', row) + 1));
  std::vector<std::string> cells(12);
  for (auto& cell : cells) fields >> cell;
  EXPECT_EQ(cells[0], "busy");
  EXPECT_EQ(cells[2], "100%");
  EXPECT_EQ(cells[3], "1/1");
  // About 10 requests a second of 100 ms each.
  EXPECT_GT(std::stod(cells[9]), 2.0) << out;
  ASSERT_TRUE(cells[10].ends_with("ms")) << out;
  EXPECT_GE(std::stoi(cells[10]), 100) << out;
  EXPECT_EQ(cells[11], "0") << out;

  std::string error;
  EXPECT_EQ(server_.cli({"top", "--interval", "soon"}, &error), 2) << error;
  EXPECT_NE(error.find("--interval expects a duration"), std::string::npos) << error;
}

TEST_F(AgentsRouting, ReplicasRunWithinTheirOpenFilesLimit) {
  AgentYaml a;
  a.name = "files";
  a.container = "        resources: {limits: {sluice.dev/open-files: 256}}\n";
  ASSERT_TRUE(start_agent(server_, a));
  auto info = nlohmann::json::parse(call_agent(server_, "/agents/files/").body, nullptr, false);
  EXPECT_EQ(info.value("open_files_limit", 0), 256) << info.dump();
}

TEST_F(AgentsRouting, AReplicaOverItsMemoryLimitIsOomKilledAndRestarted) {
  if (!agents::memory_cgroups_available()) GTEST_SKIP() << "no memory cgroup may be made here";
  AgentYaml a = warm_slow_agent("hungry");
  a.container = "        resources: {limits: {memory: 256Mi}}\n";
  ASSERT_TRUE(start_agent(server_, a));
  EXPECT_EQ(call_agent(server_, "/agents/hungry/x?alloc_mb=16").status, 200) << "well within the limit";
  EXPECT_NE(call_agent(server_, "/agents/hungry/x?alloc_mb=1024").status, 200);
  std::string logs;
  EXPECT_TRUE(wait_until([&] {
    server_.cli({"logs", "hungry"}, &logs);
    return logs.find("OOMKilled: over its memory limit of 256Mi") != std::string::npos;
  })) << logs;
  // Restarted, and serving again.
  EXPECT_TRUE(wait_until([&] {
    auto r = revision_status(server_, "hungry", "hungry-00001");
    return r.value("readyReplicas", 0) == 1 && !r["replicaStatus"].empty() &&
           r["replicaStatus"][0].value("restarts", 0) >= 1;
  })) << agent_status(server_, "hungry").dump();
  EXPECT_EQ(call_agent(server_, "/agents/hungry/x").status, 200);
}

// --cgroup-parent none: a replica's memory limit is its address space (RLIMIT_AS). An allocation over it
// fails inside the replica, which goes on serving: no OOM kill, no restart.
TEST(AgentsWithoutCgroups, TheMemoryLimitIsTheAddressSpace) {
  SluiceServer server({"--gpus", "none", "--cgroup-parent", "none"});
  ASSERT_TRUE(server.wait_ready()) << server.process().output();
  AgentYaml capped;
  capped.name = "capped";
  capped.container = "        resources: {limits: {memory: 512Mi}}\n";
  ASSERT_TRUE(start_agent(server, capped));
  auto info = nlohmann::json::parse(call_agent(server, "/agents/capped/").body, nullptr, false);
  EXPECT_EQ(info.value("address_space_limit", 0LL), 512LL << 20) << info.dump();

  AgentYaml hungry = warm_slow_agent("hungry");
  hungry.env["THREADS"] = "4";
  hungry.container = "        resources: {limits: {memory: 512Mi}}\n";
  ASSERT_TRUE(start_agent(server, hungry));
  EXPECT_EQ(call_agent(server, "/agents/hungry/x?alloc_mb=16").status, 200) << "well within the limit";
  EXPECT_EQ(call_agent(server, "/agents/hungry/x?alloc_mb=1024").status, 500) << "the allocation fails";
  EXPECT_EQ(call_agent(server, "/agents/hungry/x").status, 200);
  auto revision = revision_status(server, "hungry", "hungry-00001");
  ASSERT_FALSE(revision["replicaStatus"].empty()) << revision.dump();
  EXPECT_EQ(revision["replicaStatus"][0].value("restarts", -1), 0) << revision.dump();
  std::string logs;
  server.cli({"logs", "hungry"}, &logs);
  EXPECT_NE(logs.find("limits: memory 512Mi (RLIMIT_AS)"), std::string::npos) << logs;
}

TEST(AgentsWithoutCgroups, ACgroupParentThatCannotBeUsedStopsTheServer) {
  TempDir dir;
  Process serve(built_program("sluice"), {"serve", "--listen", "127.0.0.1:" + std::to_string(free_port()),
                                          "--data-dir", dir.path() + "/d", "--cgroup-parent", dir.path()});
  EXPECT_NE(serve.wait(std::chrono::seconds(10)), 0);
  EXPECT_NE(serve.output().find("--cgroup-parent " + dir.path() + ": is not a memory cgroup"),
            std::string::npos)
      << serve.output();
}

TEST_F(AgentsRouting, AnAgentRecreatedWhileItsNamesakeDrainsGetsNewRevisionNames) {
  const AgentYaml a = warm_slow_agent("again");
  ASSERT_TRUE(start_agent(server_, a));
  // A 3 s request keeps the deleted agent's replica draining while the new one starts.
  AgentReply slow;
  std::thread client([&] { slow = call_agent(server_, "/agents/again/x?latency_ms=3000"); });
  EXPECT_TRUE(wait_until([&] {
    return revision_status(server_, "again", "again-00001")["requests"].value("inFlight", 0) == 1;
  }));
  std::string out;
  EXPECT_EQ(server_.cli({"delete", "agent", "again"}, &out), 0) << out;
  apply_agent(server_, agent_yaml(a));
  EXPECT_TRUE(wait_until([&] { return ready_replicas(server_, "again", "again-00002") == 1; }))
      << agent_status(server_, "again").dump();
  EXPECT_EQ(call_agent(server_, "/agents/again/x").status, 200);
  client.join();
  EXPECT_EQ(slow.status, 200) << "the draining replica finished its request";
  // Once the old revision is gone, the new one still serves.
  EXPECT_TRUE(wait_until([&] {
    httplib::Client metrics("127.0.0.1", server_.port());
    auto res = metrics.Get("/metrics");
    return res && res->body.find("revision=\"again-00001\"") == std::string::npos;
  }));
  EXPECT_EQ(call_agent(server_, "/agents/again/x").status, 200);
}

TEST_F(AgentsRouting, RolloutDurationMovesTrafficInSteps) {
  auto v1 = echo("a");
  v1.annotations = {{"serving.knative.dev/rollout-duration", "4s"}};
  ASSERT_TRUE(start_agent(server_, v1));
  auto v2 = echo("b");
  v2.annotations = v1.annotations;
  apply_agent(server_, agent_yaml(v2));
  // Part way: both revisions serve, their shares adding up to 100, and both are seen by requests.
  int old_share = 0, new_share = 0;
  ASSERT_TRUE(wait_until([&] {
    old_share = revision_status(server_, "echo", "echo-00001").value("traffic", 0);
    new_share = revision_status(server_, "echo", "echo-00002").value("traffic", 0);
    return old_share > 0 && new_share > 0;
  })) << agent_status(server_, "echo").dump();
  EXPECT_EQ(old_share + new_share, 100);
  // Then all of it on the new revision, which no longer shares.
  EXPECT_TRUE(
      wait_until([&] { return revision_status(server_, "echo", "echo-00002").value("traffic", 0) == 100; },
                 std::chrono::seconds(20)))
      << agent_status(server_, "echo").dump();
  for (int i = 0; i < 10; ++i) EXPECT_EQ(call_agent(server_, "/agents/echo/").revision, "echo-00002");
}

TEST(AgentRevisions, InactiveRevisionsBeyondTheLimitAreRemoved) {
  SluiceServer server({"--gpus", "none", "--max-inactive-revisions", "1"});
  ASSERT_TRUE(server.wait_ready());
  for (const char* version : {"a", "b", "c"}) apply_agent(server, agent_yaml(echo(version)));
  ASSERT_TRUE(wait_until([&] { return ready_replicas(server, "echo", "echo-00003") == 1; }));
  // echo-00001 and echo-00002 are inactive once drained; one is kept, the older goes.
  nlohmann::json revisions;
  EXPECT_TRUE(wait_until([&] {
    revisions = agent_status(server, "echo")["revisions"];
    return revisions.size() == 2 && revisions[0].value("name", "") == "echo-00002";
  })) << revisions.dump();
  std::ifstream in(server.data_dir() + "/agents/echo/revisions.json");
  std::stringstream history;
  history << in.rdbuf();
  EXPECT_EQ(history.str().find("echo-00001"), std::string::npos) << history.str();
  EXPECT_NE(history.str().find("echo-00003"), std::string::npos) << history.str();
  // Numbering goes on from the newest.
  apply_agent(server, agent_yaml(echo("a")));
  EXPECT_TRUE(wait_until([&] { return ready_replicas(server, "echo", "echo-00004") == 1; }))
      << agent_status(server, "echo").dump();
  Process bad(built_program("sluice"), {"serve", "--max-inactive-revisions", "some"});
  EXPECT_EQ(bad.wait(std::chrono::seconds(10)), 2);
  EXPECT_NE(bad.output().find("--max-inactive-revisions expects a number"), std::string::npos)
      << bad.output();
}

}  // namespace
}  // namespace sluice::testing
