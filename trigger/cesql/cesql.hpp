#pragma once
// CloudEvents SQL Expression Language v1 (CESQL): the `cesql` dialect of trigger filters.
//
// An expression is compiled once (when a Trigger is applied) and evaluated for every event. Evaluation
// works on the compiled form, never throws, and allocates nothing for the common filter shapes
// (attribute access, literal comparisons, LIKE, IN, EXISTS, AND/OR). Errors are reported beside the
// value, as the spec's section 3.3 requires; a filter matches only on Boolean true without errors
// (spec 1.2).

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/cloud_event.hpp"
#include "core/result.hpp"
#include "trigger/cesql/value.hpp"

namespace sluice::cesql {

/// The error types of spec section 3.3.
enum class ErrorKind { Parse, Math, Cast, MissingAttribute, MissingFunction, FunctionEvaluation, Generic };

/// The TCK's names: parse, math, cast, missingAttribute, missingFunction, functionEvaluation, generic.
std::string_view to_string(ErrorKind kind);

/// One error raised while evaluating an expression.
struct EvalError {
  ErrorKind kind;
  std::string message;

  /// "<kind>: <message>", as `sluice cesql eval` prints it.
  std::string to_string() const;
};

namespace detail {
struct Program;
}

/// A compiled CESQL expression. Cheap to copy (the compiled form is shared and immutable) and safe to
/// evaluate from many threads at once.
class Expression {
 public:
  /// Parses and compiles `text`. On a syntax error returns an Error whose `message` is
  /// "position N: reason" (N counts bytes from 1) and whose `code` is int(ErrorKind::Parse).
  /// Unknown functions are not a syntax error: they compile and raise MissingFunction when evaluated
  /// (spec 3.5), but `unknown_functions()` lists them so that callers can warn at apply time.
  static Result<Expression> compile(std::string_view text);

  /// Evaluates against `event`. Returns the value and, when `errors` is not null, appends every error
  /// raised. A subexpression that raised an error yields the zero value of its type (spec 3.2, 3.3), so
  /// the value is always defined. Never throws.
  Value evaluate(const CloudEvent& event, std::vector<EvalError>* errors = nullptr) const;

  /// The trigger filter's decision: true only when the value is Boolean true and no error was raised
  /// (spec 1.2). `*had_error` tells whether an error was raised (for metrics). Never throws and does
  /// not allocate for the common filter shapes.
  bool matches(const CloudEvent& event, bool* had_error = nullptr) const;

  /// The source text as given to compile().
  const std::string& text() const;

  /// Names (upper case, with arity) of functions the expression calls that no overload matches,
  /// e.g. "FOO/2". Empty for most expressions.
  const std::vector<std::string>& unknown_functions() const;

 private:
  explicit Expression(std::shared_ptr<const detail::Program> program) : program_(std::move(program)) {}
  std::shared_ptr<const detail::Program> program_;
};

}  // namespace sluice::cesql
