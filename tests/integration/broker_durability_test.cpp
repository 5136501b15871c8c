// Durability of a real `sluice serve`: acknowledged events survive kill -9 and are delivered; a graceful
// restart neither loses nor replays; a trigger's cursor survives restarts.

#include <atomic>
#include <mutex>
#include <set>
#include <thread>

#include "tests/integration/broker_support.hpp"

namespace sluice::testing {
namespace {

std::set<std::string> unique_ids(const HttpSink& sink) {
  auto ids = received_ids(sink);
  return {ids.begin(), ids.end()};
}

TEST(BrokerDurability, GracefulRestartNeitherLosesNorReplays) {
  HttpSink sink;
  SluiceServer server;
  ASSERT_TRUE(server.wait_ready());
  apply_yaml(server, broker_yaml() + "---\n" + trigger_yaml("t", sink.url()));
  for (int i = 0; i < 20; ++i) ASSERT_EQ(publish(server, "a" + std::to_string(i), "t"), 202);
  ASSERT_TRUE(sink.wait_for(20));

  server.process().signal(SIGTERM);
  ASSERT_EQ(server.process().wait(std::chrono::seconds(15)), 0) << server.process().output();
  server.restart();
  ASSERT_TRUE(server.wait_ready());
  ASSERT_EQ(publish(server, "b0", "t"), 202);
  ASSERT_TRUE(sink.wait_for(21));
  ASSERT_TRUE(wait_until([&] { return trigger_status(server, "t")["delivery"]["backlog"] == 0; }));
  EXPECT_EQ(sink.count(), 21u) << "nothing delivered twice after a clean stop";
}

TEST(BrokerDurability, EventsPublishedWhileTheSubscriberIsDownArriveLater) {
  std::atomic<bool> down{true};
  HttpSink sink;
  sink.respond([&](const ReceivedRequest&, std::size_t) {
    return down ? SinkResponse{503, "", {}, {}} : SinkResponse{};
  });
  SluiceServer server;
  ASSERT_TRUE(server.wait_ready());
  apply_yaml(server,
             broker_yaml() + "---\n" +
                 trigger_yaml("t", sink.url(),
                              "  delivery: {retry: 1000, backoffPolicy: linear, backoffDelay: PT0.05S}\n"));
  for (int i = 0; i < 10; ++i) ASSERT_EQ(publish(server, "e" + std::to_string(i), "t"), 202);
  ASSERT_TRUE(sink.wait_for(10));
  // Restart while every event is still failing: the cursor stays behind them.
  server.process().signal(SIGTERM);
  ASSERT_EQ(server.process().wait(std::chrono::seconds(15)), 0) << server.process().output();
  down = false;
  server.restart();
  ASSERT_TRUE(server.wait_ready());
  ASSERT_TRUE(wait_until([&] { return trigger_status(server, "t")["delivery"]["delivered"] == 10; },
                         std::chrono::seconds(15)))
      << trigger_status(server, "t");
  EXPECT_EQ(unique_ids(sink).size(), 10u);
}

TEST(BrokerDurability, KillDuringAPublishBurstLosesNoAcknowledgedEvent) {
  HttpSink sink;
  SluiceServer server;
  ASSERT_TRUE(server.wait_ready());
  apply_yaml(server, broker_yaml() + "---\n" + trigger_yaml("t", sink.url()));

  std::mutex mu;
  std::set<std::string> acknowledged;
  std::atomic<bool> stop{false};
  std::vector<std::thread> publishers;
  for (int p = 0; p < 4; ++p) {
    publishers.emplace_back([&, p] {
      for (int i = 0; !stop; ++i) {
        const std::string id = "p" + std::to_string(p) + "-" + std::to_string(i);
        if (publish(server, id, "t") == 202) {
          std::lock_guard lock(mu);
          acknowledged.insert(id);
        }
      }
    });
  }
  ASSERT_TRUE(wait_until(
      [&] {
        std::lock_guard lock(mu);
        return acknowledged.size() >= 200;
      },
      std::chrono::seconds(20)));
  server.kill();  // SIGKILL in the middle of the burst
  stop = true;
  for (auto& t : publishers) t.join();

  server.restart();
  ASSERT_TRUE(server.wait_ready());
  ASSERT_TRUE(wait_all_delivered(sink, acknowledged, std::chrono::seconds(20)))
      << acknowledged.size() << " acknowledged, " << unique_ids(sink).size() << " delivered";
}

}  // namespace
}  // namespace sluice::testing
