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
      {{{"bootstrapServers", "a:1"}, {"config", {{"message.timeout.ms", "0"}}}},
       "spec.kafka.config.message.timeout.ms"},
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
  /// The broker closes its connections and refuses new ones until set_up().
  void set_down() { rd_kafka_mock_broker_set_down(cluster_, 1); }
  void set_up() { rd_kafka_mock_broker_set_up(cluster_, 1); }

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

/// The log of the broker "orders" on topic "events" at `bootstrap`, librdkafka logging errors only.
KafkaLogOptions orders_log(const std::string& bootstrap) {
  KafkaLogOptions options;
  options.name = "orders";
  options.settings.bootstrap_servers = bootstrap;
  options.settings.topic = "events";
  options.settings.config.values = {{"log_level", "2"}};
  return options;
}

TEST(KafkaLog, AcknowledgesAfterKafkaStoredTheEventsInBinaryMode) {
  MockCluster cluster("events", 3);
  KafkaLogOptions options = orders_log(cluster.bootstrap());
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
  KafkaLogOptions options = orders_log(cluster.bootstrap());
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

// An event larger than Kafka takes (librdkafka's message.max.bytes, 1,000,000 by default, below the
// broker's default maxEventSize of 1 MiB) can never be stored: 413, not a 503 that asks for a retry.
TEST(KafkaLog, AnEventLargerThanKafkaTakesIsRefusedForGood) {
  MockCluster cluster("events", 1);
  KafkaLogOptions options = orders_log(cluster.bootstrap());
  auto log = KafkaLog::open(options);
  ASSERT_TRUE(log) << log.error().to_string();
  CloudEvent e;
  e.id = "big";
  e.source = "/tests";
  e.type = "t";
  e.data = std::string(1'010'000, 'x');
  std::promise<Result<std::uint64_t>> acked;
  log.value()->append({to_protobuf(e)}, [&](Result<std::uint64_t> r) { acked.set_value(r); });
  auto future = acked.get_future();
  ASSERT_EQ(future.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  auto result = future.get();
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code, 413) << result.error().to_string();
  EXPECT_NE(result.error().message.find("message.max.bytes"), std::string::npos) << result.error().message;
  log.value()->close();
}

std::string event_payload(const std::string& id) {
  CloudEvent e;
  e.id = id;
  e.source = "/tests";
  e.type = "t";
  return to_protobuf(e);
}

/// Appends one event and waits for its completion (an Error with code 0 when none came in time).
Result<std::uint64_t> append_and_wait(KafkaLog& log, const std::string& id, std::chrono::seconds timeout) {
  auto acked = std::make_shared<std::promise<Result<std::uint64_t>>>();
  auto future = acked->get_future();
  log.append({event_payload(id)}, [acked](Result<std::uint64_t> r) { acked->set_value(std::move(r)); });
  if (future.wait_for(timeout) != std::future_status::ready) return make_error("append", "no answer", 0);
  return future.get();
}

TEST(KafkaLog, AnUnreachableClusterFailsAppendsAfterMessageTimeoutAndTheLogRecovers) {
  MockCluster cluster("events", 1);
  KafkaLogOptions options = orders_log(cluster.bootstrap());
  options.settings.config.values["message.timeout.ms"] = "500";
  options.settings.config.values["reconnect.backoff.max.ms"] = "200";
  auto log = KafkaLog::open(options);
  ASSERT_TRUE(log) << log.error().to_string();
  ASSERT_TRUE(append_and_wait(*log.value(), "before", std::chrono::seconds(10)));

  cluster.set_down();
  const auto started = std::chrono::steady_clock::now();
  auto refused = append_and_wait(*log.value(), "while-down", std::chrono::seconds(10));
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, 503) << refused.error().to_string();
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(5));
  EXPECT_EQ(log.value()->stats().failed, 1u);

  cluster.set_up();
  Result<std::uint64_t> stored = make_error("append", "not tried", 0);
  for (int attempt = 0; attempt < 20 && !stored; ++attempt)
    stored = append_and_wait(*log.value(), "after-" + std::to_string(attempt), std::chrono::seconds(10));
  EXPECT_TRUE(stored) << stored.error().to_string();
  log.value()->close();
}

// A cluster that turns the client away fails open() at once with librdkafka's reason and what to check;
// one that does not answer fails after admin_timeout with the last error heard.
TEST(KafkaLog, OpenSaysWhyTheClusterCannotBeUsed) {
  MockCluster cluster("events", 1);
  KafkaLogOptions options = orders_log(cluster.bootstrap());
  options.settings.config.values["security.protocol"] = "SASL_PLAINTEXT";  // the mock has no SASL
  options.settings.config.values["sasl.mechanisms"] = "PLAIN";
  options.settings.config.values["sasl.username"] = "svc";
  options.resolved_secrets["sasl.password"] = "secret-value";
  const auto started = std::chrono::steady_clock::now();
  auto log = KafkaLog::open(options);
  ASSERT_FALSE(log);
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(5));
  EXPECT_EQ(log.error().subject, "spec.kafka");
  EXPECT_EQ(log.error().code, 503);
  const std::string message = log.error().message;
  EXPECT_EQ(message.find("Kafka at " + cluster.bootstrap() + " refused the connection: "), 0u) << message;
  EXPECT_NE(message.find("SASL Handshake not supported by broker"), std::string::npos) << message;
  EXPECT_NE(message.find("(check sasl.mechanisms, sasl.username and sasl.password)"), std::string::npos)
      << message;
  EXPECT_EQ(message.find("secret-value"), std::string::npos);

  KafkaLogOptions unreachable = orders_log("127.0.0.1:1");
  unreachable.admin_timeout = std::chrono::milliseconds(500);
  log = KafkaLog::open(unreachable);
  ASSERT_FALSE(log);
  EXPECT_EQ(log.error().message.find("Kafka at 127.0.0.1:1 did not answer within 500 ms (last error: "), 0u)
      << log.error().message;
  EXPECT_NE(log.error().message.find("Connection refused"), std::string::npos) << log.error().message;
}

TEST(KafkaLog, MessageTimeoutMustBePositive) {
  KafkaLogOptions options = orders_log("127.0.0.1:1");
  for (const std::string value : {"0", "-5", "soon"}) {
    options.settings.config.values = {{"message.timeout.ms", value}};
    auto log = KafkaLog::open(options);
    ASSERT_FALSE(log) << value;
    EXPECT_EQ(log.error().subject, "spec.kafka.config.message.timeout.ms") << log.error().to_string();
  }
}

}  // namespace
}  // namespace sluice
