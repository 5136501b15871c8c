#pragma once
// GPU inventory and placement for replicas: pure bookkeeping, no CUDA. The inventory comes from
// `nvidia-smi` or from `--gpus A100:80Gi,A100:80Gi,T4:16Gi`, so every rule is testable without a GPU.
//
// Placement rules:
//   - whole GPUs (`nvidia.com/gpu: N`) are exclusive, N GPUs of one class; a GPU that carries any memory
//     share is not handed out whole;
//   - memory shares (`sluice.dev/gpu-memory: 8Gi`) live on one GPU and are bin-packed best fit (the GPU
//     of the most preferred class with the least free memory that still fits);
//   - acceptable classes are tried in preference order (empty list: any class, in inventory order);
//   - a request that does not fit may preempt replicas of strictly lower priority: plan_preemption()
//     names them (fewest victims first, then the lowest priorities), the runtime drains them as on
//     scale-down and calls release(), then place() again.

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"

namespace sluice::agents {

struct Gpu {
  int index = 0;          // CUDA device index (the position in --gpus)
  std::string gpu_class;  // "A100", "T4": what gpu-classes match (case-insensitively)
  std::string name;       // the model name as nvidia-smi reports it ("NVIDIA A100-SXM4-80GB"), or the class
  std::int64_t memory_bytes = 0;
  bool operator==(const Gpu&) const = default;
};

struct GpuInventory {
  std::vector<Gpu> gpus;
  bool empty() const { return gpus.empty(); }
  /// "A100:80Gi,A100:80Gi,T4:16Gi" (parse_gpu_inventory's syntax).
  std::string to_string() const;
};

/// Parses `--gpus`: comma-separated CLASS:MEMORY entries ("A100:80Gi,T4:16Gi"); a GPU's index is its
/// position. Errors have subject "--gpus" and name the entry. "" is an empty inventory.
Result<GpuInventory> parse_gpu_inventory(std::string_view spec);

/// Parses `nvidia-smi --query-gpu=index,name,memory.total --format=csv,noheader,nounits` output
/// (memory in MiB), deriving each GPU's class from its name (gpu_class_from_name).
Result<GpuInventory> parse_nvidia_smi(std::string_view csv);

/// Runs nvidia-smi (found on PATH). Absent nvidia-smi, or one that finds no device, gives an empty
/// inventory, not an error; an error only when its output cannot be read. Blocks: call at startup, not
/// on an I/O thread.
Result<GpuInventory> detect_gpus();

/// "NVIDIA A100-SXM4-80GB" → "A100", "Tesla T4" → "T4", "NVIDIA H100 80GB HBM3" → "H100",
/// "NVIDIA L4" → "L4", "NVIDIA GeForce RTX 4090" → "RTX4090": vendor words dropped, the first model
/// word up to a '-', with RTX/GTX joined to the number that follows.
std::string gpu_class_from_name(std::string_view name);

/// One replica's GPU needs.
struct GpuRequest {
  std::string replica_id;            // unique among placed replicas (e.g. "summarizer-00002/3")
  int whole_gpus = 0;                // exclusive GPUs, all of one class
  std::int64_t memory_bytes = 0;     // or a share of one GPU (not both)
  std::vector<std::string> classes;  // acceptable classes in preference order; empty = any
  int priority = 0;
};

struct GpuPlacement {
  std::vector<int> gpu_indices;   // empty when the request needs no GPU
  std::int64_t memory_bytes = 0;  // the share (0 for whole GPUs)
  std::string gpu_class;
  bool operator==(const GpuPlacement&) const = default;
};

/// Error code of place() when the request cannot fit (the message says why).
inline constexpr int kUnschedulable = 1;

/// Environment for a replica: CUDA_VISIBLE_DEVICES=<indices comma-separated>, and
/// SLUICE_GPU_MEMORY=<bytes> for a share. Empty for a placement without GPUs (the runtime may then set
/// CUDA_VISIBLE_DEVICES="" to hide every GPU).
std::map<std::string, std::string> gpu_environment(const GpuPlacement& placement);

struct PreemptionPlan {
  /// True when the request fits after releasing `victims` (possibly none: it fits already).
  bool feasible = false;
  std::vector<std::string> victims;  // replica ids, lowest priority first
  std::vector<int> gpu_indices;      // where the request would go once they are released
  std::string reason;                // why it is infeasible (the Unschedulable message)
};

/// What is placed on one GPU (for status).
struct GpuUsage {
  Gpu gpu;
  std::string whole_owner;                     // replica holding it exclusively, or ""
  std::map<std::string, std::int64_t> shares;  // replica → bytes
  std::int64_t free_bytes = 0;
};

/// Thread-safe.
class GpuAllocator {
 public:
  explicit GpuAllocator(GpuInventory inventory);

  /// Places a request, or returns Error{subject=replica_id, code=kUnschedulable, message=the reason, e.g.
  /// "needs 2 whole GPUs of class A100; 1 free, 0 preemptible"}. A replica id already placed returns its
  /// existing placement. A request for no GPU succeeds with an empty placement and records nothing.
  Result<GpuPlacement> place(const GpuRequest& request);

  /// Frees what `replica_id` holds; false when it held nothing.
  bool release(std::string_view replica_id);

  /// The placement of a replica, if any.
  std::optional<GpuPlacement> placement_of(std::string_view replica_id) const;

  /// Which replicas of strictly lower priority must be released for `request` to fit: the fewest,
  /// then those of lowest priority, then the most preferred class. Does not change anything.
  PreemptionPlan plan_preemption(const GpuRequest& request) const;

  std::vector<GpuUsage> usage() const;
  const GpuInventory& inventory() const { return inventory_; }

 private:
  struct Holder {
    std::vector<std::size_t> gpus;  // positions in inventory_.gpus
    std::int64_t memory_bytes = 0;
    int priority = 0;
    std::string gpu_class;
  };
  struct GpuState {
    std::string whole_owner;
    std::map<std::string, std::int64_t> shares;
    std::int64_t used = 0;
  };

  std::vector<std::vector<std::size_t>> class_groups(const GpuRequest& request) const;
  std::optional<std::vector<std::size_t>> fit(const GpuRequest& request,
                                              const std::vector<GpuState>& state) const;
  PreemptionPlan plan_locked(const GpuRequest& request) const;
  std::string describe(const GpuRequest& request) const;
  GpuPlacement placement_from(const Holder& holder) const;

  GpuInventory inventory_;
  mutable std::mutex mu_;
  std::vector<GpuState> state_;
  std::map<std::string, Holder, std::less<>> holders_;
};

}  // namespace sluice::agents
