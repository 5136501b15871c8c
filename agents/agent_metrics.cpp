#include "agents/agent_metrics.hpp"

#include <memory>
#include <vector>

namespace sluice::agents {

namespace {

// One family per entry: name, help, the extra label (empty: none) and its values.
struct Family {
  const char* name;
  const char* help;
  const char* label;
  std::vector<const char*> values;
  bool counter;
};

const std::vector<Family>& families() {
  static const std::vector<Family> all = {
      {"sluice_agent_replicas",
       "Replicas of an agent revision: ready, desired by the autoscaler, reserve.",
       "state",
       {"ready", "desired", "reserve"},
       false},
      {"sluice_activator_requests_in_flight", "Requests of a revision on a replica now.", "", {""}, false},
      {"sluice_activator_requests_waiting",
       "Requests of a revision waiting in the activator for a replica.",
       "",
       {""},
       false},
      {"sluice_activator_requests_total",
       "Requests of a revision by outcome: completed on a replica, rejected with 503 (buffer full), "
       "timeout (504, no replica in time).",
       "outcome",
       {"completed", "rejected", "timeout"},
       true},
      {"sluice_activator_service_seconds_total",
       "Time replicas of a revision spent on completed requests.",
       "",
       {""},
       true},
      {"sluice_activator_retries_total",
       "Requests of a revision sent again to another replica after theirs refused the connection.",
       "",
       {""},
       true},
      {"sluice_autoscaler_observed_concurrency",
       "Concurrency the autoscaler observed for a revision over its stable and panic windows.",
       "window",
       {"stable", "panic"},
       false},
      {"sluice_autoscaler_panic", "1 while the autoscaler is in panic mode for a revision.", "", {""}, false},
  };
  return all;
}

Labels labels_of(const std::string& agent, const std::string& revision, const Family& f, const char* value) {
  Labels labels{{"agent", agent}, {"revision", revision}};
  if (*f.label) labels.emplace_back(f.label, value);
  return labels;
}

}  // namespace

AgentMetrics::~AgentMetrics() {
  while (!series_.empty()) {
    auto key = series_.begin()->first;
    remove(key.first, key.second);
  }
}

void AgentMetrics::update(const std::string& agent, const std::string& revision, const RevisionSample& s) {
  auto& slot = series_[{agent, revision}];
  if (slot == nullptr) {
    slot = std::make_unique<Series>();
    auto* series = slot.get();
    for (const auto& f : families()) {
      for (const char* value : f.values) {
        if (f.counter) {
          series->counters.push_back(
              &registry_.counter(f.name, f.help, labels_of(agent, revision, f, value)));
        } else {
          series->gauges.push_back(&registry_.gauge(f.name, f.help, labels_of(agent, revision, f, value)));
        }
      }
    }
  }
  Series& m = *slot;
  const auto& d = s.decision;
  const double gauges[] = {static_cast<double>(s.ready),
                           static_cast<double>(s.desired),
                           static_cast<double>(s.reserve),
                           static_cast<double>(s.requests.in_flight),
                           static_cast<double>(s.requests.waiting),
                           d ? d->observed_stable : 0.0,
                           d ? d->observed_panic : 0.0,
                           d && d->in_panic ? 1.0 : 0.0};
  for (std::size_t i = 0; i < m.gauges.size(); ++i) m.gauges[i]->set(gauges[i]);
  const auto& now = s.requests;
  const double deltas[] = {static_cast<double>(now.completed - std::min(now.completed, m.last.completed)),
                           static_cast<double>(now.rejected - std::min(now.rejected, m.last.rejected)),
                           static_cast<double>(now.timed_out - std::min(now.timed_out, m.last.timed_out)),
                           now.service_seconds - m.last.service_seconds,
                           static_cast<double>(now.retried - std::min(now.retried, m.last.retried))};
  for (std::size_t i = 0; i < m.counters.size(); ++i) m.counters[i]->inc(deltas[i]);
  m.last = now;
}

void AgentMetrics::remove(const std::string& agent, const std::string& revision) {
  auto it = series_.find({agent, revision});
  if (it == series_.end()) return;
  series_.erase(it);
  for (const auto& f : families())
    for (const char* value : f.values) registry_.remove(f.name, labels_of(agent, revision, f, value));
}

}  // namespace sluice::agents
