#pragma once
// EventPolicy resources (Knative's eventing.knative.dev/v1alpha1 EventPolicy, plus Sluice's additions)
// and the authorization decisions made from them.
//
//   apiVersion: eventing.knative.dev/v1alpha1     # or sluice.dev/v1
//   kind: EventPolicy
//   metadata: {name: ci-may-publish}
//   spec:
//     to:                                          # absent or empty: every broker and agent
//     - ref: {apiVersion: eventing.knative.dev/v1, kind: Broker, name: default}
//     - ref: {kind: Agent, name: summarizer}       # Sluice: who may call an agent (HTTP, MCP, A2A)
//       tools: [summarize]                         # Sluice: only these MCP tools (absent: all)
//     - ref: {kind: Trigger, name: "team-a-*"}     # Sluice: who may change (apply, delete) resources
//       verbs: [change]                            #   (a Broker's default verb is publish, an
//                                                  #   Agent's call, every other kind's change)
//     from:
//     - sub: ci-publisher                          # Knative: a subject; a trailing * matches a prefix
//     - sub: "team-a-*"
//     - group: publishers                          # Sluice: any subject in this group
//     filters:                                     # Knative: published events must also match
//     - prefix: {type: com.example.}
//
// Decisions on publishing and calling, as Knative makes them: a broker or agent that no policy names is
// open to every authenticated caller; once any policy names it, a caller needs a policy that names it,
// lists the caller in `from` and (for publishing) whose filters the event passes. A refused publish is a
// 403 naming the broker; events of a batch are checked one by one and the batch is refused whole.
//
// Changing a resource is closed by default, as Kubernetes RBAC is: the admin group (--admin-group) may
// change everything, anyone else only what a policy names with the verb `change` and admits them to.
// A name ending in '*' matches a prefix ("team-a-*", or "*" for every resource of the kind).

#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/cloud_event.hpp"
#include "core/principal.hpp"
#include "core/result.hpp"
#include "trigger/filter.hpp"

namespace sluice {

/// What a policy target lets its callers do.
enum class PolicyVerb : unsigned { publish = 1, call = 2, change = 4 };

struct PolicyTarget {
  std::string kind;  // Broker, Agent, or (with the verb change only) any kind the control API serves
  std::string name;  // exact, or a prefix when it ends with '*'
  std::vector<std::string> tools;  // Agent only; empty: every tool
  unsigned verbs = 0;              // PolicyVerb bits

  bool allows(PolicyVerb verb) const { return (verbs & static_cast<unsigned>(verb)) != 0; }
  bool names(const std::string& kind_in, const std::string& name_in) const;
};

struct PolicySubject {
  std::string sub;    // exact, or a prefix when it ends with '*'
  std::string group;  // or a group
};

struct EventPolicySpec {
  std::string name;
  std::vector<PolicyTarget> to;  // empty: everything
  std::vector<PolicySubject> from;
  std::optional<Filter> filters;
};

/// Parses and validates an EventPolicy manifest; errors name the field.
Result<EventPolicySpec> parse_event_policy(const nlohmann::json& manifest);

/// The policies in force. Thread-safe.
class PolicyEngine {
 public:
  void put(EventPolicySpec policy);
  void remove(const std::string& name);

  /// 403 (naming the broker and the subject) unless `who` may publish every event to `broker`.
  Status authorize_publish(const std::string& broker, const std::vector<CloudEvent>& events,
                           const Principal& who) const;
  /// 403 unless `who` may call `agent` (and `tool`, when not empty).
  Status authorize_agent(const std::string& agent, const std::string& tool, const Principal& who) const;
  /// 403 unless `who` is in `admin_group` or a policy names the resource with the verb change and
  /// admits `who`. The message names the subject, the resource and what would let it.
  Status authorize_change(const std::string& kind, const std::string& name, const Principal& who,
                          const std::string& admin_group) const;

 private:
  /// The policies that govern `verb` on the resource: those naming it with that verb, and (publish and
  /// call) those with no `to`.
  std::vector<const EventPolicySpec*> applicable(const std::string& kind, const std::string& name,
                                                 PolicyVerb verb) const;
  mutable std::mutex mu_;
  std::map<std::string, EventPolicySpec> policies_;
};

}  // namespace sluice
