#pragma once
// A reference from a manifest to a value in a Secret, as Kubernetes writes it:
// `{secretKeyRef: {name: openai, key: apiKey}}`. Manifests (and revisions, hashes, statuses) keep the
// reference; the value is looked up only where it is used (a replica's environment, a Kafka client's
// properties), through a SecretResolver that the server's Secret store provides.

#include <functional>
#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "core/result.hpp"

namespace sluice {

struct SecretRef {
  std::string name;  // the Secret
  std::string key;   // the key within it
  bool operator==(const SecretRef&) const = default;
};

/// The value of `key` in the Secret `name`; the error says which is missing (never the value).
using SecretResolver = std::function<Result<std::string>(const std::string& name, const std::string& key)>;

/// Whether `v` is an object with a `secretKeyRef` member.
bool is_secret_key_ref(const nlohmann::json& v);

/// `{secretKeyRef: {name, key}}` at `path`; errors name the field (`path.secretKeyRef.name`, …).
Result<SecretRef> parse_secret_key_ref(const nlohmann::json& v, const std::string& path);

/// Refuses a plain value, in a manifest's map of librdkafka properties at `path` (a KafkaSource's
/// `spec.config`, a Kafka broker's `spec.kafka.config`), for a property that holds a credential
/// (`sasl.password`, `ssl.key.password`, …): `get` shows manifests to every reader, so such a value must
/// be `{secretKeyRef: {name, key}}`. Checked when a manifest is applied; stored ones still load.
Status refuse_plain_credentials(const nlohmann::json& config, const std::string& path);

/// `{secretKeyRef: {name, key}}`, for status and revision hashes.
nlohmann::json to_json(const SecretRef& ref);

/// Looks up every reference; the first that fails names `what` (for example "spec.config.sasl.password")
/// and the Secret.
Result<std::map<std::string, std::string>> resolve_secrets(const std::map<std::string, SecretRef>& refs,
                                                           const SecretResolver& resolve,
                                                           const std::string& what);

/// A digest of resolved values (hex), so that a running client can tell that a Secret it uses changed
/// without keeping the values themselves anywhere else.
std::string values_digest(const std::map<std::string, std::string>& values);

}  // namespace sluice
