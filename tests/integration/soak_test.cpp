// Opt-in fault soak (`make soak`, SLUICE_SOAK=1): publishers and a subscriber run against a real
// `sluice serve` that is killed with SIGKILL again and again. Every acknowledged event must be delivered;
// the counts (acknowledged, delivered, duplicated, lost) are printed for bench/RESULTS.md.

#include <cstdlib>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "tests/integration/broker_support.hpp"

namespace sluice::testing {
namespace {

TEST(BrokerSoak, RepeatedKillsUnderLoadLoseNothing) {
  if (std::getenv("SLUICE_SOAK") == nullptr) GTEST_SKIP() << "opt-in: make soak";
  const int rounds = std::getenv("SLUICE_SOAK_ROUNDS") ? std::atoi(std::getenv("SLUICE_SOAK_ROUNDS")) : 20;
  HttpSink sink;
  SluiceServer server;
  ASSERT_TRUE(server.wait_ready());
  apply_yaml(server,
             broker_yaml() + "---\n" + trigger_yaml("t", sink.url(), "  delivery: {maxInFlight: 64}\n"));

  std::mutex mu;
  std::set<std::string> acknowledged;
  std::atomic<int> refused{0};
  for (int round = 0; round < rounds; ++round) {
    std::atomic<bool> stop{false};
    std::vector<std::thread> publishers;
    for (int p = 0; p < 8; ++p) {
      publishers.emplace_back([&, p] {
        for (int i = 0; !stop; ++i) {
          const std::string id =
              "r" + std::to_string(round) + "-p" + std::to_string(p) + "-" + std::to_string(i);
          int status = publish(server, id, "t");
          if (status == 202) {
            std::lock_guard lock(mu);
            acknowledged.insert(id);
          } else {
            ++refused;
          }
        }
      });
    }
    const std::size_t target = (round + 1) * 500;
    ASSERT_TRUE(wait_until(
        [&] {
          std::lock_guard lock(mu);
          return acknowledged.size() >= target;
        },
        std::chrono::seconds(30)));
    server.kill();
    stop = true;
    for (auto& t : publishers) t.join();
    server.restart();
    ASSERT_TRUE(server.wait_ready());
  }
  ASSERT_TRUE(wait_all_delivered(sink, acknowledged, std::chrono::seconds(60)));
  auto ids = received_ids(sink);
  std::map<std::string, int> times;
  for (const auto& id : ids) ++times[id];
  std::size_t duplicated = 0, lost = 0;
  for (const auto& [id, n] : times) duplicated += n > 1 ? 1 : 0;
  for (const auto& id : acknowledged) lost += times.count(id) ? 0 : 1;
  std::cout << "soak: rounds=" << rounds << " acknowledged=" << acknowledged.size() << " refused=" << refused
            << " delivered=" << times.size() << " deliveries=" << ids.size() << " duplicated=" << duplicated
            << " lost=" << lost << std::endl;
  EXPECT_EQ(lost, 0u);
}

}  // namespace
}  // namespace sluice::testing
