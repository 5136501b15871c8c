#include "core/quantity.hpp"

#include <cmath>
#include <limits>

#include "core/text.hpp"

namespace sluice {

namespace {

__extension__ typedef __int128 Int128;

constexpr Int128 kInt128Max = ~static_cast<unsigned __int128>(0) >> 1;

// A parsed quantity: sign * (digits / 10^fraction_digits) * base^exponent.
struct Parsed {
  bool negative = false;
  Int128 digits = 0;        // integer and fraction digits run together: "1.50" -> 150
  int fraction_digits = 0;  // -> 2
  int base = 10;            // 10 for decimal SI and e-notation, 2 for binary SI
  int exponent = 0;         // decimal: power of ten; binary: power of two
  bool digits_overflow = false;
};

Error quantity_error(std::string_view text, const std::string& why) {
  return make_error("", "invalid quantity " + quote(text) + ": " + why);
}

Result<Parsed> parse(std::string_view s) {
  if (s.empty())
    return make_error("", "empty quantity: expected a number with an optional suffix such as \"512Mi\"");
  Parsed q;
  std::size_t i = 0;
  if (s[i] == '+' || s[i] == '-') {
    q.negative = s[i] == '-';
    ++i;
  }
  bool any_digit = false;
  bool in_fraction = false;
  for (; i < s.size(); ++i) {
    char c = s[i];
    if (c == '.') {
      if (in_fraction) return quantity_error(s, "more than one '.'");
      in_fraction = true;
      continue;
    }
    if (!is_ascii_digit(c)) break;
    any_digit = true;
    if (q.digits > kInt128Max / 100) {
      // More precision than anything a quantity needs: drop further fraction digits, refuse whole digits.
      if (!in_fraction) q.digits_overflow = true;
      continue;
    }
    q.digits = q.digits * 10 + (c - '0');
    if (in_fraction) ++q.fraction_digits;
  }
  if (!any_digit) return quantity_error(s, "expected a number such as \"512Mi\", \"1G\" or \"500m\"");
  if (q.digits_overflow) return quantity_error(s, "number too large");
  std::string_view suffix = s.substr(i);
  if (suffix.empty()) return q;
  // Binary SI: Ki = 2^10 … Ei = 2^60. Decimal SI: n = 10^-9 … E = 10^18 (Kubernetes' suffixes).
  constexpr std::string_view kBinary = "KMGTPE";
  constexpr std::string_view kDecimal = "num kMGTPE";  // 10^(3 * (index - 3)); the space is 10^0
  if (suffix.size() == 2 && suffix[1] == 'i') {
    if (std::size_t k = kBinary.find(suffix[0]); k != std::string_view::npos) {
      q.base = 2;
      q.exponent = 10 * (static_cast<int>(k) + 1);
      return q;
    }
  } else if (suffix.size() == 1 && suffix[0] != ' ') {
    if (std::size_t k = kDecimal.find(suffix[0]); k != std::string_view::npos) {
      q.exponent = 3 * (static_cast<int>(k) - 3);
      return q;
    }
    if (suffix[0] == 'K')
      return quantity_error(s, "unknown suffix \"K\": write \"k\" (1000) or \"Ki\" (1024)");
  } else if (suffix[0] == 'e' || suffix[0] == 'E') {
    // Decimal exponent: e<signed integer>.
    std::size_t j = 1;
    bool negative_exponent = false;
    if (j < suffix.size() && (suffix[j] == '+' || suffix[j] == '-')) negative_exponent = suffix[j++] == '-';
    if (j == suffix.size()) return quantity_error(s, "exponent without digits");
    int exponent = 0;
    for (; j < suffix.size(); ++j) {
      if (!is_ascii_digit(suffix[j]))
        return quantity_error(s, "invalid exponent \"" + std::string(suffix) + "\"");
      exponent = exponent * 10 + (suffix[j] - '0');
      if (exponent > 1000) return quantity_error(s, "exponent out of range");
    }
    q.exponent = negative_exponent ? -exponent : exponent;
    return q;
  }
  return quantity_error(s, "unknown suffix \"" + std::string(suffix) +
                               "\" (expected Ki Mi Gi Ti Pi Ei, n u m k M G T P E, or e<exponent>)");
}

}  // namespace

Result<double> parse_quantity(std::string_view s) {
  auto parsed = parse(s);
  if (!parsed) return parsed.error();
  const Parsed& q = parsed.value();
  double value = static_cast<double>(q.digits);
  int decimal_exponent = -q.fraction_digits + (q.base == 10 ? q.exponent : 0);
  // Dividing by an exact power of ten rounds correctly ("500m" is exactly 0.5); multiplying by 0.001 may not.
  if (decimal_exponent >= 0) {
    value *= std::pow(10.0, decimal_exponent);
  } else {
    value /= std::pow(10.0, -decimal_exponent);
  }
  if (q.base == 2) value = std::ldexp(value, q.exponent);
  if (!std::isfinite(value)) return quantity_error(s, "number too large");
  return q.negative ? -value : value;
}

Result<std::int64_t> parse_quantity_bytes(std::string_view s) {
  auto parsed = parse(s);
  if (!parsed) return parsed.error();
  const Parsed& q = parsed.value();
  if (q.negative && q.digits != 0) return quantity_error(s, "a number of bytes cannot be negative");
  constexpr Int128 kMax = std::numeric_limits<std::int64_t>::max();
  auto too_large = [&] {
    return quantity_error(s, "more than " + std::to_string(std::int64_t{kMax}) + " bytes");
  };

  // value = digits * multiplier / divisor, rounded up.
  Int128 numerator = q.digits;
  int divisor_exponent = q.fraction_digits;  // power of ten
  if (q.base == 2) {
    for (int k = 0; k < q.exponent; ++k) {
      if (numerator > kInt128Max / 2) return too_large();
      numerator *= 2;
    }
  } else if (q.exponent >= 0) {
    for (int k = 0; k < q.exponent && numerator != 0; ++k) {
      if (numerator > kInt128Max / 10) return too_large();
      numerator *= 10;
    }
  } else {
    divisor_exponent += -q.exponent;
  }
  // Cancel common powers of ten first so that the divisor stays representable for long fractions.
  while (divisor_exponent > 0 && numerator % 10 == 0 && numerator != 0) {
    numerator /= 10;
    --divisor_exponent;
  }
  Int128 value;
  if (numerator == 0) {
    value = 0;
  } else if (divisor_exponent > 38) {
    value = 1;  // a positive amount smaller than one byte rounds up to one
  } else {
    Int128 divisor = 1;
    for (int k = 0; k < divisor_exponent; ++k) divisor *= 10;
    value = numerator / divisor + (numerator % divisor != 0 ? 1 : 0);
  }
  if (value > kMax) return too_large();
  return static_cast<std::int64_t>(value);
}

std::string format_bytes(std::int64_t bytes) {
  static constexpr const char* kSuffixes[] = {"Ei", "Pi", "Ti", "Gi", "Mi", "Ki"};
  static constexpr int kShifts[] = {60, 50, 40, 30, 20, 10};
  if (bytes == 0) return "0";
  // Unsigned magnitude: the minimum int64 has no positive counterpart.
  std::uint64_t magnitude =
      bytes < 0 ? 0 - static_cast<std::uint64_t>(bytes) : static_cast<std::uint64_t>(bytes);
  std::string sign = bytes < 0 ? "-" : "";
  for (std::size_t k = 0; k < std::size(kShifts); ++k) {
    std::uint64_t unit = std::uint64_t{1} << kShifts[k];
    if (magnitude % unit == 0) return sign + std::to_string(magnitude / unit) + kSuffixes[k];
  }
  return sign + std::to_string(magnitude);
}

}  // namespace sluice
