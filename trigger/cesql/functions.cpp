// The built-in functions of spec section 3.5.

#include <array>
#include <limits>

#include "trigger/cesql/eval.hpp"
#include "trigger/cesql/utf8.hpp"

namespace sluice::cesql::detail {
namespace {

constexpr std::array<FunctionSignature, 17> kFunctions{{
    // 3.5.2 Math
    {"ABS", Builtin::Abs, 1, false, Type::Integer},
    // 3.5.1 String manipulation
    {"LENGTH", Builtin::Length, 1, false, Type::Integer},
    {"CONCAT", Builtin::Concat, 0, true, Type::String},
    {"CONCAT_WS", Builtin::ConcatWs, 1, true, Type::String},
    {"LOWER", Builtin::Lower, 1, false, Type::String},
    {"UPPER", Builtin::Upper, 1, false, Type::String},
    {"TRIM", Builtin::Trim, 1, false, Type::String},
    {"LEFT", Builtin::Left, 2, false, Type::String},
    {"RIGHT", Builtin::Right, 2, false, Type::String},
    {"SUBSTRING", Builtin::Substring2, 2, false, Type::String},
    {"SUBSTRING", Builtin::Substring3, 3, false, Type::String},
    // Casting functions
    {"INT", Builtin::Int, 1, false, Type::Integer},
    {"BOOL", Builtin::Bool, 1, false, Type::Boolean},
    {"STRING", Builtin::String, 1, false, Type::String},
    {"IS_INT", Builtin::IsInt, 1, false, Type::Boolean},
    {"IS_BOOL", Builtin::IsBool, 1, false, Type::Boolean},
    {"IS_STRING", Builtin::IsString, 1, false, Type::Boolean},
}};

std::string ascii_case(std::string_view s, bool upper) {
  std::string out(s);
  for (char& c : out) {
    if (upper && c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    if (!upper && c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::string_view trim(std::string_view s) {
  std::size_t begin = 0;
  while (begin < s.size()) {
    std::size_t length = 0;
    if (!is_unicode_space(utf8_decode(s, begin, &length))) break;
    begin += length;
  }
  std::size_t end = begin;
  for (std::size_t i = begin; i < s.size();) {
    std::size_t length = 0;
    const bool space = is_unicode_space(utf8_decode(s, i, &length));
    i += length;
    if (!space) end = i;
  }
  return s.substr(begin, end - begin);
}

// SUBSTRING(x, pos [, len]) of spec 3.5.1. Characters are counted from 1; a negative pos counts from
// the end; pos 0 gives "". pos beyond either end, or a negative len, is a FunctionEvaluationError with "".
Val substring(std::string_view x, std::int32_t pos, const std::int32_t* len, Evaluator& ev) {
  const auto length = static_cast<std::int64_t>(utf8_length(x));
  if (pos > length || pos < -length || (len != nullptr && *len < 0)) {
    ev.raise(ErrorKind::FunctionEvaluation, [&] {
      if (len != nullptr && *len < 0) return "SUBSTRING: length " + std::to_string(*len) + " is negative";
      return "SUBSTRING: position " + std::to_string(pos) + " is outside a string of " +
             std::to_string(length) + " characters";
    });
    return Val::of_string({});
  }
  if (pos == 0) return Val::of_string({});
  const std::int64_t start = pos > 0 ? pos - 1 : length + pos;  // 0-based character index
  const std::int64_t available = length - start;
  const std::int64_t take = len == nullptr ? available : std::min<std::int64_t>(*len, available);
  const std::size_t from = utf8_offset(x, static_cast<std::size_t>(start));
  const std::size_t to = from + utf8_offset(x.substr(from), static_cast<std::size_t>(take));
  return Val::of_string(x.substr(from, to - from));
}

}  // namespace

const FunctionSignature* resolve_function(std::string_view upper_name, std::size_t arity) {
  // Exact arity first, then a variadic overload whose fixed parameters fit (spec 3.5).
  for (const auto& f : kFunctions)
    if (f.name == upper_name && !f.variadic && f.fixed == arity) return &f;
  for (const auto& f : kFunctions)
    if (f.name == upper_name && f.variadic && arity >= f.fixed) return &f;
  return nullptr;
}

Type result_type(Builtin id) {
  for (const auto& f : kFunctions)
    if (f.id == id) return f.result;
  return Type::Boolean;
}

Val call_builtin(Builtin id, const Val* args, std::size_t count, Evaluator& ev) {
  switch (id) {
    case Builtin::Abs: {
      const std::int32_t x = ev.to_integer(args[0]);
      if (x == std::numeric_limits<std::int32_t>::min()) {
        // Spec 3.5.2: ABS(-2147483648) returns 2147483647 and a MathError.
        ev.raise(ErrorKind::Math,
                 [] { return std::string("ABS: -2147483648 has no 32-bit absolute value"); });
        return Val::of_int(std::numeric_limits<std::int32_t>::max());
      }
      return Val::of_int(x < 0 ? -x : x);
    }
    case Builtin::Length:
      return Val::of_int(static_cast<std::int32_t>(utf8_length(ev.to_text(args[0]))));
    case Builtin::Concat:
    case Builtin::ConcatWs: {
      const bool with_separator = id == Builtin::ConcatWs;
      const std::string_view separator = with_separator ? ev.to_text(args[0]) : std::string_view{};
      std::string out;
      for (std::size_t i = with_separator ? 1 : 0; i < count; ++i) {
        if (with_separator && i > 1) out.append(separator);
        out.append(ev.to_text(args[i]));
      }
      return Val::of_string(ev.keep(std::move(out)));
    }
    case Builtin::Lower:
    case Builtin::Upper:
      // ASCII letters only: full Unicode case mapping needs tables this engine does not carry.
      return Val::of_string(ev.keep(ascii_case(ev.to_text(args[0]), id == Builtin::Upper)));
    case Builtin::Trim:
      return Val::of_string(trim(ev.to_text(args[0])));
    case Builtin::Left:
    case Builtin::Right: {
      const std::string_view x = ev.to_text(args[0]);
      const std::int32_t y = ev.to_integer(args[1]);
      const bool left = id == Builtin::Left;
      if (y < 0) {
        // Spec 3.5.1: "Returns x if y < 0 and a FunctionEvaluationError."
        ev.raise(ErrorKind::FunctionEvaluation, [&] {
          return std::string(left ? "LEFT" : "RIGHT") + ": length " + std::to_string(y) + " is negative";
        });
        return Val::of_string(x);
      }
      const std::size_t length = utf8_length(x);
      if (static_cast<std::size_t>(y) >= length) return Val::of_string(x);
      if (left) return Val::of_string(x.substr(0, utf8_offset(x, static_cast<std::size_t>(y))));
      return Val::of_string(x.substr(utf8_offset(x, length - static_cast<std::size_t>(y))));
    }
    case Builtin::Substring2:
    case Builtin::Substring3: {
      const std::string_view x = ev.to_text(args[0]);
      const std::int32_t pos = ev.to_integer(args[1]);
      if (id == Builtin::Substring2) return substring(x, pos, nullptr, ev);
      const std::int32_t len = ev.to_integer(args[2]);
      return substring(x, pos, &len, ev);
    }
    case Builtin::Int:
      return Val::of_int(ev.to_integer(args[0]));
    case Builtin::Bool:
      return Val::of_bool(ev.to_boolean(args[0], /*explicit_cast=*/true));
    case Builtin::String:
      return Val::of_string(ev.to_text(args[0]));
    case Builtin::IsInt: {
      // True when INT(x) would succeed without a CastError.
      std::int32_t ignored = 0;
      return Val::of_bool(args[0].type != Type::String || Evaluator::parse_integer(args[0].text, &ignored));
    }
    case Builtin::IsBool: {
      // True when BOOL(x) would succeed without a CastError.
      if (args[0].type != Type::String) return Val::of_bool(true);
      const std::string lower = ascii_case(args[0].text.substr(0, 5), false);
      return Val::of_bool(args[0].text.size() <= 5 && (lower == "true" || lower == "false"));
    }
    case Builtin::IsString:
      // Every value can be cast to String (spec 3.7).
      return Val::of_bool(true);
  }
  return Val::of_bool(false);
}

}  // namespace sluice::cesql::detail
