#include "core/duration.hpp"

#include <cstdint>
#include <limits>

#include "core/text.hpp"

namespace sluice {

namespace {

__extension__ typedef __int128 Int128;

constexpr Int128 kNanosPerMilli = 1'000'000;
constexpr Int128 kNanosPerSecond = 1'000'000'000;
// The largest duration we accept: Go's time.Duration limit (int64 nanoseconds, about 292 years).
constexpr Int128 kMaxNanos = std::numeric_limits<std::int64_t>::max();

// A decimal number "123", "1.5", ".5", "1." as its integer part and fraction digits.
struct Decimal {
  Int128 whole = 0;
  Int128 fraction = 0;      // the fraction digits as an integer
  Int128 fraction_den = 1;  // 10^(number of fraction digits kept)
  bool has_fraction = false;
  bool too_large = false;
  std::size_t length = 0;  // characters consumed
};

// Reads [0-9]*([.,][0-9]*)? at the start of `s`; `length` is 0 when there is no digit at all.
// Fraction digits beyond the 18th are dropped (they are far below a nanosecond for any unit we have).
Decimal read_decimal(std::string_view s, bool allow_comma) {
  Decimal d;
  std::size_t i = 0;
  bool any_digit = false;
  while (i < s.size() && is_ascii_digit(s[i])) {
    d.whole = d.whole * 10 + (s[i] - '0');
    if (d.whole > kMaxNanos) {
      d.too_large = true;
      d.whole = kMaxNanos;
    }
    any_digit = true;
    ++i;
  }
  if (i < s.size() && (s[i] == '.' || (allow_comma && s[i] == ','))) {
    std::size_t j = i + 1;
    int kept = 0;
    while (j < s.size() && is_ascii_digit(s[j])) {
      if (kept < 18) {
        d.fraction = d.fraction * 10 + (s[j] - '0');
        d.fraction_den *= 10;
        ++kept;
      }
      any_digit = true;
      ++j;
    }
    if (any_digit) {
      d.has_fraction = true;
      i = j;
    }
  }
  d.length = any_digit ? i : 0;
  return d;
}

// value * unit, in nanoseconds, truncated; saturates at kMaxNanos + 1 to signal overflow.
Int128 scaled_nanos(const Decimal& d, Int128 unit_nanos) {
  if (d.too_large) return kMaxNanos + 1;
  Int128 whole = d.whole * unit_nanos;  // whole <= 2^63, unit <= 2^50: fits in 127 bits
  if (whole > kMaxNanos) return kMaxNanos + 1;
  return whole + d.fraction * unit_nanos / d.fraction_den;
}

Result<std::chrono::milliseconds> to_millis(Int128 nanos, std::string_view text) {
  if (nanos > kMaxNanos) {
    return make_error("", "duration " + quote(text) + " is too large (the limit is about 292 years)");
  }
  return std::chrono::milliseconds(static_cast<std::int64_t>(nanos / kNanosPerMilli));
}

Error iso_error(std::string_view text, const std::string& why) {
  return make_error("", "invalid ISO 8601 duration " + quote(text) + ": " + why);
}

char upper(char c) {
  return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c;
}

}  // namespace

Result<std::chrono::milliseconds> parse_iso8601_duration(std::string_view s) {
  if (s.empty()) return make_error("", "empty duration: expected ISO 8601 such as \"PT10S\"");
  if (s[0] == '-') return iso_error(s, "negative durations are not allowed");
  if (upper(s[0]) != 'P') return iso_error(s, "must start with 'P' (for example \"PT10S\")");

  // Ranks enforce the order of components: W D, then after T: H M S.
  int last_rank = -1;
  bool in_time = false;
  bool any_component = false;
  bool any_time_component = false;
  bool fraction_seen = false;
  Int128 total = 0;
  std::size_t i = 1;
  while (i < s.size()) {
    char c = upper(s[i]);
    if (c == 'T') {
      if (in_time) return iso_error(s, "'T' appears twice");
      in_time = true;
      ++i;
      continue;
    }
    Decimal number = read_decimal(s.substr(i), /*allow_comma=*/true);
    if (number.length == 0) {
      if (c == '-') return iso_error(s, "negative components are not allowed");
      return iso_error(s, std::string("expected a number before '") + s[i] + "'");
    }
    std::string number_text(s.substr(i, number.length));
    i += number.length;
    if (i >= s.size()) {
      return iso_error(s, "the number at the end has no designator (" +
                              std::string(in_time ? "H, M or S" : "W or D, or T before H, M or S") + ")");
    }
    if (fraction_seen) return iso_error(s, "only the last component may have a fraction");
    char designator = upper(s[i]);
    int rank;
    Int128 unit;
    const char* order = in_time ? "hours, minutes, seconds" : "weeks, days";
    if (!in_time) {
      switch (designator) {
        case 'Y':
          return iso_error(s, "years have no fixed length: write days (\"P365D\")");
        case 'M':
          return iso_error(s, "months have no fixed length: write days (\"P30D\"), or \"PT" + number_text +
                                  "M\" for minutes");
        case 'W':
          rank = 0, unit = 7 * 24 * 3600 * kNanosPerSecond;
          break;
        case 'D':
          rank = 1, unit = 24 * 3600 * kNanosPerSecond;
          break;
        case 'H':
        case 'S':
          return iso_error(s, std::string(designator == 'H' ? "hours" : "seconds") +
                                  " belong after the time designator 'T' (\"PT" + number_text + designator +
                                  "\")");
        default:
          return iso_error(s, std::string("unknown designator '") + s[i] + "'");
      }
    } else {
      switch (designator) {
        case 'H':
          rank = 2, unit = 3600 * kNanosPerSecond;
          break;
        case 'M':
          rank = 3, unit = 60 * kNanosPerSecond;
          break;
        case 'S':
          rank = 4, unit = kNanosPerSecond;
          break;
        case 'D':
        case 'W':
          return iso_error(s, std::string(designator == 'D' ? "days" : "weeks") +
                                  " belong before the time designator 'T' (\"P1D\", \"P1DT2H\")");
        case 'Y':
          return iso_error(s, "years have no fixed length: write days (\"P365D\")");
        default:
          return iso_error(s, std::string("unknown designator '") + s[i] + "'");
      }
    }
    if (rank <= last_rank) {
      return iso_error(
          s, std::string("'") + designator + "' is out of order or repeated (the order is " + order + ")");
    }
    last_rank = rank;
    ++i;
    any_component = true;
    any_time_component = any_time_component || in_time;
    fraction_seen = number.has_fraction;
    total += scaled_nanos(number, unit);
    if (total > kMaxNanos) return to_millis(total, s);
  }
  if (in_time && !any_time_component)
    return iso_error(s, "'T' must be followed by hours, minutes or seconds");
  if (!any_component) return iso_error(s, "no components after 'P' (for example \"PT10S\")");
  return to_millis(total, s);
}

Result<std::chrono::milliseconds> parse_go_duration(std::string_view s) {
  auto error = [&](const std::string& why) {
    return make_error("", "invalid duration " + quote(s) + ": " + why);
  };
  if (s.empty()) return make_error("", "empty duration: expected a number with a unit such as \"60s\"");
  std::string_view rest = s;
  if (rest[0] == '-') return error("negative durations are not allowed");
  if (rest[0] == '+') rest.remove_prefix(1);
  if (rest == "0") return std::chrono::milliseconds(0);
  if (rest.empty()) return error("expected a number with a unit such as \"60s\"");

  Int128 total = 0;
  while (!rest.empty()) {
    Decimal number = read_decimal(rest, /*allow_comma=*/false);
    if (number.length == 0) return error("expected a number at \"" + std::string(rest) + "\"");
    rest.remove_prefix(number.length);
    std::size_t unit_length = 0;
    while (unit_length < rest.size() && !is_ascii_digit(rest[unit_length]) && rest[unit_length] != '.')
      ++unit_length;
    std::string_view unit = rest.substr(0, unit_length);
    rest.remove_prefix(unit_length);
    Int128 unit_nanos;
    if (unit.empty()) {
      return error("missing unit (ns, us, ms, s, m, h): write \"" + std::string(s) + "s\" for seconds");
    } else if (unit == "ns") {
      unit_nanos = 1;
    } else if (unit == "us" || unit == "\xC2\xB5s" || unit == "\xCE\xBCs") {  // us, µs (U+00B5), μs (U+03BC)
      unit_nanos = 1000;
    } else if (unit == "ms") {
      unit_nanos = kNanosPerMilli;
    } else if (unit == "s") {
      unit_nanos = kNanosPerSecond;
    } else if (unit == "m") {
      unit_nanos = 60 * kNanosPerSecond;
    } else if (unit == "h") {
      unit_nanos = 3600 * kNanosPerSecond;
    } else {
      return error("unknown unit \"" + std::string(unit) + "\" (expected ns, us, ms, s, m or h)");
    }
    total += scaled_nanos(number, unit_nanos);
    if (total > kMaxNanos) return to_millis(total, s);
  }
  return to_millis(total, s);
}

Result<std::chrono::milliseconds> parse_duration(std::string_view s) {
  if (!s.empty() && upper(s[0]) == 'P') return parse_iso8601_duration(s);
  if (s.size() > 1 && s[0] == '-' && upper(s[1]) == 'P') return parse_iso8601_duration(s);
  return parse_go_duration(s);
}

std::string format_iso8601_duration(std::chrono::milliseconds d) {
  std::int64_t ms = d.count();
  std::string out;
  // Work in unsigned magnitude so that the minimum int64 does not overflow.
  std::uint64_t rest = ms < 0 ? 0 - static_cast<std::uint64_t>(ms) : static_cast<std::uint64_t>(ms);
  if (ms < 0) out += '-';
  out += 'P';
  std::uint64_t days = rest / 86'400'000;
  rest %= 86'400'000;
  std::uint64_t hours = rest / 3'600'000;
  rest %= 3'600'000;
  std::uint64_t minutes = rest / 60'000;
  rest %= 60'000;
  std::uint64_t seconds = rest / 1000;
  std::uint64_t millis = rest % 1000;
  if (days > 0) out += std::to_string(days) + "D";
  if (hours == 0 && minutes == 0 && seconds == 0 && millis == 0) {
    if (days == 0) out += "T0S";
    return out;
  }
  out += 'T';
  if (hours > 0) out += std::to_string(hours) + "H";
  if (minutes > 0) out += std::to_string(minutes) + "M";
  if (seconds > 0 || millis > 0) {
    out += std::to_string(seconds);
    if (millis > 0) {
      std::string fraction = std::to_string(millis + 1000).substr(1);  // three digits, zero-padded
      while (fraction.back() == '0') fraction.pop_back();
      out += '.' + fraction;
    }
    out += 'S';
  }
  return out;
}

}  // namespace sluice
