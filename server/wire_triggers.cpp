// Trigger resources: one TriggerDispatcher per Trigger, on one of the I/O contexts, reading its
// broker's log and delivering to the subscriber (a URI, or an Agent through the agents' wiring).
//
// Cursors: a trigger's starting cursor is committed and synced when it is first set up (a dispatcher, or
// a place kept while it waits for its agent), before the apply that created it is answered. So a trigger
// stored before this server started that has no cursor lost it (a damaged cursor journal, or a crash
// between storing the Trigger and that commit): it starts at the beginning of its log. Any other trigger
// without a cursor is new, and starts at the end.

#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <set>

#include "core/log.hpp"
#include "core/request_log.hpp"
#include "server/server.hpp"
#include "server/wiring.hpp"
#include "trigger/dispatcher.hpp"
#include "trigger/trigger_spec.hpp"

namespace sluice {
namespace {

class TriggerRuntime {
 public:
  explicit TriggerRuntime(ServerParts& parts) : parts_(parts) {
    for (std::size_t i = 0; i < parts_.io.size(); ++i)
      clients_.push_back(std::make_unique<HttpClient>(parts_.io.at(i).get_executor(), parts_.outbound));
  }

  Status validate(const nlohmann::json& manifest) const {
    auto spec = parse_trigger(manifest);
    return spec ? ok() : Status(spec.error());
  }

  Status realize(const StoredResource& resource) {
    auto spec = parse_trigger(resource.manifest);
    if (!spec) return spec.error();
    auto broker = parts_.brokers.find(spec.value().broker);
    std::unique_lock lock(mu_);
    auto running = running_.find(resource.name);
    if (!broker) {
      if (running != running_.end()) stop_locked(lock, running, false);
      return with_reason(
          make_error("spec.broker", "broker \"" + spec.value().broker + "\" does not exist", 404),
          "BrokerDoesNotExist");
    }
    auto broker_delivery =
        parse_delivery(broker->spec.delivery, "Broker " + broker->spec.name + " spec.delivery");
    if (!broker_delivery) return broker_delivery.error();
    TriggerSpec effective = spec.value();
    effective.delivery = merge(broker_delivery.value(), spec.value().delivery);
    if (auto resolved = check_refs(spec.value(), effective); !resolved) {
      // As Knative's SubscriberResolved=False: nothing is delivered (or dropped) until the agent exists;
      // the events wait in the log from where the trigger began.
      if (running != running_.end()) stop_locked(lock, running, false);
      wait_locked(resource.name, *broker);
      return resolved;
    }

    if (running != running_.end()) {
      if (running->second.log == broker->log) {
        if (running->second.generation == resource.generation &&
            running->second.delivery == effective.delivery)
          return ok();  // nothing changed (a broker was applied, or a reconcile)
        running->second.generation = resource.generation;
        running->second.delivery = effective.delivery;
        running->second.subscriber = effective.subscriber;
        running->second.dead_letter = dead_letter_of(effective);
        return running->second.dispatcher->update(std::move(effective));
      }
      // Moved to another broker (its place in the old log means nothing in the new one: it starts at the
      // end, as a new trigger, and the old broker's cursor and series go), or the broker was recreated.
      const bool moved = running->second.dispatcher->broker() != spec.value().broker;
      stop_locked(lock, running, moved);
    }
    start_locked(resource.name, resource.generation, std::move(effective), broker);
    return ok();
  }

  void forget(const std::string& name) {
    std::unique_lock lock(mu_);
    settled_.insert(name);  // one made again under this name is new
    auto running = running_.find(name);
    if (running != running_.end()) stop_locked(lock, running, true);
    if (auto waiting = waiting_.find(name); waiting != waiting_.end()) {
      const auto key = TriggerDispatcher::cursor_key(waiting->second, name);
      waiting_.erase(waiting);
      if (auto st = parts_.controller.cursors().erase(key); !st)
        SLUICE_LOG(trigger, warn, "[trigger={}] erasing cursor: {}", name, st.error().to_string());
    }
    // A trigger stopped because its broker was deleted keeps its cursor (the broker may come back); gone
    // itself, it must not leave one that a new trigger of the same name would resume from.
    const std::string suffix = "/" + name;
    for (const auto& [key, offset] : parts_.controller.cursors().all()) {
      if (key.size() <= suffix.size() || key.compare(key.size() - suffix.size(), suffix.size(), suffix) != 0)
        continue;
      if (auto st = parts_.controller.cursors().erase(key); !st)
        SLUICE_LOG(trigger, warn, "[trigger={}] erasing cursor: {}", name, st.error().to_string());
    }
  }

  nlohmann::json status(const StoredResource& resource) {
    std::unique_lock lock(mu_);
    auto running = running_.find(resource.name);
    if (running == running_.end()) return waiting_status_locked(resource.name);
    const auto& r = running->second;
    const TriggerStats stats = r.dispatcher->stats();
    nlohmann::json out = {{"delivery", to_status_json(stats)}};
    // A record it cannot read (damaged, or missing from the log) holds the trigger there: not ready.
    if (!stats.read_error.empty())
      out["notReady"] = {{"reason", "LogReadFailed"}, {"message", stats.read_error}};
    const Destination subscriber = r.subscriber;
    const auto dead_letter = r.dead_letter;
    lock.unlock();
    // Knative's subscriberUri is an address: a ref shows one once it resolves.
    if (auto uri = address_of(subscriber)) out["subscriberUri"] = *uri;
    if (dead_letter)
      if (auto uri = address_of(*dead_letter)) out["deadLetterSinkUri"] = *uri;
    return out;
  }

  /// Stops every dispatcher at once, each finishing its in-flight deliveries up to the grace deadline.
  void stop_all() {
    struct Countdown {
      std::mutex mu;
      std::condition_variable cv;
      std::size_t pending = 0;
    };
    auto countdown = std::make_shared<Countdown>();
    const auto grace = std::chrono::duration_cast<std::chrono::milliseconds>(parts_.options.shutdown_grace);
    std::unique_lock lock(mu_);
    countdown->pending = running_.size();
    for (auto& [name, r] : running_)
      r.dispatcher->async_stop(grace, [countdown] {
        std::lock_guard inner(countdown->mu);
        --countdown->pending;
        countdown->cv.notify_all();
      });
    lock.unlock();
    {
      std::unique_lock wait(countdown->mu);
      countdown->cv.wait_for(wait, grace + std::chrono::seconds(5), [&] { return countdown->pending == 0; });
    }
    lock.lock();
    running_.clear();
  }

 private:
  struct Running {
    std::unique_ptr<TriggerDispatcher> dispatcher;
    std::shared_ptr<EventLog> log;  // kept open while the dispatcher reads it
    Destination subscriber;
    std::optional<Destination> dead_letter;
    std::int64_t generation = 0;  // of the Trigger resource
    DeliverySpec delivery;        // effective (merged with the broker's)
  };
  using Iterator = std::map<std::string, Running>::iterator;

  static std::optional<Destination> dead_letter_of(const TriggerSpec& spec) {
    return spec.delivery.dead_letter_sink;
  }

  /// Error (code 404) when the subscriber or the dead letter sink names an Agent (or a Knative Service,
  /// served as an Agent) that is not stored. An agent that exists but has no replica yet resolves: the
  /// activator holds the request while it scales from zero.
  Status check_refs(const TriggerSpec& own, const TriggerSpec& effective) const {
    auto exists = [this](const Destination& d, const std::string& field, const char* reason) -> Status {
      if (!d.ref || parts_.controller.store().get("Agent", d.ref->name)) return ok();
      const std::string what = d.ref->kind == "Service" ? "service" : "agent";
      return with_reason(make_error(field, what + " \"" + d.ref->name + "\" does not exist", 404), reason);
    };
    if (auto st = exists(effective.subscriber, "spec.subscriber.ref", "SubscriberNotFound"); !st) return st;
    if (!effective.delivery.dead_letter_sink) return ok();
    return exists(*effective.delivery.dead_letter_sink,
                  own.delivery.dead_letter_sink
                      ? "spec.delivery.deadLetterSink.ref"
                      : "Broker " + own.broker + " spec.delivery.deadLetterSink.ref",
                  "DeadLetterSinkNotFound");
  }

  /// Where a trigger without a cursor starts when it is first set up: at the beginning of the log when it
  /// was stored before this start (its cursor was lost), at the end when it is new.
  StartPosition first_start_locked(const std::string& name) {
    if (!settled_.insert(name).second) return StartPosition::End;
    return parts_.controller.stored_before_start("Trigger", name) ? StartPosition::Beginning
                                                                  : StartPosition::End;
  }

  /// Makes a trigger's first cursor durable before the apply that created it is answered.
  void sync_cursors(const std::string& broker, const std::string& name) {
    if (auto st = parts_.controller.cursors().sync(); !st)
      SLUICE_LOG(trigger, warn, "[broker={} trigger={}] syncing its first cursor: {}", broker, name,
                 st.error().to_string());
  }

  /// Keeps a not-ready trigger's place in its broker's log: a cursor at the end when it has none yet, so
  /// that the events published while its agent is missing are delivered once it exists. At the beginning
  /// instead when it had one before this start (it was lost), as a dispatcher starts.
  /// A cursor past the end (the broker was made again, or recovery cut its log's tail) moves to the end, as
  /// a dispatcher's does: kept, it would skip the events published while the trigger waits.
  void wait_locked(const std::string& name, const Broker& broker) {
    const auto key = TriggerDispatcher::cursor_key(broker.spec.name, name);
    auto& cursors = parts_.controller.cursors();
    const auto saved = cursors.load(key);
    const StartPosition first = first_start_locked(name);
    const std::uint64_t end = broker.log->end_offset();
    if (!saved || *saved > end) {
      std::uint64_t start = end;
      if (saved) {
        SLUICE_LOG(trigger, warn,
                   "[broker={} trigger={}] committed cursor {} is past the log end {} (log replaced?): "
                   "waiting at the end",
                   broker.spec.name, name, *saved, end);
      } else if (first == StartPosition::Beginning) {
        start = broker.log->start_offset();
        SLUICE_LOG(
            trigger, warn,
            "[broker={} trigger={}] no cursor: it was lost (a damaged cursor journal, or a crash "
            "before its first commit); waiting at the beginning of the log (offset {}) so that nothing "
            "is skipped",
            broker.spec.name, name, start);
      }
      if (auto st = cursors.commit(key, start); !st)
        SLUICE_LOG(trigger, warn, "[broker={} trigger={}] saving cursor: {}", broker.spec.name, name,
                   st.error().to_string());
      else if (!saved)
        sync_cursors(broker.spec.name, name);
    }
    waiting_[name] = broker.spec.name;
  }

  /// A waiting trigger's backlog: what its broker holds past its cursor.
  nlohmann::json waiting_status_locked(const std::string& name) const {
    auto waiting = waiting_.find(name);
    if (waiting == waiting_.end()) return nlohmann::json::object();
    auto broker = parts_.brokers.find(waiting->second);
    auto cursor = parts_.controller.cursors().load(TriggerDispatcher::cursor_key(waiting->second, name));
    if (!broker || !cursor) return nlohmann::json::object();
    const std::uint64_t end = broker->log->end_offset();
    return {{"delivery", {{"backlog", end > *cursor ? end - *cursor : 0}, {"committedOffset", *cursor}}}};
  }

  /// The address a destination resolves to now (nullopt: a ref that does not resolve).
  std::optional<std::string> address_of(const Destination& d) const {
    if (!d.ref) return d.uri;
    if (!parts_.resolve_agent) return std::nullopt;
    auto resolved = parts_.resolve_agent(*d.ref);
    if (!resolved) return std::nullopt;
    return resolved.value().url + d.uri;
  }

  void start_locked(const std::string& name, std::int64_t generation, TriggerSpec spec,
                    const std::shared_ptr<Broker>& broker) {
    const std::size_t slot = next_slot_++ % parts_.io.size();
    const std::string broker_name = broker->spec.name;
    Running r;
    r.log = broker->log;
    r.generation = generation;
    r.delivery = spec.delivery;
    r.subscriber = spec.subscriber;
    r.dead_letter = dead_letter_of(spec);
    waiting_.erase(name);
    auto resolver = [this](const SubscriberRef& ref) -> Result<ResolvedDestination> {
      if (!parts_.resolve_agent)
        return make_error(ref.kind + "/" + ref.name, "this server runs no agents", 503);
      return parts_.resolve_agent(ref);
    };
    auto publish = [this, broker_name](CloudEvent reply, std::function<void(Status)> done) {
      std::vector<CloudEvent> events;
      events.push_back(std::move(reply));
      parts_.publish(broker_name, std::move(events), [done = std::move(done)](Result<std::uint64_t> r) {
        done(r ? ok() : Status(r.error()));
      });
    };
    auto& cursors = parts_.controller.cursors();
    const bool had_cursor = cursors.load(TriggerDispatcher::cursor_key(broker_name, name)).has_value();
    DispatcherOptions options;
    options.start = first_start_locked(name);
    r.dispatcher = std::make_unique<TriggerDispatcher>(
        std::move(spec), broker_name, *r.log, cursors, *clients_[slot], parts_.clock,
        parts_.io.at(slot).get_executor(), std::move(resolver), std::move(publish), options);
    if (!had_cursor) sync_cursors(broker_name, name);  // the constructor committed the first one
    r.dispatcher->start();
    SLUICE_LOG(trigger, info, "[broker={} trigger={}] dispatching to {}", broker_name, name,
               request_log::redact_secrets(r.subscriber.to_string()));
    running_.emplace(name, std::move(r));
  }

  /// Stops a dispatcher (waiting without the lock held, so status() stays answerable). `deleted`: the
  /// Trigger is gone (or left its broker), so its cursor and metric series go too. Deliveries in flight
  /// are cancelled at once, not drained: a delete or change answers without waiting on a slow subscriber
  /// (the controller's lock is held meanwhile), and what is cancelled stays uncommitted.
  void stop_locked(std::unique_lock<std::mutex>& lock, Iterator it, bool deleted) {
    auto dispatcher = std::move(it->second.dispatcher);
    auto log = std::move(it->second.log);
    const std::string broker = dispatcher->broker();
    const std::string name = dispatcher->name();
    running_.erase(it);
    lock.unlock();
    dispatcher->stop(std::chrono::milliseconds(0));
    dispatcher.reset();
    if (deleted) {
      if (auto st = parts_.controller.cursors().erase(TriggerDispatcher::cursor_key(broker, name)); !st)
        SLUICE_LOG(trigger, warn, "[broker={} trigger={}] erasing cursor: {}", broker, name,
                   st.error().to_string());
      TriggerDispatcher::remove_metrics(MetricsRegistry::global(), broker, name);
      DeadLetterJournal::global().forget(broker, name);
    }
    lock.lock();
  }

  ServerParts& parts_;
  std::vector<std::unique_ptr<HttpClient>> clients_;  // one per I/O context
  std::mutex mu_;
  std::map<std::string, Running> running_;
  std::map<std::string, std::string> waiting_;  // trigger → broker, for triggers whose refs do not resolve
  // Triggers set up (or deleted) since this start: a later set-up without a cursor is not a lost one.
  std::set<std::string> settled_;
  std::size_t next_slot_ = 0;
};

}  // namespace

void wire_triggers(ServerParts& parts) {
  auto runtime = std::make_shared<TriggerRuntime>(parts);
  parts.controller.handle_kind(
      "Trigger", KindHandler{[runtime](const nlohmann::json& m) { return runtime->validate(m); },
                             [runtime](const StoredResource& r) { return runtime->realize(r); },
                             [runtime](const std::string& name) { runtime->forget(name); },
                             [runtime](const StoredResource& r) { return runtime->status(r); },
                             [runtime] { runtime->stop_all(); }});
  // A Broker's spec.delivery is the triggers' default: validate it with the triggers' rules.
  parts.controller.handle_kind(
      "Broker.delivery",
      KindHandler{[](const nlohmann::json& manifest) -> Status {
                    const auto spec = manifest.find("spec");
                    if (spec == manifest.end() || !spec->is_object() || !spec->contains("delivery"))
                      return ok();
                    auto parsed = parse_delivery((*spec)["delivery"], "spec.delivery");
                    return parsed ? ok() : Status(parsed.error());
                  },
                  nullptr, nullptr, nullptr, nullptr});
}

}  // namespace sluice
