// The control plane at its edges: a trigger whose subscriber is an Agent that does not exist yet (not
// ready, its events kept until the agent is applied), `sluice get -o yaml|json` applied back (listings
// and single resources, unchanged), fields no manifest has, keys given twice, and PUT with another name.

#include "tests/integration/agents_support.hpp"
#include "tests/integration/broker_support.hpp"

namespace sluice::testing {
namespace {

class ControlPlaneEdge : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(server_.wait_ready()); }

  nlohmann::json get(const std::string& path) {
    httplib::Client client("127.0.0.1", server_.port());
    auto res = client.Get(path);
    if (!res || res->status != 200) return nlohmann::json::object();
    return nlohmann::json::parse(res->body, nullptr, false);
  }
  nlohmann::json ready_condition(const std::string& trigger) {
    for (const auto& c : trigger_status(server_, trigger).value("conditions", nlohmann::json::array()))
      if (c.value("type", "") == "Ready") return c;
    return nlohmann::json::object();
  }
  std::string apply(const std::string& text, int* rc = nullptr) {
    std::string out;
    int code = server_.cli({"apply", "-f", "-"}, &out, text);
    if (rc) *rc = code;
    return out;
  }

  SluiceServer server_{{"--gpus", "none"}};
};

TEST_F(ControlPlaneEdge, TriggerToAMissingAgentWaitsAndDeliversOnceItExists) {
  apply_yaml(server_, broker_yaml() +
                          "---\napiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata: {name: "
                          "to-display}\nspec:\n  broker: default\n  subscriber:\n    ref: {apiVersion: "
                          "serving.knative.dev/v1, kind: Service, name: event-display}\n");
  for (int i = 0; i < 3; ++i) ASSERT_EQ(publish(server_, "w-" + std::to_string(i), "com.example.t"), 202);
  ASSERT_TRUE(wait_until([&] {
    return trigger_status(server_, "to-display")["delivery"].value("backlog", 0) == 3;
  })) << trigger_status(server_, "to-display").dump();
  auto ready = ready_condition("to-display");
  EXPECT_EQ(ready.value("status", ""), "False") << ready.dump();
  EXPECT_EQ(ready.value("reason", ""), "SubscriberNotFound") << ready.dump();
  EXPECT_NE(ready.value("message", "").find("service \"event-display\" does not exist"), std::string::npos)
      << ready.dump();
  auto status = trigger_status(server_, "to-display");
  EXPECT_FALSE(status.contains("subscriberUri")) << status.dump();
  EXPECT_EQ(status["delivery"].value("dropped", 0), 0) << status.dump();
  EXPECT_EQ(server_.process().output().find("is dropped"), std::string::npos) << server_.process().output();

  AgentYaml display;
  display.name = "event-display";
  apply_agent(server_, agent_yaml(display));
  ASSERT_TRUE(
      wait_until([&] { return trigger_status(server_, "to-display")["delivery"].value("delivered", 0) == 3; },
                 std::chrono::seconds(30)))
      << trigger_status(server_, "to-display").dump() << server_.process().output();
  status = trigger_status(server_, "to-display");
  EXPECT_EQ(status["delivery"].value("dropped", 0), 0) << status.dump();
  EXPECT_EQ(status.value("subscriberUri", "").rfind("http://", 0), 0u) << status.dump();
  EXPECT_EQ(ready_condition("to-display").value("status", ""), "True") << status.dump();
  auto info = nlohmann::json::parse(call_agent(server_, "/agents/event-display/").body, nullptr, false);
  EXPECT_EQ(info.value("events", 0), 3) << info.dump();
}

TEST_F(ControlPlaneEdge, MissingDeadLetterAgentHoldsTheTriggerUntilItExists) {
  HttpSink sink;
  sink.respond([](const ReceivedRequest&, std::size_t) {
    SinkResponse r;
    r.status = 500;
    return r;
  });
  apply_yaml(server_, broker_yaml() + "---\n" +
                          trigger_yaml("dls", sink.url(),
                                       "  delivery:\n    retry: 0\n    deadLetterSink:\n      ref: {kind: "
                                       "Agent, name: dead-letters}\n"));
  ASSERT_EQ(publish(server_, "d-1", "com.example.t"), 202);
  ASSERT_TRUE(wait_until([&] { return trigger_status(server_, "dls")["delivery"].value("backlog", 0) == 1; }))
      << trigger_status(server_, "dls").dump();
  EXPECT_NE(ready_condition("dls")
                .value("message", "")
                .find("spec.delivery.deadLetterSink.ref: agent "
                      "\"dead-letters\" does not exist"),
            std::string::npos)
      << ready_condition("dls").dump();
  EXPECT_EQ(ready_condition("dls").value("reason", ""), "DeadLetterSinkNotFound")
      << ready_condition("dls").dump();
  EXPECT_EQ(sink.count(), 0u);

  AgentYaml dead_letters;
  dead_letters.name = "dead-letters";
  apply_agent(server_, agent_yaml(dead_letters));
  ASSERT_TRUE(
      wait_until([&] { return trigger_status(server_, "dls")["delivery"].value("deadLettered", 0) == 1; },
                 std::chrono::seconds(30)))
      << trigger_status(server_, "dls").dump() << server_.process().output();
  EXPECT_EQ(trigger_status(server_, "dls")["delivery"].value("dropped", 0), 0);
  EXPECT_EQ(sink.count(), 1u);
}

TEST_F(ControlPlaneEdge, GetOutputAppliesBackUnchanged) {
  HttpSink sink;
  const std::string trigger = trigger_yaml("t1", sink.url(), "", "default", "team: a");
  apply_yaml(server_, broker_yaml() + "---\n" + trigger);
  for (const auto& [kind, format] : std::vector<std::pair<std::string, std::string>>{
           {"triggers", "yaml"}, {"brokers", "yaml"}, {"triggers", "json"}, {"brokers", "json"}}) {
    std::string listing;
    ASSERT_EQ(server_.cli({"get", kind, "-o", format}, &listing), 0) << listing;
    int rc = 0;
    auto out = apply(listing, &rc);
    EXPECT_EQ(rc, 0) << kind << " -o " << format << ": " << out;
    EXPECT_NE(out.find(" unchanged"), std::string::npos) << out;
    EXPECT_EQ(out.find("configured"), std::string::npos) << out;
  }
  std::string one;
  ASSERT_EQ(server_.cli({"get", "trigger", "t1", "-o", "yaml"}, &one), 0) << one;
  EXPECT_NE(apply(one).find("trigger/t1 unchanged"), std::string::npos);
  EXPECT_NE(apply(trigger).find("trigger/t1 unchanged"), std::string::npos);
  auto stored = get("/apis/v1/triggers/t1");
  EXPECT_EQ(stored["metadata"].value("generation", 0), 1) << stored.dump();
}

TEST_F(ControlPlaneEdge, UnknownFieldsAndDuplicateKeysAreRefusedNamingThem) {
  struct Case {
    std::string text;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {broker_yaml("b") + "bogusTop: 1\n", "bogusTop: unknown field"},
      {"apiVersion: eventing.knative.dev/v1\nkind: Broker\nmetadata: {name: b, bogusMeta: 1}\nspec: {}\n",
       "metadata.bogusMeta: unknown field"},
      {"apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata: {name: t}\nspec:\n  broker: a\n"
       "  subscriber: {uri: \"http://x\"}\n  broker: b\n",
       "duplicate key spec.broker"},
      {R"({"apiVersion": "eventing.knative.dev/v1", "kind": "Broker", "metadata": {"name": "b"},)"
       R"( "metadata": {"name": "c"}})",
       "duplicate key metadata"},
  };
  for (const auto& c : cases) {
    int rc = 0;
    auto out = apply(c.text, &rc);
    EXPECT_NE(rc, 0) << c.text;
    EXPECT_NE(out.find(c.expected), std::string::npos) << "expected '" << c.expected << "' in: " << out;
  }
  std::string out;
  EXPECT_NE(server_.cli({"get", "brokers", "b"}, &out), 0) << out;
}

TEST_F(ControlPlaneEdge, PutWithAnotherNameQuotesItOnce) {
  httplib::Client client("127.0.0.1", server_.port());
  auto res = client.Put("/apis/v1/brokers/pb", broker_yaml("other"), "application/yaml");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 400);
  EXPECT_NE(res->body.find("metadata.name \\\"other\\\" does not match the path's name \\\"pb\\\""),
            std::string::npos)
      << res->body;
}

// `get` and `delete` of a resource that does not exist say so the same way, naming the kind once.
TEST_F(ControlPlaneEdge, GetAndDeleteOfAMissingResourceSayTheSame) {
  std::string get, del;
  EXPECT_EQ(server_.cli({"get", "trigger", "nope"}, &get), 1) << get;
  EXPECT_EQ(server_.cli({"delete", "trigger", "nope"}, &del), 1) << del;
  EXPECT_NE(get.find("error: no Trigger named \"nope\""), std::string::npos) << get;
  EXPECT_NE(del.find("error: no Trigger named \"nope\""), std::string::npos) << del;
}

TEST_F(ControlPlaneEdge, DeletingATriggerWithADeliveryInFlightAnswersAtOnce) {
  HttpSink slow;
  slow.respond([](const ReceivedRequest&, std::size_t) {
    SinkResponse r;
    r.delay = std::chrono::seconds(6);
    return r;
  });
  apply_yaml(server_, broker_yaml() + "---\n" + trigger_yaml("slow", slow.url()));
  ASSERT_EQ(publish(server_, "in-flight", "com.example.t"), 202);
  ASSERT_TRUE(slow.wait_for(1));
  const auto start = std::chrono::steady_clock::now();
  ASSERT_EQ(server_.cli({"delete", "trigger", "slow"}), 0);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3));
  EXPECT_FALSE(get("/apis/v1/triggers/slow").contains("metadata"));
}

TEST_F(ControlPlaneEdge, ATriggerMovedToAnotherBrokerAndBackStartsAtTheEndAsANewOne) {
  HttpSink sink;
  apply_yaml(server_,
             broker_yaml() + "---\n" + broker_yaml("other") + "---\n" + trigger_yaml("t", sink.url()));
  ASSERT_EQ(publish(server_, "first", "com.example.t"), 202);
  ASSERT_TRUE(sink.wait_for(1));
  apply_yaml(server_, trigger_yaml("t", sink.url(), "", "other"));
  ASSERT_TRUE(wait_until([&] {
    return metric(server_, "sluice_trigger_backlog_events{broker=\"default\",trigger=\"t\"}") < 0;
  })) << "the old broker's series stay";
  for (int i = 0; i < 3; ++i)
    ASSERT_EQ(publish(server_, "meanwhile-" + std::to_string(i), "com.example.t"), 202);
  apply_yaml(server_, trigger_yaml("t", sink.url()));
  ASSERT_TRUE(wait_until([&] {
    return trigger_status(server_, "t")["delivery"].value("committedOffset", 0) == 4;
  })) << trigger_status(server_, "t").dump();
  ASSERT_EQ(publish(server_, "after", "com.example.t"), 202);
  ASSERT_TRUE(sink.wait_for(2));
  EXPECT_EQ(received_ids(sink), (std::vector<std::string>{"first", "after"}));
}

// A resource's name in the REST path is percent-decoded, as a broker's name in the publish path is.
TEST_F(ControlPlaneEdge, TheRestApiDecodesPercentEncodedNames) {
  apply_yaml(server_, broker_yaml("b1"));
  EXPECT_EQ(get("/apis/v1/brokers/b%31").value("metadata", nlohmann::json::object()).value("name", ""), "b1");
  httplib::Client client("127.0.0.1", server_.port());
  auto res = client.Get("/apis/v1/brokers/b%3");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 400) << res->body;
  EXPECT_NE(res->body.find("malformed percent-encoding"), std::string::npos) << res->body;
  res = client.Delete("/apis/v1/brokers/%62%31");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200) << res->body;
  EXPECT_EQ(client.Get("/apis/v1/brokers/b1")->status, 404);
}

// A deleted broker's series leave /metrics; made again, the broker counts from zero.
TEST_F(ControlPlaneEdge, ADeletedBrokersSeriesLeaveMetrics) {
  apply_yaml(server_, broker_yaml("gone"));
  ASSERT_EQ(publish(server_, "e1", "t", "{}", {}, "gone"), 202);
  EXPECT_EQ(metric(server_, R"(sluice_broker_events_appended_total{broker="gone"})"), 1);
  EXPECT_EQ(metric(server_, R"(sluice_ingress_requests_total{broker="gone",code="202"})"), 1);
  ASSERT_EQ(server_.cli({"delete", "broker", "gone"}), 0);
  httplib::Client client("127.0.0.1", server_.port());
  auto res = client.Get("/metrics");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->body.find(R"(broker="gone")"), std::string::npos) << res->body;
  apply_yaml(server_, broker_yaml("gone"));
  ASSERT_EQ(publish(server_, "e2", "t", "{}", {}, "gone"), 202);
  EXPECT_EQ(metric(server_, R"(sluice_broker_events_appended_total{broker="gone"})"), 1);
  EXPECT_EQ(metric(server_, R"(sluice_ingress_requests_total{broker="gone",code="202"})"), 1);
}

}  // namespace
}  // namespace sluice::testing
