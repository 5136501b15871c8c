#pragma once
// LIKE patterns (spec 3.4.3), compiled once when the expression is compiled.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::cesql::detail {

/// A compiled LIKE pattern. `%` matches any run of characters, `_` exactly one character (a Unicode
/// code point), `\%` and `\_` match the literal character; every other character, a backslash that
/// does not precede `%` or `_` included, matches itself, case-sensitively.
class LikePattern {
 public:
  static LikePattern compile(std::string_view pattern);

  /// True when `text` matches the whole pattern. Allocates nothing; O(len(text) * len(pattern)) in the
  /// worst case, linear for the common shapes (exact, prefix%, %suffix, %infix%).
  bool matches(std::string_view text) const;

 private:
  enum class Shape : std::uint8_t { Exact, Prefix, Suffix, Infix, General };
  enum class Kind : std::uint8_t { Byte, AnyOne, AnyRun };
  struct Element {
    Kind kind;
    char byte;
  };

  bool matches_general(std::string_view text) const;

  Shape shape_ = Shape::Exact;
  std::string literal_;  // the literal text for Exact/Prefix/Suffix/Infix
  std::vector<Element> elements_;
};

}  // namespace sluice::cesql::detail
