#pragma once
// The controller turns stored resources into running parts: a Broker into an event log in the
// BrokerRegistry, a Trigger into a dispatcher, an Agent into revisions and replicas. `apply`
// validates every manifest before storing any (a file is applied whole or not at all).

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "broker/broker_registry.hpp"
#include "broker/cursor_store.hpp"
#include "broker/file_log.hpp"
#include "broker/kafka_log.hpp"
#include "core/asio.hpp"
#include "core/clock.hpp"
#include "core/secret_ref.hpp"
#include "server/config_topic.hpp"
#include "server/resource_store.hpp"

namespace sluice {

struct ControllerOptions {
  std::string data_dir;
  /// `kafka://…` (server/config_topic.hpp): resources live in a compacted Kafka topic shared by every
  /// node, the files under data_dir/resources are this node's copy. Empty: the files alone.
  std::string config_store;
  std::chrono::milliseconds config_store_timeout{10000};
  std::size_t max_pending_appends = 100000;
  bool fsync = true;
};

/// One kind's behaviour in the controller.
struct KindHandler {
  /// Validates a manifest (already kind-resolved). Error.subject names the field.
  std::function<Status(const nlohmann::json& manifest)> validate;
  /// Brings the running state in line with the stored resource (called after every change and at
  /// recovery). Returns a not-ready reason, or ok.
  std::function<Status(const StoredResource& resource)> realize;
  /// Tears down what `realize` made.
  std::function<void(const std::string& name)> forget;
  /// Status fields of a resource (conditions are added by the controller).
  std::function<nlohmann::json(const StoredResource& resource)> status;
  /// Stops everything of this kind at shutdown (dispatchers finish in-flight work first).
  std::function<void()> stop_all;
};

class Controller {
 public:
  Controller(ControllerOptions options, Clock& clock, BrokerRegistry& brokers);
  ~Controller();

  /// Registers how a kind is validated and realised (the server wires triggers and agents).
  void handle_kind(const std::string& kind, KindHandler handler);

  /// Rewrites what `describe` and `list` show of a kind (secret values are replaced).
  void redact_kind(const std::string& kind, std::function<nlohmann::json(nlohmann::json)> redact);
  /// Undoes the redaction in a manifest being applied, given the stored one of the same name (null when
  /// there is none), so that `get -o yaml` output applied back keeps the values it did not show; an error
  /// (400) refuses the apply.
  void unredact_kind(
      const std::string& kind,
      std::function<Result<nlohmann::json>(nlohmann::json, const nlohmann::json* stored)> unredact);
  /// The handler registered for a kind (empty functions when none), so that a wiring can extend another's.
  KindHandler handler(const std::string& kind);

  /// Loads stored resources and realises them (brokers first). With a config store, first makes the local
  /// copy what the topic holds, and then follows the topic. Errors for an unreadable store or topic.
  Status recover();

  /// Validates all manifests, then stores and realises them in kind order. Returns one entry per
  /// manifest: {kind, name, action: created|configured|unchanged}. Error.code 400 when any is invalid
  /// (nothing applied); Error.subject starts with "<Kind>/<name>: ".
  Result<nlohmann::json> apply(std::vector<nlohmann::json> manifests);

  /// Deletes a resource and what runs for it. Error.code 404 when absent.
  Status remove(const std::string& kind, const std::string& name);

  /// The manifest with metadata.generation and a status (conditions Ready with reason when not).
  std::optional<nlohmann::json> describe(const std::string& kind, const std::string& name);
  nlohmann::json list(const std::string& kind);

  /// Looks up the secretKeyRef values of Kafka brokers' spec.kafka.config (set by the secrets' wiring).
  void set_secret_resolver(SecretResolver resolver) { secret_resolver_ = std::move(resolver); }

  /// Re-realises every resource of a kind (e.g. triggers after their broker appears).
  void reconcile(const std::string& kind);

  /// Periodic housekeeping: log retention.
  void housekeeping();

  /// Tries again to open the log of every Kafka-backed Broker that has none (its cluster refused or did
  /// not answer when it was applied, or at start). Connects outside the controller's lock, so the API
  /// stays responsive while a cluster is unreachable. Called every few seconds by the server.
  void retry_unavailable_brokers();

  /// Stops dispatchers, flushes and closes logs.
  void shutdown();

  /// Whether this node's store held the resource when the server started (before any config topic
  /// sync): a trigger found without a cursor then lost it, one made since is new.
  bool stored_before_start(const std::string& kind, const std::string& name) const;

  CursorStore& cursors() { return *cursors_; }
  ResourceStore& store() { return *store_; }

 private:
  Status validate_broker(const nlohmann::json& manifest);
  /// `opened`: a Kafka log already opened for this generation (by retry_unavailable_brokers).
  Status realize_broker(const StoredResource& resource, std::shared_ptr<EventLog> opened = nullptr);
  Result<KafkaLogOptions> kafka_log_options(const std::string& name, const BrokerSpec& spec);
  void forget_broker(const std::string& name, bool delete_data);
  nlohmann::json describe_locked(const StoredResource& r);
  void realize_locked(const StoredResource& r);
  /// Re-realises the kinds that depend on the changed ones (triggers on brokers, agents and secrets, …).
  void reconcile_dependents(const std::set<std::string>& changed_kinds);
  /// Stores what the config topic holds at start (deleting what it no longer has).
  Status sync_with_config_topic();
  /// Deletes the stored resource and tears down what runs for it (dependents are not reconciled).
  Status remove_locked(const std::string& kind, const std::string& name);
  /// Applies one record of the config topic written by any node.
  void apply_replicated(const ConfigRecord& record);
  /// Writes changes to the config topic and waits until this node applied them.
  Status write_replicated(const std::vector<std::pair<std::string, std::optional<StoredResource>>>& changes);

  ControllerOptions options_;
  Clock& clock_;
  BrokerRegistry& brokers_;
  std::unique_ptr<ResourceStore> store_;
  std::unique_ptr<KafkaConfigTopic> config_;
  std::unique_ptr<CursorStore> cursors_;
  std::recursive_mutex mu_;
  SecretResolver secret_resolver_;
  std::map<std::string, KindHandler> handlers_;
  std::map<std::string, std::function<nlohmann::json(nlohmann::json)>> redactors_;
  std::map<std::string, std::function<Result<nlohmann::json>(nlohmann::json, const nlohmann::json*)>>
      unredactors_;
  std::map<std::pair<std::string, std::string>, Error> not_ready_;  // (kind, name) → why not ready
  struct RealizedBroker {
    std::int64_t generation = 0;
    std::string secrets;  // values_digest of the Kafka producer's resolved secrets
  };
  std::map<std::string, RealizedBroker> realized_brokers_;
  std::set<std::pair<std::string, std::string>>
      stored_at_start_;                // (kind, name): recover() writes, then read-only
  std::atomic<bool> retrying_{false};  // retry_unavailable_brokers is running
  bool stopped_ = false;               // shutdown() ran (guarded by mu_)
};

}  // namespace sluice
