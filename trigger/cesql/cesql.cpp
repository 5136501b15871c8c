#include "trigger/cesql/cesql.hpp"

#include "core/json_format.hpp"

#include <cstdio>

#include "trigger/cesql/eval.hpp"
#include "trigger/cesql/parser.hpp"

namespace sluice::cesql {

std::string_view to_string(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::Parse:
      return "parse";
    case ErrorKind::Math:
      return "math";
    case ErrorKind::Cast:
      return "cast";
    case ErrorKind::MissingAttribute:
      return "missingAttribute";
    case ErrorKind::MissingFunction:
      return "missingFunction";
    case ErrorKind::FunctionEvaluation:
      return "functionEvaluation";
    case ErrorKind::Generic:
      return "generic";
  }
  return "generic";
}

std::string_view to_string(Type type) {
  switch (type) {
    case Type::Boolean:
      return "Boolean";
    case Type::Integer:
      return "Integer";
    case Type::String:
      return "String";
  }
  return "Boolean";
}

std::string EvalError::to_string() const {
  std::string out(cesql::to_string(kind));
  out += ": ";
  out += message;
  return out;
}

Value Value::zero(Type type) {
  switch (type) {
    case Type::Integer:
      return integer(0);
    case Type::String:
      return string({});
    case Type::Boolean:
      break;
  }
  return boolean(false);
}

std::string Value::to_json() const {
  switch (type_) {
    case Type::Boolean:
      return boolean_ ? "true" : "false";
    case Type::Integer:
      return std::to_string(integer_);
    case Type::String:
      break;
  }
  std::string out;
  append_json_string(out, string_);  // invalid UTF-8 becomes U+FFFD, so the text stays JSON
  return out;
}

Result<Expression> Expression::compile(std::string_view text) {
  auto program = detail::parse_program(text);
  if (!program) return program.error();
  return Expression(std::move(program).value());
}

Value Expression::evaluate(const CloudEvent& event, std::vector<EvalError>* errors) const {
  detail::Evaluator evaluator(*program_, event, errors);
  const detail::Val v = evaluator.run();
  switch (v.type) {
    case Type::Boolean:
      return Value::boolean(v.boolean);
    case Type::Integer:
      return Value::integer(v.integer);
    case Type::String:
      return Value::string(std::string(v.text));
  }
  return Value();
}

bool Expression::matches(const CloudEvent& event, bool* had_error) const {
  detail::Evaluator evaluator(*program_, event, nullptr);
  const detail::Val v = evaluator.run();
  const bool errored = evaluator.error_count() != 0;
  if (had_error != nullptr) *had_error = errored;
  // Spec 1.2: the event passes only when the value is Boolean true and no error occurred.
  return !errored && v.type == Type::Boolean && v.boolean;
}

const std::string& Expression::text() const {
  return program_->text;
}

const std::vector<std::string>& Expression::unknown_functions() const {
  return program_->unknown_functions;
}

}  // namespace sluice::cesql
