#pragma once
// The revisions of one Agent, kept on disk so that numbering and old templates survive restarts.
//
// `<data_dir>/agents/<agent>/revisions.json` holds, oldest first, every revision created for the agent:
// its name (NAME-00001 …), generation, template hash and the manifest it was created from (so that an
// old revision named in spec.traffic runs its own template). A revision is immutable: applying a
// manifest whose template hash differs from the newest revision's creates the next generation; the same
// hash (a restart, or a change outside spec.template) creates nothing. Whether a revision has ever been
// ready is kept with it.

#include <algorithm>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "agents/agent_spec.hpp"
#include "core/result.hpp"

namespace sluice::agents {

struct RevisionRecord {
  std::string name;
  int generation = 0;
  std::string template_hash;
  nlohmann::json manifest;  // the Agent manifest this revision was created from
  AgentTemplate revision_template;
  // It has had a ready replica (Knative's Revision Ready): kept so that a revision at zero is still
  // ready, and routable as the latest ready one, after a restart.
  bool ever_ready = false;
};

class RevisionHistory {
 public:
  /// Loads the history of `agent` under `data_dir` (empty when there is none yet).
  static Result<RevisionHistory> load(const std::string& data_dir, const std::string& agent);
  /// The file that holds the history.
  static std::string path_of(const std::string& data_dir, const std::string& agent);
  /// Removes the agent's history (the Agent was deleted).
  static void erase(const std::string& data_dir, const std::string& agent);

  /// Returns the revision for `spec`'s template: the newest one when its hash matches, else a new
  /// generation, written to disk (atomically) before it is returned. `created` tells which.
  Result<const RevisionRecord*> record(const AgentSpec& spec, const nlohmann::json& manifest, bool* created);

  const std::vector<RevisionRecord>& revisions() const { return revisions_; }

  /// Records, on disk, that `revision` has had a ready replica.
  Status mark_ready(const std::string& revision);

  /// Forgets a revision that is no longer kept (revision garbage collection), on disk too.
  Status forget(const std::string& revision);

  /// Numbers new revisions after `generation` at least (an agent re-created while the revisions of its
  /// deleted namesake still drain must not reuse their names).
  void number_after(int generation) { floor_ = std::max(floor_, generation); }

 private:
  Status save() const;

  std::string data_dir_;
  std::string agent_;
  std::vector<RevisionRecord> revisions_;
  int floor_ = 0;
};

}  // namespace sluice::agents
