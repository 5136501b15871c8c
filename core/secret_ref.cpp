#include "core/secret_ref.hpp"

#include <cstdio>
#include <string_view>

namespace sluice {

bool is_secret_key_ref(const nlohmann::json& v) {
  return v.is_object() && v.contains("secretKeyRef");
}

Result<SecretRef> parse_secret_key_ref(const nlohmann::json& v, const std::string& path) {
  auto error = [&](const std::string& field, const std::string& message) {
    return make_error(path + field, message, 400);
  };
  if (!v.is_object() || v.size() != 1 || !v.contains("secretKeyRef"))
    return error("", "must be {secretKeyRef: {name: SECRET, key: KEY}}");
  const auto& ref = v["secretKeyRef"];
  if (!ref.is_object()) return error(".secretKeyRef", "must be {name: SECRET, key: KEY}");
  for (const auto& [field, value] : ref.items()) {
    (void)value;
    if (field != "name" && field != "key" && field != "optional")
      return error(".secretKeyRef." + field, "unknown field (known: name, key)");
  }
  SecretRef out;
  for (auto [field, target] : {std::pair{"name", &out.name}, std::pair{"key", &out.key}}) {
    auto it = ref.find(field);
    if (it == ref.end() || !it->is_string() || it->get<std::string>().empty())
      return error(std::string(".secretKeyRef.") + field, "is required: a non-empty string");
    *target = it->get<std::string>();
  }
  return out;
}

Status refuse_plain_credentials(const nlohmann::json& config, const std::string& path) {
  // librdkafka's properties whose value is a password, a private key or a client secret.
  static constexpr std::string_view kCredentials[] = {"sasl.password", "ssl.key.password",
                                                      "ssl.keystore.password", "ssl.key.pem",
                                                      "sasl.oauthbearer.client.secret"};
  if (!config.is_object()) return ok();
  for (const auto& [key, value] : config.items()) {
    if (is_secret_key_ref(value)) continue;
    for (auto credential : kCredentials)
      if (key == credential)
        return make_error(
            path + "." + key,
            "is a credential: put it in a Secret and refer to it with {secretKeyRef: {name, key}} "
            "(a manifest's values are shown to everyone who may read it)",
            400);
  }
  return ok();
}

nlohmann::json to_json(const SecretRef& ref) {
  return {{"secretKeyRef", {{"name", ref.name}, {"key", ref.key}}}};
}

Result<std::map<std::string, std::string>> resolve_secrets(const std::map<std::string, SecretRef>& refs,
                                                           const SecretResolver& resolve,
                                                           const std::string& what) {
  std::map<std::string, std::string> out;
  for (const auto& [name, ref] : refs) {
    if (!resolve) return make_error(what + name, "secrets are not available here", 500);
    auto value = resolve(ref.name, ref.key);
    if (!value) return make_error(what + name, value.error().message, value.error().code);
    out[name] = std::move(value).value();
  }
  return out;
}

std::string values_digest(const std::map<std::string, std::string>& values) {
  std::uint64_t h = 1469598103934665603ull;  // FNV-1a 64
  auto mix = [&h](std::string_view text) {
    for (unsigned char c : text) h = (h ^ c) * 1099511628211ull;
    h = (h ^ 0xff) * 1099511628211ull;  // separator: ("ab","c") and ("a","bc") differ
  };
  for (const auto& [key, value] : values) {
    mix(key);
    mix(value);
  }
  char out[17];
  std::snprintf(out, sizeof out, "%016llx", static_cast<unsigned long long>(h));
  return out;
}

}  // namespace sluice
