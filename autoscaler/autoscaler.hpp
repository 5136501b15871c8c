#pragma once
// The autoscaler service: many revisions, one decision per revision per tick.
//
// The agents runtime owns one Autoscaler and
//   - adds each revision with its annotations (`add_revision`), removes it when it is deleted;
//   - reports load with `record` (concurrency and requests seen for a revision, one sample per
//     reporter per second), ready replicas with `set_ready_pods`, and the backlog of the triggers
//     that deliver to the revision with `set_backlog`;
//   - calls `tick()` every tick interval (2 s by default) and applies each Decision's
//     `desired_replicas`;
//   - calls `poke(revision)` when a request is buffered for, or a backlog appears on, a revision at
//     zero, to scale it from zero at once instead of at the next tick.
//
// Per revision, a decision is (in this order):
//   1. the KPA decider (autoscaler/kpa.hpp) on the stable/panic window averages of the metric
//      chosen by `autoscaling.knative.dev/metric`;
//   2. max with the queue-depth answer (autoscaler/queue_depth.hpp), rate limited as the KPA's;
//   3. max with the predictive answer when `sluice.dev/predictive: enable` (autoscaler/predictive.hpp);
//   4. scale-to-zero rules (grace period, pod retention; autoscaler/scale_to_zero.hpp);
//   5. bounds: min-scale (raised to the reserve floor, and to initial-scale until first reached),
//      max-scale.
//
// A second in which nothing was recorded for a revision with replicas counts as zero load, as in
// Knative, whose scraper reads zero from idle pods. A revision at zero records nothing, so its
// windows empty after a stable window and the first request after that is averaged over a fresh
// partial window, as Knative does when the activator reports a revision at zero.
//
// Thread-safe: every public member takes one mutex. `tick` does no I/O and throws nothing;
// `save_profiles` writes files and must not run on an I/O thread.

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "autoscaler/config.hpp"
#include "autoscaler/kpa.hpp"
#include "autoscaler/predictive.hpp"
#include "autoscaler/scale_to_zero.hpp"
#include "autoscaler/window.hpp"
#include "core/clock.hpp"
#include "core/result.hpp"

namespace sluice::autoscaler {

/// Load seen for a revision during the second that contains the time it is recorded at.
/// Samples of one second add up (one per reporter: the activator, each replica's proxy).
struct MetricSample {
  double concurrency = 0;  // average requests in flight over the second
  double requests = 0;     // requests that arrived during the second (for metric rps)
};

/// The answer for one revision.
struct Decision {
  std::string revision;
  std::int32_t desired_replicas = 0;       // what the runtime should run now
  bool scale_valid = false;                // false: no fresh answer, desired_replicas repeats the last one
  std::int32_t excess_burst_capacity = 0;  // < 0: keep the activator in the request path
  bool in_panic = false;
  // The parts, for logs, metrics and the simulator.
  std::int32_t kpa_desired = 0;
  std::int32_t backlog_desired = 0;
  std::int32_t predicted_desired = 0;
  double observed_stable = 0;
  double observed_panic = 0;
};

class Autoscaler {
 public:
  /// `clock` gives `now` for tick()/poke() and the wall time the predictive profiles are keyed
  /// by. `profile_dir`, when not empty, is where predictive profiles are loaded from (on
  /// add_revision) and saved to (save_profiles), one `<revision>.predictive.json` each.
  explicit Autoscaler(const Clock& clock, AutoscalerConfig config = {}, std::string profile_dir = {},
                      PredictiveOptions predictive_options = {});
  ~Autoscaler();
  Autoscaler(const Autoscaler&) = delete;
  Autoscaler& operator=(const Autoscaler&) = delete;

  /// Adds a revision, or updates its spec (state and windows are kept when their sizes do not
  /// change). Errors name the annotation that is wrong; nothing changes then.
  Status add_revision(const std::string& revision, const std::map<std::string, std::string>& annotations,
                      std::int32_t container_concurrency = 0);
  Status add_revision_spec(const std::string& revision, const RevisionSpec& spec);
  /// False when the revision was unknown.
  bool remove_revision(const std::string& revision);
  bool has_revision(const std::string& revision) const;
  std::size_t revision_count() const;
  /// The resolved spec of a revision.
  std::optional<RevisionSpec> revision_spec(const std::string& revision) const;

  /// Adds a sample at `now`. False (and nothing recorded) for an unknown revision.
  bool record(const std::string& revision, const MetricSample& sample, SteadyTime now);
  bool record(const std::string& revision, const MetricSample& sample);  // at clock.now()
  /// Ready replicas of the revision, as the runtime counts them.
  bool set_ready_pods(const std::string& revision, std::int32_t ready_pods);
  /// Events waiting for the revision across the triggers that deliver to it.
  bool set_backlog(const std::string& revision, double backlog);
  /// Revisions that no route sends traffic to are unreachable: Knative lets them scale down
  /// without the max-scale-down-rate limit. Default reachable.
  bool set_reachable(const std::string& revision, bool reachable);
  /// Reserve instances: a floor like min-scale that also forbids scale to zero. Default 0.
  bool set_reserve(const std::string& revision, std::int32_t reserve_replicas);
  /// Measured replica startup time, replacing `sluice.dev/startup-time` as the predictive lead.
  bool set_startup_time(const std::string& revision, Millis startup_time);

  /// An immediate decision for one revision (scale from zero), at clock.now().
  std::optional<Decision> poke(const std::string& revision);
  /// Decisions for every revision, at clock.now() / clock.wall().
  std::vector<Decision> tick();
  /// Decisions for every revision at the given times (tests and the simulator drive time).
  std::vector<Decision> tick(SteadyTime now, WallTime wall);
  /// The last decision made for a revision.
  std::optional<Decision> last_decision(const std::string& revision) const;

  /// Writes the predictive profile of every predictive revision under profile_dir. No-op without
  /// profile_dir.
  Status save_profiles() const;

  const AutoscalerConfig& config() const { return config_; }

 private:
  struct Revision;
  Decision evaluate(Revision& r, SteadyTime now, WallTime wall);
  Revision* find(const std::string& revision);
  const Revision* find(const std::string& revision) const;
  std::string profile_path(const std::string& revision) const;

  const Clock& clock_;
  AutoscalerConfig config_;
  std::string profile_dir_;
  PredictiveOptions predictive_options_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, std::unique_ptr<Revision>> revisions_;
};

}  // namespace sluice::autoscaler
