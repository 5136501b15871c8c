#pragma once
// One replica of a revision as a local process: spawn, readiness probing, crash restarts with
// exponential backoff, graceful drain, and reaping.
//
// Lifecycle (ReplicaState):
//
//   start() ─► Starting ──probe passes──► Ready ──begin_drain()──► Draining ──stop(grace)──► Stopped
//                 ▲   ◄──probe fails N×──┘  │                                    (SIGTERM, then SIGKILL
//                 │                         │ exits / cannot start / never ready   after `grace`)
//                 └─── backoff elapsed ── Failed (reason; restarted after 1 s, 2 s, 4 s … up to the cap)
//
// The caller (the runtime) decides routing: it routes to a replica only while it is Ready, stops
// routing before begin_drain(), and calls stop(drain_grace) once the activator reports no request in
// flight. stop() alone also works (it drains without waiting for in-flight requests).
//
// Every replica owns one small worker thread that spawns (posix_spawn, never on an I/O thread), probes,
// reaps (waitpid on its own pid only) and signals; state callbacks run on that thread, in order.
// The process is started in its own process group and signals go to the whole group, so shell
// wrappers (`sh -c "…"`) do not leave children behind.

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include "agents/agent_spec.hpp"
#include "agents/process_limits.hpp"
#include "core/clock.hpp"
#include "core/result.hpp"

namespace sluice::agents {

enum class ReplicaState { Starting, Ready, Draining, Stopped, Failed };

std::string_view to_string(ReplicaState state);

/// Restarts of a crashed replica (Kubernetes' CrashLoopBackOff, with shorter steps for local work).
struct RestartPolicy {
  bool enabled = true;
  std::chrono::milliseconds initial_backoff{1000};
  std::chrono::milliseconds max_backoff{60000};
  /// A replica that stayed Ready this long before failing starts over at `initial_backoff`.
  std::chrono::milliseconds stable_period{60000};
};

/// Pure exponential-backoff bookkeeping on an injected clock's time points: 1 s, 2 s, 4 s, … capped,
/// reset after a stable period.
class RestartBackoff {
 public:
  explicit RestartBackoff(RestartPolicy policy = {}) : policy_(policy) {}
  /// The replica became ready at `now`.
  void on_ready(SteadyTime now) { ready_since_ = now; }
  /// The replica stopped being ready (without failing).
  void on_not_ready() { ready_since_.reset(); }
  /// The replica failed at `now`: returns how long to wait before the next start.
  std::chrono::milliseconds on_failure(SteadyTime now);
  /// Consecutive failures counted towards the current delay.
  int consecutive_failures() const { return consecutive_; }

 private:
  RestartPolicy policy_;
  int consecutive_ = 0;
  std::optional<SteadyTime> ready_since_;
};

struct ReplicaConfig {
  std::string agent;     // SLUICE_AGENT
  std::string revision;  // SLUICE_REVISION
  std::string replica;   // SLUICE_REPLICA (unique within the revision, e.g. "3")
  /// command, args, env, workingDir and readinessProbe are used (GPU needs are placed by the caller).
  Container container;
  /// Added last: gpu_environment(placement) and anything else the runtime sets. Wins over container env.
  std::map<std::string, std::string> extra_env;
  std::string host = "127.0.0.1";  // where the replica listens and is probed
  int port = 0;                    // PORT: chosen by the runtime (pick_free_port()); kept across restarts
  std::string log_path;            // stdout+stderr, appended; "" = /dev/null
  /// Holds "PID START_TIME" while the process runs, so that the next server can stop a replica that
  /// outlived a server killed without a shutdown (kill_leftover_replicas); "" = none.
  std::string pid_file;
  std::chrono::milliseconds progress_deadline{600000};  // the first readiness must come within
  RestartPolicy restart;
};

/// "<data_dir>/logs/<agent>/<revision>/<replica>.log".
std::string replica_log_path(const std::string& data_dir, const std::string& agent,
                             const std::string& revision, const std::string& replica);

/// "<data_dir>/replicas/<revision>.<replica>.pid".
std::string replica_pid_path(const std::string& data_dir, const std::string& revision,
                             const std::string& replica);

/// Stops the replicas that an earlier server left running (it was killed, or crashed, before it could
/// stop them): SIGKILL to the process group of every pid file under `dir` whose process still has the
/// recorded start time (a reused pid is left alone). Removes the files; returns the groups killed.
std::size_t kill_leftover_replicas(const std::string& dir);

/// A TCP port on `host` that was free a moment ago (bound to port 0, then closed).
Result<int> pick_free_port(const std::string& host = "127.0.0.1");

/// Runs one readiness check now (blocking up to the probe's timeout): TCP connect, or HTTP GET with a
/// 2xx/3xx answer. Returns an error saying what failed ("connection refused", "HTTP 503").
Status probe_once(const ReadinessProbe& probe, const std::string& host, int port);

class ReplicaProcess {
 public:
  /// Called on the replica's worker thread for each state change with a human-readable reason
  /// ("started pid 1234", "exited with code 3; restarting in 2s"). It may call the const accessors and
  /// begin_drain()/stop(); it must not destroy the ReplicaProcess.
  using StateCallback = std::function<void(ReplicaState, const std::string& reason)>;

  /// `clock` times restart backoff only (tests pass a ManualClock); probes, the progress deadline and
  /// the SIGKILL deadline run on real time, since they wait on a real process.
  ReplicaProcess(ReplicaConfig config, Clock& clock, StateCallback on_state = {});
  /// Kills the process group (SIGKILL) if it still runs, reaps it and joins the worker. No callback.
  ~ReplicaProcess();
  ReplicaProcess(const ReplicaProcess&) = delete;
  ReplicaProcess& operator=(const ReplicaProcess&) = delete;

  /// Starts the process on the worker thread; returns at once. Only the first call has an effect.
  void start();

  /// The caller has stopped routing to this replica: state Draining, no more restarts; the process
  /// keeps running so that in-flight requests finish.
  void begin_drain();

  /// SIGTERM to the process group now, SIGKILL if it has not exited after `grace`
  /// (drain_grace(template): timeoutSeconds × 1.2). Stopped once reaped. Returns at once.
  void stop(std::chrono::milliseconds grace);

  /// A request to this replica was cut off (reset, closed mid-response): checks now, on the worker
  /// thread, whether the process still runs and its readiness probe passes. A replica that is still
  /// ready is reported Ready again (the callback runs with its current state and reason), one that
  /// exited is reported as any exit is; a failed probe counts as any failed probe. No effect unless
  /// the process runs and is not draining.
  void recheck();

  /// Blocks until Stopped (or Failed with restarts disabled) or `timeout`; true when it got there.
  bool wait_stopped(std::chrono::milliseconds timeout);

  ReplicaState state() const;
  /// The reason of the last state change; while a started process has never passed its readiness
  /// probe, with the probe's last error ("started pid 12; readiness probe failing: HTTP GET /healthz
  /// answered 404").
  std::string reason() const;
  /// The running process's id, or -1.
  pid_t pid() const;
  /// Starts after the first one (each restart after a failure counts one).
  int restarts() const;
  /// Why the replica last failed ("exited with code 3", "OOMKilled: …"), "" if it never did: Kubernetes'
  /// lastState, kept while the restarted process starts.
  std::string last_failure() const;
  /// When a Failed replica will be started again (on the injected clock), if it will.
  std::optional<SteadyTime> next_restart_at() const;
  /// Failures in a row since the replica was last stably ready (the count behind the restart backoff):
  /// 2 or more without a readiness in between is Kubernetes' CrashLoopBackOff.
  int consecutive_failures() const;
  /// The last start was killed for not passing its readiness probe within the progress deadline;
  /// cleared when the probe passes (Knative's ProgressDeadlineExceeded).
  bool progress_deadline_exceeded() const;
  const ReplicaConfig& config() const { return config_; }
  /// "host:port" to proxy to.
  std::string address() const { return config_.host + ":" + std::to_string(config_.port); }

 private:
  enum class Phase { Idle, Spawn, Running, Terminating, Backoff, Done };

  void run();
  void spawn_locked(std::unique_lock<std::mutex>& lock);
  void on_exit_locked(int wait_status, std::unique_lock<std::mutex>& lock);
  void fail_locked(std::string reason, std::unique_lock<std::mutex>& lock);
  void probe_locked(std::unique_lock<std::mutex>& lock);
  void set_state_locked(ReplicaState state, std::string reason, std::unique_lock<std::mutex>& lock);
  void signal_group(int sig);
  void log_line(const std::string& line);

  const ReplicaConfig config_;
  Clock& clock_;
  StateCallback on_state_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  Phase phase_ = Phase::Idle;
  ReplicaState state_ = ReplicaState::Starting;
  std::string reason_ = "not started";
  pid_t pid_ = -1;
  bool draining_ = false;
  bool recheck_ = false;  // recheck() asked for a probe now
  std::optional<std::chrono::milliseconds> stop_grace_;
  bool shutdown_ = false;
  int restarts_ = 0;
  std::string last_failure_;
  bool deadline_exceeded_ = false;
  int attempts_ = 0;
  RestartBackoff backoff_;
  std::optional<SteadyTime> next_restart_;

  // Worker-thread only.
  bool ready_ = false;
  bool ever_ready_ = false;  // since the last spawn
  int probe_failures_ = 0;
  std::string exit_reason_override_;  // why the worker killed the process itself
  bool killed_at_deadline_ = false;   // ... for missing the progress deadline
  std::string last_probe_error_;      // written under mu_ (reason() reads it); cleared at each spawn
  std::chrono::steady_clock::time_point started_at_{};
  std::chrono::steady_clock::time_point next_probe_{};
  std::chrono::steady_clock::time_point kill_at_{};
  bool killed_ = false;
  bool terminated_by_deadline_ = false;
  std::unique_ptr<ReplicaLimits> limits_;  // null: the container sets no limit

  std::thread worker_;
};

}  // namespace sluice::agents
