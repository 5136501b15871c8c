// Brokers with storage: kafka against the mock cluster: events land in the topic (read back by kcat),
// triggers are consumer groups, and two `sluice serve` processes split the partitions and survive a kill.

#include <iostream>
#include <set>

#include "tests/integration/kafka_support.hpp"

namespace sluice::testing {
namespace {

/// Both nodes hold some of the 4 partitions of trigger t1's group, and together all of them.
bool split_between(SluiceServer& a, SluiceServer& b) {
  const auto na = assigned_partitions(a, "triggers", "t1");
  const auto nb = assigned_partitions(b, "triggers", "t1");
  return na > 0 && nb > 0 && na + nb == 4;
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
  ASSERT_TRUE(wait_until([&] { return split_between(a, b); }, std::chrono::seconds(15)))
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

// A node joins while the first one has deliveries in flight: the revoked partitions' deliveries get the
// revoke grace to finish, their low-water marks are committed, and the new owner reads on from the
// committed offset, so no acknowledged event is lost. The new node gets the broker and the trigger from
// the config store. (Duplicates are allowed, at least once: librdkafka's mock cluster refuses offset
// commits while the group rebalances, where Kafka accepts them until the new generation is formed, so
// here the new owner starts a little before where the old one stopped.)
TEST(KafkaBroker, ANodeJoiningWhileDeliveriesAreInFlightLosesNothing) {
  MockKafka kafka({"sluice-config:1", "kb-events:4"});
  const std::vector<std::string> config_store{"--config-store",
                                              "kafka://" + kafka.bootstrap() + "/sluice-config"};
  HttpSink sink;
  sink.respond([](const ReceivedRequest&, std::size_t) {
    return SinkResponse{200, "", {}, std::chrono::milliseconds(100)};
  });
  SluiceServer a(config_store);
  ASSERT_TRUE(a.wait_ready());
  apply_yaml(a, kafka_broker_yaml(kafka.bootstrap()) + "---\n" +
                    trigger_yaml("t1", sink.url(), "  delivery: {maxInFlight: 2}\n", "kb"));
  ASSERT_TRUE(
      wait_until([&] { return assigned_partitions(a, "triggers", "t1") == 4; }, std::chrono::seconds(15)));

  std::set<std::string> acknowledged;
  for (int i = 0; i < 600; ++i) {
    const std::string id = "e" + std::to_string(i);
    if (publish(a, id, "t", R"({"n":1})", {{"partitionkey", "k" + std::to_string(i)}}, "kb") == 202)
      acknowledged.insert(id);
  }
  ASSERT_EQ(acknowledged.size(), 600u);
  ASSERT_TRUE(sink.wait_for(20));  // a is mid-stream: 4 partitions × 2 in flight, 100 ms each

  SluiceServer b(config_store);
  ASSERT_TRUE(b.wait_ready());
  ASSERT_TRUE(wait_until([&] { return split_between(a, b); }, std::chrono::seconds(20)))
      << "a holds " << assigned_partitions(a, "triggers", "t1") << ", b holds "
      << assigned_partitions(b, "triggers", "t1");
  EXPECT_LT(sink.count(), acknowledged.size()) << "the rebalance came after every delivery: no proof";
  EXPECT_TRUE(wait_all_delivered(sink, acknowledged, std::chrono::seconds(60)))
      << "delivered " << sink.count() << " of " << acknowledged.size();
  const auto ids = received_ids(sink);
  const std::set<std::string> distinct(ids.begin(), ids.end());
  std::size_t lost = 0;
  for (const auto& id : acknowledged) lost += distinct.count(id) == 0;
  std::cout << "acknowledged " << acknowledged.size() << ", delivered " << distinct.size() << ", duplicated "
            << ids.size() - distinct.size() << ", lost " << lost << "\n";
  EXPECT_GT(metric(b, R"(sluice_trigger_events_delivered_total{broker="kb",trigger="t1"})"), 0)
      << "b took partitions but delivered nothing";
}

}  // namespace
}  // namespace sluice::testing
