// Trigger delivery at the edges, through a real `sluice serve`: replies the broker refuses for good.

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

}  // namespace
}  // namespace sluice::testing
