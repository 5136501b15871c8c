#pragma once
// Builds a JSON object from a CloudEvent by a template: how a trigger turns an event into the
// arguments of an MCP tool call (the `sluice.dev/tool-arguments` annotation).
//
// The template is a JSON object. Its string values that start with `$` are references into the event:
//   "$data"          the data (JSON data as JSON, anything else as a string)
//   "$data.a.b"      a member of JSON data, by path
//   "$id", "$type", "$source", "$subject", "$time", "$<extension>"   an attribute, as its string form
// "$$…" is a literal string that starts with "$". Everything else (numbers, booleans, null, other
// strings) is copied as it is; objects and arrays are walked.

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/cloud_event.hpp"
#include "core/result.hpp"

namespace sluice {

class EventArguments {
 public:
  /// No template: the event's data, which must then be a JSON object.
  EventArguments() = default;

  /// Parses a template; errors name `field` and the offending reference.
  static Result<EventArguments> parse(std::string_view json_text, const std::string& field);

  /// The arguments for one event. Error (code 400) when a reference is missing from the event, or when
  /// there is no template and the data is not a JSON object.
  Result<nlohmann::json> build(const CloudEvent& event) const;

  bool has_template() const { return !template_.is_null(); }

 private:
  nlohmann::json template_;  // null: the data itself
};

}  // namespace sluice
