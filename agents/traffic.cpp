#include "agents/traffic.hpp"

#include <algorithm>
#include <cmath>
#include <map>

namespace sluice::agents {

namespace {

/// splitmix64's finalizer: spreads sequential or poorly mixed inputs over all 64 bits.
std::uint64_t mix64(std::uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

/// Divides `total` into integer parts proportional to `weights` (largest remainder; ties to the first).
std::vector<int> apportion(int total, const std::vector<double>& weights) {
  std::vector<int> out(weights.size(), 0);
  double sum = 0;
  for (double w : weights) sum += w;
  if (weights.empty() || sum <= 0 || total <= 0) return out;
  std::vector<std::pair<double, std::size_t>> remainders;
  int given = 0;
  for (std::size_t i = 0; i < weights.size(); ++i) {
    double exact = total * weights[i] / sum;
    out[i] = static_cast<int>(std::floor(exact));
    given += out[i];
    remainders.push_back({exact - out[i], i});
  }
  std::stable_sort(remainders.begin(), remainders.end(),
                   [](const auto& a, const auto& b) { return a.first > b.first; });
  for (std::size_t k = 0; given < total && k < remainders.size(); ++k, ++given)
    out[remainders[k].second] += 1;
  return out;
}

struct RolloutStep {
  std::int64_t step = 0;   // 1..steps
  std::int64_t steps = 1;  // N
};

std::int64_t rollout_steps(std::chrono::milliseconds duration) {
  return std::clamp<std::int64_t>(duration.count() / 1000, 1, 100);
}

/// Where the rollout stands at `now`; nullopt when there is none or it is over.
std::optional<RolloutStep> rollout_step(const RolloutState& r, SteadyTime now) {
  if (r.previous.empty() || r.duration.count() <= 0) return std::nullopt;
  std::int64_t n = rollout_steps(r.duration);
  auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(now - r.started).count();
  if (elapsed < 0) elapsed = 0;
  std::int64_t s = std::min<std::int64_t>(n, elapsed * n / r.duration.count() + 1);
  if (s >= n) return std::nullopt;
  return RolloutStep{s, n};
}

/// The latest revision's part (in percent of the latestRevision share, possibly fractional) at a step.
double latest_share(const RolloutState& r, const RolloutStep& step) {
  int others = 0;
  for (const auto& [rev, w] : r.previous) others += w;
  double head_start = 100.0 - std::min(100, others);
  return head_start + (100.0 - head_start) * static_cast<double>(step.step) / static_cast<double>(step.steps);
}

}  // namespace

std::string latest_ready_revision(const std::vector<RevisionInfo>& revisions) {
  for (auto it = revisions.rbegin(); it != revisions.rend(); ++it) {
    if (it->ready) return it->name;
  }
  return revisions.empty() ? "" : revisions.back().name;
}

std::uint64_t traffic_key_hash(std::string_view key) {
  std::uint64_t h = 0xcbf29ce484222325ULL;  // FNV-1a 64
  for (unsigned char c : key) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return mix64(h);
}

Result<TrafficTable> TrafficTable::build(const std::vector<TrafficTarget>& traffic,
                                         const std::vector<RevisionInfo>& revisions) {
  std::string latest = latest_ready_revision(revisions);
  std::vector<ResolvedTarget> resolved;
  for (std::size_t i = 0; i < traffic.size(); ++i) {
    const auto& t = traffic[i];
    if (t.latest_revision) {
      if (latest.empty()) {
        return make_error("spec.traffic[" + std::to_string(i) + "].latestRevision",
                          "the agent has no revision yet");
      }
      resolved.push_back({latest, t.percent, t.tag, true});
    } else {
      bool exists = std::any_of(revisions.begin(), revisions.end(),
                                [&](const RevisionInfo& r) { return r.name == t.revision_name; });
      if (!exists) {
        return make_error("spec.traffic[" + std::to_string(i) + "].revisionName",
                          "revision \"" + t.revision_name + "\" does not exist");
      }
      resolved.push_back({t.revision_name, t.percent, t.tag, false});
    }
  }
  return from_resolved(std::move(resolved), revisions);
}

Result<TrafficTable> TrafficTable::from_resolved(std::vector<ResolvedTarget> targets,
                                                 const std::vector<RevisionInfo>& revisions) {
  TrafficTable table;
  std::map<std::string, int> percent_by_revision;
  int total = 0;
  for (std::size_t i = 0; i < targets.size(); ++i) {
    const auto& t = targets[i];
    bool exists = std::any_of(revisions.begin(), revisions.end(),
                              [&](const RevisionInfo& r) { return r.name == t.revision; });
    if (!exists) {
      return make_error("spec.traffic[" + std::to_string(i) + "]",
                        "revision \"" + t.revision + "\" does not exist");
    }
    if (t.percent < 0 || t.percent > 100) {
      return make_error("spec.traffic[" + std::to_string(i) + "].percent", "must be between 0 and 100");
    }
    total += t.percent;
    if (t.percent > 0) percent_by_revision[t.revision] += t.percent;
    if (!t.tag.empty()) {
      bool dup = std::any_of(table.tags_.begin(), table.tags_.end(),
                             [&](const auto& p) { return p.first == t.tag; });
      if (dup)
        return make_error("spec.traffic[" + std::to_string(i) + "].tag",
                          "tag \"" + t.tag + "\" is used twice");
      table.tags_.push_back({t.tag, t.revision});
    }
  }
  if (!targets.empty() && total != 100) {
    return make_error("spec.traffic",
                      "percents add up to " + std::to_string(total) + "; they must add up to 100");
  }
  // Newest first, so that in a rollout the newest revision's range [0, p) grows and sticky keys only
  // ever move from older revisions to it.
  for (auto it = revisions.rbegin(); it != revisions.rend(); ++it) {
    auto found = percent_by_revision.find(it->name);
    if (found == percent_by_revision.end()) continue;
    table.split_.push_back({it->name, found->second});
    percent_by_revision.erase(found);
  }
  int cumulative = 0;
  for (const auto& [rev, pct] : table.split_) {
    cumulative += pct;
    table.cumulative_.push_back(cumulative);
  }
  table.targets_ = std::move(targets);
  return table;
}

const std::string* TrafficTable::pick(std::uint64_t random_or_key_hash) const {
  if (split_.empty()) return nullptr;
  int bucket = static_cast<int>(mix64(random_or_key_hash) % 100);
  for (std::size_t i = 0; i < cumulative_.size(); ++i) {
    if (bucket < cumulative_[i]) return &split_[i].first;
  }
  return &split_.back().first;
}

const std::string* TrafficTable::by_tag(std::string_view tag) const {
  for (const auto& [t, rev] : tags_) {
    if (t == tag) return &rev;
  }
  return nullptr;
}

bool TrafficTable::routes_to(std::string_view revision) const {
  for (const auto& [rev, pct] : split_) {
    if (rev == revision) return true;
  }
  for (const auto& [t, rev] : tags_) {
    if (rev == revision) return true;
  }
  return false;
}

RolloutState begin_rollout(const RolloutState& current, std::string new_latest,
                           std::chrono::milliseconds duration, SteadyTime now) {
  if (new_latest == current.latest) return current;
  RolloutState next;
  next.started = now;
  next.duration = duration;
  if (current.latest.empty() || duration.count() <= 0) {
    next.latest = std::move(new_latest);
    return next;
  }
  // The division of the latestRevision share right now, in percent.
  std::vector<std::string> names;
  std::vector<double> weights;
  auto step = rollout_step(current, now);
  if (!step) {
    names.push_back(current.latest);
    weights.push_back(100.0);
  } else {
    double latest = latest_share(current, *step);
    names.push_back(current.latest);
    weights.push_back(latest);
    double others = 0;
    for (const auto& [rev, w] : current.previous) others += w;
    for (const auto& [rev, w] : current.previous) {
      names.push_back(rev);
      weights.push_back(others > 0 ? (100.0 - latest) * w / others : 0);
    }
  }
  auto parts = apportion(100, weights);
  std::map<std::string, int> merged;
  for (std::size_t i = 0; i < names.size(); ++i) merged[names[i]] += parts[i];
  // Keep the order of `names` (latest first) for stable output.
  for (const auto& name : names) {
    auto it = merged.find(name);
    if (it == merged.end()) continue;
    if (name != new_latest && it->second > 0) next.previous.push_back({name, it->second});
    merged.erase(it);
  }
  next.latest = std::move(new_latest);
  return next;
}

std::vector<ResolvedTarget> effective_traffic(const std::vector<TrafficTarget>& spec_traffic,
                                              const RolloutState& rollout, SteadyTime now) {
  std::vector<ResolvedTarget> out;
  auto step = rollout_step(rollout, now);
  for (const auto& t : spec_traffic) {
    if (!t.latest_revision) {
      out.push_back({t.revision_name, t.percent, t.tag, false});
      continue;
    }
    if (!step) {
      out.push_back({rollout.latest, t.percent, t.tag, true});
      continue;
    }
    double share = latest_share(rollout, *step);
    int latest_part = std::min(t.percent, static_cast<int>(std::floor(t.percent * share / 100.0 + 1e-9)));
    out.push_back({rollout.latest, latest_part, t.tag, true});
    std::vector<double> weights;
    for (const auto& [rev, w] : rollout.previous) weights.push_back(w);
    auto parts = apportion(t.percent - latest_part, weights);
    for (std::size_t i = 0; i < parts.size(); ++i) {
      if (parts[i] > 0) out.push_back({rollout.previous[i].first, parts[i], "", true});
    }
  }
  return out;
}

bool rollout_finished(const RolloutState& rollout, SteadyTime now) {
  return !rollout_step(rollout, now);
}

std::optional<SteadyTime> next_rollout_step(const RolloutState& rollout, SteadyTime now) {
  auto step = rollout_step(rollout, now);
  if (!step) return std::nullopt;
  // The smallest elapsed e with floor(e * N / D) >= s, i.e. e = ceil(s * D / N).
  std::int64_t d = rollout.duration.count();
  std::int64_t e = (step->step * d + step->steps - 1) / step->steps;
  return rollout.started + std::chrono::milliseconds(e);
}

}  // namespace sluice::agents
