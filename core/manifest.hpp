#pragma once
// Manifests: multi-document YAML or JSON, converted to JSON values (Knative's shapes: apiVersion,
// kind, metadata.name, spec).

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/result.hpp"

namespace sluice {

/// Parses one or more documents (YAML `---`-separated, a JSON object, or a JSON array of objects, or
/// a Kubernetes-style `kind: List` or `kind: <Kind>List` with `items`, as `sluice get -o yaml` prints a
/// listing). Empty documents are skipped. A key given twice in one mapping is an error naming its path
/// (`spec.broker`). Errors carry the document number and line.
Result<std::vector<nlohmann::json>> parse_manifests(std::string_view text);

/// Converts a JSON value to YAML text (for `sluice get -o yaml`).
std::string to_yaml(const nlohmann::json& value);

/// True for a valid resource name: DNS-1123 label (lowercase alphanumerics and '-', 1-63 chars,
/// starting and ending alphanumeric).
bool is_valid_resource_name(std::string_view name);

/// Validates metadata.name of any manifest; returns it.
Result<std::string> manifest_name(const nlohmann::json& manifest);

}  // namespace sluice
