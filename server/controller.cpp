#include "server/controller.hpp"

#include <filesystem>
#include <set>

#include "broker/broker_spec.hpp"
#include "broker/kafka_log.hpp"
#include "core/log.hpp"
#include "core/metrics.hpp"
#include "core/request_log.hpp"
#include "server/config_topic.hpp"

namespace sluice {

Controller::Controller(ControllerOptions options, Clock& clock, BrokerRegistry& brokers)
    : options_(std::move(options)), clock_(clock), brokers_(brokers) {
  handlers_["Broker"] = KindHandler{[this](const nlohmann::json& m) { return validate_broker(m); },
                                    [this](const StoredResource& r) {
                                      auto st = realize_broker(r);
                                      // No log (a Kafka cluster that refused or did not answer):
                                      // publishers get 503 and the reason, not 404.
                                      if (!st && !brokers_.find(r.name))
                                        brokers_.set_unavailable(r.name, st.error().to_string());
                                      return st;
                                    },
                                    [this](const std::string& name) { forget_broker(name, true); },
                                    [this](const StoredResource& r) {
                                      nlohmann::json status = nlohmann::json::object();
                                      if (auto broker = brokers_.find(r.name)) {
                                        status["address"] = {{"url", "/brokers/" + r.name}};
                                        status["log"] = {{"startOffset", broker->log->start_offset()},
                                                         {"endOffset", broker->log->end_offset()}};
                                      }
                                      return status;
                                    },
                                    nullptr};
}

Controller::~Controller() {
  shutdown();
}

void Controller::handle_kind(const std::string& kind, KindHandler handler) {
  std::lock_guard lock(mu_);
  handlers_[kind] = std::move(handler);
}

void Controller::redact_kind(const std::string& kind, std::function<nlohmann::json(nlohmann::json)> redact) {
  std::lock_guard lock(mu_);
  redactors_[kind] = std::move(redact);
}

void Controller::unredact_kind(
    const std::string& kind,
    std::function<Result<nlohmann::json>(nlohmann::json, const nlohmann::json* stored)> unredact) {
  std::lock_guard lock(mu_);
  unredactors_[kind] = std::move(unredact);
}

KindHandler Controller::handler(const std::string& kind) {
  std::lock_guard lock(mu_);
  auto it = handlers_.find(kind);
  return it != handlers_.end() ? it->second : KindHandler{};
}

Status Controller::validate_broker(const nlohmann::json& manifest) {
  auto spec = parse_broker(manifest);
  if (!spec) return spec.error();
  if (spec.value().storage == "kafka") {
    if (const auto& kafka = manifest["spec"].value("kafka", nlohmann::json()); kafka.is_object())
      if (auto st = refuse_plain_credentials(kafka.value("config", nlohmann::json()), "spec.kafka.config");
          !st)
        return st;
    if (auto settings = parse_kafka_broker_settings(spec.value()); !settings) return settings.error();
  }
  if (auto it = handlers_.find("Broker.delivery"); it != handlers_.end())
    return it->second.validate(manifest);
  return ok();
}

Result<KafkaLogOptions> Controller::kafka_log_options(const std::string& name, const BrokerSpec& spec) {
  auto settings = parse_kafka_broker_settings(spec);
  if (!settings) return settings.error();
  KafkaLogOptions options;
  options.settings = settings.value();
  auto secrets = resolve_secrets(settings.value().config.secrets, secret_resolver_, "spec.kafka.config.");
  if (!secrets) return secrets.error();
  options.resolved_secrets = std::move(secrets).value();
  options.name = name;
  options.max_pending_records = options_.max_pending_appends;
  return options;
}

Status Controller::realize_broker(const StoredResource& resource, std::shared_ptr<EventLog> opened) {
  auto spec = parse_broker(resource.manifest);
  if (!spec) return spec.error();
  // A Kafka producer is opened again when a Secret it uses changed (a rotated password).
  std::optional<KafkaLogOptions> kafka_options;
  std::string secrets;
  if (spec.value().storage == "kafka") {
    auto options = kafka_log_options(resource.name, spec.value());
    if (!options) return options.error();
    secrets = values_digest(options.value().resolved_secrets);
    kafka_options = std::move(options).value();
  }
  auto existing = brokers_.find(resource.name);
  auto realized = realized_brokers_.find(resource.name);
  const bool same_secrets = realized != realized_brokers_.end() && realized->second.secrets == secrets;
  if (existing && same_secrets && realized->second.generation == resource.generation) return ok();
  std::shared_ptr<EventLog> log;
  if (existing && same_secrets && existing->spec.storage == spec.value().storage &&
      existing->spec.kafka == spec.value().kafka) {
    log = existing->log;  // settings change: keep the log, apply the new spec
    if (auto* file = dynamic_cast<FileLog*>(log.get())) {
      file->set_retention(spec.value().retention_age.count(),
                          static_cast<std::uint64_t>(spec.value().retention_bytes));
    }
  } else if (opened) {
    log = std::move(opened);
  } else if (kafka_options) {
    auto kafka = KafkaLog::open(std::move(*kafka_options));
    if (!kafka) return with_reason(kafka.error(), "KafkaUnavailable");
    log = std::shared_ptr<EventLog>(std::move(kafka).value());
  } else {
    FileLogOptions options;
    options.name = resource.name;
    options.retention_ms = spec.value().retention_age.count();
    options.retention_bytes = static_cast<std::uint64_t>(spec.value().retention_bytes);
    options.max_pending_appends = options_.max_pending_appends;
    options.fsync = options_.fsync;
    auto& fsync_seconds = MetricsRegistry::global().histogram(
        "sluice_broker_fsync_duration_seconds", "Time of one group-commit fdatasync of a broker's log",
        latency_buckets(), {{"broker", resource.name}});
    options.on_fsync = [&fsync_seconds](std::chrono::nanoseconds elapsed) {
      fsync_seconds.observe(std::chrono::duration<double>(elapsed).count());
    };
    auto opened = FileLog::open(options_.data_dir + "/brokers/" + resource.name + "/log", options, clock_);
    if (!opened) return with_reason(opened.error(), "LogOpenFailed");
    log = std::shared_ptr<EventLog>(std::move(opened).value());
  }
  auto broker = std::make_shared<Broker>();
  broker->spec = spec.value();
  broker->log = log;
  broker->idempotency = std::make_unique<IdempotencyCache>(spec.value().idempotency_window);
  if (spec.value().rate_limit > 0)
    broker->rate_limit =
        std::make_unique<TokenBucket>(spec.value().rate_limit, spec.value().rate_burst, clock_);
  if (spec.value().quota_bytes_per_second > 0)
    broker->byte_quota =
        std::make_unique<TokenBucket>(static_cast<double>(spec.value().quota_bytes_per_second),
                                      static_cast<double>(spec.value().quota_burst_bytes), clock_);
  if (broker->idempotency->enabled()) {
    // Rebuild the window from the log, so a publish retried across a restart is still recognised.
    const auto window_start =
        std::chrono::duration_cast<std::chrono::milliseconds>(clock_.wall().time_since_epoch()).count() -
        spec.value().idempotency_window.count();
    if (existing && existing->idempotency && existing->idempotency->enabled()) {
      broker->idempotency = std::move(existing->idempotency);
    } else {
      rebuild_idempotency(*broker, window_start);
    }
  }
  brokers_.put(std::move(broker));
  realized_brokers_[resource.name] = {resource.generation, secrets};
  SLUICE_LOG(broker, info, "[broker={}] ready (log {}..{})", resource.name, log->start_offset(),
             log->end_offset());
  return ok();
}

void Controller::forget_broker(const std::string& name, bool delete_data) {
  auto broker = brokers_.remove(name);
  realized_brokers_.erase(name);
  // Its triggers stop reading (they become not ready) before the log closes.
  if (broker) reconcile("Trigger");
  if (broker) {
    if (auto st = broker->log->flush(); !st)
      SLUICE_LOG(broker, warn, "[broker={}] flush on delete: {}", name, st.error().to_string());
    broker->log->close();
  }
  if (delete_data) {
    std::error_code ec;
    std::filesystem::remove_all(options_.data_dir + "/brokers/" + name, ec);
    // Its series leave /metrics (a broker made again under the name counts from zero).
    MetricsRegistry::global().retire("broker", name);
  }
}

Status Controller::recover() {
  std::lock_guard lock(mu_);
  auto store = ResourceStore::open(options_.data_dir + "/resources");
  if (!store) return store.error();
  store_ = std::move(store).value();
  for (const auto& kind : known_kinds())
    for (const auto& r : store_->list(kind.kind)) stored_at_start_.emplace(kind.kind, r.name);
  auto cursors = CursorStore::open(options_.data_dir + "/cursors");
  if (!cursors) return cursors.error();
  cursors_ = std::move(cursors).value();
  if (!options_.config_store.empty()) {
    if (auto st = sync_with_config_topic(); !st) return st;
  }
  for (const auto& kind : known_kinds()) {
    for (const auto& r : store_->list(kind.kind)) realize_locked(r);
  }
  if (config_) config_->follow([this](const ConfigRecord& record) { apply_replicated(record); });
  return ok();
}

bool Controller::stored_before_start(const std::string& kind, const std::string& name) const {
  // No lock: written once by recover(), before anything is realised, and only read after. Callers hold
  // their own locks, which the controller's lock must not nest inside.
  return stored_at_start_.count({kind, name}) > 0;
}

namespace {

std::string config_key(const std::string& kind, const std::string& name) {
  return kind + "/" + name;
}

/// What a config record says: resource Kind/name is now `resource` (nullopt: deleted).
struct ReplicatedChange {
  std::string kind;
  std::string name;
  std::optional<StoredResource> resource;
};

/// Reads a record of the config topic; error for one whose key is not Kind/name or whose value is not
/// a stored resource.
Result<ReplicatedChange> change_of(const ConfigRecord& record) {
  const auto slash = record.key.find('/');
  const KindInfo* kind = slash == std::string::npos ? nullptr : find_kind(record.key.substr(0, slash));
  if (kind == nullptr || kind->kind != record.key.substr(0, slash) || slash + 1 == record.key.size())
    return make_error("config record \"" + record.key + "\"", "the key is not Kind/name");
  ReplicatedChange change{kind->kind, record.key.substr(slash + 1), std::nullopt};
  if (!record.value) return change;
  auto json = nlohmann::json::parse(*record.value, nullptr, false);
  auto r = json.is_discarded() ? Result<StoredResource>(make_error("resource", "is not JSON"))
                               : parse_stored_resource(json);
  if (!r) return make_error("config record \"" + record.key + "\"", r.error().message);
  r.value().kind = change.kind;
  r.value().name = change.name;
  change.resource = std::move(r).value();
  return change;
}

/// Drops what `sluice get -o yaml` (or a kubectl export) adds to a manifest and the server owns:
/// `status` and metadata such as generation and creationTimestamp, so that applying it back stores
/// the same manifest (and says unchanged). Error for a top-level or metadata field that no manifest
/// has: a typo would otherwise be stored and ignored.
Status strip_server_fields(nlohmann::json& manifest, const std::string& kind) {
  manifest.erase("status");
  // A Secret's own validation knows its top-level fields (stringData, data, type, …).
  if (kind != "Secret") {
    for (const auto& [key, value] : manifest.items())
      if (key != "apiVersion" && key != "kind" && key != "metadata" && key != "spec")
        return make_error(key, "unknown field (known: apiVersion, kind, metadata, spec; status is ignored)",
                          400);
  }
  auto metadata = manifest.find("metadata");
  if (metadata == manifest.end() || !metadata->is_object()) return ok();
  static const std::set<std::string> server_owned = {"uid",
                                                     "generation",
                                                     "resourceVersion",
                                                     "creationTimestamp",
                                                     "deletionTimestamp",
                                                     "deletionGracePeriodSeconds",
                                                     "managedFields",
                                                     "selfLink"};
  static const std::set<std::string> user_set = {
      "name", "namespace", "labels", "annotations", "generateName", "ownerReferences", "finalizers"};
  for (auto it = metadata->begin(); it != metadata->end();) {
    if (server_owned.count(it.key())) {
      it = metadata->erase(it);
    } else if (!user_set.count(it.key())) {
      return make_error("metadata." + it.key(),
                        "unknown field (known: name, namespace, labels, annotations, generateName, "
                        "ownerReferences, finalizers; uid, generation, resourceVersion, creationTimestamp "
                        "and other server-set fields are ignored)",
                        400);
    } else {
      ++it;
    }
  }
  return ok();
}

/// Whether the local copy already is this version (nothing to store or realise).
bool same_version(const std::optional<StoredResource>& local, const StoredResource& r) {
  return local && local->manifest == r.manifest && local->generation == r.generation;
}

}  // namespace

Status Controller::sync_with_config_topic() {
  auto url = parse_config_store_url(options_.config_store);
  if (!url) return url.error();
  auto topic = KafkaConfigTopic::open(url.value(), options_.config_store_timeout);
  if (!topic) return topic.error();
  auto records = topic.value()->read_to_end();
  if (!records) return records.error();
  // The latest record of each key wins (compaction may not have run yet).
  std::map<std::pair<std::string, std::string>, std::optional<StoredResource>> latest;
  for (const auto& record : records.value()) {
    auto change = change_of(record);
    if (!change) {
      SLUICE_LOG(server, warn, "{} (skipped)", change.error().to_string());
      continue;
    }
    latest[{change.value().kind, change.value().name}] = std::move(change.value().resource);
  }
  for (const auto& kind : known_kinds()) {
    for (const auto& r : store_->list(kind.kind)) {
      auto it = latest.find({r.kind, r.name});
      if (it == latest.end() || !it->second) {
        if (auto st = store_->remove(r.kind, r.name); !st) return st;
      }
    }
  }
  std::size_t count = 0;
  for (const auto& [key, r] : latest) {
    if (!r) continue;
    ++count;
    if (same_version(store_->get(r->kind, r->name), *r)) continue;
    if (auto st = store_->store(*r); !st) return st;
  }
  SLUICE_LOG(server, info, "config store: {} resource(s) from topic {} at {} ({} records read)", count,
             url.value().topic, url.value().bootstrap_servers, records.value().size());
  config_ = std::move(topic).value();
  return ok();
}

void Controller::apply_replicated(const ConfigRecord& record) {
  auto change = change_of(record);
  if (!change) {
    SLUICE_LOG(server, warn, "{} (skipped)", change.error().to_string());
    return;
  }
  std::lock_guard lock(mu_);
  const auto& [kind, name, resource] = change.value();
  if (!resource) {
    if (!store_->get(kind, name)) return;
    if (auto st = remove_locked(kind, name); !st) {
      SLUICE_LOG(server, err, "[{}={}] delete from the config store: {}", kind, name, st.error().to_string());
      return;
    }
    SLUICE_LOG(server, info, "[{}={}] deleted (config store)", kind, name);
  } else {
    if (same_version(store_->get(kind, name), *resource)) return;
    if (auto st = store_->store(*resource); !st) {
      SLUICE_LOG(server, err, "[{}={}] store from the config store: {}", kind, name, st.error().to_string());
      return;
    }
    realize_locked(*resource);
    SLUICE_LOG(server, info, "[{}={}] generation {} (config store)", kind, name, resource->generation);
  }
  reconcile_dependents({kind});
}

Status Controller::write_replicated(
    const std::vector<std::pair<std::string, std::optional<StoredResource>>>& changes) {
  std::vector<ConfigRecord> written;
  for (const auto& [key, r] : changes) {
    auto record = config_->write(
        key, r ? std::optional<std::string>(stored_resource_json(*r).dump()) : std::optional<std::string>());
    if (!record) return record.error();
    written.push_back(std::move(record).value());
  }
  for (const auto& record : written) {
    if (!config_->wait_applied(record, options_.config_store_timeout))
      return make_error(
          "config store",
          record.key + " is stored in " + config_->topic() + " but not yet applied on this node", 504);
  }
  return ok();
}

void Controller::realize_locked(const StoredResource& r) {
  auto it = handlers_.find(r.kind);
  if (it == handlers_.end() || !it->second.realize) return;
  auto st = it->second.realize(r);
  if (st) {
    not_ready_.erase({r.kind, r.name});
  } else {
    not_ready_[{r.kind, r.name}] = st.error();
    SLUICE_LOG(server, warn, "[{}={}] not ready: {}", r.kind, r.name,
               request_log::redact_secrets(st.error().to_string()));
  }
}

Result<nlohmann::json> Controller::apply(std::vector<nlohmann::json> manifests) {
  std::unique_lock lock(mu_);
  struct Item {
    const KindInfo* kind;
    std::string name;
    nlohmann::json manifest;
  };
  std::vector<Item> items;
  for (std::size_t i = 0; i < manifests.size(); ++i) {
    auto& m = manifests[i];
    std::string where = manifests.size() > 1 ? "document " + std::to_string(i + 1) + ": " : "";
    auto kind = resolve_manifest_kind(m);
    if (!kind) return make_error(where + kind.error().subject, kind.error().message, 400);
    auto name = manifest_name(m);
    if (!name)
      return make_error(where + kind.value()->kind + " " + name.error().subject, name.error().message, 400);
    std::string label = kind.value()->kind + "/" + name.value();
    if (auto st = strip_server_fields(m, kind.value()->kind); !st)
      return make_error(label + ": " + st.error().subject, st.error().message, 400);
    if (auto unredact = unredactors_.find(kind.value()->kind); unredact != unredactors_.end()) {
      const auto stored = store_->get(kind.value()->kind, name.value());
      auto restored = unredact->second(std::move(m), stored ? &stored->manifest : nullptr);
      if (!restored)
        return make_error(label + ": " + restored.error().subject, restored.error().message, 400);
      m = std::move(restored).value();
    }
    auto handler = handlers_.find(kind.value()->kind);
    if (handler == handlers_.end() || !handler->second.validate)
      return make_error(label, "kind " + kind.value()->kind + " is not served by this server", 400);
    if (auto st = handler->second.validate(m); !st)
      return make_error(label + ": " + st.error().subject, st.error().message, 400);
    for (const auto& other : items)
      if (other.kind == kind.value() && other.name == name.value())
        return make_error(label, "appears twice in the same apply", 400);
    items.push_back({kind.value(), name.value(), std::move(m)});
  }
  // Realise in kind order (brokers before agents before triggers), keeping file order within a kind.
  std::stable_sort(items.begin(), items.end(), [](const Item& a, const Item& b) {
    auto rank = [](const KindInfo* k) { return k - known_kinds().data(); };
    return rank(a.kind) < rank(b.kind);
  });
  auto results = nlohmann::json::array();
  auto record = [&](const Item& item, bool existed, bool changed) {
    results.push_back({{"kind", item.kind->kind},
                       {"name", item.name},
                       {"action", !existed  ? "created"
                                  : changed ? "configured"
                                            : "unchanged"}});
  };
  if (config_) {
    // Every node (this one included) stores and realises the changes as it reads them from the topic.
    std::vector<std::pair<std::string, std::optional<StoredResource>>> changes;
    for (auto& item : items) {
      bool existed = store_->get(item.kind->kind, item.name).has_value();
      bool changed = false;
      auto next = store_->next_version(item.kind->kind, item.name, item.manifest, &changed);
      if (changed) changes.emplace_back(config_key(item.kind->kind, item.name), std::move(next));
      record(item, existed, changed);
    }
    lock.unlock();  // the follower applies under the same lock
    if (auto st = write_replicated(changes); !st) return st.error();
    return results;
  }
  std::set<std::string> changed_kinds;
  for (auto& item : items) {
    bool existed = store_->get(item.kind->kind, item.name).has_value();
    bool changed = false;
    auto stored = store_->put(item.kind->kind, item.name, item.manifest, &changed);
    if (!stored) return make_error(item.kind->kind + "/" + item.name, stored.error().to_string(), 500);
    if (changed) {
      realize_locked(stored.value());
      changed_kinds.insert(item.kind->kind);
    }
    record(item, existed, changed);
  }
  reconcile_dependents(changed_kinds);
  return results;
}

void Controller::reconcile_dependents(const std::set<std::string>& changed_kinds) {
  // Resources that refer to a Secret (secretKeyRef) may have been waiting for it.
  if (changed_kinds.count("Secret")) {
    reconcile("Broker");
    reconcile("KafkaSource");
  }
  if (changed_kinds.count("Broker") || changed_kinds.count("Agent") || changed_kinds.count("Secret"))
    reconcile("Trigger");
}

Status Controller::remove(const std::string& kind, const std::string& name) {
  std::unique_lock lock(mu_);
  if (!store_->get(kind, name)) return not_found_error(kind, name);
  if (config_) {
    lock.unlock();
    return write_replicated({{config_key(kind, name), std::nullopt}});
  }
  if (auto st = remove_locked(kind, name); !st) return st;
  reconcile_dependents({kind});
  return ok();
}

Status Controller::remove_locked(const std::string& kind, const std::string& name) {
  if (auto st = store_->remove(kind, name); !st) return st;
  auto it = handlers_.find(kind);
  if (it != handlers_.end() && it->second.forget) it->second.forget(name);
  not_ready_.erase({kind, name});
  return ok();
}

void Controller::reconcile(const std::string& kind) {
  std::lock_guard lock(mu_);
  if (!store_) return;
  for (const auto& r : store_->list(kind)) realize_locked(r);
}

nlohmann::json Controller::describe_locked(const StoredResource& r) {
  nlohmann::json out = r.manifest;
  out["metadata"]["generation"] = r.generation;
  out["metadata"]["creationTimestamp"] = r.created;
  nlohmann::json status = nlohmann::json::object();
  auto handler = handlers_.find(r.kind);
  if (handler != handlers_.end() && handler->second.status) status = handler->second.status(r);
  auto reason = not_ready_.find({r.kind, r.name});
  nlohmann::json ready = {{"type", "Ready"}, {"status", reason == not_ready_.end() ? "True" : "False"}};
  if (reason != not_ready_.end()) {
    ready["reason"] = reason->second.reason.empty() ? "NotReady" : reason->second.reason;
    ready["message"] = reason->second.to_string();
  } else if (status.contains("notReady")) {
    // "Unknown" while the resource is being brought up (an agent's newest revision starting), as
    // Knative's conditions; "False" for a failure.
    ready["status"] = status["notReady"].value("status", "False");
    ready["reason"] = status["notReady"].value("reason", "NotReady");
    ready["message"] = status["notReady"].value("message", "");
    status.erase("notReady");
  }
  status["observedGeneration"] = r.generation;
  status["conditions"] = nlohmann::json::array({ready});
  out["status"] = status;
  if (auto redact = redactors_.find(r.kind); redact != redactors_.end()) out = redact->second(std::move(out));
  return out;
}

std::optional<nlohmann::json> Controller::describe(const std::string& kind, const std::string& name) {
  std::lock_guard lock(mu_);
  auto r = store_->get(kind, name);
  if (!r) return std::nullopt;
  return describe_locked(*r);
}

nlohmann::json Controller::list(const std::string& kind) {
  std::lock_guard lock(mu_);
  auto items = nlohmann::json::array();
  for (const auto& r : store_->list(kind)) items.push_back(describe_locked(r));
  return {{"kind", kind + "List"}, {"items", items}};
}

void Controller::housekeeping() {
  for (const auto& broker : brokers_.all()) {
    if (auto* file_log = dynamic_cast<FileLog*>(broker->log.get())) {
      if (auto removed = file_log->enforce_retention(); removed && removed.value() > 0)
        SLUICE_LOG(broker, info, "[broker={}] retention removed {} segment(s)", broker->spec.name,
                   removed.value());
    }
  }
}

void Controller::retry_unavailable_brokers() {
  if (retrying_.exchange(true)) return;  // the previous pass still waits for a cluster
  struct Clear {
    std::atomic<bool>& flag;
    ~Clear() { flag = false; }
  } clear{retrying_};
  struct Attempt {
    StoredResource resource;
    KafkaLogOptions options;
  };
  std::vector<Attempt> attempts;
  {
    std::lock_guard lock(mu_);
    if (!store_) return;
    for (const auto& [key, reason] : not_ready_) {
      if (key.first != "Broker" || brokers_.find(key.second)) continue;
      auto resource = store_->get("Broker", key.second);
      if (!resource) continue;
      auto spec = parse_broker(resource->manifest);
      if (!spec || spec.value().storage != "kafka") continue;
      auto options = kafka_log_options(key.second, spec.value());
      if (options) attempts.push_back({*resource, std::move(options).value()});
    }
  }
  bool any_ready = false;
  for (auto& attempt : attempts) {
    const std::string& name = attempt.resource.name;
    auto opened = KafkaLog::open(std::move(attempt.options));  // outside the lock: may take seconds
    std::lock_guard lock(mu_);
    if (stopped_) return;
    auto current = store_->get("Broker", name);
    // Changed or deleted meanwhile, or realised by an apply: what was opened here is not needed.
    if (!current || current->generation != attempt.resource.generation || brokers_.find(name)) continue;
    Status st = opened ? realize_broker(*current, std::shared_ptr<EventLog>(std::move(opened).value()))
                       : Status(opened.error());
    if (st) {
      not_ready_.erase({"Broker", name});
      SLUICE_LOG(broker, info, "[broker={}] ready: its Kafka cluster answered", name);
      any_ready = true;
    } else {
      not_ready_[{"Broker", name}] = st.error();
      brokers_.set_unavailable(name, st.error().to_string());
    }
  }
  if (any_ready) reconcile_dependents({"Broker"});
}

void Controller::shutdown() {
  // No more changes from other nodes while the parts stop.
  if (config_) config_->stop();
  std::lock_guard lock(mu_);
  stopped_ = true;  // no broker is opened by a retry from here on
  // Consumers of the logs first (triggers, agents), then the logs themselves.
  for (auto& [kind, handler] : handlers_) {
    if (kind != "Broker" && handler.stop_all) handler.stop_all();
  }
  for (const auto& broker : brokers_.all()) {
    if (auto st = broker->log->flush(); !st)
      SLUICE_LOG(broker, err, "[broker={}] flush at shutdown: {}", broker->spec.name, st.error().to_string());
  }
  if (cursors_) {
    if (auto st = cursors_->sync(); !st)
      SLUICE_LOG(server, err, "cursor sync at shutdown: {}", st.error().to_string());
  }
}

}  // namespace sluice
