// Triggers of a real `sluice serve` delivering to real HTTP subscribers: content modes, filters,
// retries with Retry-After, dead letters, replies and the hop limit, ordering.

#include <atomic>
#include <set>

#include "tests/integration/broker_support.hpp"

namespace sluice::testing {
namespace {

class TriggerDelivery : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(server_.wait_ready()); }
  SluiceServer server_;
};

TEST_F(TriggerDelivery, BinaryByDefaultStructuredOnRequest) {
  HttpSink binary, structured;
  apply_yaml(server_, broker_yaml() + "---\n" + trigger_yaml("bin", binary.url()) + "---\n" +
                          trigger_yaml("json", structured.url(), "  delivery: {format: json}\n"));
  ASSERT_EQ(publish(server_, "m-1", "com.example.mode", R"({"a":1})", {{"tenant", "acme"}}), 202);
  ASSERT_TRUE(binary.wait_for(1));
  ASSERT_TRUE(structured.wait_for(1));

  const auto b = binary.requests()[0];
  EXPECT_EQ(b.header("ce-id"), "m-1");
  EXPECT_EQ(b.header("ce-tenant"), "acme");
  EXPECT_FALSE(b.header("ce-knativearrivaltime").empty());
  EXPECT_TRUE(b.header("ce-knativebrokerttl").empty()) << "the hop counter stays inside the broker";
  EXPECT_EQ(b.header("content-type"), "application/json");
  EXPECT_EQ(b.body, R"({"a":1})");

  const auto s = structured.requests()[0];
  EXPECT_EQ(s.header("content-type").rfind("application/cloudevents+json", 0), 0u)
      << s.header("content-type");
  auto event = nlohmann::json::parse(s.body);
  EXPECT_EQ(event["id"], "m-1");
  EXPECT_EQ(event["tenant"], "acme");
  EXPECT_EQ(event["data"], nlohmann::json::parse(R"({"a":1})"));
}

TEST_F(TriggerDelivery, FiltersSelectEvents) {
  HttpSink exact, cesql, all;
  apply_yaml(server_,
             broker_yaml() + "---\n" +
                 trigger_yaml("exact", exact.url(), "  filter: {attributes: {type: com.example.a}}\n") +
                 "---\n" +
                 trigger_yaml("cesql", cesql.url(),
                              "  filters:\n  - cesql: \"tenant = 'acme' AND type LIKE 'com.example.%'\"\n") +
                 "---\n" + trigger_yaml("all", all.url()));
  ASSERT_EQ(publish(server_, "1", "com.example.a"), 202);
  ASSERT_EQ(publish(server_, "2", "com.example.b", "{}", {{"tenant", "acme"}}), 202);
  ASSERT_EQ(publish(server_, "3", "org.other", "{}", {{"tenant", "acme"}}), 202);
  ASSERT_EQ(publish(server_, "4", "com.example.a", "{}", {{"tenant", "acme"}}), 202);
  // The catch-all trigger sees all four; by then the others have read past them too.
  ASSERT_TRUE(all.wait_for(4));
  ASSERT_TRUE(wait_until([&] {
    return trigger_status(server_, "exact")["delivery"]["backlog"] == 0 &&
           trigger_status(server_, "cesql")["delivery"]["backlog"] == 0;
  }));
  EXPECT_EQ(received_ids(exact), (std::vector<std::string>{"1", "4"}));
  EXPECT_EQ(received_ids(cesql), (std::vector<std::string>{"2", "4"}));
  EXPECT_EQ(trigger_status(server_, "exact")["delivery"]["filtered"], 2);
}

TEST_F(TriggerDelivery, RetriesHonourRetryAfter) {
  HttpSink sink;
  sink.respond([](const ReceivedRequest&, std::size_t index) {
    if (index == 0) return SinkResponse{503, "busy", {{"Retry-After", "1"}}, {}};
    if (index == 1) return SinkResponse{500, "oops", {}, {}};
    return SinkResponse{};
  });
  apply_yaml(server_,
             broker_yaml() + "---\n" +
                 trigger_yaml("t", sink.url(),
                              "  delivery: {retry: 3, backoffPolicy: linear, backoffDelay: PT0.05S}\n"));
  ASSERT_EQ(publish(server_, "r-1", "t"), 202);
  ASSERT_TRUE(sink.wait_for(3, std::chrono::seconds(15)));
  auto requests = sink.requests();
  EXPECT_GE(requests[1].at - requests[0].at, std::chrono::milliseconds(950)) << "Retry-After: 1 was honoured";
  EXPECT_EQ(received_ids(sink), (std::vector<std::string>{"r-1", "r-1", "r-1"}));
  ASSERT_TRUE(wait_until([&] { return trigger_status(server_, "t")["delivery"]["delivered"] == 1; }));
  auto delivery = trigger_status(server_, "t")["delivery"];
  EXPECT_EQ(delivery["failedAttempts"], 2);
  EXPECT_EQ(delivery["retried"], 2);
}

TEST_F(TriggerDelivery, ExhaustedRetriesGoToTheDeadLetterSinkWithErrorExtensions) {
  HttpSink subscriber, dead_letters;
  subscriber.respond([](const ReceivedRequest&, std::size_t) {
    return SinkResponse{500, "model crashed", {}, {}};
  });
  // The dead-letter sink fails at first: the event is kept and retried, never dropped.
  dead_letters.respond([](const ReceivedRequest&, std::size_t index) {
    return index < 2 ? SinkResponse{503, "", {}, {}} : SinkResponse{202, "", {}, {}};
  });
  apply_yaml(server_,
             broker_yaml("default", "delivery: {deadLetterSink: {uri: \"" + dead_letters.url() + "\"}}") +
                 "---\n" +
                 trigger_yaml("t", subscriber.url(),
                              "  delivery: {retry: 1, backoffPolicy: linear, backoffDelay: PT0.01S}\n"));
  ASSERT_EQ(publish(server_, "d-1", "t", R"({"q":"why"})"), 202);
  ASSERT_TRUE(dead_letters.wait_for(3, std::chrono::seconds(15)));
  EXPECT_EQ(subscriber.count(), 2u) << "the first attempt and one retry";
  const auto dl = dead_letters.requests()[2];
  EXPECT_EQ(dl.header("ce-id"), "d-1");
  EXPECT_EQ(dl.header("ce-knativeerrorcode"), "500");
  EXPECT_EQ(dl.header("ce-knativeerrordest"), subscriber.url());
  EXPECT_FALSE(dl.header("ce-knativeerrordata").empty());
  EXPECT_EQ(dl.body, R"({"q":"why"})");
  ASSERT_TRUE(wait_until([&] { return trigger_status(server_, "t")["delivery"]["deadLettered"] == 1; }));
  EXPECT_EQ(trigger_status(server_, "t")["delivery"]["dropped"], 0);
  EXPECT_EQ(trigger_status(server_, "t")["deadLetterSinkUri"], dead_letters.url());
}

TEST_F(TriggerDelivery, RepliesReenterTheBrokerUntilTheHopLimit) {
  // A subscriber that answers each event with another event of the same type: a loop. The broker's hop
  // limit (ttl 3) lets it go round three times, then drops the reply with a metric.
  HttpSink looping, observer;
  looping.respond([](const ReceivedRequest& r, std::size_t index) {
    return SinkResponse{200,
                        R"({"n":)" + std::to_string(index) + "}",
                        {{"ce-specversion", "1.0"},
                         {"ce-id", r.header("ce-id") + "-r"},
                         {"ce-type", "com.example.loop"},
                         {"ce-source", "/loop"},
                         {"Content-Type", "application/json"}},
                        {}};
  });
  apply_yaml(server_,
             broker_yaml("default", "ingress: {ttl: 3}") + "---\n" +
                 trigger_yaml("loop", looping.url(), "  filter: {attributes: {type: com.example.loop}}\n") +
                 "---\n" + trigger_yaml("observer", observer.url()));
  ASSERT_EQ(publish(server_, "h", "com.example.loop"), 202);
  ASSERT_TRUE(looping.wait_for(3));
  ASSERT_TRUE(wait_until([&] { return trigger_status(server_, "loop")["delivery"]["repliesDropped"] == 1; }));
  EXPECT_EQ(received_ids(looping), (std::vector<std::string>{"h", "h-r", "h-r-r"}));
  EXPECT_TRUE(observer.wait_for(3));
  EXPECT_EQ(metric(server_, R"(sluice_broker_replies_dropped_total{broker="default",reason="ttl"})"), 1);
}

TEST_F(TriggerDelivery, OrderedTriggersDeliverOneKeyAtATimeInOrder) {
  std::atomic<int> concurrent{0};
  std::atomic<int> max_same_key{0};
  std::mutex mu;
  std::set<std::string> busy_keys;
  HttpSink sink;  // after what its responder uses: destroyed (stopped) first
  sink.respond([&](const ReceivedRequest& r, std::size_t) {
    const std::string key = r.header("ce-partitionkey");
    {
      std::lock_guard lock(mu);
      if (!busy_keys.insert(key).second) max_same_key = 2;
    }
    ++concurrent;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    --concurrent;
    std::lock_guard lock(mu);
    busy_keys.erase(key);
    return SinkResponse{};
  });
  apply_yaml(server_, broker_yaml() + "---\n" +
                          trigger_yaml("ordered", sink.url(), "  delivery: {maxInFlight: 8}\n", "default",
                                       "kafka.eventing.knative.dev/delivery.order: ordered"));
  const int per_key = 15;
  for (int i = 0; i < per_key; ++i)
    for (const char* key : {"a", "b", "c"})
      ASSERT_EQ(publish(server_, std::string(key) + std::to_string(i), "t", "{}", {{"partitionkey", key}}),
                202);
  ASSERT_TRUE(sink.wait_for(3 * per_key, std::chrono::seconds(20)));
  EXPECT_EQ(max_same_key.load(), 0) << "two deliveries of one key overlapped";
  std::map<std::string, std::vector<std::string>> by_key;
  for (const auto& r : sink.requests()) by_key[r.header("ce-partitionkey")].push_back(r.header("ce-id"));
  for (const char* key : {"a", "b", "c"}) {
    std::vector<std::string> expected;
    for (int i = 0; i < per_key; ++i) expected.push_back(std::string(key) + std::to_string(i));
    EXPECT_EQ(by_key[key], expected) << "key " << key;
  }
}

TEST_F(TriggerDelivery, NewTriggersStartAtTheEndOfTheLog) {
  HttpSink sink;
  apply_yaml(server_, broker_yaml());
  ASSERT_EQ(publish(server_, "before", "t"), 202);
  apply_yaml(server_, trigger_yaml("late", sink.url()));
  ASSERT_EQ(publish(server_, "after", "t"), 202);
  ASSERT_TRUE(sink.wait_for(1));
  ASSERT_TRUE(wait_until([&] { return trigger_status(server_, "late")["delivery"]["backlog"] == 0; }));
  EXPECT_EQ(received_ids(sink), (std::vector<std::string>{"after"}));
}

TEST_F(TriggerDelivery, EveryFilterDialect) {
  HttpSink prefix, suffix, any, negated, all;
  apply_yaml(
      server_,
      broker_yaml() + "---\n" +
          trigger_yaml("prefix", prefix.url(), "  filters: [{prefix: {type: com.example.}}]\n") + "---\n" +
          trigger_yaml("suffix", suffix.url(), "  filters: [{suffix: {source: /eu}}]\n") + "---\n" +
          trigger_yaml("any", any.url(),
                       "  filters: [{any: [{exact: {type: org.a}}, {exact: {tenant: acme}}]}]\n") +
          "---\n" + trigger_yaml("not", negated.url(), "  filters: [{not: {exact: {type: org.a}}}]\n") +
          "---\n" + trigger_yaml("all", all.url()));
  auto send = [&](const std::string& id, const std::string& type, const std::string& source,
                  std::map<std::string, std::string> ext = {}) {
    httplib::Client client("127.0.0.1", server_.port());
    httplib::Headers headers{
        {"ce-specversion", "1.0"}, {"ce-id", id}, {"ce-type", type}, {"ce-source", source}};
    for (auto& [k, v] : ext) headers.emplace("ce-" + k, v);
    auto res = client.Post("/brokers/default", headers, "{}", "application/json");
    ASSERT_TRUE(res);
    ASSERT_EQ(res->status, 202);
  };
  send("1", "com.example.x", "/shop/eu");
  send("2", "org.a", "/shop/us");
  send("3", "org.b", "/shop/eu", {{"tenant", "acme"}});
  ASSERT_TRUE(all.wait_for(3));
  for (const char* t : {"prefix", "suffix", "any", "not"})
    ASSERT_TRUE(wait_until([&] { return trigger_status(server_, t)["delivery"]["backlog"] == 0; })) << t;
  EXPECT_EQ(received_ids(prefix), (std::vector<std::string>{"1"}));
  EXPECT_EQ(received_ids(suffix), (std::vector<std::string>{"1", "3"}));
  EXPECT_EQ(received_ids(any), (std::vector<std::string>{"2", "3"}));
  EXPECT_EQ(received_ids(negated), (std::vector<std::string>{"1", "3"}));
}

TEST_F(TriggerDelivery, ExponentialBackoffTiming) {
  HttpSink sink;
  sink.respond([](const ReceivedRequest&, std::size_t index) {
    return index < 3 ? SinkResponse{500, "", {}, {}} : SinkResponse{};
  });
  apply_yaml(server_,
             broker_yaml() + "---\n" +
                 trigger_yaml("t", sink.url(),
                              "  delivery: {retry: 5, backoffPolicy: exponential, backoffDelay: PT0.1S}\n"));
  ASSERT_EQ(publish(server_, "x", "t"), 202);
  ASSERT_TRUE(sink.wait_for(4));
  auto r = sink.requests();
  // Waits of 0.1 s, 0.2 s, 0.4 s before the retries (a little scheduling slack above).
  const std::chrono::milliseconds expected[] = {
      std::chrono::milliseconds(100), std::chrono::milliseconds(200), std::chrono::milliseconds(400)};
  for (int i = 0; i < 3; ++i) {
    auto gap = std::chrono::duration_cast<std::chrono::milliseconds>(r[i + 1].at - r[i].at);
    EXPECT_GE(gap, expected[i]) << "retry " << i + 1;
    EXPECT_LT(gap, expected[i] + std::chrono::milliseconds(400)) << "retry " << i + 1;
  }
}

TEST_F(TriggerDelivery, AHangingSubscriberTimesOutAndBlocksNoOtherTrigger) {
  HttpSink hanging, healthy, dead_letters;
  hanging.respond([](const ReceivedRequest&, std::size_t) {
    return SinkResponse{200, "", {}, std::chrono::milliseconds(3000)};
  });
  apply_yaml(
      server_,
      broker_yaml() + "---\n" +
          trigger_yaml("hanging", hanging.url(),
                       "  delivery: {timeout: PT0.3S, retry: 1, backoffDelay: PT0.01S, deadLetterSink: "
                       "{uri: \"" +
                           dead_letters.url() + "\"}}\n") +
          "---\n" + trigger_yaml("healthy", healthy.url()));
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 5; ++i) ASSERT_EQ(publish(server_, "h" + std::to_string(i), "t"), 202);
  ASSERT_TRUE(healthy.wait_for(5, std::chrono::seconds(2)));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
  // Each event: two attempts of 0.3 s, then the dead-letter sink, with code 0 for a timeout.
  ASSERT_TRUE(dead_letters.wait_for(5, std::chrono::seconds(10)));
  EXPECT_FALSE(dead_letters.requests()[0].header("ce-knativeerrordest").empty());
  ASSERT_TRUE(
      wait_until([&] { return trigger_status(server_, "hanging")["delivery"]["deadLettered"] == 5; }));
  EXPECT_EQ(trigger_status(server_, "hanging")["delivery"]["failedAttempts"], 10);
}

}  // namespace
}  // namespace sluice::testing
