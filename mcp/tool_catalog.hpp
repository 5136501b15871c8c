#pragma once
// The gateway's tool catalog: the tools of every MCP agent as `<agent>.<tool>`, cached per revision
// (fetched when a revision becomes ready, so that listing never wakes an agent at zero), plus the
// gateway's built-in tools. Thread-safe.

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/result.hpp"

namespace sluice::mcp {

struct ToolPage {
  std::vector<nlohmann::json> tools;
  std::string next_cursor;  // empty on the last page
};

class ToolCatalog {
 public:
  /// Replaces the tools of `agent`, as listed by its revision `revision` (the `tools` array of a
  /// tools/list result; every page concatenated). Tools whose prefixed name would be invalid, whose
  /// schemas are not of type object, or whose x-mcp-header annotations are invalid (param_headers) are
  /// left out. Returns true when the listing changed.
  bool set_agent(const std::string& agent, const std::string& revision, const nlohmann::json& tools);
  /// Forgets an agent. Returns true when it had tools.
  bool remove_agent(const std::string& agent);
  /// The gateway's own tools, listed under their own names.
  void set_builtins(std::vector<nlohmann::json> tools);

  bool has_agent(const std::string& agent) const;
  /// Whether `agent`'s cached listing has `tool` (its upstream name).
  bool has_tool(const std::string& agent, const std::string& tool) const;
  /// The inputSchema of a listed tool (`<agent>.<tool>` or a built-in's name); nullopt when not listed.
  std::optional<nlohmann::json> input_schema(std::string_view name) const;
  /// The revision whose tools are cached for `agent`.
  std::optional<std::string> revision_of(const std::string& agent) const;
  /// Agents with cached tools.
  std::vector<std::string> agents() const;

  /// Every tool, sorted by name.
  std::vector<nlohmann::json> list() const;
  /// One page of list() after `cursor` (empty: the first page). The cursor is opaque to clients and
  /// stays valid when tools come and go (it names the last tool returned). An invalid cursor is an
  /// Error with code -32602.
  Result<ToolPage> page(std::string_view cursor, std::size_t page_size) const;

  /// Bumped on every change (tests and list_changed notifications).
  std::uint64_t version() const;

  /// The catalog as JSON ({agent: {revision, tools}}), and back (for a restart without waking agents).
  nlohmann::json to_json() const;
  void load(const nlohmann::json& saved);

  /// `<agent>.<tool>` → (agent, tool); nullopt for a name without a dot (a built-in).
  static std::optional<std::pair<std::string, std::string>> split_name(std::string_view name);
  /// MCP tool names: 1-128 characters of [A-Za-z0-9_.-].
  static bool valid_tool_name(std::string_view name);

 private:
  struct AgentTools {
    std::string revision;
    std::vector<nlohmann::json> tools;  // as the agent lists them (upstream names)
  };
  static std::vector<nlohmann::json> prefixed(const std::string& agent, const nlohmann::json& tools);

  mutable std::mutex mu_;
  std::map<std::string, AgentTools> agents_;
  std::vector<nlohmann::json> builtins_;
  std::uint64_t version_ = 0;
};

}  // namespace sluice::mcp
