#pragma once
// The evaluator of compiled CESQL programs (spec section 3). Internal to trigger/cesql.

#include <cstddef>
#include <cstdint>
#include <forward_list>
#include <string>
#include <string_view>
#include <vector>

#include "core/cloud_event.hpp"
#include "trigger/cesql/cesql.hpp"
#include "trigger/cesql/program.hpp"

namespace sluice::cesql::detail {

/// One evaluation of a program against one event. Not reusable across events.
class Evaluator {
 public:
  Evaluator(const Program& program, const CloudEvent& event, std::vector<EvalError>* errors)
      : program_(program), event_(event), errors_(errors) {}

  /// Evaluates the whole program.
  Val run() { return operand(program_.root); }

  /// Number of errors raised so far.
  std::size_t error_count() const { return error_count_; }

  /// Records an error. `describe` (a callable returning std::string) only runs when the caller asked
  /// for messages, so the filter path never formats.
  template <class Describe>
  void raise(ErrorKind kind, Describe&& describe) {
    ++error_count_;
    if (errors_ != nullptr) errors_->push_back(EvalError{kind, describe()});
  }

  /// Keeps a computed string alive for the rest of the evaluation and returns a view of it.
  std::string_view keep(std::string s) {
    arena_.push_front(std::move(s));
    return arena_.front();
  }

  // Casts of spec 3.7. Each raises a CastError and returns the zero value of the target type when the
  // cast is not defined for the value.
  std::int32_t to_integer(const Val& v);
  /// `explicit_cast` is true for BOOL(): Integer -> Boolean is only allowed there (see eval.cpp).
  bool to_boolean(const Val& v, bool explicit_cast = false);
  std::string_view to_text(const Val& v);

  /// True when the string is a valid 32-bit base-10 integer with an optional sign (spec 3.7).
  static bool parse_integer(std::string_view s, std::int32_t* out);

 private:
  Val eval(std::uint32_t index);
  // Literals and attributes are most operands: read them without the recursive call and the
  // dispatch on the operator, which dominate the cost of small filters.
  Val operand(std::uint32_t index) {
    const Node& node = program_.nodes[index];
    if (node.op == Op::Literal) return program_.literal_values[node.aux];
    if (node.op == Op::Attribute) return attribute(program_.attributes[node.aux]);
    return eval(index);
  }
  Val attribute(const AttributeRef& ref);
  bool exists(const AttributeRef& ref) const;
  bool equal_as(Type target, const Val& x, const Val& y);
  Val arithmetic(const Node& node);
  Val comparison(const Node& node);
  Val call(const Node& node);

  const Program& program_;
  const CloudEvent& event_;
  std::vector<EvalError>* errors_;
  std::size_t error_count_ = 0;
  std::forward_list<std::string> arena_;  // node-based: views stay valid as it grows
};

/// The built-in function table (spec 3.5). Every parameter type is one of the three primitive types or
/// "any" (the casting functions take Any).
struct FunctionSignature {
  std::string_view name;  // upper case
  Builtin id;
  std::uint8_t fixed;  // number of fixed parameters
  bool variadic;       // further parameters of the last fixed parameter's type (or String)
  Type result;
};

/// Finds the overload of `upper_name` for `arity` arguments (spec 3.5: overloads differ by arity).
const FunctionSignature* resolve_function(std::string_view upper_name, std::size_t arity);

/// Calls a built-in; `args` were evaluated without error. Casts them to the parameter types itself.
Val call_builtin(Builtin id, const Val* args, std::size_t count, Evaluator& ev);

/// Return type of a built-in, whose zero value stands in when an argument raised an error.
Type result_type(Builtin id);

}  // namespace sluice::cesql::detail
