#pragma once
// Resources (Broker, Trigger, Agent, KafkaSource, PingSource) stored durably under
// <data-dir>/resources/<plural>/<name>.json, each written atomically (temp file, fsync, rename,
// fsync of the directory), so that they survive restarts and crashes.

#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/result.hpp"

namespace sluice {

/// A kind Sluice serves: its name, REST plural, and the apiVersions it accepts.
struct KindInfo {
  std::string kind;    // "Trigger"
  std::string plural;  // "triggers"
  std::vector<std::string> api_versions;
};

/// The kinds, in the order `apply` realises them (brokers before triggers, agents before triggers).
const std::vector<KindInfo>& known_kinds();

/// Finds a kind by any spelling a user types: "Trigger", "trigger", "triggers", "trig"… ("ksvc" and
/// "Service" mean Agent). nullptr when unknown.
const KindInfo* find_kind(std::string_view spelling);

/// Checks apiVersion + kind of a manifest and normalises them (a serving.knative.dev/v1 Service
/// becomes an Agent). Returns the kind.
Result<const KindInfo*> resolve_manifest_kind(nlohmann::json& manifest);

/// 404: no resource of that kind and name ("no Trigger named \"x\"", the same for get and delete).
inline Error not_found_error(const std::string& kind, const std::string& name) {
  return make_error("", "no " + kind + " named \"" + name + "\"", 404);
}

struct StoredResource {
  std::string kind;  // canonical kind ("Broker")
  std::string name;
  nlohmann::json manifest;  // apiVersion, kind, metadata, spec as applied
  std::int64_t generation = 1;
  std::string created;  // RFC 3339
  std::string updated;
};

/// A stored resource as kept on disk and in the config topic: {name, kind, generation, created,
/// updated, manifest}.
nlohmann::json stored_resource_json(const StoredResource& r);
/// Reads what stored_resource_json wrote; error when it is not such an object.
Result<StoredResource> parse_stored_resource(const nlohmann::json& json);

class ResourceStore {
 public:
  /// Opens (creating) the store under `dir` and loads every resource.
  static Result<std::unique_ptr<ResourceStore>> open(const std::string& dir);

  std::vector<StoredResource> list(const std::string& kind) const;
  std::optional<StoredResource> get(const std::string& kind, const std::string& name) const;

  /// Creates or replaces. The generation grows when `spec` (or metadata.annotations) changes; an
  /// identical manifest changes nothing. Durable when it returns. `changed` tells which happened.
  Result<StoredResource> put(const std::string& kind, const std::string& name, nlohmann::json manifest,
                             bool* changed = nullptr);

  /// What put() would store, without storing it (for a store that another writer applies).
  StoredResource next_version(const std::string& kind, const std::string& name, nlohmann::json manifest,
                              bool* changed) const;

  /// Stores `r` as it is (generation and timestamps included). Durable when it returns.
  Status store(const StoredResource& r);

  /// Deletes durably. Error code 404 when absent.
  Status remove(const std::string& kind, const std::string& name);

 private:
  std::string path_for(const std::string& kind, const std::string& name) const;
  std::string dir_;
  mutable std::mutex mu_;
  std::map<std::pair<std::string, std::string>, StoredResource> resources_;
};

}  // namespace sluice
