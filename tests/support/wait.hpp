#pragma once
// Waiting on conditions with deadlines: tests never sleep and hope.

#include <chrono>
#include <functional>
#include <string>

namespace sluice::testing {

/// Polls `condition` every `interval` until it is true (returns true) or `timeout` passes (false).
bool wait_until(const std::function<bool()>& condition, std::chrono::milliseconds timeout = std::chrono::seconds(10),
                std::chrono::milliseconds interval = std::chrono::milliseconds(5));

}  // namespace sluice::testing
