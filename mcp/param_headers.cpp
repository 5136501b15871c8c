#include "mcp/param_headers.hpp"

#include <strings.h>

#include <charconv>
#include <cmath>

#include "core/base64.hpp"
#include "core/text.hpp"

namespace sluice::mcp {

namespace {

using json = nlohmann::json;

constexpr std::string_view sentinel_prefix = "=?base64?";
constexpr std::string_view sentinel_suffix = "?=";
constexpr double max_safe_integer = 9007199254740991.0;  // 2^53 - 1

std::string dotted(const std::vector<std::string>& path) {
  std::string out;
  for (const auto& key : path) out += (out.empty() ? "" : ".") + key;
  return out.empty() ? std::string("(the schema root)") : out;
}

// The one primitive type a schema declares ("string", "integer", "boolean"; "null" may be listed
// beside it), or empty.
std::string primitive_type(const json& schema) {
  auto type = schema.find("type");
  if (type == schema.end()) return {};
  std::vector<std::string> types;
  if (type->is_string()) types.push_back(type->get<std::string>());
  if (type->is_array()) {
    for (const auto& t : *type) {
      if (!t.is_string()) return {};
      if (t != "null") types.push_back(t.get<std::string>());
    }
  }
  if (types.size() != 1) return {};
  const auto& t = types.front();
  return t == "string" || t == "integer" || t == "boolean" ? t : std::string();
}

// JSON Schema keywords whose value is a subschema or an array of them, and those whose value maps
// names to subschemas. `properties` is the only step of a static path; an annotation under any of the
// others is not statically reachable.
bool subschema_keyword(std::string_view k) {
  return k == "items" || k == "prefixItems" || k == "additionalItems" || k == "contains" ||
         k == "additionalProperties" || k == "propertyNames" || k == "unevaluatedItems" ||
         k == "unevaluatedProperties" || k == "not" || k == "if" || k == "then" || k == "else" ||
         k == "allOf" || k == "anyOf" || k == "oneOf";
}

bool schema_map_keyword(std::string_view k) {
  return k == "patternProperties" || k == "$defs" || k == "definitions" || k == "dependentSchemas" ||
         k == "dependencies";
}

struct Walk {
  std::vector<ParamHeader> found;
  std::string error;
};

// `under` is the first keyword other than `properties` on the way from the root (empty: none).
void walk(const json& schema, std::vector<std::string>& path, const std::string& under, Walk& out) {
  if (!out.error.empty() || !schema.is_object()) return;
  if (auto it = schema.find("x-mcp-header"); it != schema.end()) {
    std::string where = "parameter " + dotted(path);
    if (!under.empty()) {
      out.error = "x-mcp-header on " + where + " is not statically reachable (it is under " + under +
                  "; only a chain of properties is allowed)";
      return;
    }
    if (!it->is_string() || it->get_ref<const std::string&>().empty()) {
      out.error = "x-mcp-header on " + where + " must be a non-empty string";
      return;
    }
    const auto& name = it->get_ref<const std::string&>();
    if (!is_token(name)) {
      out.error = "x-mcp-header \"" + name + "\" on " + where + " is not an HTTP field-name token";
      return;
    }
    for (const auto& other : out.found)
      if (strcasecmp(other.name.c_str(), name.c_str()) == 0) {
        out.error = "x-mcp-header \"" + name + "\" on " + where + " duplicates the one on parameter " +
                    dotted(other.path) + " (names are case-insensitive)";
        return;
      }
    if (primitive_type(schema).empty()) {
      auto type = schema.find("type");
      out.error = "x-mcp-header \"" + name + "\" on " + where +
                  " needs type string, integer or boolean, not " +
                  (type == schema.end() ? std::string("none") : type->dump());
      return;
    }
    out.found.push_back({name, path});
  }
  for (const auto& [keyword, value] : schema.items()) {
    if (keyword == "properties" && value.is_object()) {
      for (const auto& [property, subschema] : value.items()) {
        path.push_back(property);
        walk(subschema, path, under, out);
        path.pop_back();
      }
    } else if (schema_map_keyword(keyword) && value.is_object()) {
      for (const auto& [key, subschema] : value.items())
        walk(subschema, path, under.empty() ? keyword : under, out);
    } else if (subschema_keyword(keyword)) {
      const std::string& via = under.empty() ? keyword : under;
      if (value.is_array())
        for (const auto& subschema : value) walk(subschema, path, via, out);
      else
        walk(value, path, via, out);
    }
  }
}

// The argument at `path`; nullptr when absent or null.
const json* value_at(const json& arguments, const std::vector<std::string>& path) {
  const json* at = &arguments;
  for (const auto& key : path) {
    if (!at->is_object()) return nullptr;
    auto it = at->find(key);
    if (it == at->end()) return nullptr;
    at = &*it;
  }
  return at->is_null() ? nullptr : at;
}

// RFC 9110 §5.5 field-value characters: visible ASCII, space, horizontal tab.
bool header_safe(std::string_view value) {
  for (char c : value)
    if (c != '\t' && (c < 0x20 || c > 0x7e)) return false;
  return true;
}

std::optional<double> parse_number(std::string_view text) {
  double number = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), number);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || !std::isfinite(number))
    return std::nullopt;
  return number;
}

}  // namespace

Result<std::vector<ParamHeader>> param_headers(const json& input_schema) {
  Walk out;
  std::vector<std::string> path;
  walk(input_schema, path, "", out);
  if (!out.error.empty()) return sluice::make_error("inputSchema", out.error);
  return std::move(out.found);
}

std::optional<std::string> decode_header_value(std::string_view value) {
  if (value.size() < sentinel_prefix.size() + sentinel_suffix.size() ||
      value.substr(0, 9) != sentinel_prefix || value.substr(value.size() - 2) != sentinel_suffix)
    return std::string(value);
  return base64_decode(value.substr(sentinel_prefix.size(), value.size() - 11));
}

std::string param_header_mismatch(const std::vector<ParamHeader>& headers, const json& arguments,
                                  const HeaderValuesFn& values) {
  for (const auto& header : headers) {
    const std::string name = "Mcp-Param-" + header.name;
    const std::string where = "arguments." + dotted(header.path);
    auto sent = values(name);
    const json* value = value_at(arguments, header.path);
    if (!value) {
      if (!sent.empty()) return "the " + name + " header is present but " + where + " has no value";
      continue;
    }
    if (sent.empty()) return "the " + name + " header is required: " + where + " has a value";
    if (sent.size() > 1) return "the " + name + " header appears more than once";
    if (!header_safe(sent.front()))
      return "the " + name + " header value has characters that need the =?base64?…?= form";
    auto decoded = decode_header_value(sent.front());
    if (!decoded) return "the " + name + " header value is not valid base64 inside =?base64?…?=";
    bool same = false;
    if (value->is_string()) {
      same = *decoded == value->get_ref<const std::string&>();
    } else if (value->is_boolean()) {
      same = *decoded == (value->get<bool>() ? "true" : "false");
    } else if (value->is_number()) {
      double body = value->get<double>();
      if (std::fabs(body) > max_safe_integer)
        return where + " is outside the safe integer range (-(2^53-1) to 2^53-1)";
      auto number = parse_number(*decoded);
      same = number && *number == body;
    } else {
      return where + " is not a string, integer or boolean";
    }
    if (!same)
      return name + " header value '" + *decoded + "' does not match body value '" +
             (value->is_string() ? value->get<std::string>() : value->dump()) + "'";
  }
  return {};
}

}  // namespace sluice::mcp
