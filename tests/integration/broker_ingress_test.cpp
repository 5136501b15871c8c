// The control plane and the publish endpoint of a real `sluice serve`: manifests through the CLI and the
// REST API, every content mode and every error status of ingress.

#include <fstream>
#include <regex>
#include <set>

#include "tests/integration/agents_support.hpp"
#include "tests/integration/broker_support.hpp"

namespace sluice::testing {
namespace {

class BrokerIngress : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_.wait_ready());
    apply_yaml(server_, broker_yaml("default", "ingress: {maxEventSize: 4Ki}"));
  }
  httplib::Result post(const std::string& path, const std::string& body, const std::string& content_type,
                       httplib::Headers headers = {}) {
    httplib::Client client("127.0.0.1", server_.port());
    return client.Post(path, headers, body, content_type);
  }
  SluiceServer server_;
};

TEST_F(BrokerIngress, AcceptsBinaryStructuredAndBatchedEvents) {
  EXPECT_EQ(publish(server_, "b-1", "com.example.binary"), 202);
  auto structured = post("/brokers/default",
                         R"({"specversion":"1.0","id":"s-1","type":"com.example.structured","source":"/t",
                             "data":{"k":"v"}})",
                         "application/cloudevents+json");
  ASSERT_TRUE(structured);
  EXPECT_EQ(structured->status, 202) << structured->body;
  auto batch = post("/brokers/default",
                    R"([{"specversion":"1.0","id":"x-1","type":"t","source":"/t"},
                        {"specversion":"1.0","id":"x-2","type":"t","source":"/t"}])",
                    "application/cloudevents-batch+json");
  ASSERT_TRUE(batch);
  EXPECT_EQ(batch->status, 202) << batch->body;
  // Four events are in the log: the status shows its end offset.
  std::string out;
  ASSERT_EQ(server_.cli({"get", "brokers", "default", "-o", "json"}, &out), 0) << out;
  auto broker = nlohmann::json::parse(out);
  EXPECT_EQ(broker["status"]["log"]["endOffset"], 4) << out;
  EXPECT_EQ(broker["status"]["conditions"][0]["status"], "True") << out;
}

TEST_F(BrokerIngress, ErrorsNameWhatIsWrong) {
  // A missing required attribute: 400 naming it.
  httplib::Client client("127.0.0.1", server_.port());
  auto res = client.Post("/brokers/default",
                         httplib::Headers{{"ce-specversion", "1.0"}, {"ce-id", "1"}, {"ce-source", "/t"}},
                         "{}", "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 400);
  EXPECT_NE(res->body.find("type"), std::string::npos) << res->body;

  // A batch with one bad event stores nothing.
  auto batch = post("/brokers/default",
                    R"([{"specversion":"1.0","id":"ok","type":"t","source":"/t"},
                        {"specversion":"1.0","id":"bad","type":"t","source":"/t","time":"yesterday"}])",
                    "application/cloudevents-batch+json");
  ASSERT_TRUE(batch);
  EXPECT_EQ(batch->status, 400);
  EXPECT_NE(batch->body.find("time"), std::string::npos) << batch->body;

  auto unknown = post("/brokers/nope", "{}", "application/json",
                      {{"ce-specversion", "1.0"}, {"ce-id", "1"}, {"ce-type", "t"}, {"ce-source", "/t"}});
  ASSERT_TRUE(unknown);
  EXPECT_EQ(unknown->status, 404);

  auto get = client.Get("/brokers/default");
  ASSERT_TRUE(get);
  EXPECT_EQ(get->status, 405);
  EXPECT_FALSE(get->get_header_value("Allow").empty());

  auto large = post("/brokers/default", std::string(5000, 'x'), "text/plain",
                    {{"ce-specversion", "1.0"}, {"ce-id", "big"}, {"ce-type", "t"}, {"ce-source", "/t"}});
  ASSERT_TRUE(large);
  EXPECT_EQ(large->status, 413);

  auto unsupported = post("/brokers/default", "<xml/>", "application/cloudevents+xml");
  ASSERT_TRUE(unsupported);
  EXPECT_EQ(unsupported->status, 415);

  std::string out;
  ASSERT_EQ(server_.cli({"get", "brokers", "default", "-o", "json"}, &out), 0);
  EXPECT_EQ(nlohmann::json::parse(out)["status"]["log"]["endOffset"], 0) << "nothing was stored: " << out;
}

TEST_F(BrokerIngress, InvalidManifestsAreRejectedWholeWithTheField) {
  struct Case {
    std::string yaml;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {"apiVersion: v1\nkind: Gadget\nmetadata: {name: g}\n", "Gadget"},
      {"apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata: {name: t}\nspec: {subscriber: {uri: "
       "\"http://x\"}}\n",
       "spec.broker"},
      {trigger_yaml("t", "http://x", "  filters:\n  - cesql: \"type = \"\n"), "spec.filters[0].cesql"},
      {trigger_yaml("t", "http://x", "  delivery: {backoffDelay: 5s}\n"), "spec.delivery.backoffDelay"},
      {broker_yaml("b", "delivery: {retry: -2}"), "spec.delivery.retry"},
  };
  for (const auto& c : cases) {
    std::string out;
    // A valid broker in the same file is not applied either.
    EXPECT_NE(server_.cli({"apply", "-f", "-"}, &out, broker_yaml("other") + "---\n" + c.yaml), 0) << c.yaml;
    EXPECT_NE(out.find(c.expected), std::string::npos) << "expected '" << c.expected << "' in: " << out;
  }
  std::string out;
  EXPECT_NE(server_.cli({"get", "brokers", "other"}, &out), 0) << out;
}

TEST_F(BrokerIngress, ResourcesSurviveRestartsAndDeleteRemovesThem) {
  HttpSink sink;
  apply_yaml(server_, trigger_yaml("t1", sink.url()));
  std::string out;
  ASSERT_EQ(server_.cli({"get", "triggers", "t1", "-o", "yaml"}, &out), 0) << out;
  EXPECT_NE(out.find("subscriberUri: " + sink.url()), std::string::npos) << out;

  server_.process().signal(SIGTERM);
  EXPECT_EQ(server_.process().wait(std::chrono::seconds(15)), 0) << server_.process().output();
  server_.restart();
  ASSERT_TRUE(server_.wait_ready());
  ASSERT_EQ(server_.cli({"get", "triggers"}, &out), 0) << out;
  EXPECT_NE(out.find("t1"), std::string::npos) << out;

  ASSERT_EQ(server_.cli({"delete", "trigger", "t1"}, &out), 0) << out;
  EXPECT_NE(server_.cli({"get", "triggers", "t1"}, &out), 0) << out;
  EXPECT_NE(out.find("t1"), std::string::npos) << out;
}

TEST_F(BrokerIngress, TriggerWaitsForItsBroker) {
  HttpSink sink;
  apply_yaml(server_, trigger_yaml("late", sink.url(), "", "later"));
  auto status = trigger_status(server_, "late");
  ASSERT_TRUE(status.contains("conditions")) << status;
  EXPECT_EQ(status["conditions"][0]["status"], "False");
  EXPECT_NE(status["conditions"][0]["message"].get<std::string>().find("later"), std::string::npos) << status;

  apply_yaml(server_, broker_yaml("later"));
  EXPECT_EQ(trigger_status(server_, "late")["conditions"][0]["status"], "True");
  EXPECT_EQ(publish(server_, "e-1", "t", "{}", {}, "later"), 202);
  ASSERT_TRUE(sink.wait_for(1));
  EXPECT_EQ(sink.requests()[0].header("ce-id"), "e-1");
}

TEST_F(BrokerIngress, PublishVerbOfTheCli) {
  HttpSink sink;
  apply_yaml(server_, trigger_yaml("all", sink.url()));
  std::string out;
  ASSERT_EQ(server_.cli({"publish", "default", "--type", "com.example.cli", "--source", "/cli", "--id",
                         "cli-1", "--data", R"({"hello":"world"})", "--ext", "tenant=acme"},
                        &out),
            0)
      << out;
  ASSERT_TRUE(sink.wait_for(1));
  const auto r = sink.requests()[0];
  EXPECT_EQ(r.header("ce-type"), "com.example.cli");
  EXPECT_EQ(r.header("ce-tenant"), "acme");
  EXPECT_EQ(r.body, R"({"hello":"world"})");
}

TEST_F(BrokerIngress, RateLimitAnswers429WithRetryAfter) {
  apply_yaml(server_, broker_yaml("limited", "ingress: {rateLimit: {eventsPerSecond: 5, burst: 5}}"));
  for (int i = 0; i < 5; ++i)
    ASSERT_EQ(publish(server_, "r" + std::to_string(i), "t", "{}", {}, "limited"), 202);
  httplib::Client client("127.0.0.1", server_.port());
  auto res = client.Post(
      "/brokers/limited",
      httplib::Headers{{"ce-specversion", "1.0"}, {"ce-id", "over"}, {"ce-type", "t"}, {"ce-source", "/t"}},
      "{}", "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 429);
  EXPECT_EQ(res->get_header_value("Retry-After"), "1");
  EXPECT_NE(res->body.find("rate limit"), std::string::npos) << res->body;
  // Tokens come back at 5/s; other brokers are not limited meanwhile.
  EXPECT_EQ(publish(server_, "free", "t"), 202);
  EXPECT_TRUE(wait_until([&] { return publish(server_, "later", "t", "{}", {}, "limited") == 202; },
                         std::chrono::seconds(3)));
  std::string out;
  EXPECT_NE(server_.cli({"apply", "-f", "-"}, &out,
                        broker_yaml("bad", "ingress: {rateLimit: {eventsPerSecond: 0}}")),
            0);
  EXPECT_NE(out.find("spec.ingress.rateLimit.eventsPerSecond"), std::string::npos) << out;
}

// Kafka's produce quota, per broker: bytes of published bodies per second, 429 with Retry-After beyond
// it; a batch larger than the burst is 413 (it could never pass).
TEST_F(BrokerIngress, ByteQuotaAnswers429AndABatchOverTheBurst413) {
  apply_yaml(
      server_,
      broker_yaml("metered", "ingress: {maxEventSize: 1000, quota: {bytesPerSecond: 50, burstBytes: 1000}}"));
  const std::string data = "{\"pad\":\"" + std::string(280, 'x') + "\"}";  // a 290-byte body
  for (int i = 0; i < 3; ++i)
    ASSERT_EQ(publish(server_, "q" + std::to_string(i), "t", data, {}, "metered"), 202);
  httplib::Client client("127.0.0.1", server_.port());
  const httplib::Headers headers{
      {"ce-specversion", "1.0"}, {"ce-id", "over"}, {"ce-type", "t"}, {"ce-source", "/t"}};
  auto res = client.Post("/brokers/metered", headers, data, "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 429);
  // 160 bytes are missing at 50 bytes/s (less what came back while the first three were published).
  EXPECT_GE(std::atoi(res->get_header_value("Retry-After").c_str()), 1)
      << res->get_header_value("Retry-After");
  EXPECT_LE(std::atoi(res->get_header_value("Retry-After").c_str()), 4)
      << res->get_header_value("Retry-After");
  EXPECT_NE(res->body.find("ingress quota of 50 bytes/s"), std::string::npos) << res->body;
  EXPECT_EQ(publish(server_, "unmetered", "t", data), 202) << "other brokers are not metered";
  EXPECT_TRUE(wait_until([&] { return publish(server_, "later", "t", data, {}, "metered") == 202; },
                         std::chrono::seconds(10)));

  nlohmann::json batch = nlohmann::json::array();
  for (int i = 0; i < 4; ++i)
    batch.push_back({{"specversion", "1.0"},
                     {"id", "b" + std::to_string(i)},
                     {"type", "t"},
                     {"source", "/t"},
                     {"data", std::string(280, 'x')}});
  res = client.Post("/brokers/metered", batch.dump(), "application/cloudevents-batch+json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 413);
  EXPECT_NE(res->body.find("can never pass"), std::string::npos) << res->body;

  std::string out;
  EXPECT_NE(server_.cli(
                {"apply", "-f", "-"}, &out,
                broker_yaml(
                    "bad", "ingress: {maxEventSize: 2000, quota: {bytesPerSecond: 1000, burstBytes: 1500}}")),
            0);
  EXPECT_NE(out.find("spec.ingress.quota.burstBytes"), std::string::npos) << out;
  EXPECT_NE(
      server_.cli({"apply", "-f", "-"}, &out, broker_yaml("bad", "ingress: {quota: {bytesPerSecond: 0}}")),
      0);
  EXPECT_NE(out.find("spec.ingress.quota.bytesPerSecond"), std::string::npos) << out;
}

TEST_F(BrokerIngress, ApplyWaitsForReadinessAndGetWatches) {
  std::string out;
  EXPECT_NE(server_.cli({"apply", "-f", "-", "--wait", "--timeout", "1s"}, &out,
                        trigger_yaml("orphan", "http://127.0.0.1:9/", "", "missing")),
            0);
  EXPECT_NE(out.find("triggers/orphan: Ready=False"), std::string::npos) << out;
  EXPECT_NE(out.find("not ready after 1s"), std::string::npos) << out;
  EXPECT_NE(out.find("broker \"missing\" does not exist"), std::string::npos) << out;
  std::string json;
  ASSERT_EQ(server_.cli({"get", "triggers", "orphan", "-o", "json"}, &json), 0) << json;
  EXPECT_EQ(nlohmann::json::parse(json)["status"]["conditions"][0].value("reason", ""), "BrokerDoesNotExist")
      << json;

  Process watch(built_program("sluice"), {"get", "triggers", "-w", "--server", server_.url()});
  ASSERT_TRUE(wait_until([&] { return watch.output().find("orphan") != std::string::npos; }));
  EXPECT_EQ(server_.cli({"apply", "-f", "-", "--wait"}, &out, broker_yaml("missing")), 0) << out;
  EXPECT_NE(out.find("brokers/missing: Ready=True"), std::string::npos) << out;
  // The watch prints the table again once the trigger turns ready.
  ASSERT_TRUE(wait_until([&] {
    auto text = watch.output();
    auto second = text.find("NAME", text.find("NAME") + 1);
    return second != std::string::npos && text.find("True", second) != std::string::npos;
  })) << watch.output();
  watch.signal(SIGTERM);
}

TEST_F(BrokerIngress, TheGrafanaDashboardUsesMetricsTheServerExports) {
  HttpSink sink;
  apply_yaml(server_, trigger_yaml("t", sink.url()));
  ASSERT_EQ(publish(server_, "m", "t"), 202);
  ASSERT_TRUE(sink.wait_for(1));
  AgentYaml agent;  // the agent panels need a revision
  agent.name = "echo";
  ASSERT_TRUE(start_agent(server_, agent));
  std::ifstream in(std::string(SLUICE_SOURCE_DIR) + "/examples/grafana-dashboard.json");
  auto dashboard = nlohmann::json::parse(in);
  std::set<std::string> used;
  const std::regex name(R"(sluice_[a-z_]+)");
  for (const auto& panel : dashboard["panels"])
    for (const auto& target : panel["targets"]) {
      const std::string expr = target["expr"];
      for (std::sregex_iterator it(expr.begin(), expr.end(), name), end; it != end; ++it)
        used.insert(it->str());
    }
  ASSERT_GE(used.size(), 10u);
  httplib::Client client("127.0.0.1", server_.port());
  std::string exported;
  ASSERT_TRUE(wait_until([&] {  // the agents' series are refreshed every second
    auto res = client.Get("/metrics");
    exported = res ? res->body : "";
    return exported.find("# TYPE sluice_agent_replicas ") != std::string::npos;
  })) << exported;
  for (std::string metric : used) {
    for (const char* suffix : {"_bucket", "_sum", "_count"})
      if (metric.size() > strlen(suffix) && metric.ends_with(suffix))
        metric.resize(metric.size() - strlen(suffix));
    EXPECT_NE(exported.find("# TYPE " + metric + " "), std::string::npos) << metric << " is not exported";
  }
  // Every counter of events or replies lost has a panel.
  const std::regex dropped(R"(# TYPE (sluice_[a-z_]+_dropped_total) )");
  int drop_counters = 0;
  for (std::sregex_iterator it(exported.begin(), exported.end(), dropped), end; it != end;
       ++it, ++drop_counters)
    EXPECT_TRUE(used.count((*it)[1].str())) << (*it)[1].str() << " has no panel";
  EXPECT_GE(drop_counters, 3);
}

}  // namespace
}  // namespace sluice::testing
