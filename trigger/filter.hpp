#pragma once
// Trigger filters, compiled once when a Trigger is applied and evaluated for every event.
//
// Two shapes, as Knative has them:
//   spec.filter.attributes: {type: com.example.a, source: ""}
//     every listed attribute must equal its value exactly (AND); an empty value means "the attribute is
//     present, with any value" (Knative's TriggerAnyFilter).
//   spec.filters: [ {exact: {type: a}}, {prefix: {source: /x/}}, {suffix: {subject: .pdf}},
//                   {all: [...]}, {any: [...]}, {not: {...}}, {cesql: "type LIKE 'a.%'"} ]
//     the list is ANDed; each element holds exactly one dialect. exact/prefix/suffix take a map of
//     attribute → value (all must hold; values must not be empty). An attribute the event lacks never
//     matches exact/prefix/suffix. `all: []` matches, `any: []` does not. `cesql` is a CloudEvents SQL
//     expression (trigger/cesql/), true only when it evaluates to Boolean true without errors.
// When `filters` is present (even empty) it overrides `filter`, as in Knative.
//
// Attributes are compared by their canonical text (AttributeValue::text), so `exact: {myint: "42"}`
// matches an Integer extension 42, as Knative compares the string forms.

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/cloud_event.hpp"
#include "core/result.hpp"

namespace sluice {

namespace detail {
struct FilterNode;
}

/// A compiled filter. Cheap to copy (the compiled tree is shared and immutable); safe to evaluate from
/// many threads at once.
class Filter {
 public:
  /// Matches every event (a Trigger without a filter).
  Filter();

  /// Compiles `spec.filter` (an object with `attributes`); `path` names it in errors ("spec.filter").
  static Result<Filter> from_attributes(const nlohmann::json& filter, const std::string& path);

  /// Compiles a `spec.filters` list; `path` names it in errors ("spec.filters"). CESQL expressions are
  /// compiled here: a syntax error is an Error whose subject is the element ("spec.filters[1].cesql")
  /// and whose message is CESQL's "position N: reason".
  static Result<Filter> from_dialects(const nlohmann::json& filters, const std::string& path);

  /// Whether `event` passes. Allocates nothing (CESQL's common shapes included). `had_error`, when not
  /// null, is set to true if a CESQL expression raised an evaluation error (for the trigger's
  /// sluice_trigger_filter_errors_total); it is left alone otherwise.
  bool matches(const CloudEvent& event, bool* had_error = nullptr) const;

  /// True for the match-all filter.
  bool matches_all() const { return root_ == nullptr; }

  /// A readable form for logs and status, e.g. `all(exact(type=a), not(prefix(source=/x)))`.
  std::string to_string() const;

 private:
  explicit Filter(std::shared_ptr<const detail::FilterNode> root) : root_(std::move(root)) {}
  std::shared_ptr<const detail::FilterNode> root_;
};

}  // namespace sluice
