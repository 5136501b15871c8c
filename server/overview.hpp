#pragma once
// The whole server at a glance, for the dashboard (/ui) and `sluice status`: GET /apis/v1/overview.
//
// Built from the resources' own status (the same that `sluice get` shows) plus what status alone
// cannot say: each broker's ingress rate, and each agent's recent history (observed concurrency,
// desired and ready replicas, panic mode), sampled every autoscaler tick and kept for the last
// minutes; and the recent dead letters (DeadLetterJournal).

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "trigger/dead_letter_journal.hpp"

namespace sluice {

class Overview {
 public:
  /// Keeps `history_points` samples per broker and agent (150 samples of 2 s: five minutes).
  explicit Overview(std::size_t history_points = 150) : history_points_(history_points) {}

  /// Records one sample from the Broker and Agent lists (as Controller::list() returns them).
  void sample(const nlohmann::json& brokers, const nlohmann::json& agents, std::int64_t unix_millis);

  /// {time, brokers, triggers, agents, deadLetters}: see README "Dashboard".
  nlohmann::json render(const nlohmann::json& brokers, const nlohmann::json& triggers,
                        const nlohmann::json& agents, const std::vector<DeadLetterRecord>& dead_letters,
                        std::int64_t unix_millis) const;

 private:
  struct BrokerPoint {
    std::int64_t t = 0;
    std::uint64_t end_offset = 0;
  };
  struct AgentPoint {
    std::int64_t t = 0;
    double concurrency = 0;        // observed, stable window, summed over revisions
    double panic_concurrency = 0;  // observed, panic window
    std::int64_t desired = 0;
    std::int64_t ready = 0;
    std::int64_t in_flight = 0;
    bool panic = false;
  };

  double ingress_rate_locked(const std::string& broker) const;

  const std::size_t history_points_;
  mutable std::mutex mu_;
  std::map<std::string, std::deque<BrokerPoint>> brokers_;
  std::map<std::string, std::deque<AgentPoint>> agents_;
};

}  // namespace sluice
