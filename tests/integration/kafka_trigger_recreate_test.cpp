// A Trigger of a Kafka-backed broker that is deleted and created again under the same name starts at the
// end of the topic, as a new trigger does: it is not handed the events published while it did not exist,
// and it is handed every event published once it exists, before its partitions are assigned included.

#include <algorithm>

#include "tests/integration/kafka_support.hpp"

namespace sluice::testing {
namespace {

TEST(KafkaTriggerRecreate, ATriggerCreatedAgainStartsAtTheEndOfTheTopic) {
  MockKafka kafka({"kb-events:2"});
  HttpSink sink;
  SluiceServer server;
  ASSERT_TRUE(server.wait_ready());
  const std::string trigger = trigger_yaml("t1", sink.url(), "", "kb");
  apply_yaml(server, kafka_broker_yaml(kafka.bootstrap()) + "---\n" + trigger);
  ASSERT_TRUE(wait_until([&] { return assigned_partitions(server, "triggers", "t1") == 2; },
                         std::chrono::seconds(15)));
  ASSERT_EQ(publish(server, "before", "t", R"({"n":1})", {}, "kb"), 202);
  ASSERT_TRUE(wait_all_delivered(sink, {"before"}, std::chrono::seconds(15))) << server.process().output();

  httplib::Client client("127.0.0.1", server.port());
  auto res = client.Delete("/apis/v1/triggers/t1");
  ASSERT_TRUE(res && res->status / 100 == 2) << (res ? res->body : "no answer");
  for (int i = 0; i < 4; ++i)
    ASSERT_EQ(publish(server, "gap" + std::to_string(i), "t", R"({"n":1})",
                      {{"partitionkey", "k" + std::to_string(i)}}, "kb"),
              202);

  apply_yaml(server, trigger);
  // Published once the trigger exists, while the group may still be rebalancing (the mock cluster keeps
  // the deleted trigger's group, so committing the new trigger's start position is refused there): the
  // trigger starts where the topic ended when it was created, not where it ends when it is assigned.
  for (int i = 0; i < 4; ++i)
    ASSERT_EQ(publish(server, "early" + std::to_string(i), "t", R"({"n":1})",
                      {{"partitionkey", "k" + std::to_string(i)}}, "kb"),
              202);
  ASSERT_TRUE(wait_until([&] { return assigned_partitions(server, "triggers", "t1") == 2; },
                         std::chrono::seconds(30)));
  ASSERT_EQ(publish(server, "after", "t", R"({"n":1})", {}, "kb"), 202);
  ASSERT_TRUE(
      wait_all_delivered(sink, {"early0", "early1", "early2", "early3", "after"}, std::chrono::seconds(15)))
      << server.process().output();
  const auto ids = received_ids(sink);
  for (int i = 0; i < 4; ++i)
    EXPECT_EQ(std::count(ids.begin(), ids.end(), "gap" + std::to_string(i)), 0)
        << "gap" << i << " was published while t1 did not exist";
}

}  // namespace
}  // namespace sluice::testing
