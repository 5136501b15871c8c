#pragma once
// Small ASCII text helpers shared by the parsers (headers, manifests, inventories).

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace sluice {

inline bool is_ascii_digit(char c) {
  return c >= '0' && c <= '9';
}

/// `s` in double quotes, for error messages ("unknown unit \"x\"").
inline std::string quote(std::string_view s) {
  return "\"" + std::string(s) + "\"";
}

inline char ascii_lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

/// The value of one hexadecimal digit (either case), or -1 when `c` is not one.
inline int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/// RFC 9110 §5.6.2 tchar: a character of a token (header names, methods, media types).
inline bool is_token_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

/// A non-empty RFC 9110 token.
inline bool is_token(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), is_token_char);
}

/// ASCII case-insensitive equality.
inline bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(),
                                            [](char x, char y) { return ascii_lower(x) == ascii_lower(y); });
}

/// `s` without leading and trailing ASCII whitespace (space, tab, CR, LF, VT, FF).
inline std::string_view trim_space(std::string_view s) {
  constexpr std::string_view kSpace = " \t\r\n\v\f";
  const auto begin = s.find_first_not_of(kSpace);
  if (begin == std::string_view::npos) return {};
  return s.substr(begin, s.find_last_not_of(kSpace) - begin + 1);
}

/// One multi-byte UTF-8 sequence: its code point and length in bytes, or length 0 when the bytes are
/// not well-formed UTF-8 (a bad lead or continuation byte, cut short, overlong, beyond U+10FFFF), with
/// `bad` the offset of the byte at fault. Surrogate code points decode; callers decide about them.
struct Utf8Sequence {
  std::uint32_t code_point = 0;
  std::size_t length = 0;
  std::size_t bad = 0;
};

/// Decodes the sequence that starts at s[i], a byte of 0x80 or more.
inline Utf8Sequence decode_utf8_sequence(std::string_view s, std::size_t i) {
  const auto c = static_cast<unsigned char>(s[i]);
  std::size_t len;
  std::uint32_t cp;
  if (c >= 0xC2 && c <= 0xDF) {
    len = 2;
    cp = c & 0x1F;
  } else if (c >= 0xE0 && c <= 0xEF) {
    len = 3;
    cp = c & 0x0F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4;
    cp = c & 0x07;
  } else {
    return {0, 0, i};
  }
  if (i + len > s.size()) return {0, 0, i};
  for (std::size_t k = 1; k < len; ++k) {
    const auto cc = static_cast<unsigned char>(s[i + k]);
    if ((cc & 0xC0) != 0x80) return {0, 0, i + k};
    cp = (cp << 6) | (cc & 0x3F);
  }
  if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF))) return {0, 0, i};
  return {cp, len, 0};
}

}  // namespace sluice
