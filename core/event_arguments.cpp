#include "core/event_arguments.hpp"

#include <functional>

#include "core/cloud_event.hpp"

namespace sluice {
namespace {

using nlohmann::json;

bool is_reference(const json& v) {
  if (!v.is_string()) return false;
  const auto& s = v.get_ref<const std::string&>();
  return s.size() > 1 && s[0] == '$' && s[1] != '$';
}

/// A reference's target is valid when it is $data, $data.<path> or an attribute name.
Status check_reference(const std::string& ref, const std::string& field) {
  const std::string name = ref.substr(1);
  if (name == "data") return ok();
  if (name.rfind("data.", 0) == 0) {
    const std::string path = name.substr(5);
    if (path.empty() || path.front() == '.' || path.back() == '.' || path.find("..") != std::string::npos)
      return make_error(field, "\"" + ref + "\": expected $data.member[.member…]", 400);
    return ok();
  }
  for (char c : name)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')))
      return make_error(field,
                        "\"" + ref +
                            "\" is neither $data, $data.<path> nor an attribute name (a-z, 0-9); "
                            "write \"$$…\" for a literal string that starts with $",
                        400);
  return ok();
}

Status check(const json& v, const std::string& field) {
  if (is_reference(v)) return check_reference(v.get<std::string>(), field);
  if (v.is_object() || v.is_array())
    for (const auto& child : v)
      if (auto st = check(child, field); !st) return st;
  return ok();
}

Result<json> resolve(const std::string& ref, const CloudEvent& event, const json& data) {
  const std::string name = ref.substr(1);
  if (name == "data" || name.rfind("data.", 0) == 0) {
    if (!event.data) return make_error(ref, "the event has no data", 400);
    if (name == "data") return data.is_discarded() ? json(*event.data) : data;
    if (data.is_discarded() || !data.is_object())
      return make_error(ref, "the event's data is not a JSON object", 400);
    const json* at = &data;
    std::size_t start = 5;
    while (start <= name.size()) {
      std::size_t dot = name.find('.', start);
      const std::string member =
          name.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
      if (!at->is_object() || !at->contains(member))
        return make_error(ref, "the event's data has no member \"" + name.substr(5, dot - 5) + "\"", 400);
      at = &(*at)[member];
      if (dot == std::string::npos) break;
      start = dot + 1;
    }
    return *at;
  }
  const std::string* text = event.attribute_text(name);
  if (!text) return make_error(ref, "the event has no attribute \"" + name + "\"", 400);
  return json(*text);
}

Result<json> fill(const json& v, const CloudEvent& event, const json& data) {
  if (is_reference(v)) return resolve(v.get<std::string>(), event, data);
  if (v.is_string() && v.get_ref<const std::string&>().rfind("$$", 0) == 0)
    return json(v.get<std::string>().substr(1));
  if (v.is_object()) {
    json out = json::object();
    for (auto it = v.begin(); it != v.end(); ++it) {
      auto filled = fill(it.value(), event, data);
      if (!filled) return filled.error();
      out[it.key()] = std::move(filled).value();
    }
    return out;
  }
  if (v.is_array()) {
    json out = json::array();
    for (const auto& child : v) {
      auto filled = fill(child, event, data);
      if (!filled) return filled.error();
      out.push_back(std::move(filled).value());
    }
    return out;
  }
  return v;
}

}  // namespace

Result<EventArguments> EventArguments::parse(std::string_view json_text, const std::string& field) {
  json parsed = json::parse(json_text, nullptr, false);
  if (parsed.is_discarded() || !parsed.is_object())
    return make_error(field, "must be a JSON object, for example {\"text\": \"$data.text\", \"id\": \"$id\"}",
                      400);
  if (auto st = check(parsed, field); !st) return st.error();
  EventArguments out;
  out.template_ = std::move(parsed);
  return out;
}

Result<json> EventArguments::build(const CloudEvent& event) const {
  json data = event.data && event.data_is_json() ? json::parse(*event.data, nullptr, false)
                                                 : json(json::value_t::discarded);
  if (template_.is_null()) {
    if (data.is_discarded() || !data.is_object())
      return make_error("arguments",
                        "the event's data is not a JSON object: make it one, or map the event to the "
                        "tool's arguments with sluice.dev/tool-arguments",
                        400);
    return data;
  }
  return fill(template_, event, data);
}

}  // namespace sluice
