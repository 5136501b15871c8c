// Fault tests: Kafka unavailable and back. The mock cluster's broker is taken down and brought up again
// (tests/helpers/kafka_mock_cluster.cpp, commands on its stdin) under a real `sluice serve` while events
// flow. A Kafka-backed broker must refuse publishes with 503/429 and Retry-After while Kafka is down,
// never answer 202 for an event Kafka did not store, and deliver every acknowledged event once Kafka is
// back; a KafkaSource must deliver every record produced before, during and after the outage and show
// the outage in its status. The counts are printed for bench/RESULTS.md. `make test` runs one outage of
// each; `make soak` (SLUICE_SOAK=1) runs SLUICE_SOAK_ROUNDS of them.

#include <atomic>
#include <cstdlib>
#include <mutex>
#include <thread>

#include "tests/integration/kafka_support.hpp"

namespace sluice::testing {
namespace {

using SteadyClock = std::chrono::steady_clock;

int soak_rounds() {
  return std::getenv("SLUICE_SOAK_ROUNDS") ? std::atoi(std::getenv("SLUICE_SOAK_ROUNDS")) : 10;
}

// How long Kafka stays down in `round`: first longer than session.timeout.ms (the group's members are
// dropped and rejoin), then shorter, alternately.
std::chrono::seconds outage_length(int round) {
  return round % 2 == 0 ? std::chrono::seconds(8) : std::chrono::seconds(2);
}

// Short timeouts keep an outage within seconds: a publish waits 2 s for Kafka (message.timeout.ms),
// clients retry a lost connection within 0.5 s, and the group notices a lost member within 6 s.
const std::string kClientConfig =
    "message.timeout.ms: \"2000\", reconnect.backoff.max.ms: \"500\", session.timeout.ms: \"6000\", "
    "heartbeat.interval.ms: \"500\"";

struct PublishOutcome {
  std::string id;
  int status = 0;
  std::string retry_after;
  SteadyClock::time_point started;
  SteadyClock::time_point finished;
};

/// Publishers that keep publishing to one broker from their own threads until stopped, each at most 20
/// events a second: librdkafka's mock cluster keeps only the newest records of a partition (about
/// 100,000, fewer when large), so an unpaced soak on the release build would see it drop acknowledged
/// events of its own accord.
class Publishers {
 public:
  Publishers(SluiceServer& server, const std::string& broker, int threads) {
    for (int p = 0; p < threads; ++p) {
      threads_.emplace_back([this, &server, broker, p] {
        httplib::Client client("127.0.0.1", server.port());
        client.set_read_timeout(std::chrono::seconds(30));
        auto next = SteadyClock::now();
        for (int i = 0; !stop_; ++i) {
          std::this_thread::sleep_until(next);  // the pace of a load generator, not a wait for a condition
          next += std::chrono::milliseconds(50);
          PublishOutcome outcome;
          outcome.id = "p" + std::to_string(p) + "-" + std::to_string(i);
          outcome.started = SteadyClock::now();
          auto res = client.Post("/brokers/" + broker,
                                 {{"ce-specversion", "1.0"},
                                  {"ce-id", outcome.id},
                                  {"ce-type", "t"},
                                  {"ce-source", "/tests"},
                                  {"ce-partitionkey", "k" + std::to_string(i % 8)}},
                                 R"({"n":1})", "application/json");
          outcome.finished = SteadyClock::now();
          if (res) {
            outcome.status = res->status;
            outcome.retry_after = res->get_header_value("Retry-After");
          }
          std::lock_guard lock(mu_);
          outcomes_.push_back(std::move(outcome));
        }
      });
    }
  }
  ~Publishers() { stop(); }

  void stop() {
    stop_ = true;
    for (auto& t : threads_)
      if (t.joinable()) t.join();
  }
  std::vector<PublishOutcome> outcomes() const {
    std::lock_guard lock(mu_);
    return outcomes_;
  }
  /// Publishes that started at or after `since` and were answered `status`.
  std::size_t count(int status, SteadyClock::time_point since = {}) const {
    std::lock_guard lock(mu_);
    std::size_t n = 0;
    for (const auto& o : outcomes_) n += o.status == status && o.started >= since ? 1 : 0;
    return n;
  }

 private:
  std::atomic<bool> stop_{false};
  std::vector<std::thread> threads_;
  mutable std::mutex mu_;
  std::vector<PublishOutcome> outcomes_;
};

/// The values of one header over every record of a topic, read back with kcat.
std::set<std::string> stored_header_values(const MockKafka& kafka, const std::string& topic,
                                           const std::string& header) {
  std::set<std::string> values;
  const std::string out = kafka.consume(topic, "%h\\n");
  const std::string key = header + "=";
  for (std::size_t at = out.find(key); at != std::string::npos; at = out.find(key, at + 1)) {
    if (at > 0 && out[at - 1] != ',' && out[at - 1] != '\n') continue;
    const auto end = out.find_first_of(",\n", at);
    values.insert(out.substr(at + key.size(), end - at - key.size()));
  }
  return values;
}

/// kcat producing batches of keyed records to a topic from its own thread until stopped. While Kafka is
/// down kcat gives up at once ("all brokers are down"), and the next batch is tried 100 ms later.
class KcatProducer {
 public:
  KcatProducer(const MockKafka& kafka, const std::string& topic) {
    thread_ = std::thread([this, command = "kcat -b " + kafka.bootstrap() + " -t " + topic + " -P -K:"] {
      for (int b = 0; !stop_; ++b) {
        std::string lines;
        for (int i = 0; i < 20; ++i)
          lines += "k" + std::to_string(i % 5) + ":b" + std::to_string(b) + "-" + std::to_string(i) + "\n";
        if (run_command(command, nullptr, lines) == 0)
          ++batches_;
        else
          std::this_thread::sleep_for(std::chrono::milliseconds(100));  // a load generator's backoff
      }
    });
  }
  ~KcatProducer() { stop(); }
  void stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  /// Batches kcat stored (a failed batch may have stored some of its records too).
  int batches() const { return batches_.load(); }

 private:
  std::atomic<bool> stop_{false};
  std::atomic<int> batches_{0};
  std::thread thread_;
};

struct DeliveryCounts {
  std::size_t delivered = 0;   // distinct ids the sink received
  std::size_t deliveries = 0;  // requests the sink received
  std::size_t duplicated = 0;  // ids received more than once
  std::size_t lost = 0;        // expected ids never received
};

DeliveryCounts count_deliveries(const HttpSink& sink, const std::set<std::string>& expected) {
  DeliveryCounts counts;
  std::map<std::string, int> times;
  for (const auto& id : received_ids(sink)) ++times[id];
  counts.deliveries = sink.count();
  counts.delivered = times.size();
  for (const auto& [id, n] : times) counts.duplicated += n > 1 ? 1 : 0;
  for (const auto& id : expected) counts.lost += times.count(id) ? 0 : 1;
  return counts;
}

std::int64_t max_ms(const std::vector<SteadyClock::duration>& durations) {
  SteadyClock::duration longest{0};
  for (const auto& d : durations) longest = std::max(longest, d);
  return std::chrono::duration_cast<std::chrono::milliseconds>(longest).count();
}

// One broker on Kafka with a trigger to a sink; publishers run through `rounds` outages of Kafka.
void run_broker_outages(int rounds);

// A Kafka-backed broker applied while its cluster is down is not ready, and publishers are told so (503
// with Retry-After and the reason, not 404 as for a broker that does not exist); once the cluster
// answers, the server opens the broker by itself, with no new apply, and it takes and delivers events.
TEST(KafkaOutage, ABrokerAppliedWhileKafkaIsDownBecomesReadyWhenKafkaComesBack) {
  MockKafka kafka({"ko-events:2"});
  HttpSink sink;
  SluiceServer server;
  ASSERT_TRUE(server.wait_ready());
  ASSERT_TRUE(kafka.down());
  apply_yaml(server, kafka_broker_yaml(kafka.bootstrap(), "ko-events", kClientConfig) + "---\n" +
                         trigger_yaml("t", sink.url(), "", "kb"));
  const std::string message = ready_message(server, "brokers", "kb");
  EXPECT_EQ(message.rfind("False: ", 0), 0u) << message;
  EXPECT_NE(message.find("did not answer"), std::string::npos) << message;
  EXPECT_EQ(resource_status(server, "brokers", "kb")["conditions"][0].value("reason", ""),
            "KafkaUnavailable");

  httplib::Client client("127.0.0.1", server.port());
  auto refused =
      client.Post("/brokers/kb",
                  {{"ce-specversion", "1.0"}, {"ce-id", "early"}, {"ce-type", "t"}, {"ce-source", "/tests"}},
                  R"({"n":1})", "application/json");
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 503);
  EXPECT_FALSE(refused->get_header_value("Retry-After").empty());
  EXPECT_NE(refused->body.find("is not ready: spec.kafka: Kafka at"), std::string::npos) << refused->body;

  ASSERT_TRUE(kafka.up());
  ASSERT_TRUE(wait_until([&] { return ready_message(server, "brokers", "kb") == "True: "; },
                         std::chrono::seconds(30)))
      << ready_message(server, "brokers", "kb") << "\n"
      << server.process().output();
  ASSERT_TRUE(
      wait_until([&] { return assigned_partitions(server, "triggers", "t") == 2; }, std::chrono::seconds(20)))
      << server.process().output();
  std::set<std::string> acknowledged;
  for (int i = 0; i < 10; ++i) {
    const std::string id = "after-" + std::to_string(i);
    ASSERT_EQ(publish(server, id, "t", R"({"n":1})", {}, "kb"), 202) << id;
    acknowledged.insert(id);
  }
  EXPECT_TRUE(wait_all_delivered(sink, acknowledged, std::chrono::seconds(20))) << server.process().output();
}

void run_broker_outages(int rounds) {
  MockKafka kafka({"ko-events:2"});
  HttpSink sink;
  SluiceServer server;
  ASSERT_TRUE(server.wait_ready());
  apply_yaml(server, kafka_broker_yaml(kafka.bootstrap(), "ko-events", kClientConfig) + "---\n" +
                         trigger_yaml("t", sink.url(), "", "kb"));
  ASSERT_TRUE(
      wait_until([&] { return assigned_partitions(server, "triggers", "t") == 2; }, std::chrono::seconds(20)))
      << server.process().output();

  Publishers publishers(server, "kb", 4);
  std::vector<std::pair<SteadyClock::time_point, SteadyClock::time_point>> outages;
  for (int round = 0; round < rounds; ++round) {
    // Kafka goes down while events are being published and delivered.
    const std::size_t before = publishers.count(202);
    const std::size_t delivered_before = sink.count();
    ASSERT_TRUE(wait_until(
        [&] { return publishers.count(202) >= before + 50 && sink.count() >= delivered_before + 20; },
        std::chrono::seconds(20)))
        << "round " << round << ": publishing or delivery did not resume\n"
        << server.process().output();
    ASSERT_TRUE(kafka.down());
    const auto down_at = SteadyClock::now();  // from here on nothing can reach Kafka
    // Publishes that start while Kafka is down wait for it up to message.timeout.ms, then are refused.
    EXPECT_TRUE(wait_until([&] { return publishers.count(503, down_at) >= 4; }, std::chrono::seconds(15)))
        << "round " << round << ": no 503 while Kafka was down";
    ASSERT_TRUE(wait_until([&] { return SteadyClock::now() - down_at >= outage_length(round); },
                           outage_length(round) + std::chrono::seconds(1)));
    const auto up_at = SteadyClock::now();
    ASSERT_TRUE(kafka.up());
    outages.emplace_back(down_at, up_at);
  }
  const std::size_t before = publishers.count(202);
  ASSERT_TRUE(wait_until([&] { return publishers.count(202) >= before + 50; }, std::chrono::seconds(20)))
      << "publishing did not resume after the last outage\n"
      << server.process().output();
  publishers.stop();

  std::set<std::string> acknowledged;
  std::map<int, std::size_t> refused;  // by status
  std::size_t acknowledged_while_down = 0;
  // Per outage, from up() to the first 202 of a publish started after it.
  std::vector<SteadyClock::duration> resumed(outages.size(), SteadyClock::duration::max());
  for (const auto& o : publishers.outcomes()) {
    if (o.status == 202) {
      acknowledged.insert(o.id);
      for (std::size_t k = 0; k < outages.size(); ++k) {
        const auto [down_at, up_at] = outages[k];
        acknowledged_while_down += o.started > down_at && o.finished < up_at ? 1 : 0;
        if (o.started >= up_at) resumed[k] = std::min(resumed[k], o.finished - up_at);
      }
      continue;
    }
    ++refused[o.status];
    EXPECT_TRUE(o.status == 503 || o.status == 429) << o.id << " was answered " << o.status;
    EXPECT_FALSE(o.retry_after.empty()) << o.id << " was answered " << o.status << " without Retry-After";
  }
  EXPECT_EQ(acknowledged_while_down, 0u) << "202 for events published while Kafka was down";
  // Every 202 is in the topic, read back by an independent client.
  const auto stored = stored_header_values(kafka, "ko-events", "ce_id");
  std::size_t acknowledged_not_stored = 0;
  for (const auto& id : acknowledged) acknowledged_not_stored += stored.count(id) ? 0 : 1;
  EXPECT_EQ(acknowledged_not_stored, 0u);
  EXPECT_TRUE(wait_all_delivered(sink, acknowledged, std::chrono::seconds(30)))
      << count_deliveries(sink, acknowledged).lost << " of " << acknowledged.size() << " not delivered\n"
      << server.process().output();
  const auto counts = count_deliveries(sink, acknowledged);
  std::size_t refused_total = 0;
  std::string by_status;
  for (const auto& [status, n] : refused) {
    refused_total += n;
    by_status += " " + std::to_string(status) + ":" + std::to_string(n);
  }
  std::cout << "kafka-outage broker: outages=" << rounds << " acknowledged=" << acknowledged.size()
            << " refused=" << refused_total << " (" << (by_status.empty() ? "" : by_status.substr(1))
            << ") stored=" << stored.size() << " delivered=" << counts.delivered
            << " deliveries=" << counts.deliveries << " duplicated=" << counts.duplicated
            << " lost=" << counts.lost << " resumed_ms=" << max_ms(resumed) << " (longest)" << std::endl;
  EXPECT_EQ(counts.lost, 0u);
}

// A KafkaSource into a broker whose trigger delivers to a sink; kcat produces records in small batches
// throughout (and fails while Kafka is down), through `rounds` outages. Every record in the topic, read
// back at the end, must reach the sink.
void run_source_outages(int rounds) {
  MockKafka kafka({"ks-in:2"});
  HttpSink sink;
  SluiceServer server;
  ASSERT_TRUE(server.wait_ready());
  apply_yaml(server,
             broker_yaml() + "---\n" + trigger_yaml("t", sink.url()) +
                 "---\napiVersion: sources.knative.dev/v1beta1\nkind: KafkaSource\nmetadata: {name: ks}\n"
                 "spec:\n  bootstrapServers: [\"" +
                 kafka.bootstrap() +
                 "\"]\n  topics: [ks-in]\n  initialOffset: earliest\n"
                 "  sink: {ref: {kind: Broker, name: default}}\n  config: {" +
                 kClientConfig + "}\n");
  ASSERT_TRUE(wait_until([&] { return assigned_partitions(server, "kafkasources", "ks") == 2; },
                         std::chrono::seconds(20)))
      << server.process().output();

  KcatProducer producer(kafka, "ks-in");
  std::string last_error_seen;
  for (int round = 0; round < rounds; ++round) {
    const std::size_t before = sink.count();
    ASSERT_TRUE(wait_until([&] { return sink.count() >= before + 100; }, std::chrono::seconds(20)))
        << "round " << round << ": records stopped flowing\n"
        << server.process().output();
    const std::string error_before = resource_status(server, "kafkasources", "ks").value("lastError", "");
    ASSERT_TRUE(kafka.down());
    const auto down_at = SteadyClock::now();
    EXPECT_TRUE(wait_until(
        [&] {
          last_error_seen = resource_status(server, "kafkasources", "ks").value("lastError", "");
          return !last_error_seen.empty() && last_error_seen != error_before;
        },
        std::chrono::seconds(15)))
        << "round " << round << ": the source's status shows no error while Kafka is down: "
        << resource_status(server, "kafkasources", "ks").dump();
    ASSERT_TRUE(wait_until([&] { return SteadyClock::now() - down_at >= outage_length(round); },
                           outage_length(round) + std::chrono::seconds(1)));
    ASSERT_TRUE(kafka.up());
  }
  const int after_up = producer.batches();
  EXPECT_TRUE(wait_until([&] { return producer.batches() >= after_up + 5; }, std::chrono::seconds(20)))
      << "kcat could not produce after the last outage";
  producer.stop();

  std::set<std::string> produced;
  const std::string offsets = kafka.consume("ks-in", "partition:%p/offset:%o\\n");
  for (std::size_t start = 0; start < offsets.size();) {
    const auto end = offsets.find('\n', start);
    produced.insert(offsets.substr(start, end - start));
    start = end + 1;
  }
  EXPECT_GE(produced.size(), static_cast<std::size_t>(producer.batches()) * 20);
  EXPECT_TRUE(wait_all_delivered(sink, produced, std::chrono::seconds(30)))
      << count_deliveries(sink, produced).lost << " of " << produced.size() << " not delivered\n"
      << server.process().output();
  EXPECT_TRUE(wait_until([&] { return resource_status(server, "kafkasources", "ks").value("lag", -1) == 0; },
                         std::chrono::seconds(20)))
      << resource_status(server, "kafkasources", "ks").dump();
  const auto counts = count_deliveries(sink, produced);
  std::cout << "kafka-outage source: outages=" << rounds << " produced=" << produced.size()
            << " delivered=" << counts.delivered << " deliveries=" << counts.deliveries
            << " duplicated=" << counts.duplicated << " lost=" << counts.lost << " lastError=\""
            << last_error_seen << "\"" << std::endl;
  EXPECT_EQ(counts.lost, 0u);
}

TEST(KafkaOutage, BrokerRefusesWhileKafkaIsDownAndDeliversEveryAcknowledgedEvent) {
  run_broker_outages(1);
}

TEST(KafkaOutage, SourceDeliversEveryRecordAcrossAnOutageAndShowsTheError) {
  run_source_outages(1);
}

TEST(KafkaOutageSoak, BrokerThroughRepeatedOutages) {
  if (std::getenv("SLUICE_SOAK") == nullptr) GTEST_SKIP() << "opt-in: make soak";
  run_broker_outages(soak_rounds());
}

TEST(KafkaOutageSoak, SourceThroughRepeatedOutages) {
  if (std::getenv("SLUICE_SOAK") == nullptr) GTEST_SKIP() << "opt-in: make soak";
  run_source_outages(soak_rounds());
}

}  // namespace
}  // namespace sluice::testing
