#pragma once
// The Ready condition of an agent and of its revisions, tri-state as Knative's conditions are:
//
//   True     the revision has passed its readiness probe (an agent: its latest revision has).
//   Unknown  still being brought up: replicas started, no readiness yet and no failure that counts.
//   False    a failure: the replicas crash-loop, cannot be started, or missed the progress deadline;
//            or what they need is missing (a Secret, GPUs) or the traffic cannot be routed.
//
// Some False reasons clear by themselves (the Secret or the GPUs may come); the ones below do not:
// the same template fails the same way until a new apply changes it. `sluice apply --wait` stops at
// those at once instead of waiting out its timeout.

#include <string_view>

namespace sluice::agents {

inline constexpr std::string_view kReadyTrue = "True";
inline constexpr std::string_view kReadyFalse = "False";
inline constexpr std::string_view kReadyUnknown = "Unknown";

/// Unknown: no revision of the agent is ready yet, and the newest one is still starting.
inline constexpr std::string_view kReasonRevisionMissing = "RevisionMissing";
/// Unknown: a newer revision is starting while the traffic stays on a ready one.
inline constexpr std::string_view kReasonDeploying = "Deploying";
/// False: a replica of a never-ready revision failed twice in a row (CrashLoopBackOff), or failed with
/// restarts turned off.
inline constexpr std::string_view kReasonRevisionFailed = "RevisionFailed";
/// False: a replica was not ready within serving.knative.dev/progress-deadline.
inline constexpr std::string_view kReasonProgressDeadlineExceeded = "ProgressDeadlineExceeded";
/// False: the autoscaling annotations were refused.
inline constexpr std::string_view kReasonInvalidAutoscaling = "InvalidAutoscaling";
/// False until it clears: a Secret or key that the template names is missing.
inline constexpr std::string_view kReasonCreateContainerConfigError = "CreateContainerConfigError";
/// False until it clears: the GPUs that the template asks for are not free.
inline constexpr std::string_view kReasonUnschedulable = "Unschedulable";

/// True for the Ready=False reasons that only a new apply can clear.
inline bool failure_needs_new_apply(std::string_view reason) {
  return reason == kReasonRevisionFailed || reason == kReasonProgressDeadlineExceeded ||
         reason == kReasonInvalidAutoscaling;
}

}  // namespace sluice::agents
