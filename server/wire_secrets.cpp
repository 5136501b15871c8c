// Secret resources: values that manifests refer to by name (`secretKeyRef: {name, key}`), kept in the
// data dir (private to the server's user, like everything there) or read from the server's environment,
// and never shown: `get`, status and logs see the keys, not the values.
//
//   apiVersion: v1                     # Kubernetes' shape; or sluice.dev/v1
//   kind: Secret
//   metadata: {name: openai}
//   stringData: {apiKey: sk-...}       # plain values
//   data: {cert: LS0tLS1CRUdJTi...}    # base64 values
//   fromEnv: {token: GITHUB_TOKEN}     # Sluice: the value of an environment variable of `sluice serve`

#include <cstdlib>
#include <map>
#include <mutex>
#include <regex>

#include "core/base64.hpp"
#include "server/wiring.hpp"

namespace sluice {
namespace {

constexpr const char* kRedacted = "<redacted>";

struct SecretSpec {
  std::map<std::string, std::string> values;  // decoded
  std::map<std::string, std::string> env;     // key → environment variable
};

Result<SecretSpec> parse_secret(const nlohmann::json& manifest) {
  static const std::regex key_re(R"([-._a-zA-Z0-9]{1,253})");
  static const std::regex env_re(R"([A-Za-z_][A-Za-z0-9_]*)");
  SecretSpec spec;
  for (const auto& [field, value] : manifest.items()) {
    if (field == "apiVersion" || field == "kind" || field == "metadata" || field == "type" ||
        field == "immutable")
      continue;
    if (field != "stringData" && field != "data" && field != "fromEnv")
      return make_error(field, "unknown field (a Secret has stringData, data and fromEnv)", 400);
    if (!value.is_object()) return make_error(field, "must map keys to values", 400);
    for (const auto& [key, item] : value.items()) {
      const std::string path = field + "." + key;
      if (!std::regex_match(key, key_re))
        return make_error(path, "keys are letters, digits, '-', '_' and '.'", 400);
      if (!item.is_string()) return make_error(path, "must be a string", 400);
      if (spec.values.count(key) || spec.env.count(key))
        return make_error(path, "the key is given twice", 400);
      const std::string text = item.get<std::string>();
      if (field == "stringData") {
        spec.values[key] = text;
      } else if (field == "data") {
        auto decoded = base64_decode(text);
        if (!decoded) return make_error(path, "must be base64 (use stringData for plain text)", 400);
        spec.values[key] = *decoded;
      } else {
        if (!std::regex_match(text, env_re))
          return make_error(path, "must name an environment variable", 400);
        spec.env[key] = text;
      }
    }
  }
  return spec;
}

class SecretStore {
 public:
  void put(const std::string& name, SecretSpec spec) {
    std::lock_guard lock(mu_);
    secrets_[name] = std::move(spec);
  }
  void remove(const std::string& name) {
    std::lock_guard lock(mu_);
    secrets_.erase(name);
  }
  Result<std::string> resolve(const std::string& name, const std::string& key) const {
    std::lock_guard lock(mu_);
    auto it = secrets_.find(name);
    if (it == secrets_.end()) return make_error("secretKeyRef", "no Secret named \"" + name + "\"", 404);
    if (auto v = it->second.values.find(key); v != it->second.values.end()) return v->second;
    if (auto e = it->second.env.find(key); e != it->second.env.end()) {
      const char* value = std::getenv(e->second.c_str());
      if (!value)
        return make_error(
            "secretKeyRef",
            "Secret \"" + name + "\" key \"" + key + "\" reads $" + e->second + ", which is not set", 404);
      return std::string(value);
    }
    return make_error("secretKeyRef", "Secret \"" + name + "\" has no key \"" + key + "\"", 404);
  }
  std::vector<std::string> keys(const std::string& name) const {
    std::lock_guard lock(mu_);
    std::vector<std::string> out;
    auto it = secrets_.find(name);
    if (it == secrets_.end()) return out;
    for (const auto& [k, v] : it->second.values) out.push_back(k);
    for (const auto& [k, v] : it->second.env) out.push_back(k);
    return out;
  }

 private:
  mutable std::mutex mu_;
  std::map<std::string, SecretSpec> secrets_;
};

}  // namespace

void wire_secrets(ServerParts& parts) {
  auto store = std::make_shared<SecretStore>();
  parts.controller.handle_kind("Secret",
                               KindHandler{[](const nlohmann::json& manifest) -> Status {
                                             auto spec = parse_secret(manifest);
                                             return spec ? ok() : Status(spec.error());
                                           },
                                           [store](const StoredResource& r) -> Status {
                                             auto spec = parse_secret(r.manifest);
                                             if (!spec) return spec.error();
                                             store->put(r.name, std::move(spec).value());
                                             return ok();
                                           },
                                           [store](const std::string& name) { store->remove(name); },
                                           [store](const StoredResource& r) {
                                             return nlohmann::json{{"keys", store->keys(r.name)}};
                                           },
                                           nullptr});
  parts.controller.redact_kind("Secret", [](nlohmann::json secret) {
    for (const char* field : {"stringData", "data"})
      if (secret.contains(field) && secret[field].is_object())
        for (auto& [key, value] : secret[field].items()) value = kRedacted;
    return secret;
  });
  // `get` output applied back: a value shown as <redacted> keeps the stored value of that key.
  parts.controller.unredact_kind(
      "Secret", [](nlohmann::json secret, const nlohmann::json* stored) -> Result<nlohmann::json> {
        for (const char* field : {"stringData", "data"}) {
          if (!secret.contains(field) || !secret[field].is_object()) continue;
          for (auto& [key, value] : secret[field].items()) {
            if (value != kRedacted) continue;
            const bool kept = stored && stored->contains(field) && (*stored)[field].is_object() &&
                              (*stored)[field].contains(key);
            if (!kept)
              return make_error(std::string(field) + "." + key,
                                std::string("is \"<redacted>\", which `sluice get` shows in place of a "
                                            "value, and this Secret has no stored ") +
                                    field + " value for the key to keep: give the value",
                                400);
            value = (*stored)[field][key];
          }
        }
        return secret;
      });
  parts.resolve_secret = [store](const std::string& name, const std::string& key) {
    return store->resolve(name, key);
  };
}

}  // namespace sluice
