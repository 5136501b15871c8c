#pragma once
// The Broker resource: Knative's eventing.knative.dev/v1 Broker plus Sluice's storage and ingress
// settings.
//
//   apiVersion: eventing.knative.dev/v1      # or sluice.dev/v1
//   kind: Broker
//   metadata: {name: default}
//   spec:
//     delivery: {retry: 10, backoffPolicy: exponential, backoffDelay: PT0.2S, deadLetterSink: {uri: ...}}
//     storage: file                          # Sluice: file (default) | kafka
//     retention: {maxAge: P7D, maxBytes: 10Gi}
//     ingress: {maxEventSize: 1Mi, idempotencyWindow: PT10M, ttl: 255,
//               rateLimit: {eventsPerSecond: 1000, burst: 2000}}

#include <chrono>
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "core/manifest.hpp"
#include "core/result.hpp"

namespace sluice {

struct BrokerSpec {
  std::string name;
  std::string storage = "file";
  nlohmann::json delivery = nlohmann::json::object();  // validated by the trigger component
  std::chrono::milliseconds retention_age{0};          // 0 = forever
  std::int64_t retention_bytes = 0;                    // 0 = unlimited
  std::int64_t max_event_size = 1 << 20;
  std::chrono::milliseconds idempotency_window{0};  // 0 = off
  int ttl = 255;                                    // initial knativebrokerttl (hop limit)
  double rate_limit = 0;                            // events/s through ingress; 0 = unlimited
  double rate_burst = 0;                            // events saved up (default: one second's worth)
  std::int64_t quota_bytes_per_second = 0;          // bytes/s of request bodies; 0 = unlimited
  std::int64_t quota_burst_bytes = 0;               // bytes saved up (default: max(1 s, maxEventSize))
  nlohmann::json kafka = nlohmann::json::object();  // storage: kafka settings
};

/// Parses and validates a Broker manifest; errors name the field (Error.subject) and what is right.
Result<BrokerSpec> parse_broker(const nlohmann::json& manifest);

}  // namespace sluice
