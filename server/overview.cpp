#include "server/overview.hpp"

#include <algorithm>

#include "core/cloud_event.hpp"

namespace sluice {
namespace {

using nlohmann::json;

const json& items_of(const json& list) {
  static const json empty = json::array();
  auto it = list.find("items");
  return it != list.end() && it->is_array() ? *it : empty;
}

std::string name_of(const json& resource) {
  return resource.value("/metadata/name"_json_pointer, std::string());
}

struct Readiness {
  bool ready = false;
  std::string status = "Unknown";  // the condition's: True, False or Unknown (still starting)
  std::string reason;              // the condition's message when not ready
};

/// The Ready condition of a resource.
Readiness readiness(const json& resource) {
  for (const auto& c : resource.value("/status/conditions"_json_pointer, json::array()))
    if (c.value("type", "") == "Ready")
      return {c.value("status", "") == "True", c.value("status", "Unknown"), c.value("message", "")};
  return {false, "Unknown", "no Ready condition"};
}

template <typename T>
T number(const json& object, const char* key) {
  auto it = object.find(key);
  return it != object.end() && it->is_number() ? it->get<T>() : T{};
}

std::string subscriber_of(const json& trigger) {
  const json spec = trigger.value("spec", json::object());
  const json sub = spec.value("subscriber", json::object());
  if (sub.contains("ref")) return sub["ref"].value("kind", "") + "/" + sub["ref"].value("name", "");
  return sub.value("uri", "");
}

/// One revision as the dashboard shows it: replicas counted by state, and where each one runs.
json revision_view(const json& r) {
  json counts = {{"ready", 0}, {"starting", 0}, {"draining", 0}, {"failed", 0}, {"reserve", 0}};
  json placement = json::array();
  for (const auto& rep : r.value("replicaStatus", json::array())) {
    const std::string state = rep.value("state", "");
    if (rep.value("reserve", false)) {
      counts["reserve"] = counts["reserve"].get<int>() + 1;
    } else if (state == "Ready") {
      counts["ready"] = counts["ready"].get<int>() + 1;
    } else if (state == "Starting") {
      counts["starting"] = counts["starting"].get<int>() + 1;
    } else if (state == "Draining") {
      counts["draining"] = counts["draining"].get<int>() + 1;
    } else if (state == "Failed" || state == "OOMKilled") {
      counts["failed"] = counts["failed"].get<int>() + 1;
    }
    json p = {{"replica", rep.value("id", "")}, {"state", state}, {"reserve", rep.value("reserve", false)}};
    for (const char* key : {"pid", "address", "gpus", "gpuClass", "gpuMemory"})
      if (rep.contains(key)) p[key] = rep[key];
    placement.push_back(std::move(p));
  }
  json out = {{"name", r.value("name", "")},
              {"ready", r.value("ready", false)},
              {"readyStatus", r.value("readyStatus", r.value("ready", false) ? "True" : "False")},
              {"traffic", r.value("traffic", 0)},
              {"desiredReplicas", r.value("desiredReplicas", 0)},
              {"replicas", counts},
              {"placement", placement},
              {"autoscaler", r.value("autoscaler", json::object())},
              {"requests", r.value("requests", json::object())}};
  if (r.contains("tag")) out["tag"] = r["tag"];
  if (r.contains("reason")) out["reason"] = r["reason"];
  return out;
}

}  // namespace

void Overview::sample(const json& brokers, const json& agents, std::int64_t unix_millis) {
  std::lock_guard lock(mu_);
  auto keep = [&](auto& history, auto point) {
    history.push_back(point);
    while (history.size() > history_points_) history.pop_front();
  };
  std::map<std::string, std::deque<BrokerPoint>> seen_brokers;
  for (const auto& b : items_of(brokers)) {
    const std::string name = name_of(b);
    auto& history = seen_brokers[name] = std::move(brokers_[name]);
    keep(history, BrokerPoint{unix_millis, b.value("/status/log/endOffset"_json_pointer, std::uint64_t{0})});
  }
  brokers_ = std::move(seen_brokers);  // deleted brokers leave with their history
  std::map<std::string, std::deque<AgentPoint>> seen_agents;
  for (const auto& a : items_of(agents)) {
    const std::string name = name_of(a);
    AgentPoint p;
    p.t = unix_millis;
    for (const auto& r : a.value("/status/revisions"_json_pointer, json::array())) {
      const json autoscaler = r.value("autoscaler", json::object());
      // The autoscaler reports a tiny negative value for "no data yet": the chart shows 0.
      p.concurrency += std::max(0.0, number<double>(autoscaler, "observedStableConcurrency"));
      p.panic_concurrency += std::max(0.0, number<double>(autoscaler, "observedPanicConcurrency"));
      p.panic = p.panic || autoscaler.value("panic", false);
      p.desired += number<std::int64_t>(r, "desiredReplicas");
      p.ready += number<std::int64_t>(r, "readyReplicas");
      p.in_flight += number<std::int64_t>(r.value("requests", json::object()), "inFlight");
    }
    keep(seen_agents[name] = std::move(agents_[name]), p);
  }
  agents_ = std::move(seen_agents);
}

double Overview::ingress_rate_locked(const std::string& broker) const {
  // Over the last ten seconds or so: the newest sample against the oldest one that is at most 10 s older.
  auto it = brokers_.find(broker);
  if (it == brokers_.end() || it->second.size() < 2) return 0;
  const auto& h = it->second;
  const BrokerPoint& last = h.back();
  const BrokerPoint* first = &h[h.size() - 2];
  for (auto p = h.rbegin() + 1; p != h.rend() && last.t - p->t <= 10000; ++p) first = &*p;
  if (last.t <= first->t || last.end_offset < first->end_offset) return 0;
  return static_cast<double>(last.end_offset - first->end_offset) * 1000.0 /
         static_cast<double>(last.t - first->t);
}

json Overview::render(const json& brokers, const json& triggers, const json& agents,
                      const std::vector<DeadLetterRecord>& dead_letters, std::int64_t unix_millis) const {
  std::lock_guard lock(mu_);
  json trigger_views = json::array();
  std::map<std::string, json> triggers_by_broker;
  for (const auto& t : items_of(triggers)) {
    const auto [ready, ready_status, reason] = readiness(t);
    const json delivery = t.value("/status/delivery"_json_pointer, json::object());
    const std::string broker = t.value("/spec/broker"_json_pointer, std::string());
    json view = {{"name", name_of(t)},
                 {"broker", broker},
                 {"ready", ready},
                 {"readyStatus", ready_status},
                 {"reason", reason},
                 {"subscriber", subscriber_of(t)},
                 {"delivered", number<std::uint64_t>(delivery, "delivered")},
                 {"failedAttempts", number<std::uint64_t>(delivery, "failedAttempts")},
                 {"retried", number<std::uint64_t>(delivery, "retried")},
                 {"deadLettered", number<std::uint64_t>(delivery, "deadLettered")},
                 {"dropped", number<std::uint64_t>(delivery, "dropped")},
                 {"backlog", number<std::uint64_t>(delivery, "backlog")},
                 {"inFlight", number<std::uint64_t>(delivery, "inFlight")},
                 {"latency", delivery.value("latency", json::object())}};
    auto& of_broker = triggers_by_broker[broker];
    if (of_broker.is_null()) of_broker = json::array();
    of_broker.push_back({{"name", view["name"]}, {"backlog", view["backlog"]}, {"ready", ready}});
    trigger_views.push_back(std::move(view));
  }
  json broker_views = json::array();
  for (const auto& b : items_of(brokers)) {
    const std::string name = name_of(b);
    const auto [ready, ready_status, reason] = readiness(b);
    auto of_broker = triggers_by_broker.find(name);
    broker_views.push_back(
        {{"name", name},
         {"ready", ready},
         {"readyStatus", ready_status},
         {"reason", reason},
         {"storage", b.value("/spec/storage"_json_pointer, std::string("file"))},
         {"events", b.value("/status/log/endOffset"_json_pointer, std::uint64_t{0})},
         {"ingressPerSecond", ingress_rate_locked(name)},
         {"triggers", of_broker != triggers_by_broker.end() ? of_broker->second : json::array()}});
  }
  json agent_views = json::array();
  for (const auto& a : items_of(agents)) {
    const std::string name = name_of(a);
    const auto [ready, ready_status, reason] = readiness(a);
    json revisions = json::array();
    for (const auto& r : a.value("/status/revisions"_json_pointer, json::array()))
      revisions.push_back(revision_view(r));
    json history = json::array();
    if (auto h = agents_.find(name); h != agents_.end()) {
      for (const auto& p : h->second)
        history.push_back({{"t", p.t},
                           {"concurrency", p.concurrency},
                           {"panicConcurrency", p.panic_concurrency},
                           {"desired", p.desired},
                           {"ready", p.ready},
                           {"inFlight", p.in_flight},
                           {"panic", p.panic}});
    }
    agent_views.push_back({{"name", name},
                           {"ready", ready},
                           {"readyStatus", ready_status},
                           {"reason", reason},
                           {"protocol", a.value("/status/protocol"_json_pointer, std::string("http"))},
                           {"url", a.value("/status/url"_json_pointer, std::string())},
                           {"traffic", a.value("/status/traffic"_json_pointer, json::array())},
                           {"revisions", revisions},
                           {"history", history}});
  }
  json letters = json::array();
  for (const auto& r : dead_letters) letters.push_back(DeadLetterJournal::to_json(r));
  return {{"kind", "Overview"},      {"time", format_rfc3339(unix_millis)},
          {"brokers", broker_views}, {"triggers", trigger_views},
          {"agents", agent_views},   {"deadLetters", letters}};
}

}  // namespace sluice
