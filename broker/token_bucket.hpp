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
  /// be, at least 1 ms. A request larger than the burst can never pass (check burst() first): it gets the
  /// time for a full bucket.
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
    return std::chrono::milliseconds(
        std::max<std::int64_t>(1, static_cast<std::int64_t>(std::ceil(missing / rate_ * 1000.0))));
  }

  /// Puts back `n` tokens taken for a request that was then refused for another reason.
  void give_back(double n) {
    std::lock_guard lock(mu_);
    tokens_ = std::min(burst_, tokens_ + n);
  }

  /// The most tokens one take() can ever get.
  double burst() const { return burst_; }

 private:
  const double rate_;
  const double burst_;
  double tokens_;
  SteadyTime last_;
  Clock& clock_;
  std::mutex mu_;
};

}  // namespace sluice
