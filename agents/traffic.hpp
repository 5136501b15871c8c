#pragma once
// Traffic resolution for an Agent (Knative Route semantics): which revision a request goes to, by
// percentage split, by tag, or sticky by key; and Knative's gradual rollout of a new latest revision.
//
// The server keeps one TrafficTable per agent and rebuilds it whenever spec.traffic, the revisions'
// readiness or the rollout step changes; the activator calls pick()/by_tag() per request (const, no
// locks, no allocation: share the table through a shared_ptr<const TrafficTable> and swap it).

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "agents/agent_spec.hpp"
#include "core/clock.hpp"
#include "core/result.hpp"

namespace sluice::agents {

/// A revision that exists, as the server knows it.
struct RevisionInfo {
  std::string name;    // "NAME-00003"
  bool ready = false;  // has become ready at least once (a revision scaled to zero stays ready)
};

/// A traffic target with `latestRevision` resolved to a revision name.
struct ResolvedTarget {
  std::string revision;
  int percent = 0;
  std::string tag;
  bool latest = false;  // came from a latestRevision: true target
  bool operator==(const ResolvedTarget&) const = default;
};

/// The revision `latestRevision: true` points at: the newest ready revision of `revisions` (listed in
/// creation order, oldest first); when none is ready yet, the newest revision (requests then wait in
/// the activator while it starts); "" when there are no revisions.
std::string latest_ready_revision(const std::vector<RevisionInfo>& revisions);

/// A 64-bit key hash for sticky routing (partitionkey, session id): equal keys, equal hashes, in every
/// process. Pass it to TrafficTable::pick().
std::uint64_t traffic_key_hash(std::string_view key);

class TrafficTable {
 public:
  TrafficTable() = default;

  /// Resolves spec.traffic (latestRevision → latest_ready_revision) against the existing revisions.
  /// Errors name the target ("spec.traffic[1].revisionName": revision not found) or "spec.traffic"
  /// when there is no revision at all.
  static Result<TrafficTable> build(const std::vector<TrafficTarget>& traffic,
                                    const std::vector<RevisionInfo>& revisions);

  /// From targets already resolved (effective_traffic's output, during a rollout). Every revision must
  /// exist in `revisions`; percents must add up to 100.
  static Result<TrafficTable> from_resolved(std::vector<ResolvedTarget> targets,
                                            const std::vector<RevisionInfo>& revisions);

  /// The revision for one request. `random_or_key_hash` is a uniform random number per request, or
  /// traffic_key_hash(key) so that a key keeps going to the same revision while the split is unchanged
  /// (during a rollout keys only move from older revisions to the newest one). nullptr when empty.
  const std::string* pick(std::uint64_t random_or_key_hash) const;

  /// The revision behind a tag (tags with 0% included), nullptr for an unknown tag.
  const std::string* by_tag(std::string_view tag) const;

  /// The resolved targets as given (for status): revision, percent, tag, latest.
  const std::vector<ResolvedTarget>& targets() const { return targets_; }

  /// Percent per revision, merged (a revision named twice adds up), newest first.
  const std::vector<std::pair<std::string, int>>& split() const { return split_; }

  /// True when `revision` gets traffic or carries a tag (the server must keep it).
  bool routes_to(std::string_view revision) const;

  bool empty() const { return split_.empty(); }

 private:
  std::vector<ResolvedTarget> targets_;
  std::vector<std::pair<std::string, int>> split_;  // percent > 0 only, newest first
  std::vector<int> cumulative_;                     // in basis points (percent × 100), ending at 10000
  std::vector<std::pair<std::string, std::string>> tags_;  // tag → revision
};

/// A rollout in progress: the share of the `latestRevision: true` targets moves from `previous`
/// revisions to `latest` in steps over `duration` (Knative's serving.knative.dev/rollout-duration).
struct RolloutState {
  std::string latest;  // the revision latestRevision resolves to now
  /// How the latestRevision share was divided when this rollout began (percent of that share, adding up
  /// to 100). Empty: no rollout, `latest` has the whole share.
  std::vector<std::pair<std::string, int>> previous;
  SteadyTime started{};
  std::chrono::milliseconds duration{0};
  bool operator==(const RolloutState&) const = default;
};

/// Called when the newest ready revision changes to `new_latest`: takes the division of the
/// latestRevision share at `now` (an unfinished rollout included) as the starting point of a new
/// rollout to `new_latest`. With duration 0, or no previous latest, the switch is immediate.
RolloutState begin_rollout(const RolloutState& current, std::string new_latest,
                           std::chrono::milliseconds duration, SteadyTime now);

/// The traffic to apply at `now`: spec.traffic with latestRevision resolved through `rollout`. The
/// latest revision's part of a latestRevision target with share P grows in N = clamp(duration / 1 s, 1, P)
/// equal steps, the first at once and one every duration / N (Knative moves at least 1% per step and
/// at most one step a second); previous revisions keep the rest, proportionally. Percents stay
/// integers that add up to 100. Pure: the server calls it on its tick and rebuilds the table when the
/// result changes.
std::vector<ResolvedTarget> effective_traffic(const std::vector<TrafficTarget>& spec_traffic,
                                              const RolloutState& rollout, SteadyTime now);

/// True when the rollout has finished by `now` (or there is none): `previous` can be dropped.
bool rollout_finished(const RolloutState& rollout, SteadyTime now);

/// The next time effective_traffic() changes, or nullopt when it no longer will.
std::optional<SteadyTime> next_rollout_step(const RolloutState& rollout, SteadyTime now);

}  // namespace sluice::agents
