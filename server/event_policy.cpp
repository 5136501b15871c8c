#include "server/event_policy.hpp"

#include <algorithm>

#include "broker/broker_spec.hpp"
#include "server/resource_store.hpp"

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

/// A target's name: a resource name, or a prefix of one followed by '*' ("team-a-*", "*").
bool valid_name_pattern(const std::string& name) {
  if (name.empty() || name.back() != '*') return is_valid_resource_name(name);
  const std::string prefix = name.substr(0, name.size() - 1);
  // Any resource name may start with the prefix: lowercase letters, digits and '-', not '-' first.
  return prefix.size() < 63 && is_valid_resource_name(prefix + "a");
}

std::optional<PolicyVerb> verb_named(const std::string& word) {
  if (word == "publish") return PolicyVerb::publish;
  if (word == "call") return PolicyVerb::call;
  if (word == "change") return PolicyVerb::change;
  return std::nullopt;
}

PolicyVerb default_verb(const std::string& kind) {
  if (kind == "Broker") return PolicyVerb::publish;
  if (kind == "Agent") return PolicyVerb::call;
  return PolicyVerb::change;
}

Result<PolicyTarget> parse_target(const nlohmann::json& entry, const std::string& path) {
  if (!entry.is_object() || !entry.contains("ref") || !entry["ref"].is_object())
    return field_error(path, "must have a ref: {kind, name}");
  PolicyTarget target;
  for (const char* field : {"kind", "name"}) {
    const auto& ref = entry["ref"];
    if (ref.contains(field) && !ref[field].is_string())
      return field_error(path + ".ref." + field, "must be a string");
  }
  target.kind = entry["ref"].value("kind", "");
  target.name = entry["ref"].value("name", "");
  const auto& kinds = known_kinds();
  if (std::none_of(kinds.begin(), kinds.end(), [&](const KindInfo& k) { return k.kind == target.kind; })) {
    std::string names;
    for (const auto& k : kinds) names += (names.empty() ? "" : ", ") + k.kind;
    return field_error(path + ".ref.kind", "must be one of " + names);
  }
  if (!valid_name_pattern(target.name))
    return field_error(path + ".ref.name", "must be a resource name, or a prefix of one ending in '*'");
  for (const auto& [key, value] : entry.items()) {
    (void)value;
    if (key != "ref" && key != "tools" && key != "verbs")
      return field_error(path + "." + key, "unknown field (a target has ref, verbs and tools)");
  }
  const PolicyVerb own = default_verb(target.kind);
  if (!entry.contains("verbs")) {
    target.verbs = static_cast<unsigned>(own);
  } else {
    const auto& verbs = entry["verbs"];
    const std::string allowed = own == PolicyVerb::change    ? "change"
                                : own == PolicyVerb::publish ? "publish and change"
                                                             : "call and change";
    if (!verbs.is_array() || verbs.empty())
      return field_error(path + ".verbs",
                         "must be a list of verbs (" + allowed + " for a " + target.kind + ")");
    for (const auto& word : verbs) {
      const auto verb = word.is_string() ? verb_named(word.get<std::string>()) : std::nullopt;
      if (!verb || (*verb != own && *verb != PolicyVerb::change))
        return field_error(path + ".verbs",
                           word.dump() + " is not a verb of a " + target.kind + " (" + allowed + ")");
      target.verbs |= static_cast<unsigned>(*verb);
    }
  }
  if (entry.contains("tools")) {
    if (!target.allows(PolicyVerb::call))
      return field_error(path + ".tools", "only an Agent target with the verb call has tools");
    if (!entry["tools"].is_array()) return field_error(path + ".tools", "must be a list of tool names");
    for (const auto& tool : entry["tools"]) {
      if (!tool.is_string() || tool.get<std::string>().empty())
        return field_error(path + ".tools", "must be a list of tool names");
      target.tools.push_back(tool.get<std::string>());
    }
  }
  return target;
}

}  // namespace

bool PolicyTarget::names(const std::string& kind_in, const std::string& name_in) const {
  if (kind != kind_in) return false;
  if (!name.empty() && name.back() == '*')
    return name_in.compare(0, name.size() - 1, name, 0, name.size() - 1) == 0;
  return name == name_in;
}

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
      auto target = parse_target(spec["to"][i], "spec.to[" + std::to_string(i) + "]");
      if (!target) return target.error();
      policy.to.push_back(std::move(target).value());
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

std::vector<const EventPolicySpec*> PolicyEngine::applicable(const std::string& kind, const std::string& name,
                                                             PolicyVerb verb) const {
  std::vector<const EventPolicySpec*> out;
  for (const auto& [policy_name, policy] : policies_) {
    const bool everything = policy.to.empty() && verb != PolicyVerb::change;
    if (everything || std::any_of(policy.to.begin(), policy.to.end(), [&](const PolicyTarget& t) {
          return t.names(kind, name) && t.allows(verb);
        }))
      out.push_back(&policy);
  }
  return out;
}

Status PolicyEngine::authorize_publish(const std::string& broker, const std::vector<CloudEvent>& events,
                                       const Principal& who) const {
  std::lock_guard lock(mu_);
  auto policies = applicable("Broker", broker, PolicyVerb::publish);
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
  auto policies = applicable("Agent", agent, PolicyVerb::call);
  if (policies.empty()) return ok();
  const bool allowed = std::any_of(policies.begin(), policies.end(), [&](const EventPolicySpec* p) {
    if (!caller_listed(*p, who)) return false;
    if (tool.empty() || p->to.empty()) return true;
    return std::any_of(p->to.begin(), p->to.end(), [&](const PolicyTarget& t) {
      return t.names("Agent", agent) && t.allows(PolicyVerb::call) &&
             (t.tools.empty() || std::find(t.tools.begin(), t.tools.end(), tool) != t.tools.end());
    });
  });
  if (!allowed)
    return forbidden(
        tool.empty() ? "call agent \"" + agent + "\"" : "call tool \"" + agent + "." + tool + "\"", who);
  return ok();
}

Status PolicyEngine::authorize_change(const std::string& kind, const std::string& name, const Principal& who,
                                      const std::string& admin_group) const {
  if (who.in_group(admin_group)) return ok();
  std::lock_guard lock(mu_);
  auto policies = applicable(kind, name, PolicyVerb::change);
  if (std::any_of(policies.begin(), policies.end(),
                  [&](const EventPolicySpec* p) { return caller_listed(*p, who); }))
    return ok();
  return Error{"authorization",
               "\"" + who.subject + "\" may not change " + kind + " \"" + name + "\" (needs group \"" +
                   admin_group + "\", or an EventPolicy that names it with the verb change)",
               403};
}

}  // namespace sluice
