#include "autoscaler/autoscaler.hpp"

#include <algorithm>
#include <utility>

#include "autoscaler/queue_depth.hpp"
#include "core/fs.hpp"
#include "core/log.hpp"

namespace sluice::autoscaler {

struct Autoscaler::Revision {
  Revision(std::string n, const RevisionSpec& s, const AutoscalerConfig& config, SteadyTime now)
      : name(std::move(n)),
        spec(s),
        decider_spec(make_decider_spec(s, config)),
        decider(make_decider_state(decider_spec, 0, now, config.tick_interval)),
        stable(s.stable_window),
        panic(s.panic_window) {
    if (s.initial_scale == 0) {
      // Knative does not scale a revision with initial-scale 0 up on creation.
      activity = ActivityState{
          false, now - std::max(config.scale_to_zero_grace_period, s.scale_to_zero_pod_retention)};
    } else {
      activity = ActivityState{true, now};
    }
    last.revision = name;
  }

  std::string name;
  RevisionSpec spec;
  DeciderSpec decider_spec;
  DeciderState decider;
  BucketWindow stable;
  BucketWindow panic;
  std::int32_t ready_pods = 0;
  double backlog = 0;
  bool reachable = true;
  std::int32_t reserve = 0;
  std::optional<Millis> startup_time;
  bool initial_scale_reached = false;
  ActivityState activity;
  std::optional<PredictiveModel> predictive;
  Decision last;
};

Autoscaler::Autoscaler(const Clock& clock, AutoscalerConfig config, std::string profile_dir,
                       PredictiveOptions predictive_options)
    : clock_(clock),
      config_(std::move(config)),
      profile_dir_(std::move(profile_dir)),
      predictive_options_(predictive_options) {}

Autoscaler::~Autoscaler() = default;

std::string Autoscaler::profile_path(const std::string& revision) const {
  std::string file;
  for (char c : revision) {
    const bool safe = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '-' || c == '_' || c == '.';
    file.push_back(safe ? c : '_');
  }
  return profile_dir_ + "/" + file + ".predictive.json";
}

Status Autoscaler::add_revision(const std::string& revision,
                                const std::map<std::string, std::string>& annotations,
                                std::int32_t container_concurrency) {
  auto spec = parse_revision_spec(annotations, container_concurrency, config_);
  if (!spec) return spec.error();
  return add_revision_spec(revision, spec.value());
}

Status Autoscaler::add_revision_spec(const std::string& revision, const RevisionSpec& spec) {
  if (revision.empty()) return make_error("revision", "name must not be empty");
  // Load a profile before taking the lock: file I/O.
  std::optional<PredictiveModel> loaded;
  if (spec.predictive && !profile_dir_.empty()) {
    const std::string path = profile_path(revision);
    if (auto model = PredictiveModel::load(path)) {
      loaded = std::move(model).value();
    } else if (read_file(path)) {
      SLUICE_LOG(autoscaler, warn, "[rev={}] ignoring unreadable predictive profile: {}", revision,
                 model.error().to_string());
    }
  }
  const SteadyTime now = clock_.now();
  std::lock_guard lock(mu_);
  auto it = revisions_.find(revision);
  if (it == revisions_.end()) {
    auto r = std::make_unique<Revision>(revision, spec, config_, now);
    if (spec.predictive) r->predictive = loaded ? std::move(*loaded) : PredictiveModel(predictive_options_);
    revisions_.emplace(revision, std::move(r));
    return ok();
  }
  Revision& r = *it->second;
  const RevisionSpec old = r.spec;
  r.spec = spec;
  r.decider_spec = make_decider_spec(spec, config_, r.reachable);
  if (old.stable_window != spec.stable_window) r.stable = BucketWindow(spec.stable_window);
  if (old.panic_window != spec.panic_window) r.panic = BucketWindow(spec.panic_window);
  if (old.metric != spec.metric) {
    r.stable = BucketWindow(spec.stable_window);
    r.panic = BucketWindow(spec.panic_window);
  }
  // Knative keeps the delay window made with the decider; Sluice revisions are immutable, so a
  // changed delay only comes from a direct update, and the new delay should hold from now on.
  if (old.scale_down_delay != spec.scale_down_delay) {
    r.decider.delay_window.reset();
    if (spec.scale_down_delay.count() > 0)
      r.decider.delay_window.emplace(spec.scale_down_delay, config_.tick_interval);
  }
  if (!spec.predictive) {
    r.predictive.reset();
  } else if (!r.predictive) {
    r.predictive = loaded ? std::move(*loaded) : PredictiveModel(predictive_options_);
  }
  return ok();
}

bool Autoscaler::remove_revision(const std::string& revision) {
  std::lock_guard lock(mu_);
  return revisions_.erase(revision) > 0;
}

bool Autoscaler::has_revision(const std::string& revision) const {
  std::lock_guard lock(mu_);
  return find(revision) != nullptr;
}

std::size_t Autoscaler::revision_count() const {
  std::lock_guard lock(mu_);
  return revisions_.size();
}

std::optional<RevisionSpec> Autoscaler::revision_spec(const std::string& revision) const {
  std::lock_guard lock(mu_);
  const Revision* r = find(revision);
  if (r == nullptr) return std::nullopt;
  return r->spec;
}

Autoscaler::Revision* Autoscaler::find(const std::string& revision) {
  auto it = revisions_.find(revision);
  return it == revisions_.end() ? nullptr : it->second.get();
}

const Autoscaler::Revision* Autoscaler::find(const std::string& revision) const {
  auto it = revisions_.find(revision);
  return it == revisions_.end() ? nullptr : it->second.get();
}

bool Autoscaler::record(const std::string& revision, const MetricSample& sample, SteadyTime now) {
  std::lock_guard lock(mu_);
  Revision* r = find(revision);
  if (r == nullptr) return false;
  const double value = r->spec.metric == ScalingMetric::rps ? sample.requests : sample.concurrency;
  if (!(value >= 0)) return true;  // negative or NaN: a reporter bug, not load
  r->stable.record(now, value);
  r->panic.record(now, value);
  return true;
}

bool Autoscaler::record(const std::string& revision, const MetricSample& sample) {
  return record(revision, sample, clock_.now());
}

bool Autoscaler::set_ready_pods(const std::string& revision, std::int32_t ready_pods) {
  std::lock_guard lock(mu_);
  Revision* r = find(revision);
  if (r == nullptr) return false;
  r->ready_pods = std::max<std::int32_t>(0, ready_pods);
  return true;
}

bool Autoscaler::set_backlog(const std::string& revision, double backlog) {
  std::lock_guard lock(mu_);
  Revision* r = find(revision);
  if (r == nullptr) return false;
  r->backlog = backlog > 0 ? backlog : 0;
  return true;
}

bool Autoscaler::set_reachable(const std::string& revision, bool reachable) {
  std::lock_guard lock(mu_);
  Revision* r = find(revision);
  if (r == nullptr) return false;
  r->reachable = reachable;
  r->decider_spec.reachable = reachable;
  return true;
}

bool Autoscaler::set_reserve(const std::string& revision, std::int32_t reserve_replicas) {
  std::lock_guard lock(mu_);
  Revision* r = find(revision);
  if (r == nullptr) return false;
  r->reserve = std::max<std::int32_t>(0, reserve_replicas);
  return true;
}

bool Autoscaler::set_startup_time(const std::string& revision, Millis startup_time) {
  std::lock_guard lock(mu_);
  Revision* r = find(revision);
  if (r == nullptr) return false;
  r->startup_time = std::max(startup_time, Millis(0));
  return true;
}

Decision Autoscaler::evaluate(Revision& r, SteadyTime now, WallTime wall) {
  const bool scaled = r.ready_pods > 0 || r.last.desired_replicas > 0;
  if (scaled) {
    // A second nobody reported for had nothing in flight (Knative scrapes zero from idle pods). Only
    // seconds that are over: the current one may still get its report, and until then it is left out of
    // the averages, as Knative leaves out buckets not yet written, rather than counted as idle.
    const SteadyTime last_second = now - std::chrono::seconds(1);
    r.stable.record(last_second, 0);
    r.panic.record(last_second, 0);
  }
  Observation observed;
  observed.ready_pods = r.ready_pods;
  if (!r.stable.is_empty(now)) {
    observed.observed_stable = r.stable.window_average(now);
    observed.observed_panic = r.panic.window_average(now);
  }
  const bool was_panicking = r.decider.in_panic();
  const ScaleResult kpa = decide(r.decider_spec, r.decider, observed, now);

  Decision d;
  d.revision = r.name;
  d.scale_valid = kpa.scale_valid;
  d.excess_burst_capacity = kpa.excess_burst_capacity;
  d.in_panic = r.decider.in_panic();
  d.kpa_desired = kpa.desired_pod_count;
  d.observed_stable = observed.observed_stable;
  d.observed_panic = observed.observed_panic;
  if (!kpa.scale_valid) {
    d.desired_replicas = r.last.desired_replicas;
    r.last = d;
    return d;
  }

  d.backlog_desired =
      limit_scale_up(queue_depth_desired(r.backlog, r.spec.target_backlog, r.spec.activation_backlog, scaled),
                     r.decider_spec.max_scale_up_rate, r.ready_pods);
  std::int32_t want = std::max(kpa.desired_pod_count, d.backlog_desired);

  if (r.predictive) {
    r.predictive->observe(wall, observed.observed_panic);
    d.predicted_desired = r.predictive->desired_pods(wall, r.startup_time.value_or(r.spec.startup_time),
                                                     r.decider_spec.target_value);
    want = std::max(want, d.predicted_desired);
  }

  ScaleToZeroSettings zero;
  zero.enabled = config_.enable_scale_to_zero;
  zero.stable_window = r.spec.stable_window;
  zero.grace_period = config_.scale_to_zero_grace_period;
  zero.pod_retention = r.spec.scale_to_zero_pod_retention;
  want = apply_scale_to_zero(r.activity, zero, want, now);

  if (r.spec.initial_scale == 0 || r.ready_pods >= r.spec.initial_scale) r.initial_scale_reached = true;
  std::int32_t floor = std::max(r.spec.min_scale, r.reserve);
  if (!r.initial_scale_reached) floor = std::max(floor, r.spec.initial_scale);
  d.desired_replicas = apply_bounds(want, floor, r.spec.max_scale);

  if (d.in_panic != was_panicking) {
    SLUICE_LOG(autoscaler, info, "[rev={}] {} panic mode (panic-window desired {} for {} ready)", r.name,
               d.in_panic ? "entering" : "leaving", kpa.desired_pod_count, r.ready_pods);
  }
  if (d.desired_replicas != r.last.desired_replicas) {
    SLUICE_LOG(autoscaler, debug,
               "[rev={}] desired {} -> {} (kpa {} backlog {} predicted {} stable {} panic {})", r.name,
               r.last.desired_replicas, d.desired_replicas, d.kpa_desired, d.backlog_desired,
               d.predicted_desired, d.observed_stable, d.observed_panic);
  }
  r.last = d;
  return d;
}

std::optional<Decision> Autoscaler::poke(const std::string& revision) {
  const SteadyTime now = clock_.now();
  const WallTime wall = clock_.wall();
  std::lock_guard lock(mu_);
  Revision* r = find(revision);
  if (r == nullptr) return std::nullopt;
  return evaluate(*r, now, wall);
}

std::vector<Decision> Autoscaler::tick() {
  return tick(clock_.now(), clock_.wall());
}

std::vector<Decision> Autoscaler::tick(SteadyTime now, WallTime wall) {
  std::vector<Decision> decisions;
  std::lock_guard lock(mu_);
  decisions.reserve(revisions_.size());
  for (auto& [name, r] : revisions_) decisions.push_back(evaluate(*r, now, wall));
  return decisions;
}

std::optional<Decision> Autoscaler::last_decision(const std::string& revision) const {
  std::lock_guard lock(mu_);
  const Revision* r = find(revision);
  if (r == nullptr) return std::nullopt;
  return r->last;
}

Status Autoscaler::save_profiles() const {
  if (profile_dir_.empty()) return ok();
  std::vector<std::pair<std::string, std::string>> files;
  {
    std::lock_guard lock(mu_);
    for (const auto& [name, r] : revisions_) {
      if (r->predictive) files.emplace_back(profile_path(name), r->predictive->to_json());
    }
  }
  if (files.empty()) return ok();
  if (auto st = make_dirs(profile_dir_); !st) return st.error();
  for (const auto& [path, json] : files) {
    if (auto st = write_file_atomic(path, json); !st) return st.error();
  }
  return ok();
}

}  // namespace sluice::autoscaler
