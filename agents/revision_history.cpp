#include "agents/revision_history.hpp"

#include <filesystem>

#include "core/fs.hpp"
#include "core/log.hpp"

namespace sluice::agents {

std::string RevisionHistory::path_of(const std::string& data_dir, const std::string& agent) {
  return data_dir + "/agents/" + agent + "/revisions.json";
}

void RevisionHistory::erase(const std::string& data_dir, const std::string& agent) {
  std::error_code ec;
  std::filesystem::remove_all(data_dir + "/agents/" + agent, ec);
}

Result<RevisionHistory> RevisionHistory::load(const std::string& data_dir, const std::string& agent) {
  RevisionHistory history;
  history.data_dir_ = data_dir;
  history.agent_ = agent;
  const std::string path = path_of(data_dir, agent);
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return history;
  auto text = read_file(path);
  if (!text) return text.error();
  auto doc = nlohmann::json::parse(text.value(), nullptr, false);
  if (doc.is_discarded() || !doc.is_array()) return make_error(path, "not a JSON array of revisions");
  for (const auto& item : doc) {
    RevisionRecord record;
    record.name = item.value("name", "");
    record.generation = item.value("generation", 0);
    record.template_hash = item.value("templateHash", "");
    record.manifest = item.value("manifest", nlohmann::json::object());
    record.ever_ready = item.value("everReady", false);
    // Only the template makes the revision: the agent's own annotations and traffic, validated
    // when they were applied, need not pass today's validation for the revision to load.
    nlohmann::json manifest = record.manifest;
    if (manifest.is_object()) {
      if (auto meta = manifest.find("metadata"); meta != manifest.end() && meta->is_object())
        meta->erase("annotations");
      if (auto spec = manifest.find("spec"); spec != manifest.end() && spec->is_object())
        spec->erase("traffic");
    }
    auto spec = parse_agent(manifest);
    if (!spec) {
      // Stored by a version that validated less: the revision cannot run, but its name stays taken and
      // the agent's other revisions load, so that the agent can still be applied.
      SLUICE_LOG(agents, warn, "[agent={} rev={}] dropping a revision this version refuses: {}", agent,
                 record.name, spec.error().to_string());
      history.number_after(record.generation);
      continue;
    }
    record.revision_template = spec.value().revision_template;
    history.revisions_.push_back(std::move(record));
  }
  return history;
}

Status RevisionHistory::save() const {
  auto doc = nlohmann::json::array();
  for (const auto& r : revisions_)
    doc.push_back({{"name", r.name},
                   {"generation", r.generation},
                   {"templateHash", r.template_hash},
                   {"everReady", r.ever_ready},
                   {"manifest", r.manifest}});
  const std::string path = path_of(data_dir_, agent_);
  if (auto st = make_dirs(std::filesystem::path(path).parent_path().string()); !st) return st;
  return write_file_atomic(path, doc.dump(1));
}

Status RevisionHistory::mark_ready(const std::string& revision) {
  for (auto& r : revisions_) {
    if (r.name != revision || r.ever_ready) continue;
    r.ever_ready = true;
    return save();
  }
  return ok();
}

Status RevisionHistory::forget(const std::string& revision) {
  std::erase_if(revisions_, [&](const RevisionRecord& r) { return r.name == revision; });
  return save();
}

Result<const RevisionRecord*> RevisionHistory::record(const AgentSpec& spec, const nlohmann::json& manifest,
                                                      bool* created) {
  const std::string hash = template_hash(spec);
  if (created) *created = false;
  if (!revisions_.empty() && revisions_.back().template_hash == hash) return &revisions_.back();
  RevisionRecord record;
  record.generation = std::max(revisions_.empty() ? 0 : revisions_.back().generation, floor_) + 1;
  record.name = revision_name(spec.name, record.generation);
  record.template_hash = hash;
  record.manifest = manifest;
  record.revision_template = spec.revision_template;
  revisions_.push_back(std::move(record));
  if (auto st = save(); !st) {
    revisions_.pop_back();
    return st.error();
  }
  if (created) *created = true;
  return &revisions_.back();
}

}  // namespace sluice::agents
