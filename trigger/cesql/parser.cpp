#include "trigger/cesql/parser.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <limits>

#include "trigger/cesql/eval.hpp"
#include "trigger/cesql/lexer.hpp"

namespace sluice::cesql::detail {
namespace {

constexpr std::uint32_t kInvalid = std::numeric_limits<std::uint32_t>::max();

char to_upper(char c) {
  return c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c;
}
char to_lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}
std::string upper(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), to_upper);
  return out;
}

// Spec 2.2: value-identifier ::= ( lowercase-char | digit )+. Keywords are case-insensitive (spec 2)
// and the TCK addresses `EXISTS SOURCE`, so identifiers are matched case-insensitively too.
bool is_value_identifier(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
  });
}

// Spec 2.4: function-identifier ::= char ( "_" | char )*.
bool is_function_identifier(std::string_view s) {
  if (s.empty()) return false;
  const auto is_char = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); };
  return is_char(s.front()) &&
         std::all_of(s.begin(), s.end(), [&](char c) { return is_char(c) || c == '_'; });
}

enum class Keyword { None, And, Or, Xor, Not, Like, In, Exists, True, False };

Keyword keyword_of(const Token& t) {
  if (t.kind != TokenKind::Word || t.text.size() > 6) return Keyword::None;
  const std::string u = upper(t.text);
  if (u == "AND") return Keyword::And;
  if (u == "OR") return Keyword::Or;
  if (u == "XOR") return Keyword::Xor;
  if (u == "NOT") return Keyword::Not;
  if (u == "LIKE") return Keyword::Like;
  if (u == "IN") return Keyword::In;
  if (u == "EXISTS") return Keyword::Exists;
  if (u == "TRUE") return Keyword::True;
  if (u == "FALSE") return Keyword::False;
  return Keyword::None;
}

ContextField context_field(std::string_view name) {
  static constexpr std::array<std::pair<std::string_view, ContextField>, 8> kFields{{
      {"id", ContextField::Id},
      {"source", ContextField::Source},
      {"specversion", ContextField::Specversion},
      {"type", ContextField::Type},
      {"datacontenttype", ContextField::Datacontenttype},
      {"dataschema", ContextField::Dataschema},
      {"subject", ContextField::Subject},
      {"time", ContextField::Time},
  }};
  for (const auto& [n, f] : kFields)
    if (n == name) return f;
  return ContextField::Extension;
}

class Parser {
 public:
  Parser(std::string_view text, Program& program) : program_(program) {
    Lexer lexer(text);
    for (;;) {
      tokens_.push_back(lexer.next());
      if (tokens_.back().kind == TokenKind::End || tokens_.back().kind == TokenKind::Error) break;
    }
  }

  Result<void> parse() {
    const std::uint32_t root = parse_logic();
    if (root != kInvalid && current().kind != TokenKind::End) {
      fail(current(), "expected an operator or the end of the expression, found " + describe(current()));
    }
    if (error_) return *error_;
    program_.root = root;
    return ok();
  }

 private:
  const Token& current() const { return tokens_[index_]; }
  const Token& peek(std::size_t ahead = 1) const {
    return tokens_[std::min(index_ + ahead, tokens_.size() - 1)];
  }
  void advance() {
    if (index_ + 1 < tokens_.size()) ++index_;
  }

  std::uint32_t fail(const Token& at, std::string reason) {
    if (!error_) {
      if (at.kind == TokenKind::Error) reason = at.text;
      error_ = make_error("expression", "position " + std::to_string(at.position + 1) + ": " + reason,
                          static_cast<int>(ErrorKind::Parse));
    }
    return kInvalid;
  }

  // Adds a node whose operands have the given depths; fails when the tree gets too deep for the
  // evaluator's recursion.
  std::uint32_t add(Node node, std::size_t operand_depth, const Token& at) {
    const std::size_t d = operand_depth + 1;
    if (d > kMaxDepth)
      return fail(at, "expression is nested more than " + std::to_string(kMaxDepth) + " levels deep");
    program_.nodes.push_back(node);
    depth_.push_back(d);
    return static_cast<std::uint32_t>(program_.nodes.size() - 1);
  }
  std::size_t depth_of(std::uint32_t node) const { return depth_[node]; }

  // Spec 3.6: AND, OR and XOR share the lowest precedence and associate left to right. A run of the
  // same operator becomes one n-ary node (AND/OR) so that long filters stay shallow.
  std::uint32_t parse_logic() {
    if (++nesting_ > kMaxDepth)
      return fail(current(), "expression is nested more than " + std::to_string(kMaxDepth) + " levels deep");
    std::uint32_t left = parse_comparison();
    while (left != kInvalid) {
      const Keyword k = keyword_of(current());
      if (k != Keyword::And && k != Keyword::Or && k != Keyword::Xor) break;
      const Token op_token = current();
      if (k == Keyword::Xor) {
        advance();
        const std::uint32_t right = parse_comparison();
        if (right == kInvalid) return kInvalid;
        left =
            add(Node{Op::Xor, false, left, right, 0, 0}, std::max(depth_of(left), depth_of(right)), op_token);
        continue;
      }
      std::vector<std::uint32_t> items{left};
      std::size_t depth = depth_of(left);
      while (keyword_of(current()) == k) {
        advance();
        const std::uint32_t right = parse_comparison();
        if (right == kInvalid) return kInvalid;
        items.push_back(right);
        depth = std::max(depth, depth_of(right));
      }
      const auto first = static_cast<std::uint32_t>(program_.operands.size());
      program_.operands.insert(program_.operands.end(), items.begin(), items.end());
      left = add(Node{k == Keyword::And ? Op::And : Op::Or, false, first,
                      static_cast<std::uint32_t>(items.size()), 0, 0},
                 depth, op_token);
    }
    --nesting_;
    return left;
  }

  template <class Next, class Match>
  std::uint32_t parse_binary_level(Next next, Match match) {
    std::uint32_t left = (this->*next)();
    while (left != kInvalid) {
      const Op op = match(current().kind);
      if (op == Op::Literal) break;  // no operator of this level
      const Token op_token = current();
      advance();
      const std::uint32_t right = (this->*next)();
      if (right == kInvalid) return kInvalid;
      left = add(Node{op, false, left, right, 0, 0}, std::max(depth_of(left), depth_of(right)), op_token);
    }
    return left;
  }

  std::uint32_t parse_comparison() {
    return parse_binary_level(&Parser::parse_additive, [](TokenKind k) {
      switch (k) {
        case TokenKind::Equal:
          return Op::Equal;
        case TokenKind::NotEqual:
          return Op::NotEqual;
        case TokenKind::Less:
          return Op::Less;
        case TokenKind::LessEqual:
          return Op::LessEqual;
        case TokenKind::Greater:
          return Op::Greater;
        case TokenKind::GreaterEqual:
          return Op::GreaterEqual;
        default:
          return Op::Literal;
      }
    });
  }

  std::uint32_t parse_additive() {
    return parse_binary_level(&Parser::parse_multiplicative, [](TokenKind k) {
      return k == TokenKind::Plus ? Op::Add : k == TokenKind::Minus ? Op::Subtract : Op::Literal;
    });
  }

  std::uint32_t parse_multiplicative() {
    return parse_binary_level(&Parser::parse_postfix, [](TokenKind k) {
      return k == TokenKind::Star      ? Op::Multiply
             : k == TokenKind::Slash   ? Op::Divide
             : k == TokenKind::Percent ? Op::Modulo
                                       : Op::Literal;
    });
  }

  // Spec 3.6: LIKE, EXISTS and IN bind tighter than the binary operators and looser than the unary
  // ones: `x [NOT] LIKE 'pattern'`, `x [NOT] IN (set)`.
  std::uint32_t parse_postfix() {
    std::uint32_t left = parse_unary();
    while (left != kInvalid) {
      bool negated = false;
      std::size_t ahead = 0;
      if (keyword_of(current()) == Keyword::Not) {
        const Keyword after = keyword_of(peek());
        if (after != Keyword::Like && after != Keyword::In) break;
        negated = true;
        ahead = 1;
      }
      const Keyword k = keyword_of(peek(ahead));
      if (k != Keyword::Like && k != Keyword::In) break;
      const Token op_token = peek(ahead);
      for (std::size_t i = 0; i <= ahead; ++i) advance();
      if (k == Keyword::Like) {
        // Spec 3.4.3: the pattern "MUST be a valid string literal without casting, otherwise the
        // parser MUST return a parse error".
        if (current().kind != TokenKind::String) {
          return fail(current(), "LIKE needs a string literal pattern, found " + describe(current()));
        }
        program_.patterns.push_back(LikePattern::compile(current().text));
        advance();
        left =
            add(Node{Op::Like, negated, left, 0, 0, static_cast<std::uint32_t>(program_.patterns.size() - 1)},
                depth_of(left), op_token);
        continue;
      }
      // Spec 2.3: set-expression ::= "(" expression ("," expression)* ")".
      if (current().kind != TokenKind::LeftParen) {
        return fail(current(), "IN needs a parenthesized list, found " + describe(current()));
      }
      advance();
      std::vector<std::uint32_t> items;
      std::size_t depth = depth_of(left);
      if (!parse_list(&items, &depth, "IN list")) return kInvalid;
      if (items.empty()) return fail(op_token, "IN needs at least one value");
      const auto first = static_cast<std::uint32_t>(program_.operands.size());
      program_.operands.insert(program_.operands.end(), items.begin(), items.end());
      left = add(Node{Op::In, negated, left, first, static_cast<std::uint32_t>(items.size()), 0}, depth,
                 op_token);
    }
    return left;
  }

  // Parses `expression ("," expression)* ")"` or `")"` after an opening parenthesis.
  bool parse_list(std::vector<std::uint32_t>* items, std::size_t* depth, std::string_view what) {
    if (current().kind == TokenKind::RightParen) {
      advance();
      return true;
    }
    for (;;) {
      const std::uint32_t item = parse_logic();
      if (item == kInvalid) return false;
      items->push_back(item);
      *depth = std::max(*depth, depth_of(item));
      if (current().kind == TokenKind::Comma) {
        advance();
        continue;
      }
      if (current().kind == TokenKind::RightParen) {
        advance();
        return true;
      }
      fail(current(), "expected ',' or ')' in " + std::string(what) + ", found " + describe(current()));
      return false;
    }
  }

  // Spec 2.3 / 3.4.1: NOT x and -x. A sign directly before digits is part of the integer literal
  // (spec 2.2 integer-literal), so -2147483648 is a valid literal.
  std::uint32_t parse_unary() {
    const Token start = current();
    const bool is_not = keyword_of(start) == Keyword::Not;
    const bool is_minus = start.kind == TokenKind::Minus;
    const bool is_plus = start.kind == TokenKind::Plus;
    if (!is_not && !is_minus && !is_plus) return parse_primary();
    if (++nesting_ > kMaxDepth)
      return fail(start, "expression is nested more than " + std::to_string(kMaxDepth) + " levels deep");
    advance();
    std::uint32_t result = kInvalid;
    if ((is_minus || is_plus) && current().kind == TokenKind::Integer) {
      result = integer_literal(current(), is_minus);
      advance();
    } else if (is_plus) {
      result = fail(current(), "expected digits after '+', found " + describe(current()));
    } else {
      const std::uint32_t operand = parse_unary();
      if (operand != kInvalid) {
        result = add(Node{is_not ? Op::Not : Op::Negate, false, operand, 0, 0, 0}, depth_of(operand), start);
      }
    }
    --nesting_;
    return result;
  }

  std::uint32_t integer_literal(const Token& digits, bool negative) {
    // Spec 2.2: "Integer literals MUST be valid 32 bit signed integer values."
    const std::string text = (negative ? "-" : "") + digits.text;
    std::int32_t value = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value, 10);
    if (ec != std::errc() || end != text.data() + text.size()) {
      return fail(digits, "integer literal " + text + " is outside the 32-bit range");
    }
    return literal(Value::integer(value), digits);
  }

  std::uint32_t literal(Value value, const Token& at) {
    program_.literals.push_back(std::move(value));
    return add(Node{Op::Literal, false, 0, 0, 0, static_cast<std::uint32_t>(program_.literals.size() - 1)}, 0,
               at);
  }

  std::uint32_t attribute_ref(Op op, const Token& name) {
    std::string lower(name.text);
    std::transform(lower.begin(), lower.end(), lower.begin(), to_lower);
    program_.attributes.push_back(AttributeRef{context_field(lower), std::move(lower)});
    return add(Node{op, false, 0, 0, 0, static_cast<std::uint32_t>(program_.attributes.size() - 1)}, 0, name);
  }

  std::uint32_t parse_primary() {
    const Token t = current();
    switch (t.kind) {
      case TokenKind::Integer:
        advance();
        return integer_literal(t, false);
      case TokenKind::String:
        advance();
        return literal(Value::string(t.text), t);
      case TokenKind::LeftParen: {
        advance();
        const std::uint32_t inner = parse_logic();
        if (inner == kInvalid) return kInvalid;
        if (current().kind != TokenKind::RightParen) {
          return fail(current(), "expected ')' to close the '(' at position " +
                                     std::to_string(t.position + 1) + ", found " + describe(current()));
        }
        advance();
        return inner;
      }
      case TokenKind::Word:
        break;
      case TokenKind::End:
        return fail(t, "expected a value, found the end of the expression");
      default:
        return fail(t, "expected a value, found " + describe(t));
    }

    switch (keyword_of(t)) {
      case Keyword::True:
      case Keyword::False:
        advance();
        return literal(Value::boolean(keyword_of(t) == Keyword::True), t);
      case Keyword::Exists: {
        // Spec 2.3: exists-operation ::= exists-operator value-identifier.
        advance();
        const Token name = current();
        if (name.kind != TokenKind::Word || keyword_of(name) != Keyword::None ||
            !is_value_identifier(name.text)) {
          return fail(name, "EXISTS needs an attribute name, found " + describe(name));
        }
        advance();
        return attribute_ref(Op::Exists, name);
      }
      case Keyword::None:
        break;
      default:
        return fail(t, "expected a value, found the keyword " + upper(t.text));
    }

    if (peek().kind == TokenKind::LeftParen) return parse_call(t);
    if (!is_value_identifier(t.text)) {
      return fail(t, "'" + t.text + "' is not an attribute name (letters and digits only)");
    }
    advance();
    return attribute_ref(Op::Attribute, t);
  }

  // Spec 2.4: function-invocation ::= function-identifier "(" argument-list? ")". Names are
  // case-insensitive (spec 2: `int(hop)`); overloads are resolved by arity here, once.
  std::uint32_t parse_call(const Token& name) {
    if (!is_function_identifier(name.text)) {
      return fail(name, "'" + name.text + "' is not a function name (letters and '_' only)");
    }
    advance();  // name
    advance();  // (
    if (++nesting_ > kMaxDepth)
      return fail(name, "expression is nested more than " + std::to_string(kMaxDepth) + " levels deep");
    std::vector<std::uint32_t> args;
    std::size_t depth = 0;
    if (!parse_list(&args, &depth, "the arguments of " + upper(name.text))) return kInvalid;
    --nesting_;
    const std::string upper_name = upper(name.text);
    const FunctionSignature* f = resolve_function(upper_name, args.size());
    if (f == nullptr) {
      program_.unknown_functions.push_back(upper_name + "/" + std::to_string(args.size()));
      return add(Node{Op::MissingFunction, false, 0, 0, 0,
                      static_cast<std::uint32_t>(program_.unknown_functions.size() - 1)},
                 depth, name);
    }
    const auto first = static_cast<std::uint32_t>(program_.operands.size());
    program_.operands.insert(program_.operands.end(), args.begin(), args.end());
    return add(Node{Op::Call, false, first, 0, static_cast<std::uint32_t>(args.size()),
                    static_cast<std::uint32_t>(f->id)},
               depth, name);
  }

  Program& program_;
  std::vector<Token> tokens_;
  std::size_t index_ = 0;
  std::vector<std::size_t> depth_;  // per node: height of its subtree
  std::size_t nesting_ = 0;
  std::optional<Error> error_;
};

}  // namespace

Result<std::shared_ptr<Program>> parse_program(std::string_view text) {
  auto program = std::make_shared<Program>();
  program->text = std::string(text);
  Parser parser(text, *program);
  auto parsed = parser.parse();
  if (!parsed) return parsed.error();
  for (const Value& v : program->literals) {
    program->literal_values.push_back(v.is_string()    ? Val::of_string(v.as_string())
                                      : v.is_integer() ? Val::of_int(v.as_integer())
                                                       : Val::of_bool(v.as_boolean()));
  }
  return program;
}

}  // namespace sluice::cesql::detail
