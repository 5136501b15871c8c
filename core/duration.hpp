#pragma once
// Durations as they appear in manifests.
//
// Knative writes two kinds of duration:
//   - ISO 8601 in Trigger delivery (`spec.delivery.backoffDelay: PT0.2S`, `timeout: PT10S`);
//   - Go's time.ParseDuration syntax in annotations (`autoscaling.knative.dev/window: 60s`,
//     `scale-to-zero-pod-retention-period: 1m5s`).
//
// All parsers return whole milliseconds: finer precision is truncated toward zero (as Go's
// Duration.Milliseconds() does). Negative durations are rejected: no Knative field takes one.
// Errors carry an empty `subject` so that callers can name the field ("spec.delivery.timeout"); the
// message quotes the text and says what would be right.

#include <chrono>
#include <string>
#include <string_view>

#include "core/result.hpp"

namespace sluice {

/// ISO 8601 durations: `P[nW][nD][T[nH][nM][nS]]`, for example "PT0.2S", "PT1M30S", "P1D", "P1DT12H".
/// A decimal fraction (`.` or `,`) is allowed on the last component only ("PT1.5S", "PT0.5H").
/// Years and months are rejected (they have no fixed length: write days). Designators are case-insensitive.
Result<std::chrono::milliseconds> parse_iso8601_duration(std::string_view s);

/// Go durations: a sequence of decimal numbers with units, "60s", "1m30s", "500ms", "1.5h", "2h45m",
/// units ns, us (µs, μs), ms, s, m, h. "0" alone is zero. A bare number such as "60" is rejected, as
/// Knative does for `autoscaling.knative.dev/window`: the message suggests "60s".
Result<std::chrono::milliseconds> parse_go_duration(std::string_view s);

/// Either form: text starting with 'P' (or 'p') is ISO 8601, anything else a Go duration.
Result<std::chrono::milliseconds> parse_duration(std::string_view s);

/// Canonical ISO 8601: "PT0S", "PT0.2S", "PT1M30S", "P1D", "P1DT2H0.5S" (days are 24 hours).
/// Negative values get a leading '-' (which the parser does not accept).
std::string format_iso8601_duration(std::chrono::milliseconds d);

}  // namespace sluice
