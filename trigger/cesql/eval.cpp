#include "trigger/cesql/eval.hpp"

#include <array>
#include <charconv>
#include <limits>

namespace sluice::cesql::detail {
namespace {

// Messages quote values; long ones are cut so that an error line stays readable.
std::string quoted(std::string_view s) {
  constexpr std::size_t kMax = 64;
  std::string out = "'";
  out.append(s.substr(0, kMax));
  if (s.size() > kMax) out += "...";
  out += "'";
  return out;
}

bool equals_ignoring_ascii_case(std::string_view s, std::string_view lower) {
  if (s.size() != lower.size()) return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != lower[i]) return false;
  }
  return true;
}

// Two's-complement arithmetic without undefined behaviour; *overflow tells whether the exact result
// was outside the 32-bit range.
std::int32_t wrap(std::int64_t exact, bool* overflow) {
  *overflow =
      exact < std::numeric_limits<std::int32_t>::min() || exact > std::numeric_limits<std::int32_t>::max();
  return static_cast<std::int32_t>(static_cast<std::uint32_t>(static_cast<std::uint64_t>(exact)));
}

}  // namespace

bool Evaluator::parse_integer(std::string_view s, std::int32_t* out) {
  // Spec 3.7 String -> Integer: base 10, 32 bits, "MAY begin with a leading sign '+' or '-'".
  if (!s.empty() && s.front() == '+') {
    s.remove_prefix(1);
    if (!s.empty() && s.front() == '-') return false;
  }
  if (s.empty()) return false;
  std::int32_t value = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value, 10);
  if (ec != std::errc() || end != s.data() + s.size()) return false;
  *out = value;
  return true;
}

std::int32_t Evaluator::to_integer(const Val& v) {
  switch (v.type) {
    case Type::Integer:
      return v.integer;
    case Type::Boolean:
      return v.boolean ? 1 : 0;  // spec 3.7 Boolean -> Integer
    case Type::String: {
      std::int32_t value = 0;
      if (parse_integer(v.text, &value)) return value;
      raise(ErrorKind::Cast, [&] { return "cannot cast String " + quoted(v.text) + " to Integer"; });
      return 0;
    }
  }
  return 0;
}

bool Evaluator::to_boolean(const Val& v, bool explicit_cast) {
  switch (v.type) {
    case Type::Boolean:
      return v.boolean;
    case Type::Integer:
      // Spec 3.7 defines Integer -> Boolean (BOOL(1) is true, TCK casting_functions), but the TCK
      // requires an implicit one to fail: `NOT 10` is `true` with a CastError (TCK not_operator
      // "Invalid int cast"). So only BOOL() converts integers; operators raise a CastError and use
      // false.
      if (explicit_cast) return v.integer != 0;
      raise(ErrorKind::Cast,
            [&] { return "cannot implicitly cast Integer " + std::to_string(v.integer) + " to Boolean"; });
      return false;
    case Type::String:
      // Spec 3.7 String -> Boolean: the lower case form must be exactly "true" or "false".
      if (equals_ignoring_ascii_case(v.text, "true")) return true;
      if (equals_ignoring_ascii_case(v.text, "false")) return false;
      raise(ErrorKind::Cast, [&] { return "cannot cast String " + quoted(v.text) + " to Boolean"; });
      return false;
  }
  return false;
}

std::string_view Evaluator::to_text(const Val& v) {
  switch (v.type) {
    case Type::String:
      return v.text;
    case Type::Boolean:
      return v.boolean ? "true" : "false";  // spec 3.7 Boolean -> String
    case Type::Integer: {
      // Spec 3.7 Integer -> String: base 10, no leading zeros, '-' for negative values.
      std::array<char, 12> buffer{};
      const auto result = std::to_chars(buffer.data(), buffer.data() + buffer.size(), v.integer);
      return keep(std::string(buffer.data(), result.ptr));
    }
  }
  return {};
}

// `=` is ambiguous (spec 3.7): the right operand's type picks the overload and the left operand is cast
// to it. IN uses the left operand's type instead (spec 3.4.5); callers pass the target type.
bool Evaluator::equal_as(Type target, const Val& x, const Val& y) {
  switch (target) {
    case Type::Boolean:
      return to_boolean(x) == to_boolean(y);
    case Type::Integer:
      return to_integer(x) == to_integer(y);
    case Type::String:
      return to_text(x) == to_text(y);
  }
  return false;
}

bool Evaluator::exists(const AttributeRef& ref) const {
  switch (ref.field) {
    case ContextField::Id:
    case ContextField::Source:
    case ContextField::Specversion:
    case ContextField::Type:
      return true;  // spec 3.4.4: the input event is valid, so required attributes always exist
    case ContextField::Datacontenttype:
      return event_.datacontenttype.has_value();
    case ContextField::Dataschema:
      return event_.dataschema.has_value();
    case ContextField::Subject:
      return event_.subject.has_value();
    case ContextField::Time:
      return event_.time.has_value();
    case ContextField::Extension:
      return event_.extensions.find(ref.name) != event_.extensions.end();
  }
  return false;
}

Val Evaluator::attribute(const AttributeRef& ref) {
  const std::string* text = nullptr;
  switch (ref.field) {
    case ContextField::Id:
      return Val::of_string(event_.id);
    case ContextField::Source:
      return Val::of_string(event_.source);
    case ContextField::Specversion:
      return Val::of_string(event_.specversion);
    case ContextField::Type:
      return Val::of_string(event_.type);
    case ContextField::Datacontenttype:
      text = event_.datacontenttype ? &*event_.datacontenttype : nullptr;
      break;
    case ContextField::Dataschema:
      text = event_.dataschema ? &*event_.dataschema : nullptr;
      break;
    case ContextField::Subject:
      text = event_.subject ? &*event_.subject : nullptr;
      break;
    case ContextField::Time:
      text = event_.time ? &*event_.time : nullptr;
      break;
    case ContextField::Extension: {
      const auto it = event_.extensions.find(ref.name);
      if (it == event_.extensions.end()) break;
      const AttributeValue& value = it->second;
      switch (value.type) {
        case AttributeType::Boolean:
          return Val::of_bool(value.boolean);
        case AttributeType::Integer:
          return Val::of_int(value.integer);
        case AttributeType::Binary:
          // Spec 3.2: non-primitive types are Strings; Binary's string form is base64.
          return Val::of_string(keep(value.to_header_string()));
        default:
          return Val::of_string(value.text);
      }
    }
  }
  if (text != nullptr) return Val::of_string(*text);
  // Spec 3.2: a missing attribute raises MissingAttributeError; the enclosing operator turns the error
  // into its zero value. A bare attribute has no enclosing operator, so its type is undetermined and
  // the result is Boolean false.
  raise(ErrorKind::MissingAttribute,
        [&] { return "attribute '" + ref.name + "' is not present in the event"; });
  return Val::of_bool(false);
}

// Every operator below follows one rule for errors (spec 3.3, 3.2; TCK binary_logical_operators and
// binary_math_operators): when an operand raised an error, the operator yields the zero value of its
// return type without evaluating further operands; an error the operator raises itself (a cast, a
// division by zero) still yields the operator's defined result.
Val Evaluator::arithmetic(const Node& node) {
  const std::size_t before = error_count_;
  const Val l = operand(node.a);
  if (error_count_ != before) return Val::of_int(0);
  const Val r = operand(node.b);
  if (error_count_ != before) return Val::of_int(0);
  const std::int64_t x = to_integer(l);
  const std::int64_t y = to_integer(r);
  std::int64_t exact = 0;
  switch (node.op) {
    case Op::Multiply:
      exact = x * y;
      break;
    case Op::Add:
      exact = x + y;
      break;
    case Op::Subtract:
      exact = x - y;
      break;
    case Op::Divide:
    case Op::Modulo:
      // Spec 3.4.2: "Returns 0 and a MathError if y = 0"; `/` truncates towards 0 and `%` has the sign
      // of x, as in C++.
      if (y == 0) {
        raise(ErrorKind::Math, [] { return std::string("division by zero"); });
        return Val::of_int(0);
      }
      exact = node.op == Op::Divide ? x / y : x % y;
      break;
    default:
      break;
  }
  bool overflow = false;
  const std::int32_t result = wrap(exact, &overflow);
  if (overflow) {
    // Not spelled out by the spec; like ABS(-2147483648) (spec 3.5.2) an out-of-range result is a
    // MathError, with the two's-complement value.
    raise(ErrorKind::Math, [&] {
      return "integer overflow: result " + std::to_string(exact) + " is out of the 32-bit range";
    });
  }
  return Val::of_int(result);
}

Val Evaluator::comparison(const Node& node) {
  const std::size_t before = error_count_;
  const Val l = operand(node.a);
  if (error_count_ != before) return Val::of_bool(false);
  const Val r = operand(node.b);
  if (error_count_ != before) return Val::of_bool(false);
  switch (node.op) {
    case Op::Equal:
      return Val::of_bool(equal_as(r.type, l, r));
    case Op::NotEqual:
      return Val::of_bool(!equal_as(r.type, l, r));
    case Op::Xor:
      return Val::of_bool(to_boolean(l) != to_boolean(r));
    default:
      break;
  }
  // Spec 3.4.2: the ordering operators are defined on Integer only.
  const std::int32_t x = to_integer(l);
  const std::int32_t y = to_integer(r);
  switch (node.op) {
    case Op::Less:
      return Val::of_bool(x < y);
    case Op::LessEqual:
      return Val::of_bool(x <= y);
    case Op::Greater:
      return Val::of_bool(x > y);
    case Op::GreaterEqual:
      return Val::of_bool(x >= y);
    default:
      return Val::of_bool(false);
  }
}

Val Evaluator::call(const Node& node) {
  const Type result = result_type(static_cast<Builtin>(node.aux));
  constexpr std::size_t kInline = 8;
  std::array<Val, kInline> inline_args;
  std::vector<Val> heap_args;
  Val* args = inline_args.data();
  if (node.count > kInline) {
    heap_args.resize(node.count);
    args = heap_args.data();
  }
  const std::size_t before = error_count_;
  for (std::uint32_t i = 0; i < node.count; ++i) {
    args[i] = operand(program_.operands[node.a + i]);
    if (error_count_ != before) return Val::zero(result);
  }
  return call_builtin(static_cast<Builtin>(node.aux), args, node.count, *this);
}

Val Evaluator::eval(std::uint32_t index) {
  const Node& node = program_.nodes[index];
  switch (node.op) {
    case Op::Literal:
      return program_.literal_values[node.aux];
    case Op::Attribute:
      return attribute(program_.attributes[node.aux]);
    case Op::Exists:
      return Val::of_bool(exists(program_.attributes[node.aux]));
    case Op::Not: {
      const std::size_t before = error_count_;
      const Val v = operand(node.a);
      if (error_count_ != before) return Val::of_bool(false);
      return Val::of_bool(!to_boolean(v));
    }
    case Op::Negate: {
      const std::size_t before = error_count_;
      const Val v = operand(node.a);
      if (error_count_ != before) return Val::of_int(0);
      const std::int32_t x = to_integer(v);
      if (x == std::numeric_limits<std::int32_t>::min()) {
        raise(ErrorKind::Math,
              [] { return std::string("integer overflow: -(-2147483648) is out of the 32-bit range"); });
        return Val::of_int(x);
      }
      return Val::of_int(-x);
    }
    case Op::Multiply:
    case Op::Divide:
    case Op::Modulo:
    case Op::Add:
    case Op::Subtract:
      return arithmetic(node);
    case Op::Less:
    case Op::LessEqual:
    case Op::Greater:
    case Op::GreaterEqual:
    case Op::Equal:
    case Op::NotEqual:
    case Op::Xor:
      return comparison(node);
    case Op::And:
    case Op::Or: {
      // Spec 3.4.2 / 3.6: short-circuit, left to right.
      const bool is_and = node.op == Op::And;
      for (std::uint32_t i = 0; i < node.b; ++i) {
        const std::size_t before = error_count_;
        const Val v = operand(program_.operands[node.a + i]);
        if (error_count_ != before) return Val::of_bool(false);
        const bool b = to_boolean(v);
        if (is_and && !b) return Val::of_bool(false);
        if (!is_and && b) return Val::of_bool(true);
      }
      return Val::of_bool(is_and);
    }
    case Op::Like: {
      const std::size_t before = error_count_;
      const Val v = operand(node.a);
      if (error_count_ != before) return Val::of_bool(false);
      // Spec 3.4.3: a non-String left operand is cast to String.
      const bool matched = program_.patterns[node.aux].matches(to_text(v));
      return Val::of_bool(matched != node.negated);
    }
    case Op::In: {
      const std::size_t before = error_count_;
      const Val x = operand(node.a);
      if (error_count_ != before) return Val::of_bool(false);
      for (std::uint32_t i = 0; i < node.count; ++i) {
        const std::size_t before_element = error_count_;
        const Val y = operand(program_.operands[node.b + i]);
        if (error_count_ != before_element) return Val::of_bool(false);
        // Spec 3.4.5: `=` semantics with x's type as the target type of the implicit casts.
        if (equal_as(x.type, x, y)) return Val::of_bool(!node.negated);
      }
      return Val::of_bool(node.negated);
    }
    case Op::Call:
      return call(node);
    case Op::MissingFunction:
      // Spec 3.5: "When a function invocation cannot be dispatched, the return value is false, and a
      // MissingFunctionError is also returned."
      raise(ErrorKind::MissingFunction, [&] {
        return "unknown function " + program_.unknown_functions[node.aux] + " (name/number of arguments)";
      });
      return Val::of_bool(false);
  }
  return Val::of_bool(false);
}

}  // namespace sluice::cesql::detail
