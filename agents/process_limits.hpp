#pragma once
// The limits of one replica process (ProcessLimits, from the container's resources.limits), applied
// right after it is spawned: posix_spawn has no hook between fork and exec, and when it returns the
// new program is at its first instructions.
//
//   - open files: RLIMIT_NOFILE, soft and hard, with prlimit(2);
//   - memory: a memory cgroup of the replica's own, under the server's own cgroup (or the directory
//     given by --cgroup-parent), when the server may make one (the cgroup v1 memory hierarchy, or cgroup v2
//     where the memory controller is delegated to the server's cgroup: the server then moves itself into the
//     leaf sluice-server, enables memory for the cgroup's children and puts each replica in a sibling);
//     otherwise RLIMIT_AS, the address-space limit (which counts reserved as well as used memory: fine for
//     plain processes, too strict for CUDA or sanitizers).
//
// With a cgroup, a replica that the kernel's OOM killer stops is reported as OOMKilled, as Kubernetes
// does. The cgroup is removed with this object (after the process exited).

#include <sys/types.h>

#include <cstdint>
#include <string>

#include "agents/agent_spec.hpp"
#include "core/result.hpp"

namespace sluice::agents {

/// Where replicas' memory cgroups go (`sluice serve --cgroup-parent`): "auto" (the default: the server's
/// own cgroup, as above), "none" (RLIMIT_AS only), or the absolute path of a cgroup directory made for
/// them (a cgroup v2 directory whose cgroup.controllers lists memory, or a cgroup v1 memory
/// directory). The error says why a directory cannot be used. Takes effect for replicas started after.
Status set_cgroup_parent(const std::string& setting);

/// Whether this process may give its children memory cgroups (see above).
bool memory_cgroups_available();

namespace detail {
/// Where the cgroup v2 hierarchy is mounted (/sys/fs/cgroup, or /sys/fs/cgroup/unified beside v1);
/// empty when it is not.
std::string cgroup2_mount();
/// cgroup v2: makes `controller` available to new children of the cgroup directory `dir`, which holds
/// this process, and returns `dir`. When the kernel refuses because processes are in `dir` (only the
/// root may hold processes and give controllers to children), moves this process into the leaf
/// `dir/sluice-server` first. The error says why it cannot be done (controller not delegated to `dir`,
/// no permission, other processes in `dir`).
Result<std::string> delegate_controller(const std::string& dir, const std::string& controller);
}  // namespace detail

class ReplicaLimits {
 public:
  /// `name`: unique among the server's replicas ("agent.revision.replica").
  ReplicaLimits(ProcessLimits limits, std::string name);
  ~ReplicaLimits();
  ReplicaLimits(const ReplicaLimits&) = delete;
  ReplicaLimits& operator=(const ReplicaLimits&) = delete;

  /// Applies the limits to a process just spawned. The error says which limit could not be applied.
  Status apply(pid_t pid);
  /// After the process exited: whether the OOM killer stopped a process of its cgroup since apply().
  bool oom_killed() const;
  /// For logs: "memory 128Mi (cgroup /sys/fs/cgroup/memory/…), open files 256".
  std::string describe() const;

 private:
  ProcessLimits limits_;
  std::string name_;
  std::string cgroup_;  // the replica's cgroup directory; empty: RLIMIT_AS (or no memory limit)
  bool cgroup_v2_ = false;
  std::int64_t oom_kills_at_apply_ = 0;
};

}  // namespace sluice::agents
