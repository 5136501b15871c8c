#pragma once
// The Agent resource: a Knative Service (serving.knative.dev/v1) shape run as local processes.
//
// Accepted manifests (YAML is converted to JSON before it reaches this file):
//
//   apiVersion: sluice.dev/v1            # or serving.knative.dev/v1 with kind: Service
//   kind: Agent
//   metadata:
//     name: summarizer                   # DNS-1035 label, at most 57 characters
//     annotations:
//       serving.knative.dev/rollout-duration: 60s   # gradual rollout of a new latest revision
//   spec:
//     template:
//       metadata:
//         annotations:
//           autoscaling.knative.dev/min-scale: "0"  # kept verbatim for the autoscaler
//           sluice.dev/protocol: mcp                # http (default) | mcp | a2a
//           sluice.dev/priority: "10"               # integer, default 0; higher preempts lower on GPUs
//           sluice.dev/gpu-classes: "A100,L4"       # acceptable GPU classes, preference order
//           sluice.dev/reserve-instance: enable     # keep one reserve replica when scaled to zero
//           serving.knative.dev/progress-deadline: 10m  # first readiness must come within (default 600s)
//       spec:
//         containerConcurrency: 4        # 0 = unlimited (default)
//         timeoutSeconds: 300            # default 300; the drain grace is 1.2 x this
//         containers:
//         - command: [python3, agent.py] # required: the program started per replica
//           args: [--model, small]
//           workingDir: /srv/agent       # optional working directory
//           env: [{name: MODEL, value: small}]
//           readinessProbe:              # default: TCP connect to $PORT
//             httpGet: {path: /healthz}  # or tcpSocket: {}
//             periodSeconds: 1
//             failureThreshold: 3
//             initialDelaySeconds: 0
//             timeoutSeconds: 1
//           resources:
//             limits:
//               nvidia.com/gpu: 1              # whole GPUs (exclusive)
//               # sluice.dev/gpu-memory: 8Gi   # or a share of one GPU's memory (bin-packed)
//         reserve:                       # optional; only with sluice.dev/reserve-instance: enable
//           gpuClasses: [T4]             # or "T4,L4"
//           resources: {limits: {sluice.dev/gpu-memory: 4Gi}}  # absent: the reserve gets no GPU
//           env: [{name: MODEL, value: tiny}]   # merged over the main container's env
//           # command / args: replace the main container's when given
//     traffic:                           # absent: 100% to the latest ready revision
//     - {latestRevision: true, percent: 90}
//     - {revisionName: summarizer-00001, percent: 10, tag: stable}
//
// Knative fields without meaning for local processes (`image`, `imagePullPolicy`, `ports`, a container
// `name`, `securityContext`, `resources.requests`, cpu/memory limits, `serviceAccountName`) are accepted
// and ignored; any other unknown field is an error naming it. Sluice always chooses PORT itself.

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/result.hpp"
#include "core/secret_ref.hpp"

namespace sluice::agents {

/// How clients talk to the agent: plain HTTP (CloudEvents), MCP (Streamable HTTP) or A2A (JSON-RPC).
enum class AgentProtocol { Http, Mcp, A2a };

std::string_view to_string(AgentProtocol protocol);

struct EnvVar {
  std::string name;
  std::string value;
  std::optional<SecretRef> secret;  // valueFrom.secretKeyRef: looked up when a replica starts
  bool operator==(const EnvVar&) const = default;
};

/// Kubernetes readinessProbe semantics as the replica runtime applies them.
/// Until the first success the probe runs every `period_seconds` (every 10 ms when unset, as Knative's
/// queue-proxy probes aggressively); after it, every `period_seconds` (1 s when unset). After readiness,
/// `failure_threshold` consecutive failures make the replica not ready again (it is not killed).
struct ReadinessProbe {
  enum class Kind { TcpSocket, HttpGet };
  Kind kind = Kind::TcpSocket;
  std::string path = "/";  // HttpGet: any 2xx/3xx passes
  int port = 0;            // 0 = the replica's PORT (the only sensible value for local processes)
  int period_seconds = 0;  // 0 = unset (see above)
  int failure_threshold = 3;
  int initial_delay_seconds = 0;
  int timeout_seconds = 1;
  bool operator==(const ReadinessProbe&) const = default;
};

/// GPU needs of one replica: `whole_gpus` exclusive GPUs, or a `memory_bytes` share of one GPU, never
/// both. `classes` lists acceptable GPU classes ("A100", "L4"; matched case-insensitively) in preference
/// order; empty = any class.
struct GpuResources {
  int whole_gpus = 0;
  std::int64_t memory_bytes = 0;
  std::vector<std::string> classes;
  bool any() const { return whole_gpus > 0 || memory_bytes > 0; }
  bool operator==(const GpuResources&) const = default;
};

/// Limits of a replica process (resources.limits): `memory` (a memory cgroup where the server may make
/// one, else the address-space limit) and `sluice.dev/open-files`. 0 = none.
struct ProcessLimits {
  std::int64_t memory_bytes = 0;
  std::int64_t open_files = 0;
  bool any() const { return memory_bytes > 0 || open_files > 0; }
  bool operator==(const ProcessLimits&) const = default;
};

/// The one container of a revision, as a local process.
struct Container {
  std::vector<std::string> command;  // never empty after parse_agent
  std::vector<std::string> args;
  std::vector<EnvVar> env;
  std::string working_dir;  // empty = the sluice process's working directory
  ReadinessProbe readiness_probe;
  GpuResources gpu;
  ProcessLimits limits;
  bool operator==(const Container&) const = default;
};

/// spec.template: everything that, when changed, makes a new Revision.
struct AgentTemplate {
  std::map<std::string, std::string> annotations;  // spec.template.metadata.annotations, verbatim
  int container_concurrency = 0;                   // 0 = unlimited
  int timeout_seconds = 300;
  Container container;
  AgentProtocol protocol = AgentProtocol::Http;  // sluice.dev/protocol
  int priority = 0;                              // sluice.dev/priority
  std::size_t max_buffered = 0;                  // sluice.dev/max-buffered-requests; 0 = the server's
  /// The reserve replica's container when `sluice.dev/reserve-instance: enable`: the main container
  /// with `spec.template.spec.reserve` applied (no GPU unless the reserve asks for one).
  std::optional<Container> reserve;
  bool operator==(const AgentTemplate&) const = default;
};

/// One entry of spec.traffic. Exactly one of `revision_name` / `latest_revision` is set.
struct TrafficTarget {
  std::string revision_name;
  bool latest_revision = false;
  int percent = 0;
  std::string tag;  // empty = no tag
  bool operator==(const TrafficTarget&) const = default;
};

struct AgentSpec {
  std::string name;
  std::string api_version;                         // "sluice.dev/v1" or "serving.knative.dev/v1"
  std::map<std::string, std::string> annotations;  // metadata.annotations
  AgentTemplate revision_template;                 // spec.template
  std::vector<TrafficTarget> traffic;              // never empty: defaults to 100% latestRevision
  /// serving.knative.dev/rollout-duration (metadata or template annotations); 0 = switch at once.
  std::chrono::milliseconds rollout_duration{0};
  bool operator==(const AgentSpec&) const = default;
};

/// Parses and validates an Agent (or a Knative Service with a container `command`). The error's
/// `subject` is the field path ("spec.template.spec.containers[0].command", "spec.traffic[1].percent",
/// "spec.template.metadata.annotations[sluice.dev/priority]") and the message says what would be right.
Result<AgentSpec> parse_agent(const nlohmann::json& manifest);

/// The canonical JSON of a template (defaults filled in, keys sorted): what revisions store and hash.
nlohmann::json template_to_json(const AgentTemplate& revision_template);

/// Stable digest (hex SHA-256 of template_to_json) of spec.template: equal templates, equal hashes,
/// across processes and versions of nlohmann-json. A changed hash means a new revision.
std::string template_hash(const AgentSpec& spec);
std::string template_hash(const AgentTemplate& revision_template);

/// "NAME-00001" for generation 1. Generations above 99999 get more digits.
std::string revision_name(const std::string& agent, int generation);

/// The generation of "NAME-00042" (42) when it belongs to `agent`; nullopt otherwise.
std::optional<int> revision_generation(std::string_view agent, std::string_view revision);

/// How long a stopping replica may take to finish in-flight work after SIGTERM: timeoutSeconds x 1.2.
std::chrono::milliseconds drain_grace(const AgentTemplate& revision_template);

/// How long a new replica may take to become ready the first time before it is reported Failed:
/// serving.knative.dev/progress-deadline from the template annotations (default 600 s, Knative's).
std::chrono::milliseconds progress_deadline(const AgentTemplate& revision_template);

/// Annotation keys Sluice reads.
inline constexpr std::string_view kProtocolAnnotation = "sluice.dev/protocol";
inline constexpr std::string_view kPriorityAnnotation = "sluice.dev/priority";
inline constexpr std::string_view kGpuClassesAnnotation = "sluice.dev/gpu-classes";
inline constexpr std::string_view kMaxBufferedAnnotation = "sluice.dev/max-buffered-requests";
inline constexpr std::string_view kReserveInstanceAnnotation = "sluice.dev/reserve-instance";
inline constexpr std::string_view kRolloutDurationAnnotation = "serving.knative.dev/rollout-duration";
inline constexpr std::string_view kProgressDeadlineAnnotation = "serving.knative.dev/progress-deadline";
inline constexpr std::string_view kGpuLimit = "nvidia.com/gpu";
inline constexpr std::string_view kGpuMemoryLimit = "sluice.dev/gpu-memory";
inline constexpr std::string_view kOpenFilesLimit = "sluice.dev/open-files";

}  // namespace sluice::agents
