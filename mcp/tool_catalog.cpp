#include "mcp/tool_catalog.hpp"

#include <algorithm>

#include "core/base64.hpp"
#include "core/log.hpp"
#include "mcp/json_rpc.hpp"
#include "mcp/param_headers.hpp"

namespace sluice::mcp {

bool ToolCatalog::valid_tool_name(std::string_view name) {
  if (name.empty() || name.size() > 128) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-';
  });
}

std::optional<std::pair<std::string, std::string>> ToolCatalog::split_name(std::string_view name) {
  auto dot = name.find('.');
  if (dot == std::string_view::npos || dot == 0 || dot + 1 == name.size()) return std::nullopt;
  return std::make_pair(std::string(name.substr(0, dot)), std::string(name.substr(dot + 1)));
}

std::vector<nlohmann::json> ToolCatalog::prefixed(const std::string& agent, const nlohmann::json& tools) {
  std::vector<nlohmann::json> out;
  if (!tools.is_array()) return out;
  for (const auto& tool : tools) {
    if (!tool.is_object() || !tool.contains("name") || !tool["name"].is_string()) continue;
    auto name = agent + "." + tool["name"].get<std::string>();
    if (!valid_tool_name(name)) continue;
    auto copy = tool;
    copy["name"] = std::move(name);
    out.push_back(std::move(copy));
  }
  return out;
}

namespace {

// MCP Tool: inputSchema (required) and outputSchema (optional) are JSON Schema objects of type "object";
// a client that validates tools/list (as the official SDK does) rejects the whole listing otherwise.
bool object_schema(const nlohmann::json& schema) {
  return schema.is_object() && schema.contains("type") && schema["type"] == "object";
}

bool valid_schemas(const nlohmann::json& tool) {
  if (!tool.contains("inputSchema") || !object_schema(tool["inputSchema"])) return false;
  return !tool.contains("outputSchema") || object_schema(tool["outputSchema"]);
}

}  // namespace

bool ToolCatalog::set_agent(const std::string& agent, const std::string& revision,
                            const nlohmann::json& tools) {
  std::vector<nlohmann::json> kept;
  if (tools.is_array())
    for (const auto& tool : tools) {
      if (!tool.is_object() || !tool.contains("name") || !tool["name"].is_string() ||
          !valid_tool_name(tool["name"].get<std::string>()) ||
          !valid_tool_name(agent + "." + tool["name"].get<std::string>()) || !valid_schemas(tool))
        continue;
      // MCP 2026-07-28 (Streamable HTTP, x-mcp-header): a client rejects a tool whose annotations break
      // the constraints, and only that tool, with a warning naming it and the reason.
      if (auto headers = param_headers(tool["inputSchema"]); !headers) {
        SLUICE_LOG(mcp, warn, "[agent={}] tool {} left out of the catalog: {}", agent,
                   tool["name"].get<std::string>(), headers.error().message);
        continue;
      }
      kept.push_back(tool);
    }
  std::lock_guard lock(mu_);
  auto& entry = agents_[agent];
  bool changed = entry.tools != kept;
  entry.revision = revision;
  entry.tools = std::move(kept);
  if (changed) ++version_;
  return changed;
}

bool ToolCatalog::remove_agent(const std::string& agent) {
  std::lock_guard lock(mu_);
  auto it = agents_.find(agent);
  if (it == agents_.end()) return false;
  bool had_tools = !it->second.tools.empty();
  agents_.erase(it);
  if (had_tools) ++version_;
  return had_tools;
}

void ToolCatalog::set_builtins(std::vector<nlohmann::json> tools) {
  std::lock_guard lock(mu_);
  builtins_ = std::move(tools);
  ++version_;
}

bool ToolCatalog::has_agent(const std::string& agent) const {
  std::lock_guard lock(mu_);
  return agents_.count(agent) > 0;
}

std::optional<nlohmann::json> ToolCatalog::input_schema(std::string_view name) const {
  std::lock_guard lock(mu_);
  for (const auto& tool : builtins_)
    if (tool["name"] == name) return tool.value("inputSchema", nlohmann::json::object());
  auto split = split_name(name);
  if (!split) return std::nullopt;
  auto it = agents_.find(split->first);
  if (it == agents_.end()) return std::nullopt;
  for (const auto& tool : it->second.tools)
    if (tool["name"] == split->second) return tool["inputSchema"];
  return std::nullopt;
}

bool ToolCatalog::has_tool(const std::string& agent, const std::string& tool) const {
  std::lock_guard lock(mu_);
  auto it = agents_.find(agent);
  if (it == agents_.end()) return false;
  for (const auto& t : it->second.tools)
    if (t["name"] == tool) return true;
  return false;
}

std::optional<std::string> ToolCatalog::revision_of(const std::string& agent) const {
  std::lock_guard lock(mu_);
  auto it = agents_.find(agent);
  if (it == agents_.end()) return std::nullopt;
  return it->second.revision;
}

std::vector<std::string> ToolCatalog::agents() const {
  std::lock_guard lock(mu_);
  std::vector<std::string> out;
  for (const auto& [name, _] : agents_) out.push_back(name);
  return out;
}

std::vector<nlohmann::json> ToolCatalog::list() const {
  std::vector<nlohmann::json> out;
  {
    std::lock_guard lock(mu_);
    out = builtins_;
    for (const auto& [agent, entry] : agents_) {
      auto tools = prefixed(agent, entry.tools);
      out.insert(out.end(), std::make_move_iterator(tools.begin()), std::make_move_iterator(tools.end()));
    }
  }
  std::stable_sort(out.begin(), out.end(), [](const nlohmann::json& a, const nlohmann::json& b) {
    return a["name"].get_ref<const std::string&>() < b["name"].get_ref<const std::string&>();
  });
  return out;
}

Result<ToolPage> ToolCatalog::page(std::string_view cursor, std::size_t page_size) const {
  std::string after;
  if (!cursor.empty()) {
    auto decoded = base64_decode(cursor);
    if (!decoded || decoded->rfind("after:", 0) != 0)
      return sluice::make_error("cursor",
                                "invalid cursor: pass the nextCursor of a previous tools/list result",
                                rpc_error::invalid_params);
    after = decoded->substr(6);
  }
  if (page_size == 0) page_size = 1;
  auto all = list();
  ToolPage page;
  for (auto& tool : all) {
    const auto& name = tool["name"].get_ref<const std::string&>();
    if (!after.empty() && name <= after) continue;
    if (page.tools.size() == page_size) {
      page.next_cursor = base64_encode("after:" + page.tools.back()["name"].get<std::string>());
      break;
    }
    page.tools.push_back(std::move(tool));
  }
  return page;
}

std::uint64_t ToolCatalog::version() const {
  std::lock_guard lock(mu_);
  return version_;
}

nlohmann::json ToolCatalog::to_json() const {
  std::lock_guard lock(mu_);
  nlohmann::json out = nlohmann::json::object();
  for (const auto& [agent, entry] : agents_)
    out[agent] = {{"revision", entry.revision}, {"tools", entry.tools}};
  return out;
}

void ToolCatalog::load(const nlohmann::json& saved) {
  if (!saved.is_object()) return;
  for (const auto& [agent, entry] : saved.items()) {
    if (!entry.is_object()) continue;
    set_agent(agent, entry.value("revision", ""), entry.value("tools", nlohmann::json::array()));
  }
}

}  // namespace sluice::mcp
