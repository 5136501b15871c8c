#pragma once
// A token bucket for per-broker ingress rate limits (`spec.ingress.rateLimit`): `rate` tokens a second,
// at most `burst` saved up. Thread-safe; time from a Clock so tests move it by hand.

#include <algorithm>
#include <chrono>
#include <cmath>
#include <mutex>
#include <optional>

#include "core/clock.hpp"

namespace sluice {

class TokenBucket {
 public:
  TokenBucket(double rate, double burst, Clock& clock)
      : rate_(rate), burst_(burst), tokens_(burst), last_(clock.now()), clock_(clock) {}

  /// Takes `n` tokens. nullopt when they were there; otherwise (nothing taken) how long until they will
  /// be. A request larger than the burst can never pass: it gets the time for a full bucket.
  std::optional<std::chrono::milliseconds> take(double n) {
    std::lock_guard lock(mu_);
    const auto now = clock_.now();
    tokens_ = std::min(burst_, tokens_ + std::chrono::duration<double>(now - last_).count() * rate_);
    last_ = now;
    if (n <= tokens_) {
      tokens_ -= n;
      return std::nullopt;
    }
    const double missing = std::min(n, burst_) - tokens_;
    return std::chrono::milliseconds(static_cast<std::int64_t>(std::ceil(missing / rate_ * 1000.0)));
  }

 private:
  const double rate_;
  const double burst_;
  double tokens_;
  SteadyTime last_;
  Clock& clock_;
  std::mutex mu_;
};

}  // namespace sluice
