#pragma once
// The agents runtime: Agent resources turned into revisions, replicas and routes.
//
//   apply(manifest) ─► RevisionHistory (NAME-0000N on disk) ─► per revision: Autoscaler entry,
//                      Activator entry, ReplicaProcess per replica (GPU placed by GpuAllocator)
//   route(agent, tag, key) ─► TrafficTable snapshot (split, tags, sticky keys, rollout steps)
//
// One reconciler thread owns every change of replica sets. It wakes on its own period (50 ms), on a
// replica's state change, and at once when the activator buffers a request for a revision (scale from
// zero without waiting for a tick). Per pass it
//   - every `metrics_interval` feeds the activator's per-revision load to the autoscaler and the
//     backlog of the triggers that deliver to each agent (split over its revisions by traffic share);
//   - every `autoscaler_tick` takes the autoscaler's decisions as the revisions' desired counts;
//   - steps rollouts and rebuilds the traffic table when the effective split changes;
//   - starts replicas up to the desired count (placing GPUs; preempting lower priorities; reporting
//     Unschedulable), drains the excess (closed in the activator, SIGTERM once idle or after the drain
//     grace, SIGKILL after it), and keeps the reserve replica of a revision at zero.
// Higher-priority revisions are reconciled first, so that GPUs freed by preemption go to them.
//
// Revisions that no traffic target routes to (and that are not the newest) scale to zero; they stay
// in the history and in status.
//
// Reserve instances (`sluice.dev/reserve-instance: enable`): when the autoscaler wants zero standard
// replicas of a routed revision that has been ready once, one reserve replica (the reserve container)
// runs instead; standard replicas are drained only once it is ready. The activator sends requests to a
// reserve replica only while no standard replica is routable and then asks for capacity at once; the
// reserve replica is drained as soon as a standard one is ready. The autoscaler's own reserve floor is
// not used: it would keep a standard replica instead of the reserve one.
//
// Thread-safe. Locks: the runtime's mutex may be held while calling the Activator, the Autoscaler, the
// GpuAllocator and non-blocking ReplicaProcess members, never the other way round; replica state
// callbacks take only the activator's and the wake-up mutexes.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "agents/activator.hpp"
#include "agents/agent_metrics.hpp"
#include "agents/agent_spec.hpp"
#include "agents/gpu.hpp"
#include "agents/replica_process.hpp"
#include "agents/revision_history.hpp"
#include "agents/traffic.hpp"
#include "autoscaler/autoscaler.hpp"
#include "core/clock.hpp"
#include "core/result.hpp"

namespace sluice::agents {

struct AgentRuntimeOptions {
  /// Revision history under agents/, replica logs under logs/, running replicas' pid files under replicas/.
  std::string data_dir;
  std::string host = "127.0.0.1";  // where replicas listen
  GpuInventory gpus;
  autoscaler::AutoscalerConfig autoscaler;
  std::chrono::milliseconds autoscaler_tick{2000};
  std::chrono::milliseconds metrics_interval{1000};
  /// How often the predictive profiles (sluice.dev/predictive) are written under
  /// DATA_DIR/autoscaler/, besides at stop.
  std::chrono::milliseconds profile_save_interval{60000};
  ActivatorOptions activator;
  RestartPolicy restart;
  /// Knative's revision garbage collection (max-non-active-revisions): per agent, revisions beyond
  /// this many that nothing routes to, that spec.traffic does not name, that are not the newest and
  /// that run no replica are removed, oldest first. Negative: keep every revision.
  int max_inactive_revisions = 20;
  /// Looks up `valueFrom: {secretKeyRef}` env values when a replica starts.
  SecretResolver resolve_secret;
  /// Where the revisions' series go (agents/agent_metrics.hpp); null: none.
  MetricsRegistry* metrics = nullptr;
};

/// Where one request goes.
struct RouteChoice {
  std::string revision;
  std::chrono::milliseconds timeout{300000};  // the revision's timeoutSeconds
  AgentProtocol protocol = AgentProtocol::Http;
};

/// Error code of route() for an unknown agent or tag.
inline constexpr int kUnknownAgent = 404;

class AgentRuntime {
 public:
  /// Called (on the reconciler thread, no lock held) when a revision first becomes ready (true) or
  /// goes away (false).
  using RevisionListener =
      std::function<void(const std::string& agent, const std::string& revision, bool ready)>;
  /// Events waiting per agent across the triggers that deliver to it. Called on the reconciler
  /// thread without the runtime's lock.
  using BacklogSource = std::function<std::map<std::string, double>()>;

  AgentRuntime(AgentRuntimeOptions options, Clock& clock);
  /// Stops (see stop()).
  ~AgentRuntime();
  AgentRuntime(const AgentRuntime&) = delete;
  AgentRuntime& operator=(const AgentRuntime&) = delete;

  void set_revision_listener(RevisionListener listener);
  void set_backlog_source(BacklogSource source);

  /// Starts the reconciler thread.
  void start();
  /// Stops the reconciler, closes every replica in the activator, waits for requests in flight (up
  /// to the longest drain grace), then SIGTERMs every replica and waits until they exited (SIGKILL
  /// after the grace). Idempotent.
  void stop();

  Status validate(const nlohmann::json& manifest) const;
  /// Creates or updates an agent; a new template makes a new revision. Errors name the field.
  Status apply(const nlohmann::json& manifest);
  /// Deletes an agent: its replicas drain and stop, its revision history goes.
  void remove(const std::string& agent);

  /// The status block of an agent (with "notReady" {status, reason, message} while not ready: status
  /// "Unknown" while the newest revision starts, "False" when it failed; see agents/readiness.hpp).
  nlohmann::json status(const std::string& agent) const;
  /// Every agent: [{name, protocol, revisions: [{name, ready, replicas, readyReplicas, traffic}],
  /// latestReadyRevision}].
  nlohmann::json describe() const;

  /// The revision for one request: by `tag` when not empty, else by the traffic split with
  /// `key_hash` (sticky) or a random number. Error 404 for an unknown agent or tag, 503 when the
  /// agent has no routable revision.
  Result<RouteChoice> route(std::string_view agent, std::string_view tag,
                            std::optional<std::uint64_t> key_hash) const;

  /// Replica log files of an agent (one revision, or all), each introduced by "==> REV/REPLICA <==",
  /// at most `tail_bytes` of each. Blocking file reads.
  Result<std::string> logs(const std::string& agent, const std::string& revision,
                           std::size_t tail_bytes) const;

  Activator& activator() { return activator_; }
  autoscaler::Autoscaler& autoscaler() { return autoscaler_; }
  const GpuAllocator& gpus() const { return gpus_; }

 private:
  struct Replica;
  struct Revision;
  struct Agent;
  struct Route;
  struct Pass;

  void run();
  void wake();
  void poke(const std::string& revision);
  void recheck(const std::string& revision, const std::string& replica);
  void pass();
  void save_profiles();
  void reconcile_agent(Agent& agent, SteadyTime now, Pass& out);
  void reconcile_revision(Agent& agent, Revision& revision, bool routed, SteadyTime now, Pass& out);
  bool start_replica(Agent& agent, Revision& revision, bool reserve, Pass& out);
  void drain(Revision& revision, Replica& replica, std::string why, SteadyTime now);
  void preempt(const std::string& replica_key, SteadyTime now);
  Revision* add_revision_locked(Agent& agent, const RevisionRecord& record);
  void publish_route_locked(Agent& agent);
  void collect_revisions_locked(Agent& agent);
  nlohmann::json status_locked(const Agent& agent) const;
  RevisionSample sample_locked(const Revision& revision) const;

  AgentRuntimeOptions options_;
  Clock& clock_;
  Activator activator_;
  autoscaler::Autoscaler autoscaler_;
  GpuAllocator gpus_;
  std::unique_ptr<AgentMetrics> metrics_;  // used by the reconciler thread only

  RevisionListener listener_;
  BacklogSource backlog_source_;

  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<Agent>, std::less<>> agents_;
  std::vector<std::unique_ptr<Replica>> graveyard_;  // stopped replicas, destroyed outside the lock
  std::vector<std::pair<std::string, std::string>> removed_revisions_;  // (agent, revision) to announce

  mutable std::shared_mutex route_mu_;
  std::map<std::string, std::shared_ptr<const Route>, std::less<>> routes_;

  std::mutex wake_mu_;
  std::condition_variable wake_cv_;
  bool woken_ = false;
  bool stopping_ = false;
  std::set<std::string> pokes_;
  std::set<std::pair<std::string, std::string>> rechecks_;  // (revision, replica) that cut a request off
  std::thread thread_;
  bool stopped_ = false;
  SteadyTime next_tick_{};
  SteadyTime next_metrics_{};
  SteadyTime next_profile_save_{};  // reconciler thread only
};

}  // namespace sluice::agents
