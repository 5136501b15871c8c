// Sources and Kafka-backed triggers.
//
// KafkaSource: one KafkaGroupDispatcher per source (its spec.consumerGroup), converting records into
// CloudEvents (sources/kafka_record_event.hpp) and delivering them to the sink: a Broker through the
// ingress path, or a URI / Agent as a trigger would.
//
// Triggers of Brokers with `storage: kafka`: one KafkaGroupDispatcher per trigger (consumer group
// sluice-trigger-<broker>-<trigger>) on the broker's topic. The Trigger kind's handler from
// wire_triggers.cpp keeps every other trigger: this file wraps it, so it must be wired after it.

#include <map>
#include <memory>
#include <mutex>

#include "broker/kafka_log.hpp"
#include "core/log.hpp"
#include "core/request_log.hpp"
#include "core/secret_ref.hpp"
#include "server/server.hpp"
#include "server/wiring.hpp"
#include "sources/broker_sink.hpp"
#include "sources/kafka_record_event.hpp"
#include "sources/kafka_source_spec.hpp"
#include "trigger/kafka_group.hpp"

namespace sluice {
namespace {

/// The HttpClients of the I/O contexts (one each) and a round-robin choice among them.
class DispatchSlots {
 public:
  DispatchSlots(IoPool& io, const HttpClientOptions& options) : io_(io) {
    for (std::size_t i = 0; i < io_.size(); ++i)
      clients_.push_back(std::make_unique<HttpClient>(io_.at(i).get_executor(), options));
  }
  DispatchSlot next() {
    std::lock_guard lock(mu_);
    const std::size_t i = next_++ % clients_.size();
    return {io_.at(i).get_executor(), clients_[i].get()};
  }

 private:
  IoPool& io_;
  std::mutex mu_;
  std::vector<std::unique_ptr<HttpClient>> clients_;
  std::size_t next_ = 0;
};

/// Groups by resource name, each restarted when its resource changes.
class GroupSet {
 public:
  struct Running {
    std::unique_ptr<KafkaGroupDispatcher> group;
    nlohmann::json fingerprint;  // what the group was built from
    std::string sink;
  };

  bool unchanged(const std::string& name, const nlohmann::json& fingerprint) {
    std::lock_guard lock(mu_);
    auto it = running_.find(name);
    return it != running_.end() && it->second.fingerprint == fingerprint;
  }

  Status replace(const std::string& name, Running running) {
    forget(name);
    if (auto st = running.group->start(); !st) return st;
    std::lock_guard lock(mu_);
    running_[name] = std::move(running);
    return ok();
  }

  bool contains(const std::string& name) {
    std::lock_guard lock(mu_);
    return running_.count(name) > 0;
  }

  /// Stops the group; `deleted`: the resource was deleted, so its group's offsets are forgotten too.
  void forget(const std::string& name, bool deleted = false) {
    std::unique_ptr<KafkaGroupDispatcher> group;
    {
      std::lock_guard lock(mu_);
      auto it = running_.find(name);
      if (it == running_.end()) return;
      group = std::move(it->second.group);
      running_.erase(it);
    }
    group->stop(/*forget_offsets=*/deleted);
  }

  std::optional<nlohmann::json> status(const std::string& name) {
    std::lock_guard lock(mu_);
    auto it = running_.find(name);
    if (it == running_.end()) return std::nullopt;
    nlohmann::json out = it->second.group->status();
    out["sinkUri"] = it->second.sink;
    return out;
  }

  void stop_all() {
    std::map<std::string, Running> all;
    {
      std::lock_guard lock(mu_);
      all.swap(running_);
    }
    for (auto& [name, running] : all) running.group->stop();
  }

 private:
  std::mutex mu_;
  std::map<std::string, Running> running_;
};

class SourcesRuntime {
 public:
  explicit SourcesRuntime(ServerParts& parts) : parts_(parts), slots_(parts.io, parts.outbound) {}

  // ---- KafkaSource ----
  Status realize_source(const StoredResource& resource) {
    auto parsed = parse_kafka_source(resource.manifest);
    if (!parsed) return parsed.error();
    const KafkaSourceSpec& spec = parsed.value();
    // The resolved config's digest makes a changed Secret (a rotated password) restart the consumer.
    auto config = resolve_kafka_config(spec.config, parts_.resolve_secret, "spec.config");
    if (!config) return config.error();
    const nlohmann::json fingerprint = resource.manifest.value("spec", nlohmann::json::object());
    nlohmann::json full = {
        {"spec", fingerprint}, {"annotations", spec.annotations}, {"config", values_digest(config.value())}};
    if (sources_.unchanged(resource.name, full)) return ok();

    KafkaGroupOptions options;
    options.bootstrap_servers = spec.bootstrap_servers;
    options.group_id = spec.consumer_group;
    options.topics = spec.topics;
    options.start_at_earliest = spec.start_at_earliest;
    options.config = std::move(config).value();
    options.log_context = "kafkasource=" + spec.name;
    TriggerSpec dispatch;
    dispatch.name = spec.name;
    dispatch.annotations = spec.annotations;
    dispatch.subscriber = spec.sink;
    dispatch.delivery = spec.delivery;
    dispatch.order = spec.order;
    const std::string name = spec.name;
    auto convert = [name](const KafkaRecord& record, const std::string& topic, std::int32_t partition,
                          std::int64_t offset) {
      return kafka_record_to_event(record, name, topic, partition, offset);
    };
    auto resolver = [this](const SubscriberRef& ref) -> Result<ResolvedDestination> {
      if (ref.kind == "Broker") {
        if (!parts_.brokers.find(ref.name))
          return make_error("Broker/" + ref.name, "the sink broker does not exist", 404);
        return ResolvedDestination{"http://127.0.0.1/brokers/" + ref.name,
                                   broker_sink(ref.name, parts_.publish)};
      }
      if (!parts_.resolve_agent)
        return make_error(ref.kind + "/" + ref.name, "this server runs no agents", 503);
      return parts_.resolve_agent(ref);
    };
    // Knative's KafkaSource has no reply path: a CloudEvent the sink answers with is not forwarded.
    auto discard_reply = [](CloudEvent, std::function<void(Status)> done) { done(ok()); };
    GroupSet::Running running;
    running.fingerprint = full;
    running.sink = spec.sink.to_string();
    running.group = std::make_unique<KafkaGroupDispatcher>(
        std::move(options), std::move(dispatch), "kafkasource", std::move(convert),
        [this] { return slots_.next(); }, parts_.clock, std::move(resolver), std::move(discard_reply));
    SLUICE_LOG(trigger, info, "[kafkasource={}] reading {} from {} into {}", spec.name, spec.topics.front(),
               spec.bootstrap_servers, request_log::redact_secrets(running.sink));
    return sources_.replace(resource.name, std::move(running));
  }

  // ---- Triggers of Kafka-backed brokers ----
  Status realize_trigger(const StoredResource& resource, const KindHandler& file_triggers) {
    auto spec = parse_trigger(resource.manifest);
    if (!spec) return spec.error();
    auto broker = parts_.brokers.find(spec.value().broker);
    if (!broker || broker->spec.storage != "kafka") {
      triggers_.forget(resource.name);
      return file_triggers.realize(resource);
    }
    if (file_triggers.forget) file_triggers.forget(resource.name);
    auto settings = parse_kafka_broker_settings(broker->spec);
    if (!settings) return settings.error();
    auto broker_delivery =
        parse_delivery(broker->spec.delivery, "Broker " + broker->spec.name + " spec.delivery");
    if (!broker_delivery) return broker_delivery.error();
    TriggerSpec effective = spec.value();
    effective.delivery = merge(broker_delivery.value(), spec.value().delivery);
    auto config = resolve_kafka_config(settings.value().config, parts_.resolve_secret,
                                       "Broker " + broker->spec.name + " spec.kafka.config");
    if (!config) return config.error();
    const nlohmann::json fingerprint = {
        {"trigger", resource.manifest.value("spec", nlohmann::json::object())},
        {"annotations", effective.annotations},
        {"broker", broker->spec.kafka},
        {"delivery", broker->spec.delivery},
        {"generation", resource.generation},
        {"config", values_digest(config.value())}};
    if (triggers_.unchanged(resource.name, fingerprint)) return ok();

    KafkaGroupOptions options;
    options.bootstrap_servers = settings.value().bootstrap_servers;
    options.group_id = "sluice-trigger-" + broker->spec.name + "-" + resource.name;
    options.topics = {settings.value().topic};
    options.config = std::move(config).value();
    options.log_context = "broker=" + broker->spec.name + " trigger=" + resource.name;
    auto convert = [](const KafkaRecord& record, const std::string&, std::int32_t, std::int64_t) {
      return decode_kafka(record, Validation::stored);
    };
    auto resolver = [this](const SubscriberRef& ref) -> Result<ResolvedDestination> {
      if (!parts_.resolve_agent)
        return make_error(ref.kind + "/" + ref.name, "this server runs no agents", 503);
      return parts_.resolve_agent(ref);
    };
    const std::string broker_name = broker->spec.name;
    auto publish = [this, broker_name](CloudEvent reply, std::function<void(Status)> done) {
      std::vector<CloudEvent> events;
      events.push_back(std::move(reply));
      parts_.publish(broker_name, std::move(events), [done = std::move(done)](Result<std::uint64_t> r) {
        done(r ? ok() : Status(r.error()));
      });
    };
    GroupSet::Running running;
    running.fingerprint = fingerprint;
    running.sink = effective.subscriber.to_string();
    running.group = std::make_unique<KafkaGroupDispatcher>(
        std::move(options), std::move(effective), broker_name, std::move(convert),
        [this] { return slots_.next(); }, parts_.clock, std::move(resolver), std::move(publish));
    return triggers_.replace(resource.name, std::move(running));
  }

  GroupSet& sources() { return sources_; }
  GroupSet& triggers() { return triggers_; }

 private:
  ServerParts& parts_;
  DispatchSlots slots_;  // outlives the groups below (declared first)
  GroupSet sources_;
  GroupSet triggers_;
};

}  // namespace

void wire_sources(ServerParts& parts) {
  auto runtime = std::make_shared<SourcesRuntime>(parts);
  parts.controller.handle_kind(
      "KafkaSource",
      KindHandler{[](const nlohmann::json& m) -> Status {
                    auto spec = parse_kafka_source(m);
                    if (!spec) return spec.error();
                    return refuse_plain_credentials(m["spec"].value("config", nlohmann::json()),
                                                    "spec.config");
                  },
                  [runtime](const StoredResource& r) { return runtime->realize_source(r); },
                  [runtime](const std::string& name) { runtime->sources().forget(name); },
                  [runtime](const StoredResource& r) {
                    return runtime->sources().status(r.name).value_or(nlohmann::json::object());
                  },
                  [runtime] { runtime->sources().stop_all(); }});

  // Wraps the Trigger kind of wire_triggers.cpp: triggers of Kafka-backed brokers run here.
  KindHandler file_triggers = parts.controller.handler("Trigger");
  if (!file_triggers.realize) return;
  parts.controller.handle_kind("Trigger", KindHandler{file_triggers.validate,
                                                      [runtime, file_triggers](const StoredResource& r) {
                                                        return runtime->realize_trigger(r, file_triggers);
                                                      },
                                                      [runtime, file_triggers](const std::string& name) {
                                                        runtime->triggers().forget(name, /*deleted=*/true);
                                                        if (file_triggers.forget) file_triggers.forget(name);
                                                      },
                                                      [runtime, file_triggers](const StoredResource& r) {
                                                        if (auto status = runtime->triggers().status(r.name))
                                                          return *status;
                                                        return file_triggers.status
                                                                   ? file_triggers.status(r)
                                                                   : nlohmann::json::object();
                                                      },
                                                      [runtime, file_triggers] {
                                                        runtime->triggers().stop_all();
                                                        if (file_triggers.stop_all) file_triggers.stop_all();
                                                      }});
}

}  // namespace sluice
