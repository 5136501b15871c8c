// KafkaSource against a real Kafka protocol (librdkafka's mock cluster), records produced by kcat.

#include <set>

#include "tests/integration/kafka_support.hpp"

namespace sluice::testing {
namespace {

std::string source_yaml(const std::string& name, const std::string& bootstrap, const std::string& topic,
                        const std::string& sink, const std::string& extra_spec = "",
                        const std::string& annotations = "") {
  std::string yaml =
      "apiVersion: sources.knative.dev/v1beta1\nkind: KafkaSource\nmetadata:\n  name: " + name + "\n";
  if (!annotations.empty()) yaml += "  annotations: {" + annotations + "}\n";
  yaml += "spec:\n  bootstrapServers: [\"" + bootstrap + "\"]\n  topics: [" + topic +
          "]\n  initialOffset: earliest\n  sink: " + sink + "\n" + extra_spec;
  return yaml;
}

TEST(KafkaSource, PlainRecordsBecomeCloudEventsWithEveryAttribute) {
  MockKafka kafka({"orders:1"});
  HttpSink sink;
  SluiceServer server;
  ASSERT_TRUE(server.wait_ready());
  apply_yaml(server, source_yaml("orders", kafka.bootstrap(), "orders", "{uri: \"" + sink.url() + "/in\"}"));
  kafka.produce("orders", "cust-7:{\"total\":12}\n", "-K: -H content-type=application/json -H Trace-ID=abc");
  ASSERT_TRUE(sink.wait_for(1, std::chrono::seconds(15))) << server.process().output();
  const auto r = sink.requests()[0];
  EXPECT_EQ(r.path, "/in");
  EXPECT_EQ(r.header("ce-specversion"), "1.0");
  EXPECT_EQ(r.header("ce-id"), "partition:0/offset:0");
  EXPECT_EQ(r.header("ce-type"), "dev.knative.kafka.event");
  EXPECT_EQ(r.header("ce-source"), "/apis/v1/namespaces/default/kafkasources/orders#orders");
  EXPECT_EQ(r.header("ce-subject"), "partition:0#0");
  EXPECT_EQ(r.header("ce-time").size(), std::string("2024-05-01T12:00:00.123Z").size())
      << r.header("ce-time");
  EXPECT_EQ(r.header("ce-key"), "cust-7");
  EXPECT_EQ(r.header("ce-partitionkey"), "cust-7");
  EXPECT_EQ(r.header("ce-kafkaheadertraceid"), "abc");
  EXPECT_EQ(r.header("content-type"), "application/json");
  EXPECT_EQ(r.header("ce-kafkaheadercontenttype"), "");
  EXPECT_EQ(r.body, "{\"total\":12}");
  // Offsets are committed after the sink's acknowledgement.
  EXPECT_TRUE(wait_until([&] {
    auto status = resource_status(server, "kafkasources", "orders");
    return status.value("lag", -1) == 0 && status["partitions"].size() == 1 &&
           status["partitions"][0].value("committedOffset", -1) == 1;
  }));
}

TEST(KafkaSource, CloudEventRecordsPassThroughUnchanged) {
  MockKafka kafka({"events:1"});
  HttpSink sink;
  SluiceServer server;
  ASSERT_TRUE(server.wait_ready());
  apply_yaml(server, source_yaml("events", kafka.bootstrap(), "events", "{uri: \"" + sink.url() + "\"}"));
  // Binary mode: ce_ headers.
  kafka.produce("events", "k1:{\"a\":1}\n",
                "-K: -H ce_specversion=1.0 -H ce_id=bin-1 -H ce_source=/orders -H ce_type=order.created "
                "-H ce_subject=o-1 -H ce_tenant=acme -H content-type=application/json");
  // Structured mode: the JSON event as the value.
  kafka.produce("events",
                "{\"specversion\":\"1.0\",\"id\":\"str-1\",\"source\":\"/orders\",\"type\":\"order.paid\","
                "\"tenant\":\"acme\",\"datacontenttype\":\"application/json\",\"data\":{\"b\":2}}\n",
                "-H 'content-type=application/cloudevents+json; charset=utf-8'");
  ASSERT_TRUE(sink.wait_for(2, std::chrono::seconds(15))) << server.process().output();
  const auto requests = sink.requests();
  EXPECT_EQ(requests[0].header("ce-id"), "bin-1");
  EXPECT_EQ(requests[0].header("ce-source"), "/orders");
  EXPECT_EQ(requests[0].header("ce-type"), "order.created");
  EXPECT_EQ(requests[0].header("ce-subject"), "o-1");
  EXPECT_EQ(requests[0].header("ce-tenant"), "acme");
  EXPECT_EQ(requests[0].header("ce-partitionkey"), "");  // a CloudEvent record is not re-keyed
  EXPECT_EQ(requests[0].body, "{\"a\":1}");
  EXPECT_EQ(requests[1].header("ce-id"), "str-1");
  EXPECT_EQ(requests[1].header("ce-type"), "order.paid");
  EXPECT_EQ(requests[1].header("ce-tenant"), "acme");
  EXPECT_EQ(requests[1].body, "{\"b\":2}");
}

TEST(KafkaSource, NothingIsLostAcrossAKillAndRestart) {
  MockKafka kafka({"stream:3"});
  HttpSink sink;
  SluiceServer server;
  ASSERT_TRUE(server.wait_ready());
  apply_yaml(server, source_yaml("stream", kafka.bootstrap(), "stream", "{uri: \"" + sink.url() + "\"}",
                                 "  config: {session.timeout.ms: \"6000\"}\n"));
  std::string batch;
  for (int i = 0; i < 150; ++i) batch += "k" + std::to_string(i % 7) + ":v" + std::to_string(i) + "\n";
  kafka.produce("stream", batch, "-K:");
  ASSERT_TRUE(sink.wait_for(20, std::chrono::seconds(15)));
  server.kill();  // SIGKILL mid-stream: uncommitted records are delivered again
  kafka.produce("stream", batch, "-K:");
  server.restart();
  ASSERT_TRUE(server.wait_ready());
  std::set<std::string> expected;
  const std::string offsets = kafka.consume("stream", "partition:%p/offset:%o\\n");
  std::size_t start = 0;
  while (start < offsets.size()) {
    const auto end = offsets.find('\n', start);
    expected.insert(offsets.substr(start, end - start));
    start = end + 1;
  }
  ASSERT_EQ(expected.size(), 300u);
  EXPECT_TRUE(wait_all_delivered(sink, expected, std::chrono::seconds(20))) << server.process().output();
}

TEST(KafkaSource, LagKeepsMemoryBoundedAndOrderIsKept) {
  MockKafka kafka({"backlog:1"});
  std::atomic<bool> open{false};
  HttpSink sink;
  sink.respond([&](const ReceivedRequest&, std::size_t) {
    SinkResponse response;
    response.status = open ? 202 : 503;
    return response;
  });
  SluiceServer server;
  ASSERT_TRUE(server.wait_ready());
  apply_yaml(server, source_yaml("backlog", kafka.bootstrap(), "backlog", "{uri: \"" + sink.url() + "\"}",
                                 "  delivery: {retry: 1000, backoffDelay: PT0.05S, backoffPolicy: linear, "
                                 "retryAfterMax: PT0S}\n"));
  constexpr int kRecords = 4000;
  std::string batch;
  for (int i = 0; i < kRecords; ++i) batch += "v" + std::to_string(i) + "\n";
  kafka.produce("backlog", batch);
  // The sink refuses everything: the lag is the whole topic, while what the source holds stays bounded.
  ASSERT_TRUE(wait_until(
      [&] {
        auto status = resource_status(server, "kafkasources", "backlog");
        return status.contains("partitions") && status["partitions"].size() == 1 &&
               status["partitions"][0].value("highWatermark", 0) == kRecords;
      },
      std::chrono::seconds(15)));
  const auto status = resource_status(server, "kafkasources", "backlog");
  EXPECT_EQ(status.value("lag", 0), kRecords);
  EXPECT_LE(status["partitions"][0].value("buffered", 1 << 30), 2000);  // the partition buffer's bound
  EXPECT_LE(status["delivery"].value("inFlight", 1 << 30), 1) << status.dump();  // ordered: one at a time
  open = true;
  ASSERT_TRUE(
      wait_until([&] { return resource_status(server, "kafkasources", "backlog").value("lag", -1) == 0; },
                 std::chrono::seconds(20)))
      << resource_status(server, "kafkasources", "backlog").dump();
  // Ordered (the default): each record is acknowledged before the next one is sent.
  std::vector<std::string> acked;
  for (const auto& id : received_ids(sink))
    if (acked.empty() || acked.back() != id) acked.push_back(id);
  ASSERT_EQ(acked.size(), static_cast<std::size_t>(kRecords));
  for (int i = 0; i < kRecords; ++i) ASSERT_EQ(acked[i], "partition:0/offset:" + std::to_string(i));
}

TEST(KafkaSource, SaslSettingsWithASecretPasswordReachTheClient) {
  MockKafka kafka({"secure:1"});
  HttpSink sink;
  SluiceServer server;
  ASSERT_TRUE(server.wait_ready());
  const std::string sasl =
      "  config:\n    security.protocol: SASL_PLAINTEXT\n    sasl.mechanisms: PLAIN\n    sasl.username: svc\n"
      "    sasl.password: {secretKeyRef: {name: kafka-creds, key: password}}\n";
  const std::string source =
      source_yaml("secure", kafka.bootstrap(), "secure", "{uri: \"" + sink.url() + "\"}", sasl);
  // Before the Secret exists the source waits for it, and says so.
  apply_yaml(server, source);
  EXPECT_TRUE(wait_until([&] {
    return resource_status(server, "kafkasources", "secure").dump().find("kafka-creds") != std::string::npos;
  })) << resource_status(server, "kafkasources", "secure").dump();
  // With it, the client speaks SASL: the mock cluster, which does not, turns it away.
  apply_yaml(server,
             "apiVersion: v1\nkind: Secret\nmetadata: {name: kafka-creds}\nstringData: {password: "
             "hunter2-kafka}\n");
  std::string seen;
  EXPECT_TRUE(wait_until(
      [&] {
        seen = resource_status(server, "kafkasources", "secure").dump() + server.process().output();
        return seen.find("SASL") != std::string::npos;
      },
      std::chrono::seconds(30)))
      << seen;
  EXPECT_EQ(seen.find("hunter2-kafka"), std::string::npos) << "the password shows nowhere";
  EXPECT_EQ(sink.count(), 0u);
}

}  // namespace
}  // namespace sluice::testing
