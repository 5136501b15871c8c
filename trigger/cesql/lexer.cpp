#include "trigger/cesql/lexer.hpp"

#include "core/text.hpp"

namespace sluice::cesql::detail {
namespace {

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}
bool is_word_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_ascii_digit(c) || c == '_';
}

}  // namespace

Token Lexer::next() {
  while (pos_ < input_.size() && is_space(input_[pos_])) ++pos_;
  Token t;
  t.position = pos_;
  if (pos_ >= input_.size()) return t;

  const char c = input_[pos_];
  const auto single = [&](TokenKind kind, std::size_t length) {
    t.kind = kind;
    t.text = std::string(input_.substr(pos_, length));
    pos_ += length;
    return t;
  };
  const char following = pos_ + 1 < input_.size() ? input_[pos_ + 1] : '\0';
  switch (c) {
    case '(':
      return single(TokenKind::LeftParen, 1);
    case ')':
      return single(TokenKind::RightParen, 1);
    case ',':
      return single(TokenKind::Comma, 1);
    case '=':
      return single(TokenKind::Equal, 1);
    case '+':
      return single(TokenKind::Plus, 1);
    case '-':
      return single(TokenKind::Minus, 1);
    case '*':
      return single(TokenKind::Star, 1);
    case '/':
      return single(TokenKind::Slash, 1);
    case '%':
      return single(TokenKind::Percent, 1);
    case '!':
      if (following == '=') return single(TokenKind::NotEqual, 2);
      break;
    case '<':
      if (following == '=') return single(TokenKind::LessEqual, 2);
      if (following == '>') return single(TokenKind::NotEqual, 2);
      return single(TokenKind::Less, 1);
    case '>':
      if (following == '=') return single(TokenKind::GreaterEqual, 2);
      return single(TokenKind::Greater, 1);
    case '\'':
    case '"':
      return lex_string(c);
    default:
      break;
  }
  if (is_word_char(c)) {
    std::size_t end = pos_;
    bool all_digits = true;
    while (end < input_.size() && is_word_char(input_[end])) {
      all_digits = all_digits && is_ascii_digit(input_[end]);
      ++end;
    }
    t.kind = all_digits ? TokenKind::Integer : TokenKind::Word;
    t.text = std::string(input_.substr(pos_, end - pos_));
    pos_ = end;
    return t;
  }
  t.kind = TokenKind::Error;
  const auto byte = static_cast<unsigned char>(c);
  if (byte >= 0x20 && byte < 0x7F) {
    t.text = std::string("unexpected character '") + c + "'";
  } else {
    static constexpr char kHex[] = "0123456789abcdef";
    t.text = std::string("unexpected byte 0x") + kHex[byte >> 4] + kHex[byte & 0xF];
  }
  pos_ = input_.size();
  return t;
}

// Spec 2.2: string-literal ::= ( "'" ( [^'] | "\'" )* "'" ) | ( '"' ( [^"] | '\"' )* '"' ).
// A backslash escapes the delimiting quote only; before any other character both are kept, so
// 'ab\c' is the four characters a, b, \, c (TCK like_expression "Exact match (2)"). As in SQL and
// the CloudEvents Go SDK, a doubled delimiter ('it''s') also stands for one quote.
Token Lexer::lex_string(char quote) {
  Token t;
  t.position = pos_;
  std::size_t i = pos_ + 1;
  while (i < input_.size()) {
    const char c = input_[i];
    if (c == '\\' && i + 1 < input_.size()) {
      if (input_[i + 1] != quote) t.text.push_back('\\');
      t.text.push_back(input_[i + 1]);
      i += 2;
    } else if (c == quote) {
      if (i + 1 < input_.size() && input_[i + 1] == quote) {
        t.text.push_back(quote);
        i += 2;
        continue;
      }
      t.kind = TokenKind::String;
      pos_ = i + 1;
      return t;
    } else {
      t.text.push_back(c);
      ++i;
    }
  }
  t.kind = TokenKind::Error;
  t.text = "unterminated string literal";
  pos_ = input_.size();
  return t;
}

std::string describe(const Token& token) {
  switch (token.kind) {
    case TokenKind::End:
      return "end of expression";
    case TokenKind::String:
      return "string literal";
    case TokenKind::Error:
      return token.text;
    default:
      return "'" + token.text + "'";
  }
}

}  // namespace sluice::cesql::detail
