#pragma once
// UTF-8 helpers: CESQL strings are sequences of Unicode characters (spec 3.1), so LENGTH, LEFT, RIGHT,
// SUBSTRING and LIKE's `_` count code points. Malformed bytes count as one character each, so every
// input has a defined result.

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace sluice::cesql::detail {

/// Byte length of the character that starts at s[i] (1 for malformed or truncated sequences).
inline std::size_t utf8_char_length(std::string_view s, std::size_t i) {
  const auto lead = static_cast<unsigned char>(s[i]);
  std::size_t n = lead < 0x80           ? 1
                  : (lead >> 5) == 0x6  ? 2
                  : (lead >> 4) == 0xE  ? 3
                  : (lead >> 3) == 0x1E ? 4
                                        : 1;
  if (i + n > s.size()) return 1;
  for (std::size_t k = 1; k < n; ++k)
    if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return 1;
  return n;
}

/// Decodes the character at s[i] (malformed bytes decode as themselves) and its byte length.
inline char32_t utf8_decode(std::string_view s, std::size_t i, std::size_t* length) {
  const std::size_t n = utf8_char_length(s, i);
  *length = n;
  const auto lead = static_cast<unsigned char>(s[i]);
  if (n == 1) return lead;
  char32_t c = lead & (0x7F >> n);
  for (std::size_t k = 1; k < n; ++k) c = (c << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
  return c;
}

/// Number of characters in s.
inline std::size_t utf8_length(std::string_view s) {
  std::size_t count = 0;
  for (std::size_t i = 0; i < s.size(); i += utf8_char_length(s, i)) ++count;
  return count;
}

/// Byte offset of character number `index` (0-based); s.size() when index >= the length.
inline std::size_t utf8_offset(std::string_view s, std::size_t index) {
  std::size_t i = 0;
  while (index > 0 && i < s.size()) {
    i += utf8_char_length(s, i);
    --index;
  }
  return i;
}

/// Unicode White_Space (PropList.txt), which TRIM removes (spec 3.5.1).
inline bool is_unicode_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
         c == 0x3000;
}

}  // namespace sluice::cesql::detail
