// A trigger of a Kafka-backed broker delivering to an agent: the consumer group's lag (high watermark −
// committed offset, what KEDA's Kafka scaler reads) is the trigger's backlog, so it starts the agent from
// zero, scales it out past what concurrency asks, and the agent goes back to zero once the lag is drained.

#include "tests/integration/agents_support.hpp"
#include "tests/integration/kafka_support.hpp"

namespace sluice::testing {
namespace {

/// Records in the Kafka binary content mode, one CloudEvent each, as any Kafka client produces them.
std::string binary_events(int count) {
  std::string lines;
  for (int i = 0; i < count; ++i)
    lines += "k" + std::to_string(i % 4) + ":{\"n\":" + std::to_string(i) + "}\n";
  return lines;
}

const std::vector<std::string> kScalingServer = {"--gpus", "none",         "--autoscaler-tick",
                                                 "200ms",  "--autoscaler", "scale-to-zero-grace-period=1s"};

/// A slow agent (300 ms a request) that wants a replica per 5 waiting events, up to 4.
AgentYaml backlog_agent(const std::string& name) {
  AgentYaml a;
  a.name = name;
  a.program = "slow_agent";
  a.env = {{"LATENCY_MS", "300"}};
  a.annotations = {{"autoscaling.knative.dev/window", "6s"},
                   {"autoscaling.knative.dev/max-scale", "4"},
                   {"sluice.dev/target-backlog", "5"}};
  return a;
}

TEST(KafkaAgentBacklog, LagScalesAnAgentFromZeroAndBackToZero) {
  MockKafka kafka({"kb-events:1"});
  SluiceServer server{kScalingServer};
  ASSERT_TRUE(server.wait_ready());
  apply_agent(server, agent_yaml(backlog_agent("backlog")));
  auto at_zero = [&] {
    auto r = revision_status(server, "backlog", "backlog-00001");
    return r.value("replicas", -1) == 0 && r.value("replicaStatus", nlohmann::json::array()).empty();
  };
  ASSERT_TRUE(wait_until(at_zero, std::chrono::seconds(15))) << agent_status(server, "backlog").dump();
  // One event in flight at a time (one partition): the concurrency signal alone never asks for a second
  // replica.
  apply_yaml(server, kafka_broker_yaml(kafka.bootstrap()) +
                         "---\napiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata: {name: "
                         "to-backlog}\nspec:\n  broker: kb\n  delivery: {maxInFlight: 1}\n  subscriber:\n"
                         "    ref: {apiVersion: sluice.dev/v1, kind: Agent, name: backlog}\n");
  ASSERT_TRUE(wait_until([&] { return assigned_partitions(server, "triggers", "to-backlog") == 1; },
                         std::chrono::seconds(15)))
      << resource_status(server, "triggers", "to-backlog").dump();
  // Produced straight to the topic, no request to the server at all.
  ASSERT_EQ(kafka.produce("kb-events", binary_events(40),
                          "-K: -H ce_specversion=1.0 -H ce_id=same -H ce_source=/kcat -H ce_type=t"),
            0);
  // The group's lag is the trigger's backlog, which the agent's autoscaler reads.
  EXPECT_TRUE(wait_until(
      [&] { return resource_status(server, "triggers", "to-backlog")["delivery"].value("backlog", 0) >= 20; },
      std::chrono::seconds(10)))
      << resource_status(server, "triggers", "to-backlog").dump();
  // 40 waiting events over a target of 5 per replica: scaled out to max-scale.
  EXPECT_TRUE(wait_until([&] { return ready_replicas(server, "backlog", "backlog-00001") >= 3; },
                         std::chrono::seconds(10)))
      << agent_status(server, "backlog").dump() << resource_status(server, "triggers", "to-backlog").dump();
  EXPECT_LE(revision_status(server, "backlog", "backlog-00001").value("replicas", 0), 4);
  EXPECT_TRUE(wait_until(
      [&] {
        auto status = resource_status(server, "triggers", "to-backlog");
        return status["delivery"].value("delivered", 0) == 40 && status.value("lag", -1) == 0 &&
               status["delivery"].value("backlog", -1) == 0;
      },
      std::chrono::seconds(30)))
      << resource_status(server, "triggers", "to-backlog").dump();
  // Drained: back to zero after the grace period.
  EXPECT_TRUE(wait_until(at_zero, std::chrono::seconds(20))) << agent_status(server, "backlog").dump();
}

// KEDA's ScaledObject on a Kafka topic: a KafkaSource whose sink is an agent scales it by the group's lag.
TEST(KafkaAgentBacklog, AKafkaSourceSinkingIntoAnAgentScalesItByItsLag) {
  MockKafka kafka({"jobs:1"});
  SluiceServer server{kScalingServer};
  ASSERT_TRUE(server.wait_ready());
  apply_agent(server, agent_yaml(backlog_agent("worker")));
  apply_yaml(server,
             "apiVersion: sources.knative.dev/v1beta1\nkind: KafkaSource\nmetadata: {name: jobs}\n"
             "spec:\n  bootstrapServers: [\"" +
                 kafka.bootstrap() +
                 "\"]\n  topics: [jobs]\n  initialOffset: earliest\n  delivery: {maxInFlight: 1}\n"
                 "  sink: {ref: {apiVersion: sluice.dev/v1, kind: Agent, name: worker}}\n");
  ASSERT_EQ(kafka.produce("jobs", binary_events(40), "-K:"), 0);
  // One record in flight at a time: only the lag asks for more than one replica.
  EXPECT_TRUE(wait_until([&] { return ready_replicas(server, "worker", "worker-00001") >= 3; },
                         std::chrono::seconds(20)))
      << agent_status(server, "worker").dump() << resource_status(server, "kafkasources", "jobs").dump();
  EXPECT_LE(revision_status(server, "worker", "worker-00001").value("replicas", 0), 4);
  EXPECT_TRUE(
      wait_until([&] { return resource_status(server, "kafkasources", "jobs").value("lag", -1) == 0; },
                 std::chrono::seconds(30)))
      << resource_status(server, "kafkasources", "jobs").dump();
}

// sluice_trigger_backlog_events of a Kafka trigger is the group's lag over every partition it holds: each
// partition's dispatcher had set it to the share of its own fetched records, so the last one won.
TEST(KafkaAgentBacklog, TheBacklogMetricIsTheLagOverEveryPartition) {
  MockKafka kafka({"kb-events:3"});
  SluiceServer server{{"--gpus", "none"}};
  ASSERT_TRUE(server.wait_ready());
  // Nothing listens on port 1: every delivery fails, and waits a minute before its retry.
  apply_yaml(server, kafka_broker_yaml(kafka.bootstrap()) +
                         "---\napiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata: {name: stuck}\n"
                         "spec:\n  broker: kb\n  subscriber: {uri: \"http://127.0.0.1:1/\"}\n"
                         "  delivery: {retry: 5, backoffDelay: PT60S}\n");
  ASSERT_TRUE(wait_until([&] { return assigned_partitions(server, "triggers", "stuck") == 3; },
                         std::chrono::seconds(15)))
      << resource_status(server, "triggers", "stuck").dump();
  std::string lines;
  for (int i = 0; i < 30; ++i)
    lines += "key" + std::to_string(i % 12) + ":{\"n\":" + std::to_string(i) + "}\n";
  ASSERT_EQ(
      kafka.produce("kb-events", lines, "-K: -H ce_specversion=1.0 -H ce_id=x -H ce_source=/k -H ce_type=t"),
      0);
  const std::string series = "sluice_trigger_backlog_events{broker=\"kb\",trigger=\"stuck\"}";
  EXPECT_TRUE(wait_until([&] { return metric(server, series) == 30; }, std::chrono::seconds(15)))
      << metric(server, series) << " " << resource_status(server, "triggers", "stuck").dump();
  int holding = 0;
  for (const auto& p :
       resource_status(server, "triggers", "stuck").value("partitions", nlohmann::json::array()))
    holding += p.value("lag", 0) > 0 ? 1 : 0;
  EXPECT_GE(holding, 2) << "the records are spread over partitions";
}

}  // namespace
}  // namespace sluice::testing
