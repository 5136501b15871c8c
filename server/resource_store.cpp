#include "server/resource_store.hpp"

#include <algorithm>
#include <chrono>

#include "core/cloud_event.hpp"
#include "core/fs.hpp"

namespace sluice {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

std::string now_rfc3339() {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                std::chrono::system_clock::now().time_since_epoch())
                .count();
  return format_rfc3339(ms);
}

// What makes a new generation: the spec and the annotations (Knative bumps metadata.generation on
// spec changes; annotations drive autoscaling, so they count here).
nlohmann::json generation_input(const nlohmann::json& manifest) {
  nlohmann::json in = nlohmann::json::object();
  if (manifest.contains("spec")) in["spec"] = manifest["spec"];
  if (manifest.contains("metadata") && manifest["metadata"].contains("annotations"))
    in["annotations"] = manifest["metadata"]["annotations"];
  return in;
}

}  // namespace

nlohmann::json stored_resource_json(const StoredResource& r) {
  return {{"name", r.name},       {"kind", r.kind},       {"generation", r.generation},
          {"created", r.created}, {"updated", r.updated}, {"manifest", r.manifest}};
}

Result<StoredResource> parse_stored_resource(const nlohmann::json& json) {
  if (!json.is_object() || !json.contains("name") || !json["name"].is_string() ||
      !json.contains("manifest") || !json["manifest"].is_object())
    return make_error("resource", "is not a stored resource (expected name and manifest)");
  StoredResource r;
  r.kind = json.value("kind", "");
  r.name = json["name"].get<std::string>();
  r.manifest = json["manifest"];
  r.generation = json.value("generation", std::int64_t{1});
  r.created = json.value("created", "");
  r.updated = json.value("updated", "");
  return r;
}

const std::vector<KindInfo>& known_kinds() {
  static const std::vector<KindInfo> kinds{
      {"Secret", "secrets", {"v1", "sluice.dev/v1"}},
      {"Broker", "brokers", {"eventing.knative.dev/v1", "sluice.dev/v1"}},
      {"Agent", "agents", {"sluice.dev/v1", "serving.knative.dev/v1"}},
      {"Trigger", "triggers", {"eventing.knative.dev/v1", "sluice.dev/v1"}},
      {"KafkaSource",
       "kafkasources",
       {"sources.knative.dev/v1beta1", "sources.knative.dev/v1", "sluice.dev/v1"}},
      {"PingSource",
       "pingsources",
       {"sources.knative.dev/v1", "sources.knative.dev/v1beta2", "sluice.dev/v1"}},
      {"EventPolicy", "eventpolicies", {"eventing.knative.dev/v1alpha1", "sluice.dev/v1"}},
  };
  return kinds;
}

const KindInfo* find_kind(std::string_view spelling) {
  auto s = lower(spelling);
  if (s == "service" || s == "services" || s == "ksvc") s = "agent";
  for (const auto& k : known_kinds()) {
    auto kind = lower(k.kind);
    if (s == kind || s == k.plural || (s.size() >= 3 && kind.rfind(s, 0) == 0)) return &k;
  }
  return nullptr;
}

Result<const KindInfo*> resolve_manifest_kind(nlohmann::json& manifest) {
  if (!manifest.is_object()) return make_error("manifest", "must be an object", 400);
  if (!manifest.contains("kind") || !manifest["kind"].is_string())
    return make_error(
        "kind", "is required (Broker, Trigger, Agent, KafkaSource, PingSource, EventPolicy or Secret)", 400);
  std::string kind = manifest["kind"].get<std::string>();
  if (manifest.contains("apiVersion") && !manifest["apiVersion"].is_string())
    return make_error("apiVersion", "must be a string, such as \"sluice.dev/v1\"", 400);
  std::string api_version = manifest.value("apiVersion", "");
  const KindInfo* info = nullptr;
  if (kind == "Service" && api_version == "serving.knative.dev/v1") {
    info = find_kind("Agent");
  } else {
    for (const auto& k : known_kinds())
      if (k.kind == kind) info = &k;
  }
  if (!info)
    return make_error("kind",
                      "unknown kind \"" + kind +
                          "\" (known: Broker, Trigger, Agent, KafkaSource, PingSource, EventPolicy, Secret)",
                      400);
  if (api_version.empty()) return make_error("apiVersion", "is required for kind " + kind, 400);
  if (std::find(info->api_versions.begin(), info->api_versions.end(), api_version) ==
      info->api_versions.end()) {
    std::string accepted;
    for (const auto& v : info->api_versions) accepted += (accepted.empty() ? "" : ", ") + v;
    return make_error(
        "apiVersion",
        "\"" + api_version + "\" is not served for kind " + kind + " (accepted: " + accepted + ")", 400);
  }
  return info;
}

Result<std::unique_ptr<ResourceStore>> ResourceStore::open(const std::string& dir) {
  auto store = std::unique_ptr<ResourceStore>(new ResourceStore());
  store->dir_ = dir;
  if (auto st = make_dirs(dir); !st) return st.error();
  for (const auto& kind : known_kinds()) {
    std::string kind_dir = dir + "/" + kind.plural;
    if (auto st = make_dirs(kind_dir); !st) return st.error();
    auto files = list_dir(kind_dir);
    if (!files) return files.error();
    for (const auto& file : files.value()) {
      if (file.size() < 6 || file.substr(file.size() - 5) != ".json") continue;  // temp files of a crash
      auto text = read_file(kind_dir + "/" + file);
      if (!text) return text.error();
      auto json = nlohmann::json::parse(text.value(), nullptr, false);
      if (json.is_discarded())
        return make_error(kind_dir + "/" + file, "is not a stored resource (corrupt JSON)");
      auto r = parse_stored_resource(json);
      if (!r) return make_error(kind_dir + "/" + file, r.error().message);
      r.value().kind = kind.kind;
      store->resources_[{kind.kind, r.value().name}] = std::move(r).value();
    }
  }
  return store;
}

std::string ResourceStore::path_for(const std::string& kind, const std::string& name) const {
  for (const auto& k : known_kinds())
    if (k.kind == kind) return dir_ + "/" + k.plural + "/" + name + ".json";
  return dir_ + "/" + kind + "/" + name + ".json";
}

std::vector<StoredResource> ResourceStore::list(const std::string& kind) const {
  std::lock_guard lock(mu_);
  std::vector<StoredResource> out;
  for (const auto& [key, r] : resources_)
    if (key.first == kind) out.push_back(r);
  return out;
}

std::optional<StoredResource> ResourceStore::get(const std::string& kind, const std::string& name) const {
  std::lock_guard lock(mu_);
  auto it = resources_.find({kind, name});
  if (it == resources_.end()) return std::nullopt;
  return it->second;
}

StoredResource ResourceStore::next_version(const std::string& kind, const std::string& name,
                                           nlohmann::json manifest, bool* changed) const {
  std::lock_guard lock(mu_);
  StoredResource r;
  r.kind = kind;
  r.name = name;
  *changed = true;
  auto it = resources_.find({kind, name});
  if (it != resources_.end()) {
    r = it->second;
    if (r.manifest == manifest) {
      *changed = false;
      return r;
    }
    if (generation_input(r.manifest) != generation_input(manifest)) ++r.generation;
  } else {
    r.created = now_rfc3339();
  }
  r.manifest = std::move(manifest);
  r.updated = now_rfc3339();
  return r;
}

Status ResourceStore::store(const StoredResource& r) {
  std::lock_guard lock(mu_);
  if (auto st = write_file_atomic(path_for(r.kind, r.name), stored_resource_json(r).dump(2)); !st) return st;
  resources_[{r.kind, r.name}] = r;
  return ok();
}

Result<StoredResource> ResourceStore::put(const std::string& kind, const std::string& name,
                                          nlohmann::json manifest, bool* changed) {
  bool differs = false;
  auto r = next_version(kind, name, std::move(manifest), &differs);
  if (changed) *changed = differs;
  if (!differs) return r;
  if (auto st = store(r); !st) return st.error();
  return r;
}

Status ResourceStore::remove(const std::string& kind, const std::string& name) {
  std::lock_guard lock(mu_);
  auto it = resources_.find({kind, name});
  if (it == resources_.end()) return not_found_error(kind, name);
  if (auto st = remove_file(path_for(kind, name)); !st) return st;
  if (auto st = fsync_dir(parent_dir(path_for(kind, name))); !st) return st;
  resources_.erase(it);
  return ok();
}

}  // namespace sluice
