// Trigger deliveries to an Agent subscriber (`subscriber.ref: {kind: Agent}`) whose replica never
// becomes ready: a real `sluice serve`, a real replica process and a real dead-letter sink. Such a
// delivery fails as one to `/agents/{name}` over HTTP would: within the trigger's `delivery.timeout`
// (the agent's timeoutSeconds is longer), and dead-lettered with `knativeerrorcode` the activator's
// status.

#include <chrono>
#include <string>

#include "core/base64.hpp"
#include "tests/integration/agents_support.hpp"
#include "tests/integration/broker_support.hpp"

namespace sluice::testing {
namespace {

using namespace std::chrono_literals;

class AgentsTriggerDelivery : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(server_.wait_ready()); }

  /// An agent whose one replica does not listen for a minute (model loading that does not end within
  /// the test): every request waits in the activator's buffer.
  void apply_stuck_agent(const std::string& timeout_seconds) {
    AgentYaml a;
    a.name = "stuck";
    a.program = "slow_agent";
    a.env = {{"STARTUP_MS", "60000"}};
    a.annotations = {{"autoscaling.knative.dev/min-scale", "1"}, {"autoscaling.knative.dev/max-scale", "1"}};
    a.template_spec = "      timeoutSeconds: " + timeout_seconds + "\n";
    apply_agent(server_, agent_yaml(a));
  }

  void apply_trigger(const std::string& delivery) {
    apply_yaml(server_, broker_yaml() +
                            "---\napiVersion: eventing.knative.dev/v1\nkind: Trigger\n"
                            "metadata: {name: to-agent}\nspec:\n  broker: default\n"
                            "  subscriber: {ref: {apiVersion: sluice.dev/v1, kind: Agent, name: stuck}}\n"
                            "  delivery: {" +
                            delivery + ", deadLetterSink: {uri: \"" + dead_.url() + "/dead\"}}\n");
  }

  SluiceServer server_{{"--gpus", "none"}};
  HttpSink dead_;
};

// Without the trigger's timeout, each attempt waited for the agent's timeoutSeconds (here 60 s; 300 s
// by default), so a trigger with `timeout: PT1S` and one retry took two minutes to dead-letter.
TEST_F(AgentsTriggerDelivery, TheTriggersTimeoutBoundsAnAttemptWaitingForAReplica) {
  apply_stuck_agent("60");
  apply_trigger("retry: 1, backoffDelay: PT0.1S, timeout: PT1S");
  const auto published = std::chrono::steady_clock::now();
  ASSERT_EQ(publish(server_, "waits-1", "com.example.t"), 202);

  ASSERT_TRUE(dead_.wait_for(1, 20s)) << trigger_status(server_, "to-agent").dump();
  const auto letter = dead_.requests().at(0);
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(letter.at - published);
  EXPECT_LT(took, 15s) << "two attempts of 1 s and a backoff";
  EXPECT_GE(took, 2s) << "two attempts of 1 s";
  EXPECT_EQ(letter.header("ce-id"), "waits-1");
  EXPECT_EQ(letter.header("ce-knativeerrorcode"), "504");
  const auto delivery = trigger_status(server_, "to-agent")["delivery"];
  EXPECT_EQ(delivery.value("failedAttempts", 0), 2) << delivery.dump();
  EXPECT_EQ(delivery.value("deadLettered", 0), 1) << delivery.dump();
}

// The activator's refusals reached the trigger as transport errors without a status: the dead letter
// had no knativeerrorcode and no knativeerrordata, while the same delivery through `uri: /agents/…`
// has both.
TEST_F(AgentsTriggerDelivery, AnAgentThatTimesOutIsDeadLetteredWithTheActivatorsStatus) {
  apply_stuck_agent("1");
  apply_trigger("retry: 1, backoffDelay: PT0.1S, timeout: PT30S");
  ASSERT_EQ(publish(server_, "times-out-1", "com.example.t"), 202);

  ASSERT_TRUE(dead_.wait_for(1, 20s)) << trigger_status(server_, "to-agent").dump();
  const auto letter = dead_.requests().at(0);
  EXPECT_EQ(letter.header("ce-id"), "times-out-1");
  EXPECT_EQ(letter.header("ce-knativeerrorcode"), "504");
  EXPECT_NE(letter.header("ce-knativeerrordest").find("/agents/stuck"), std::string::npos);
  const std::string data = letter.header("ce-knativeerrordata");
  ASSERT_FALSE(data.empty());
  EXPECT_NE(base64_decode(data).value_or("").find("no replica became available"), std::string::npos) << data;
  const auto requests =
      revision_status(server_, "stuck", "stuck-00001").value("requests", nlohmann::json::object());
  EXPECT_EQ(requests.value("timedOut", 0), 2) << requests.dump();
}

// Deleting the agent stops its trigger, which cancels the deliveries waiting for a replica: they stay
// in the backlog for the agent's return, and are no failed attempts. They were counted in
// sluice_trigger_events_failed_total and the delivery latency histogram.
TEST_F(AgentsTriggerDelivery, DeliveriesCancelledByDeletingTheAgentAreNotCountedAsFailed) {
  apply_stuck_agent("60");
  apply_trigger("retry: 1, timeout: PT30S");
  constexpr int kEvents = 5;
  for (int i = 0; i < kEvents; ++i)
    ASSERT_EQ(publish(server_, "waits-" + std::to_string(i), "com.example.t"), 202);
  ASSERT_TRUE(wait_until([&] {
    return revision_status(server_, "stuck", "stuck-00001")["requests"].value("waiting", 0) == kEvents;
  })) << revision_status(server_, "stuck", "stuck-00001").dump();

  std::string out;
  ASSERT_EQ(server_.cli({"delete", "agent", "stuck"}, &out), 0) << out;
  ASSERT_TRUE(wait_until([&] {
    const auto status = trigger_status(server_, "to-agent");
    return status["conditions"][0].value("reason", "") == "SubscriberNotFound" &&
           status["delivery"].value("backlog", 0) == kEvents;
  })) << trigger_status(server_, "to-agent").dump();
  const std::string labels = "{broker=\"default\",trigger=\"to-agent\"}";
  EXPECT_EQ(metric(server_, "sluice_trigger_events_failed_total" + labels), 0);
  EXPECT_EQ(metric(server_, "sluice_trigger_delivery_duration_seconds_count" + labels), 0);
  EXPECT_EQ(metric(server_, "sluice_trigger_events_dead_lettered_total" + labels), 0);
  EXPECT_EQ(dead_.count(), 0u);
}

}  // namespace
}  // namespace sluice::testing
