// Brokers with storage: kafka against the mock cluster: events land in the topic (read back by kcat),
// triggers are consumer groups, and two `sluice serve` processes split the partitions and survive a kill.

#include <set>

#include "tests/integration/kafka_support.hpp"

namespace sluice::testing {
namespace {

std::string kafka_broker_yaml(const std::string& bootstrap) {
  return broker_yaml("kb", "storage: kafka, kafka: {bootstrapServers: \"" + bootstrap +
                               "\", topic: kb-events, config: {session.timeout.ms: \"3000\", "
                               "heartbeat.interval.ms: \"300\"}}");
}

TEST(KafkaBroker, EventsAreStoredInKafkaAndReachTheTrigger) {
  MockKafka kafka({"kb-events:4"});
  HttpSink sink;
  SluiceServer server;
  ASSERT_TRUE(server.wait_ready());
  apply_yaml(server,
             kafka_broker_yaml(kafka.bootstrap()) + "---\n" + trigger_yaml("t1", sink.url(), "", "kb"));
  std::set<std::string> acknowledged;
  for (int i = 0; i < 20; ++i) {
    const std::string id = "e" + std::to_string(i);
    ASSERT_EQ(publish(server, id, "order.created", R"({"n":1})",
                      {{"partitionkey", "k" + std::to_string(i % 5)}}, "kb"),
              202);
    acknowledged.insert(id);
  }
  // kcat reads what the broker stored: binary mode, the partitionkey as the record key.
  const std::string stored = kafka.consume("kb-events", "%k|%h\\n");
  int records = 0;
  for (std::size_t start = 0; start < stored.size();) {
    const auto end = stored.find('\n', start);
    const std::string line = stored.substr(start, end - start);
    start = end + 1;
    ++records;
    const std::string key = line.substr(0, line.find('|'));
    EXPECT_NE(line.find("ce_partitionkey=" + key), std::string::npos) << line;
    EXPECT_NE(line.find("ce_type=order.created"), std::string::npos) << line;
    EXPECT_NE(line.find("ce_specversion=1.0"), std::string::npos) << line;
  }
  EXPECT_EQ(records, 20);
  EXPECT_TRUE(wait_all_delivered(sink, acknowledged, std::chrono::seconds(15))) << server.process().output();
  EXPECT_TRUE(wait_until([&] {
    auto status = resource_status(server, "triggers", "t1");
    return status.value("consumerGroup", "") == "sluice-trigger-kb-t1" && status.value("lag", -1) == 0 &&
           status["partitions"].size() == 4;
  }));
}

TEST(KafkaBroker, TwoNodesSplitPartitionsAndAKilledNodeLosesNothing) {
  MockKafka kafka({"kb-events:4"});
  HttpSink sink;
  SluiceServer a;
  SluiceServer b;
  ASSERT_TRUE(a.wait_ready());
  ASSERT_TRUE(b.wait_ready());
  const std::string manifests =
      kafka_broker_yaml(kafka.bootstrap()) + "---\n" + trigger_yaml("t1", sink.url(), "", "kb");
  apply_yaml(a, manifests);
  apply_yaml(b, manifests);
  ASSERT_TRUE(wait_until(
      [&] {
        const auto na = assigned_partitions(a, "triggers", "t1");
        const auto nb = assigned_partitions(b, "triggers", "t1");
        return na > 0 && nb > 0 && na + nb == 4;
      },
      std::chrono::seconds(15)))
      << "a holds " << assigned_partitions(a, "triggers", "t1") << ", b holds "
      << assigned_partitions(b, "triggers", "t1");

  std::set<std::string> acknowledged;
  auto publish_to = [&](SluiceServer& server, int from, int to) {
    for (int i = from; i < to; ++i) {
      const std::string id = "e" + std::to_string(i);
      if (publish(server, id, "t", R"({"n":1})", {{"partitionkey", "k" + std::to_string(i)}}, "kb") == 202)
        acknowledged.insert(id);
    }
  };
  publish_to(a, 0, 50);
  publish_to(b, 50, 100);
  ASSERT_TRUE(wait_until([&] { return sink.count() >= 20; }));
  b.kill();  // SIGKILL: its partitions move to a after the session timeout
  publish_to(a, 100, 200);
  EXPECT_EQ(acknowledged.size(), 200u);
  EXPECT_TRUE(wait_all_delivered(sink, acknowledged, std::chrono::seconds(60)))
      << "delivered " << sink.count() << " of " << acknowledged.size() << "\n"
      << a.process().output();
  EXPECT_TRUE(wait_until([&] { return assigned_partitions(a, "triggers", "t1") == 4; }));
}

}  // namespace
}  // namespace sluice::testing
