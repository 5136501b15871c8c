#include "trigger/filter.hpp"

#include <optional>
#include <string_view>

#include "core/log.hpp"
#include "core/text.hpp"
#include "trigger/cesql/cesql.hpp"

namespace sluice {
namespace detail {

struct FilterNode {
  enum class Kind { Exact, Present, Prefix, Suffix, All, Any, Not, Cesql };
  Kind kind = Kind::All;
  std::string attribute;
  std::string value;
  std::vector<FilterNode> children;  // All, Any: the operands; Not: exactly one
  std::optional<cesql::Expression> expression;
};

}  // namespace detail

namespace {

using detail::FilterNode;
using Kind = FilterNode::Kind;

bool evaluate(const FilterNode& node, const CloudEvent& event, bool* had_error) {
  switch (node.kind) {
    case Kind::Exact: {
      const std::string* text = event.attribute_text(node.attribute);
      return text != nullptr && *text == node.value;
    }
    case Kind::Present:
      return event.attribute_text(node.attribute) != nullptr;
    case Kind::Prefix: {
      const std::string* text = event.attribute_text(node.attribute);
      return text != nullptr && std::string_view(*text).starts_with(node.value);
    }
    case Kind::Suffix: {
      const std::string* text = event.attribute_text(node.attribute);
      return text != nullptr && std::string_view(*text).ends_with(node.value);
    }
    case Kind::All:
      for (const auto& child : node.children)
        if (!evaluate(child, event, had_error)) return false;
      return true;
    case Kind::Any:
      // Knative's anyFilter of an empty list is NoFilter: it passes (as `all: []` does).
      if (node.children.empty()) return true;
      for (const auto& child : node.children)
        if (evaluate(child, event, had_error)) return true;
      return false;
    case Kind::Not:
      return !evaluate(node.children.front(), event, had_error);
    case Kind::Cesql: {
      bool error = false;
      bool matched = node.expression->matches(event, &error);
      if (error && had_error != nullptr) *had_error = true;
      return matched;
    }
  }
  return false;
}

void describe(const FilterNode& node, std::string& out) {
  auto leaf = [&](const char* name, const char* op) {
    out += name;
    out += '(';
    out += node.attribute;
    out += op;
    out += node.value;
    out += ')';
  };
  auto list = [&](const char* name) {
    out += name;
    out += '(';
    for (std::size_t i = 0; i < node.children.size(); ++i) {
      if (i > 0) out += ", ";
      describe(node.children[i], out);
    }
    out += ')';
  };
  switch (node.kind) {
    case Kind::Exact:
      leaf("exact", "=");
      break;
    case Kind::Present:
      out += "present(" + node.attribute + ")";
      break;
    case Kind::Prefix:
      leaf("prefix", "=");
      break;
    case Kind::Suffix:
      leaf("suffix", "=");
      break;
    case Kind::All:
      list("all");
      break;
    case Kind::Any:
      list("any");
      break;
    case Kind::Not:
      list("not");
      break;
    case Kind::Cesql:
      out += "cesql(" + node.expression->text() + ")";
      break;
  }
}

Error filter_error(std::string path, std::string message) {
  return make_error(std::move(path), std::move(message), 400);
}

Status check_attribute_name(const std::string& name, const std::string& path) {
  if (!is_valid_attribute_name(name))
    return filter_error(path, quote(name) +
                                  " is not a CloudEvents attribute name: use lowercase letters a-z "
                                  "and digits only (for example \"type\" or \"myextension\")");
  return ok();
}

// exact/prefix/suffix: a map of attribute → non-empty string, every entry must hold (AND).
Result<FilterNode> parse_attribute_map(const nlohmann::json& value, Kind kind, const std::string& path) {
  if (!value.is_object() || value.empty())
    return filter_error(path,
                        "must be a map of attribute name to value, for example {type: com.example.order}");
  FilterNode all;
  all.kind = Kind::All;
  for (auto it = value.begin(); it != value.end(); ++it) {
    const std::string field = path + "." + it.key();
    if (auto st = check_attribute_name(it.key(), field); !st) return st.error();
    if (!it.value().is_string())
      return filter_error(field, "must be a string (quote numbers and booleans, e.g. \"42\")");
    auto text = it.value().get<std::string>();
    if (text.empty())
      return filter_error(field,
                          "must not be empty (to require that an attribute is present use "
                          "filter.attributes with an empty value, or cesql EXISTS " +
                              it.key() + ")");
    FilterNode leaf;
    leaf.kind = kind;
    leaf.attribute = it.key();
    leaf.value = std::move(text);
    all.children.push_back(std::move(leaf));
  }
  if (all.children.size() == 1) return std::move(all.children.front());
  return all;
}

// Nesting (all/any/not) is bounded so that a hostile manifest cannot exhaust the stack, here or when
// the filter is evaluated.
constexpr std::size_t kMaxFilterDepth = 32;

Result<FilterNode> parse_dialect(const nlohmann::json& filter, const std::string& path, std::size_t depth);

Result<FilterNode> parse_list(const nlohmann::json& value, Kind kind, const std::string& path,
                              std::size_t depth) {
  if (!value.is_array()) return filter_error(path, "must be a list of filters");
  FilterNode node;
  node.kind = kind;
  for (std::size_t i = 0; i < value.size(); ++i) {
    auto child = parse_dialect(value[i], path + "[" + std::to_string(i) + "]", depth + 1);
    if (!child) return child.error();
    node.children.push_back(std::move(child.value()));
  }
  return node;
}

Result<FilterNode> parse_dialect(const nlohmann::json& filter, const std::string& path, std::size_t depth) {
  static constexpr const char* kKnown = "exact, prefix, suffix, all, any, not, cesql";
  if (depth > kMaxFilterDepth) return filter_error(path, "filters are nested too deeply (at most 32 levels)");
  if (!filter.is_object() || filter.empty())
    return filter_error(path, std::string("must be an object with one dialect: ") + kKnown);
  if (filter.size() > 1) {
    std::string keys;
    for (auto it = filter.begin(); it != filter.end(); ++it) keys += (keys.empty() ? "" : ", ") + it.key();
    return filter_error(path, "holds " + keys +
                                  ": each filter holds exactly one dialect (combine them with "
                                  "all or any, or list them: the list is ANDed)");
  }
  const auto it = filter.begin();
  const std::string& dialect = it.key();
  const std::string field = path + "." + dialect;
  const auto& value = it.value();
  if (dialect == "exact") return parse_attribute_map(value, Kind::Exact, field);
  if (dialect == "prefix") return parse_attribute_map(value, Kind::Prefix, field);
  if (dialect == "suffix") return parse_attribute_map(value, Kind::Suffix, field);
  if (dialect == "all") return parse_list(value, Kind::All, field, depth);
  if (dialect == "any") return parse_list(value, Kind::Any, field, depth);
  if (dialect == "not") {
    if (!value.is_object())
      return filter_error(field, "must be one filter (an object), for example {exact: {type: a}}");
    auto child = parse_dialect(value, field, depth + 1);
    if (!child) return child.error();
    FilterNode node;
    node.kind = Kind::Not;
    node.children.push_back(std::move(child.value()));
    return node;
  }
  if (dialect == "cesql") {
    if (!value.is_string() || value.get_ref<const std::string&>().empty())
      return filter_error(
          field, "must be a CloudEvents SQL expression (a string), for example \"type LIKE 'com.%'\"");
    const auto& text = value.get_ref<const std::string&>();
    auto compiled = cesql::Expression::compile(text);
    if (!compiled) return filter_error(field, compiled.error().message);
    for (const auto& fn : compiled.value().unknown_functions())
      SLUICE_LOG(trigger, warn, "{}: function {} is unknown: it raises an error on every event", field, fn);
    FilterNode node;
    node.kind = Kind::Cesql;
    node.expression = std::move(compiled.value());
    return node;
  }
  return filter_error(field, "unknown filter dialect (known: " + std::string(kKnown) + ")");
}

}  // namespace

Filter::Filter() = default;

Result<Filter> Filter::from_attributes(const nlohmann::json& filter, const std::string& path) {
  if (filter.is_null()) return Filter();
  if (!filter.is_object())
    return filter_error(path, "must be an object with attributes, e.g. {attributes: {type: a}}");
  for (auto it = filter.begin(); it != filter.end(); ++it)
    if (it.key() != "attributes")
      return filter_error(path + "." + it.key(),
                          "unknown field (filter has only attributes; use spec.filters for "
                          "prefix, suffix, all, any, not and cesql)");
  if (!filter.contains("attributes") || filter["attributes"].is_null()) return Filter();
  const auto& attributes = filter["attributes"];
  const std::string attributes_path = path + ".attributes";
  if (!attributes.is_object())
    return filter_error(attributes_path,
                        "must be a map of attribute name to value, e.g. {type: com.example.a}");
  if (attributes.empty()) return Filter();
  auto root = std::make_shared<FilterNode>();
  root->kind = Kind::All;
  for (auto it = attributes.begin(); it != attributes.end(); ++it) {
    const std::string field = attributes_path + "." + it.key();
    if (auto st = check_attribute_name(it.key(), field); !st) return st.error();
    if (!it.value().is_string())
      return filter_error(field,
                          "must be a string (quote numbers and booleans, e.g. \"42\"; \"\" means present)");
    FilterNode leaf;
    leaf.attribute = it.key();
    leaf.value = it.value().get<std::string>();
    leaf.kind = leaf.value.empty() ? Kind::Present : Kind::Exact;
    root->children.push_back(std::move(leaf));
  }
  return Filter(std::move(root));
}

Result<Filter> Filter::from_dialects(const nlohmann::json& filters, const std::string& path) {
  if (filters.is_null()) return Filter();
  auto list = parse_list(filters, Kind::All, path, 0);
  if (!list) return list.error();
  if (list.value().children.empty()) return Filter();
  if (list.value().children.size() == 1)
    return Filter(std::make_shared<const FilterNode>(std::move(list.value().children.front())));
  return Filter(std::make_shared<const FilterNode>(std::move(list.value())));
}

bool Filter::matches(const CloudEvent& event, bool* had_error) const {
  return root_ == nullptr || evaluate(*root_, event, had_error);
}

std::string Filter::to_string() const {
  if (root_ == nullptr) return "all()";
  std::string out;
  describe(*root_, out);
  return out;
}

}  // namespace sluice
