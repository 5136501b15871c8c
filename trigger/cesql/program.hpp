#pragma once
// The compiled form of a CESQL expression: a flat array of nodes that refer to their operands by
// index, with literals, attribute references, LIKE patterns and operand lists resolved at compile time.
// Internal to trigger/cesql.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "trigger/cesql/like.hpp"
#include "trigger/cesql/value.hpp"

namespace sluice::cesql::detail {

/// A value during evaluation. Strings are views into the event, the program's literals or the
/// evaluator's arena, so that reading attributes and comparing them with literals copies nothing.
struct Val {
  Type type = Type::Boolean;
  bool boolean = false;
  std::int32_t integer = 0;
  std::string_view text;

  static Val of_bool(bool b) { return {Type::Boolean, b, 0, {}}; }
  static Val of_int(std::int32_t i) { return {Type::Integer, false, i, {}}; }
  static Val of_string(std::string_view s) { return {Type::String, false, 0, s}; }
  static Val zero(Type type) { return {type, false, 0, {}}; }
};

enum class Op : std::uint8_t {
  Literal,    // aux: index into literals
  Attribute,  // aux: index into attributes
  Exists,     // aux: index into attributes
  Not,        // a: operand
  Negate,     // a: operand
  Multiply,   // a, b: operands (and every arithmetic/comparison/XOR below)
  Divide,
  Modulo,
  Add,
  Subtract,
  Less,
  LessEqual,
  Greater,
  GreaterEqual,
  Equal,
  NotEqual,
  Xor,
  And,              // operands: operands[a .. a+b), short-circuit (spec 3.4.2)
  Or,               // operands: operands[a .. a+b), short-circuit (spec 3.4.2)
  Like,             // a: operand, aux: index into patterns, negated: NOT LIKE
  In,               // a: operand, operands[b .. b+count): the set, negated: NOT IN
  Call,             // aux: Builtin, operands[a .. a+count): arguments
  MissingFunction,  // aux: index into unknown_functions; arguments are not evaluated
};

/// The built-in functions of spec 3.5 (one entry per overload).
enum class Builtin : std::uint8_t {
  Abs,
  Length,
  Concat,
  ConcatWs,
  Lower,
  Upper,
  Trim,
  Left,
  Right,
  Substring2,
  Substring3,
  Int,
  Bool,
  String,
  IsInt,
  IsBool,
  IsString,
};

struct Node {
  Op op;
  bool negated = false;
  std::uint32_t a = 0;
  std::uint32_t b = 0;
  std::uint32_t count = 0;
  std::uint32_t aux = 0;
};

/// Context attributes are read from their CloudEvent members directly; anything else is an extension.
enum class ContextField : std::uint8_t {
  Id,
  Source,
  Specversion,
  Type,
  Datacontenttype,
  Dataschema,
  Subject,
  Time,
  Extension,
};

struct AttributeRef {
  ContextField field;
  std::string name;  // lower case
};

struct Program {
  std::string text;
  std::vector<Node> nodes;
  std::uint32_t root = 0;
  std::vector<Value> literals;
  std::vector<Val> literal_values;  // the same literals as views, filled once parsing is done
  std::vector<AttributeRef> attributes;
  std::vector<LikePattern> patterns;
  std::vector<std::uint32_t> operands;
  std::vector<std::string> unknown_functions;
};

}  // namespace sluice::cesql::detail
