#pragma once
// Kubernetes resource quantities (k8s.io/apimachinery/pkg/api/resource), as written in
// `resources.requests` / `limits` of an Agent's container: "8Gi", "512Mi", "1G", "100k", "500m", "1e3".
//
// Grammar (quantity.go): <sign?><digits>[.<digits>]<suffix>, where suffix is one of
//   binary SI:  Ki Mi Gi Ti Pi Ei   (powers of 1024)
//   decimal SI: n u m "" k M G T P E (powers of 1000; note lowercase k and m = milli, uppercase M = mega)
//   exponent:   e<int> or E<int>    ("1e3"; a lone "E" is exa)
// Errors carry an empty `subject` for the caller to name the field; the message quotes the text.

#include <cstdint>
#include <string>
#include <string_view>

#include "core/result.hpp"

namespace sluice {

/// A quantity as a number: "500m" -> 0.5, "2" -> 2, "1Ki" -> 1024, "1.5G" -> 1.5e9.
Result<double> parse_quantity(std::string_view s);

/// A quantity of bytes, computed exactly (no floating point): "8Gi" -> 8589934592, "1G" -> 1e9.
/// Fractional results round up, as Kubernetes' Quantity.Value() does ("1.5" -> 2, "100m" -> 1).
/// Negative values and values beyond int64 are errors.
Result<std::int64_t> parse_quantity_bytes(std::string_view s);

/// Bytes with the largest binary suffix that divides them exactly: 8589934592 -> "8Gi", 1536 -> "1536",
/// 0 -> "0". The output parses back to the same value.
std::string format_bytes(std::int64_t bytes);

}  // namespace sluice
