#include "server/event_policy.hpp"

#include <algorithm>

#include "broker/broker_spec.hpp"

namespace sluice {
namespace {

Error field_error(const std::string& field, const std::string& message) {
  return Error{field, message, 400};
}

bool subject_matches(const PolicySubject& s, const Principal& who) {
  if (!s.group.empty()) return who.in_group(s.group);
  if (!s.sub.empty() && s.sub.back() == '*')
    return who.subject.compare(0, s.sub.size() - 1, s.sub, 0, s.sub.size() - 1) == 0;
  return who.subject == s.sub;
}

bool caller_listed(const EventPolicySpec& policy, const Principal& who) {
  return std::any_of(policy.from.begin(), policy.from.end(),
                     [&](const PolicySubject& s) { return subject_matches(s, who); });
}

Error forbidden(const std::string& what, const Principal& who) {
  return Error{"authorization",
               "\"" + who.subject + "\" is not allowed to " + what + " (no EventPolicy lets it)", 403};
}

}  // namespace

Result<EventPolicySpec> parse_event_policy(const nlohmann::json& manifest) {
  auto name = manifest_name(manifest);
  if (!name) return name.error();
  EventPolicySpec policy;
  policy.name = name.value();
  if (!manifest.contains("spec") || !manifest["spec"].is_object())
    return field_error("spec", "is required (with `from`, and optionally `to` and `filters`)");
  const auto& spec = manifest["spec"];
  for (const auto& [key, value] : spec.items()) {
    (void)value;
    if (key != "to" && key != "from" && key != "filters")
      return field_error("spec." + key, "unknown field (EventPolicy has to, from and filters)");
  }
  if (spec.contains("to")) {
    if (!spec["to"].is_array()) return field_error("spec.to", "must be a list");
    for (std::size_t i = 0; i < spec["to"].size(); ++i) {
      const auto& entry = spec["to"][i];
      const std::string path = "spec.to[" + std::to_string(i) + "]";
      if (!entry.is_object() || !entry.contains("ref") || !entry["ref"].is_object())
        return field_error(path, "must have a ref: {kind: Broker|Agent, name}");
      PolicyTarget target;
      target.kind = entry["ref"].value("kind", "");
      target.name = entry["ref"].value("name", "");
      if (target.kind != "Broker" && target.kind != "Agent")
        return field_error(path + ".ref.kind", "must be Broker or Agent");
      if (!is_valid_resource_name(target.name))
        return field_error(path + ".ref.name", "must be a resource name");
      if (entry.contains("tools")) {
        if (target.kind != "Agent") return field_error(path + ".tools", "only an Agent target has tools");
        if (!entry["tools"].is_array()) return field_error(path + ".tools", "must be a list of tool names");
        for (const auto& tool : entry["tools"]) {
          if (!tool.is_string() || tool.get<std::string>().empty())
            return field_error(path + ".tools", "must be a list of tool names");
          target.tools.push_back(tool.get<std::string>());
        }
      }
      policy.to.push_back(std::move(target));
    }
  }
  if (!spec.contains("from") || !spec["from"].is_array() || spec["from"].empty())
    return field_error("spec.from", "must list who the policy admits ({sub: NAME} or {group: NAME})");
  for (std::size_t i = 0; i < spec["from"].size(); ++i) {
    const auto& entry = spec["from"][i];
    const std::string path = "spec.from[" + std::to_string(i) + "]";
    PolicySubject subject;
    if (entry.is_object() && entry.contains("sub") && entry["sub"].is_string())
      subject.sub = entry["sub"];
    else if (entry.is_object() && entry.contains("group") && entry["group"].is_string())
      subject.group = entry["group"];
    else if (entry.is_object() && entry.contains("ref"))
      return field_error(path + ".ref", "Kubernetes service accounts do not exist here: use sub or group");
    else
      return field_error(path, "must be {sub: NAME} or {group: NAME}");
    if (subject.sub.empty() && subject.group.empty()) return field_error(path, "must not be empty");
    policy.from.push_back(std::move(subject));
  }
  if (spec.contains("filters")) {
    auto filter = Filter::from_dialects(spec["filters"], "spec.filters");
    if (!filter) return field_error(filter.error().subject, filter.error().message);
    policy.filters = filter.value();
  }
  return policy;
}

void PolicyEngine::put(EventPolicySpec policy) {
  std::lock_guard lock(mu_);
  auto name = policy.name;
  policies_[name] = std::move(policy);
}

void PolicyEngine::remove(const std::string& name) {
  std::lock_guard lock(mu_);
  policies_.erase(name);
}

std::vector<const EventPolicySpec*> PolicyEngine::applicable(const std::string& kind,
                                                             const std::string& name) const {
  std::vector<const EventPolicySpec*> out;
  for (const auto& [policy_name, policy] : policies_) {
    if (policy.to.empty() || std::any_of(policy.to.begin(), policy.to.end(), [&](const PolicyTarget& t) {
          return t.kind == kind && t.name == name;
        }))
      out.push_back(&policy);
  }
  return out;
}

Status PolicyEngine::authorize_publish(const std::string& broker, const std::vector<CloudEvent>& events,
                                       const Principal& who) const {
  std::lock_guard lock(mu_);
  auto policies = applicable("Broker", broker);
  if (policies.empty()) return ok();
  for (const auto& event : events) {
    const bool allowed = std::any_of(policies.begin(), policies.end(), [&](const EventPolicySpec* p) {
      return caller_listed(*p, who) && (!p->filters || p->filters->matches(event));
    });
    if (!allowed) return forbidden("publish event \"" + event.id + "\" to broker \"" + broker + "\"", who);
  }
  return ok();
}

Status PolicyEngine::authorize_agent(const std::string& agent, const std::string& tool,
                                     const Principal& who) const {
  std::lock_guard lock(mu_);
  auto policies = applicable("Agent", agent);
  if (policies.empty()) return ok();
  const bool allowed = std::any_of(policies.begin(), policies.end(), [&](const EventPolicySpec* p) {
    if (!caller_listed(*p, who)) return false;
    if (tool.empty() || p->to.empty()) return true;
    return std::any_of(p->to.begin(), p->to.end(), [&](const PolicyTarget& t) {
      return t.kind == "Agent" && t.name == agent &&
             (t.tools.empty() || std::find(t.tools.begin(), t.tools.end(), tool) != t.tools.end());
    });
  });
  if (!allowed)
    return forbidden(
        tool.empty() ? "call agent \"" + agent + "\"" : "call tool \"" + agent + "." + tool + "\"", who);
  return ok();
}

}  // namespace sluice
