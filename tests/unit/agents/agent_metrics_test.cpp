// The agents' Prometheus series: set from samples, counters advanced by the difference between
// samples, and gone with the revision.

#include "agents/agent_metrics.hpp"

#include <gtest/gtest.h>

namespace sluice::agents {
namespace {

bool has_line(const std::string& text, const std::string& line) {
  return text.find("\n" + line + "\n") != std::string::npos;
}

TEST(AgentMetrics, SamplesBecomeSeriesAndCountersOnlyAdvance) {
  MetricsRegistry registry;
  {
    AgentMetrics metrics(registry);
    RevisionSample s;
    s.ready = 2;
    s.desired = 3;
    s.requests = {1, 4, 10, 1, 0, 2.5};
    autoscaler::Decision d;
    d.observed_stable = 4.5;
    d.in_panic = true;
    s.decision = d;
    metrics.update("a", "a-00001", s);
    s.requests.completed = 15;
    s.requests.service_seconds = 3.0;
    s.requests.retried = 2;
    metrics.update("a", "a-00001", s);
    const auto text = registry.render();
    EXPECT_TRUE(has_line(text, R"(sluice_agent_replicas{agent="a",revision="a-00001",state="ready"} 2)"))
        << text;
    EXPECT_TRUE(has_line(text, R"(sluice_agent_replicas{agent="a",revision="a-00001",state="desired"} 3)"));
    EXPECT_TRUE(has_line(text, R"(sluice_activator_requests_waiting{agent="a",revision="a-00001"} 4)"));
    EXPECT_TRUE(has_line(
        text, R"(sluice_activator_requests_total{agent="a",outcome="completed",revision="a-00001"} 15)"))
        << text;
    EXPECT_TRUE(has_line(
        text, R"(sluice_activator_requests_total{agent="a",outcome="rejected",revision="a-00001"} 1)"));
    EXPECT_TRUE(has_line(text, R"(sluice_activator_service_seconds_total{agent="a",revision="a-00001"} 3)"))
        << text;
    EXPECT_TRUE(has_line(text, R"(sluice_activator_retries_total{agent="a",revision="a-00001"} 2)")) << text;
    EXPECT_TRUE(has_line(
        text, R"(sluice_autoscaler_observed_concurrency{agent="a",revision="a-00001",window="stable"} 4.5)"))
        << text;
    EXPECT_TRUE(has_line(text, R"(sluice_autoscaler_panic{agent="a",revision="a-00001"} 1)"));

    metrics.update("a", "a-00002", RevisionSample{});
    metrics.remove("a", "a-00001");
    const auto after = registry.render();
    EXPECT_EQ(after.find("a-00001"), std::string::npos) << after;
    EXPECT_NE(after.find("a-00002"), std::string::npos) << after;
  }
  EXPECT_EQ(registry.render().find("sluice_agent_replicas"), std::string::npos) << "destroyed with its owner";
}

}  // namespace
}  // namespace sluice::agents
