// Scale-down under a steady stream of requests: replicas with containerConcurrency > 1 drain and stop
// while requests keep arriving, and none of those requests fails.

#include <atomic>
#include <mutex>
#include <thread>

#include "tests/integration/agents_support.hpp"
#include "tests/integration/broker_support.hpp"

namespace sluice::testing {
namespace {

class AgentsScaleDown : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(server_.wait_ready()); }
  SluiceServer server_{
      {"--gpus", "none", "--autoscaler-tick", "200ms", "--autoscaler", "scale-to-zero-grace-period=1s"}};
};

/// `clients` threads calling `path` until stopped; keeps the first failures for the message.
class Stream {
 public:
  Stream(SluiceServer& server, std::string path, int clients) {
    for (int i = 0; i < clients; ++i)
      threads_.emplace_back([this, &server, path] {
        httplib::Client client("127.0.0.1", server.port());
        client.set_read_timeout(30, 0);
        while (!stop_) {
          auto res = client.Get(path);
          if (res && res->status / 100 == 2) {
            ++ok_;
            continue;
          }
          ++failed_;
          std::lock_guard lock(mu_);
          if (failures_.size() < 5)
            failures_.push_back(res ? std::to_string(res->status) + " " + res->body
                                    : "transport error " + httplib::to_string(res.error()));
        }
      });
  }
  ~Stream() { stop(); }
  void stop() {
    stop_ = true;
    for (auto& t : threads_)
      if (t.joinable()) t.join();
  }
  int ok() const { return ok_; }
  int failed() const { return failed_; }
  std::string failures() const {
    std::lock_guard lock(mu_);
    std::string out;
    for (const auto& f : failures_) out += f + "\n";
    return out;
  }

 private:
  std::atomic<bool> stop_{false};
  std::atomic<int> ok_{0}, failed_{0};
  mutable std::mutex mu_;
  std::vector<std::string> failures_;
  std::vector<std::thread> threads_;
};

int replica_count(SluiceServer& server, const std::string& agent, const std::string& revision) {
  return static_cast<int>(
      revision_status(server, agent, revision).value("replicaStatus", nlohmann::json::array()).size());
}

TEST_F(AgentsScaleDown, NoRequestFailsWhileReplicasWithContainerConcurrencyDrainAndStop) {
  AgentYaml slow;
  slow.name = "slow";
  slow.program = "slow_agent";
  slow.env = {{"LATENCY_MS", "20"}};
  slow.annotations = {{"autoscaling.knative.dev/window", "6s"}, {"autoscaling.knative.dev/min-scale", "1"}};
  slow.template_spec = "      containerConcurrency: 4\n";
  ASSERT_TRUE(start_agent(server_, slow));

  Stream steady(server_, "/agents/slow/infer", 3);
  {
    Stream burst(server_, "/agents/slow/infer?latency_ms=200", 24);
    ASSERT_TRUE(wait_until([&] { return ready_replicas(server_, "slow", "slow-00001") >= 4; },
                           std::chrono::seconds(20)))
        << agent_status(server_, "slow").dump();
    burst.stop();
    EXPECT_EQ(burst.failed(), 0) << burst.failures();
  }
  // The burst is over; the steady stream goes on while the excess replicas drain and stop.
  ASSERT_TRUE(
      wait_until([&] { return replica_count(server_, "slow", "slow-00001") <= 1; }, std::chrono::seconds(30)))
      << agent_status(server_, "slow").dump();
  const int before = steady.ok();
  ASSERT_TRUE(wait_until([&] { return steady.ok() >= before + 20; }));
  steady.stop();
  EXPECT_EQ(steady.failed(), 0) << steady.failures();
  EXPECT_GT(steady.ok(), 0);
}

}  // namespace
}  // namespace sluice::testing
