// Trigger delivery at the edges, through a real `sluice serve`: replies the broker refuses for good, and a
// record the log cannot serve.

#include <algorithm>
#include <atomic>
#include <fstream>
#include <mutex>
#include <vector>

#include "tests/integration/broker_support.hpp"

namespace sluice::testing {
namespace {

class DispatchEdge : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(server_.wait_ready()); }
  SluiceServer server_;
};

// A reply over the broker's maxEventSize is refused with 413 whatever the wait: it is dropped and
// counted, the delivery fails (retried, then dead-lettered) and the trigger's cursor moves on.
TEST_F(DispatchEdge, ReplyOverMaxEventSizeIsDroppedAndTheEventDeadLettered) {
  HttpSink subscriber;
  HttpSink dead;
  subscriber.respond([](const ReceivedRequest&, std::size_t) {
    return SinkResponse{200,
                        std::string(5000, 'r'),
                        {{"ce-specversion", "1.0"},
                         {"ce-id", "R"},
                         {"ce-source", "/replier"},
                         {"ce-type", "com.example.reply"},
                         {"Content-Type", "text/plain"}},
                        {}};
  });
  apply_yaml(server_,
             broker_yaml("b3", "ingress: {maxEventSize: 2Ki}") + "---\n" +
                 trigger_yaml("replier", subscriber.url(),
                              "  delivery: {retry: 1, backoffDelay: PT0.05S, deadLetterSink: {uri: \"" +
                                  dead.url() + "\"}}\n",
                              "b3"));
  ASSERT_EQ(publish(server_, "br1", "com.example.ask", R"({"n":1})", {}, "b3"), 202);
  ASSERT_TRUE(dead.wait_for(1, std::chrono::seconds(15)));
  EXPECT_EQ(dead.requests()[0].header("ce-id"), "br1");
  EXPECT_EQ(subscriber.count(), 2u);  // the first attempt and one retry
  ASSERT_TRUE(wait_until([&] {
    auto delivery = trigger_status(server_, "replier")["delivery"];
    return delivery.value("inFlight", 1) == 0 && delivery.value("committedOffset", 0) == 1;
  }));
  auto delivery = trigger_status(server_, "replier")["delivery"];
  EXPECT_EQ(delivery["deadLettered"], 1);
  EXPECT_EQ(delivery["repliesDropped"], 2);
  EXPECT_EQ(delivery["replies"], 0);
  EXPECT_EQ(metric(server_, R"(sluice_broker_replies_dropped_total{broker="b3",reason="rejected"})"), 2);
}

// A record that fails its CRC in a sealed segment is never delivered: the trigger stops there, Ready=False
// with the offset, and counts the failed reads; what comes before it is delivered.
TEST_F(DispatchEdge, ADamagedRecordInASealedSegmentMakesTheTriggerNotReadyNamingTheOffset) {
  std::atomic<bool> up{false};
  std::mutex mu;
  std::vector<std::string> accepted;  // ids answered 200
  HttpSink sink;
  sink.respond([&](const ReceivedRequest& request, std::size_t) {
    if (!up) return SinkResponse{503, "", {}, {}};
    std::lock_guard lock(mu);
    accepted.push_back(request.header("ce-id"));
    return SinkResponse{200, "", {}, {}};
  });
  apply_yaml(
      server_,
      broker_yaml("b", "retention: {maxBytes: 8Mi}") + "---\n" +  // segments of 1 MiB
          trigger_yaml("t", sink.url(),
                       "  delivery: {retry: 100000, backoffDelay: PT0.1S, backoffMax: PT0.2S}\n", "b"));
  const std::string data = "{\"p\":\"" + std::string(300 << 10, 'x') + "\"}";
  for (int i = 0; i < 5; ++i)  // offsets 0..2 in the first segment, 3..4 in the second
    ASSERT_EQ(publish(server_, "e" + std::to_string(i), "com.example.big", data, {}, "b"), 202);
  ASSERT_TRUE(sink.wait_for(1));
  server_.kill();
  const std::string sealed = server_.data_dir() + "/brokers/b/log/00000000000000000000.log";
  {
    std::fstream file(sealed, std::ios::in | std::ios::out | std::ios::binary);
    ASSERT_TRUE(file.is_open()) << sealed;
    file.seekg(0, std::ios::end);
    const auto middle = static_cast<std::streamoff>(file.tellg()) / 2;  // inside the payload of offset 1
    file.seekp(middle);
    file.put('#');
  }
  up = true;
  server_.restart();
  ASSERT_TRUE(server_.wait_ready());
  nlohmann::json ready;
  ASSERT_TRUE(wait_until([&] {
    for (const auto& c : trigger_status(server_, "t").value("conditions", nlohmann::json::array()))
      if (c.value("type", "") == "Ready") ready = c;
    return ready.value("reason", "") == "LogReadFailed";
  })) << trigger_status(server_, "t").dump();
  EXPECT_EQ(ready.value("status", ""), "False");
  EXPECT_NE(ready.value("message", "").find("offset 1"), std::string::npos) << ready.dump();
  EXPECT_GE(metric(server_, "sluice_trigger_log_read_errors_total{broker=\"b\",trigger=\"t\"}"), 1);
  std::lock_guard lock(mu);
  EXPECT_EQ(accepted, std::vector<std::string>{"e0"});  // nothing from the damaged record on
}

}  // namespace
}  // namespace sluice::testing
