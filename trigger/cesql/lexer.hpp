#pragma once
// Tokens of the CESQL grammar (spec section 2). Internal to trigger/cesql.

#include <cstdint>
#include <string>
#include <string_view>

namespace sluice::cesql::detail {

enum class TokenKind : std::uint8_t {
  End,
  Error,    // text: the reason
  Integer,  // text: the digits (no sign; spec 2.2's sign is handled by the parser)
  String,   // text: the value, escapes resolved
  Word,     // keywords, identifiers and function names; text as written
  LeftParen,
  RightParen,
  Comma,
  Equal,         // =
  NotEqual,      // != or <>
  Less,          // <
  LessEqual,     // <=
  Greater,       // >
  GreaterEqual,  // >=
  Plus,
  Minus,
  Star,
  Slash,
  Percent,
};

struct Token {
  TokenKind kind = TokenKind::End;
  std::size_t position = 0;  // 0-based byte offset of the first character
  std::string text;
};

/// Splits an expression into tokens, one at a time.
class Lexer {
 public:
  explicit Lexer(std::string_view input) : input_(input) {}

  /// The next token; End at the end of input (repeatedly), Error on a character the grammar does not
  /// allow or an unterminated string.
  Token next();

 private:
  Token lex_string(char quote);

  std::string_view input_;
  std::size_t pos_ = 0;
};

/// Human-readable name of a token for error messages: "')'", "end of expression", "'foo'".
std::string describe(const Token& token);

}  // namespace sluice::cesql::detail
