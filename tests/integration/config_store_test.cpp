// `--config-store kafka://…`: the resources of several `sluice serve` nodes live in one compacted Kafka
// topic (the mock cluster), read back with kcat: what is applied or deleted on one node reaches the
// others, a node that was down or starts empty catches up, and a bad manifest writes nothing.

#include <set>

#include "tests/integration/kafka_support.hpp"

namespace sluice::testing {
namespace {

const std::string kTopic = "sluice-config";

std::vector<std::string> config_store_args(const MockKafka& kafka) {
  return {"--config-store", "kafka://" + kafka.bootstrap() + "/" + kTopic};
}

/// The resource as `GET /apis/v1/PLURAL/NAME` shows it (null when absent).
nlohmann::json describe(SluiceServer& server, const std::string& plural, const std::string& name) {
  httplib::Client client("127.0.0.1", server.port());
  auto res = client.Get("/apis/v1/" + plural + "/" + name);
  if (!res || res->status != 200) return nullptr;
  return nlohmann::json::parse(res->body, nullptr, false);
}

std::int64_t generation_of(SluiceServer& server, const std::string& plural, const std::string& name) {
  auto r = describe(server, plural, name);
  return r.is_object() ? r["metadata"].value("generation", std::int64_t{0}) : 0;
}

TEST(ConfigStore, NodesShareResourcesThroughACompactedTopic) {
  MockKafka kafka({kTopic + ":1", "kb-events:2"});
  HttpSink sink;
  HttpSink other;
  SluiceServer a(config_store_args(kafka));
  SluiceServer b(config_store_args(kafka));
  ASSERT_TRUE(a.wait_ready());
  ASSERT_TRUE(b.wait_ready());

  // Applied on a, seen and realised on b: b's ingress takes events for the Kafka-backed broker.
  apply_yaml(a, kafka_broker_yaml(kafka.bootstrap()) + "---\n" + trigger_yaml("t1", sink.url(), "", "kb"));
  ASSERT_TRUE(wait_until([&] {
    auto status = resource_status(b, "triggers", "t1");
    return !status.empty() && status["conditions"][0].value("status", "") == "True";
  })) << b.process().output();
  EXPECT_EQ(generation_of(b, "brokers", "kb"), 1);
  std::set<std::string> acknowledged;
  for (int i = 0; i < 20; ++i) {
    const std::string id = "e" + std::to_string(i);
    ASSERT_EQ(publish(i % 2 ? a : b, id, "t", R"({"n":1})", {}, "kb"), 202);
    acknowledged.insert(id);
  }
  EXPECT_TRUE(wait_all_delivered(sink, acknowledged, std::chrono::seconds(30)));

  // Changed on b: b shows the new generation as soon as its apply returns, a shortly after.
  apply_yaml(b, trigger_yaml("t1", other.url(), "", "kb"));
  EXPECT_EQ(generation_of(b, "triggers", "t1"), 2) << "apply returns once this node applied its change";
  EXPECT_TRUE(wait_until([&] { return generation_of(a, "triggers", "t1") == 2; }));
  EXPECT_EQ(describe(a, "triggers", "t1")["spec"]["subscriber"]["uri"], other.url());

  // A bad manifest is rejected whole on the node that got it, and nothing reaches the topic.
  const std::string before = kafka.consume(kTopic, "%k\\n");
  std::string out;
  EXPECT_NE(b.cli({"apply", "-f", "-"}, &out,
                  trigger_yaml("t2", sink.url(), "", "kb") + "---\n" +
                      trigger_yaml("t3", sink.url(), "  delivery: {backoffDelay: soon}\n", "kb")),
            0);
  EXPECT_NE(out.find("backoffDelay"), std::string::npos) << out;
  EXPECT_EQ(kafka.consume(kTopic, "%k\\n"), before);
  EXPECT_TRUE(describe(a, "triggers", "t2").is_null());

  // A node that is down while resources change catches up when it starts again: what was deleted
  // meanwhile is gone from its own copy too.
  b.kill();
  apply_yaml(a, trigger_yaml("t4", sink.url(), "", "kb"));
  ASSERT_EQ(a.cli({"delete", "trigger", "t1"}, &out), 0) << out;
  EXPECT_TRUE(describe(a, "triggers", "t1").is_null()) << "delete returns once this node applied it";
  b.restart();
  ASSERT_TRUE(b.wait_ready());
  EXPECT_TRUE(describe(b, "triggers", "t1").is_null());
  EXPECT_EQ(generation_of(b, "triggers", "t4"), 1);

  // A new node with an empty data dir gets every resource from the topic.
  SluiceServer c(config_store_args(kafka));
  ASSERT_TRUE(c.wait_ready());
  EXPECT_EQ(generation_of(c, "brokers", "kb"), 1);
  EXPECT_EQ(generation_of(c, "triggers", "t4"), 1);
  EXPECT_TRUE(describe(c, "triggers", "t1").is_null());

  // The topic as an independent client reads it: one record per change, a tombstone for the delete.
  const std::string records = kafka.consume(kTopic, "%k %S\\n");
  EXPECT_NE(records.find("Broker/kb "), std::string::npos) << records;
  EXPECT_NE(records.find("Trigger/t1 -1\n"), std::string::npos) << records;
  std::size_t t1_records = 0;
  for (std::size_t at = records.find("Trigger/t1 "); at != std::string::npos;
       at = records.find("Trigger/t1 ", at + 1))
    ++t1_records;
  EXPECT_EQ(t1_records, 3u) << records;  // created, changed, deleted
}

TEST(ConfigStore, ABadUrlStopsTheServerBeforeItStarts) {
  std::string out;
  EXPECT_NE(run_command(built_program("sluice") + " serve --config-store http://localhost:9092/x", &out), 0);
  EXPECT_NE(out.find("kafka://HOST:PORT"), std::string::npos) << out;
  EXPECT_NE(
      run_command(built_program("sluice") + " serve --config-store 'kafka://h:1/t?no.such.property=1'", &out),
      0);
  EXPECT_NE(out.find("no.such.property"), std::string::npos) << out;
}

// A cluster that does not answer at start stops the server once the start timeout (10 s) has passed,
// saying so with librdkafka's last error, rather than after the timeouts of every step of creating the
// topic with a reason about the cluster's controller.
TEST(ConfigStore, AClusterThatDoesNotAnswerStopsTheServerWithTheReason) {
  TempDir dir;
  std::string out;
  const auto started = std::chrono::steady_clock::now();
  EXPECT_NE(run_command(built_program("sluice") + " serve --data-dir " + dir.path() +
                            " --listen 127.0.0.1:" + std::to_string(free_port()) +
                            " --config-store kafka://127.0.0.1:" + std::to_string(free_port()) + "/" + kTopic,
                        &out),
            0);
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(25)) << out;
  const auto at = out.find("recovery failed: ");
  ASSERT_NE(at, std::string::npos) << out;
  const std::string reason = out.substr(at, out.find('\n', at) - at);
  EXPECT_NE(reason.find("did not answer within 10000 ms"), std::string::npos) << reason;
  EXPECT_NE(reason.find("Connection refused"), std::string::npos) << reason;
}

}  // namespace
}  // namespace sluice::testing
