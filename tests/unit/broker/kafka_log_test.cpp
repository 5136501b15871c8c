#include <gtest/gtest.h>

#include <future>

#include "broker/kafka_log.hpp"  // rdkafka.h, which rdkafka_mock.h needs first
#include <librdkafka/rdkafka_mock.h>
#include "core/protobuf_format.hpp"

namespace sluice {
namespace {

BrokerSpec kafka_broker(nlohmann::json kafka) {
  BrokerSpec spec;
  spec.name = "orders";
  spec.storage = "kafka";
  spec.kafka = std::move(kafka);
  return spec;
}

TEST(KafkaBrokerSettings, DefaultsAndFields) {
  auto s = parse_kafka_broker_settings(kafka_broker({{"bootstrapServers", {"a:9092", "b:9092"}}}));
  ASSERT_TRUE(s) << s.error().to_string();
  EXPECT_EQ(s.value().bootstrap_servers, "a:9092,b:9092");
  EXPECT_EQ(s.value().topic, "sluice-broker-orders");
  EXPECT_EQ(s.value().partitions, 10);
  EXPECT_EQ(s.value().replication_factor, 1);
  s = parse_kafka_broker_settings(kafka_broker({{"bootstrapServers", "a:9092"},
                                                {"topic", "t"},
                                                {"partitions", 3},
                                                {"replicationFactor", 3},
                                                {"config", {{"linger.ms", 1}}}}));
  ASSERT_TRUE(s) << s.error().to_string();
  EXPECT_EQ(s.value().topic, "t");
  EXPECT_EQ(s.value().partitions, 3);
  EXPECT_EQ(s.value().replication_factor, 3);
  EXPECT_EQ(s.value().config.values.at("linger.ms"), "1");
}

TEST(KafkaBrokerSettings, ErrorsNameTheField) {
  const std::vector<std::pair<nlohmann::json, std::string>> cases = {
      {nlohmann::json::object(), "spec.kafka.bootstrapServers"},
      {{{"bootstrapServers", ""}}, "spec.kafka.bootstrapServers"},
      {{{"bootstrapServers", "a:1"}, {"partitions", 0}}, "spec.kafka.partitions"},
      {{{"bootstrapServers", "a:1"}, {"replicationFactor", "x"}}, "spec.kafka.replicationFactor"},
      {{{"bootstrapServers", "a:1"}, {"topic", 5}}, "spec.kafka.topic"},
      {{{"bootstrapServers", "a:1"}, {"colour", "red"}}, "spec.kafka.colour"},
      {{{"bootstrapServers", "a:1"}, {"config", {{"bogus.property", "1"}}}},
       "spec.kafka.config.bogus.property"},
  };
  for (const auto& [kafka, field] : cases) {
    auto s = parse_kafka_broker_settings(kafka_broker(kafka));
    ASSERT_FALSE(s) << field;
    EXPECT_EQ(s.error().subject, field) << s.error().to_string();
  }
}

/// An in-process mock cluster with one topic.
class MockCluster {
 public:
  explicit MockCluster(const std::string& topic, int partitions) {
    char errstr[256];
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "log_level", "2", errstr, sizeof errstr);
    rk_.reset(rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr));
    cluster_ = rd_kafka_mock_cluster_new(rk_.get(), 1);
    rd_kafka_mock_topic_create(cluster_, topic.c_str(), partitions, 1);
  }
  ~MockCluster() { rd_kafka_mock_cluster_destroy(cluster_); }
  std::string bootstrap() const { return rd_kafka_mock_cluster_bootstraps(cluster_); }

 private:
  KafkaHandle rk_;
  rd_kafka_mock_cluster_t* cluster_ = nullptr;
};

std::vector<KafkaRecord> consume_all(const std::string& bootstrap, const std::string& topic, std::size_t n) {
  auto conf = make_kafka_conf({{"bootstrap.servers", bootstrap},
                               {"group.id", "test-reader"},
                               {"auto.offset.reset", "earliest"},
                               {"log_level", "2"}});
  char errstr[256];
  KafkaHandle consumer(rd_kafka_new(RD_KAFKA_CONSUMER, conf.value(), errstr, sizeof errstr));
  rd_kafka_poll_set_consumer(consumer.get());
  KafkaPartitionList topics(rd_kafka_topic_partition_list_new(1));
  rd_kafka_topic_partition_list_add(topics.get(), topic.c_str(), RD_KAFKA_PARTITION_UA);
  rd_kafka_subscribe(consumer.get(), topics.get());
  std::vector<KafkaRecord> out;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  while (out.size() < n && std::chrono::steady_clock::now() < deadline) {
    rd_kafka_message_t* m = rd_kafka_consumer_poll(consumer.get(), 100);
    if (m == nullptr) continue;
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) out.push_back(record_of(*m));
    rd_kafka_message_destroy(m);
  }
  rd_kafka_consumer_close(consumer.get());
  return out;
}

TEST(KafkaLog, AcknowledgesAfterKafkaStoredTheEventsInBinaryMode) {
  MockCluster cluster("events", 3);
  KafkaLogOptions options;
  options.name = "orders";
  options.settings.bootstrap_servers = cluster.bootstrap();
  options.settings.topic = "events";
  options.settings.config.values = {{"log_level", "2"}};
  auto log = KafkaLog::open(options);
  ASSERT_TRUE(log) << log.error().to_string();

  std::vector<std::string> payloads;
  for (int i = 0; i < 5; ++i) {
    CloudEvent e;
    e.id = "e" + std::to_string(i);
    e.source = "/tests";
    e.type = "t";
    e.data = "{\"n\":" + std::to_string(i) + "}";
    e.extensions["partitionkey"] = AttributeValue::of_string("key-" + std::to_string(i % 2));
    payloads.push_back(to_protobuf(e));
  }
  std::promise<Result<std::uint64_t>> acked;
  log.value()->append(payloads, [&](Result<std::uint64_t> r) { acked.set_value(r); });
  auto future = acked.get_future();
  ASSERT_EQ(future.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  ASSERT_TRUE(future.get());
  EXPECT_EQ(log.value()->stats().records, 5u);

  auto records = consume_all(cluster.bootstrap(), "events", 5);
  ASSERT_EQ(records.size(), 5u);
  for (const auto& record : records) {
    auto event = decode_kafka(record);
    ASSERT_TRUE(event) << event.error().to_string();
    ASSERT_TRUE(record.key);
    EXPECT_EQ(*record.key, *event.value().attribute_text("partitionkey"));
  }
  log.value()->close();
}

TEST(KafkaLog, RejectsWhatIsNotACloudEventAndAppendsAfterClose) {
  MockCluster cluster("events", 1);
  KafkaLogOptions options;
  options.name = "orders";
  options.settings.bootstrap_servers = cluster.bootstrap();
  options.settings.topic = "events";
  options.settings.config.values = {{"log_level", "2"}};
  auto log = KafkaLog::open(options);
  ASSERT_TRUE(log) << log.error().to_string();
  int code = 0;
  log.value()->append({std::string("\xff\xff", 2)},
                      [&](Result<std::uint64_t> r) { code = r ? 0 : r.error().code; });
  EXPECT_EQ(code, 400);
  log.value()->close();
  log.value()->append({std::string("x")}, [&](Result<std::uint64_t> r) { code = r ? 0 : r.error().code; });
  EXPECT_EQ(code, 503);
}

}  // namespace
}  // namespace sluice
