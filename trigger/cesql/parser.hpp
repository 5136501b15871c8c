#pragma once
// The CESQL parser (spec section 2) producing the compiled form. Internal to trigger/cesql.

#include <memory>
#include <string_view>

#include "core/result.hpp"
#include "trigger/cesql/program.hpp"

namespace sluice::cesql::detail {

/// Deepest nesting (parentheses, unary operators, function calls, operator chains) an expression may
/// have. Bounds the recursion of both the parser and the evaluator.
inline constexpr std::size_t kMaxDepth = 256;

/// Parses `text` into a program. Errors carry "position N: reason" with N the 1-based byte offset.
Result<std::shared_ptr<Program>> parse_program(std::string_view text);

}  // namespace sluice::cesql::detail
