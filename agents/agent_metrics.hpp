#pragma once
// Prometheus series of every agent revision, refreshed by the runtime's reconciler once a second from
// its own state, the activator's counters and the autoscaler's last decision:
//
//   sluice_agent_replicas{agent, revision, state="ready"|"desired"|"reserve"}               gauge
//   sluice_activator_requests_in_flight{agent, revision}                                   gauge
//   sluice_activator_requests_waiting{agent, revision}                                     gauge
//   sluice_activator_requests_total{agent, revision, outcome="completed"|"rejected"|"timeout"} counter
//   sluice_activator_service_seconds_total{agent, revision}   time replicas spent on completed requests
//   sluice_activator_retries_total{agent, revision}     requests sent again after a refused connection
//   sluice_autoscaler_observed_concurrency{agent, revision, window="stable"|"panic"}        gauge
//   sluice_autoscaler_panic{agent, revision}                                               gauge, 0 or 1
//
// Not thread-safe: the reconciler thread owns it.

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "agents/activator.hpp"
#include "autoscaler/autoscaler.hpp"
#include "core/metrics.hpp"

namespace sluice::agents {

/// A revision now: replicas not draining (standard, of which ready, and reserve), what the autoscaler
/// wants, the activator's counters and the autoscaler's last decision.
struct RevisionSample {
  int replicas = 0;
  int ready = 0;
  int desired = 0;
  int reserve = 0;
  RevisionCounters requests;
  std::optional<autoscaler::Decision> decision;
};

class AgentMetrics {
 public:
  explicit AgentMetrics(MetricsRegistry& registry) : registry_(registry) {}
  ~AgentMetrics();
  AgentMetrics(const AgentMetrics&) = delete;
  AgentMetrics& operator=(const AgentMetrics&) = delete;

  /// Sets a revision's series (creating them on first use).
  void update(const std::string& agent, const std::string& revision, const RevisionSample& sample);
  /// Drops a revision's series (the revision is gone).
  void remove(const std::string& agent, const std::string& revision);

 private:
  struct Series {
    // In the order of the families in agent_metrics.cpp and their label values.
    std::vector<Gauge*> gauges;
    std::vector<Counter*> counters;
    RevisionCounters last;  // counters advance by the difference from the last sample
  };
  MetricsRegistry& registry_;
  std::map<std::pair<std::string, std::string>, std::unique_ptr<Series>> series_;
};

}  // namespace sluice::agents
