#pragma once
// The Trigger resource: Knative's eventing.knative.dev/v1 Trigger, plus a few Sluice additions.
//
//   apiVersion: eventing.knative.dev/v1            # or sluice.dev/v1
//   kind: Trigger
//   metadata:
//     name: summarize
//     annotations:
//       kafka.eventing.knative.dev/delivery.order: ordered   # as Knative's Kafka broker; default unordered
//       sluice.dev/tool: summarize                 # subscriber an MCP Agent: each event is a tools/call
//       sluice.dev/tool-arguments: '{"text": "$data.body"}'   # default: the event's data (a JSON object)
//   spec:
//     broker: default                              # required
//     filter: {attributes: {type: com.example.doc}}  # Knative: exact match, ANDed, "" = present
//     filters: [{prefix: {type: com.example.}}]    # Knative's new filters; override `filter` when set
//     subscriber: {uri: http://127.0.0.1:9000/}    # or ref: {kind: Agent|Service, name: summarizer}
//     delivery:
//       retry: 10                                  # retries after the first attempt
//       backoffPolicy: exponential                 # or linear
//       backoffDelay: PT0.2S
//       backoffMax: PT30S                          # Sluice: cap of one backoff wait
//       timeout: PT30S                             # per attempt
//       retryAfterMax: PT60S                       # honour Retry-After on 429/503 up to this
//       deadLetterSink: {uri: http://127.0.0.1:9001/}
//       format: binary                             # Knative's delivery format: binary | json (structured)
//       maxInFlight: 100                           # Sluice: deliveries in flight at once
//
// Every field of `delivery` is optional: unset fields come from the Broker's `spec.delivery`
// (merge()), then from the defaults below. Errors name the field path (Error::subject, e.g.
// "spec.delivery.backoffDelay") and say what would be right; their code is 400.

#include <chrono>
#include <map>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "core/result.hpp"
#include "trigger/filter.hpp"

namespace sluice {

/// Knative's KReference, restricted to what Sluice can resolve: kind Agent (sluice.dev/v1, or a
/// serving.knative.dev/v1 Service, which Sluice runs as an Agent).
struct SubscriberRef {
  std::string api_version;  // as written; may be empty
  std::string kind;         // "Agent" or "Service"
  std::string name;
  /// For an MCP Agent: the tool that each event calls (the Trigger's `sluice.dev/tool` annotation),
  /// and the template of its arguments (`sluice.dev/tool-arguments`, JSON; empty: the event's data).
  std::string tool;
  std::string tool_arguments;

  bool operator==(const SubscriberRef&) const = default;
};

/// Knative's Destination: an absolute `uri`, or a `ref` (then `uri`, if given, is a path such as
/// "/events" appended to the address the ref resolves to).
struct Destination {
  std::optional<SubscriberRef> ref;
  std::string uri;

  bool operator==(const Destination&) const = default;
  /// "http://…" for a uri, "Agent/name[/path]" for a ref: what log lines and knativeerrordest show.
  std::string to_string() const;
};

enum class BackoffPolicy { Exponential, Linear };

/// How events are sent: binary content mode (ce-* headers) or structured (application/cloudevents+json).
enum class DeliveryFormat { Binary, Structured };

/// spec.delivery of a Broker or a Trigger. Every field is optional so that a Trigger's delivery can
/// override a Broker's field by field (merge()); the accessors apply Sluice's defaults.
struct DeliverySpec {
  static constexpr int kDefaultRetry = 10;
  static constexpr std::chrono::milliseconds kDefaultBackoffDelay{200};
  static constexpr std::chrono::milliseconds kDefaultTimeout{30000};
  static constexpr std::chrono::milliseconds kDefaultRetryAfterMax{60000};
  static constexpr int kDefaultMaxInFlight = 100;
  static constexpr int kMaxMaxInFlight = 10000;

  std::optional<int> retry;
  std::optional<BackoffPolicy> backoff_policy;
  std::optional<std::chrono::milliseconds> backoff_delay;
  std::optional<std::chrono::milliseconds> backoff_max;
  std::optional<std::chrono::milliseconds> timeout;
  std::optional<std::chrono::milliseconds> retry_after_max;
  std::optional<Destination> dead_letter_sink;
  std::optional<DeliveryFormat> format;
  std::optional<int> max_in_flight;

  int retries() const { return retry.value_or(kDefaultRetry); }
  BackoffPolicy policy() const { return backoff_policy.value_or(BackoffPolicy::Exponential); }
  std::chrono::milliseconds delay() const { return backoff_delay.value_or(kDefaultBackoffDelay); }
  /// Zero means no cap (the default).
  std::chrono::milliseconds delay_cap() const { return backoff_max.value_or(std::chrono::milliseconds{0}); }
  std::chrono::milliseconds attempt_timeout() const { return timeout.value_or(kDefaultTimeout); }
  /// Zero means Retry-After is ignored.
  std::chrono::milliseconds retry_after_cap() const {
    return retry_after_max.value_or(kDefaultRetryAfterMax);
  }
  DeliveryFormat delivery_format() const { return format.value_or(DeliveryFormat::Binary); }
  int in_flight_limit() const { return max_in_flight.value_or(kDefaultMaxInFlight); }

  bool operator==(const DeliverySpec&) const = default;
};

/// In-flight policy: unordered (up to maxInFlight deliveries at once, in any order) or ordered by
/// `partitionkey` (events with the same key one at a time in log order, different keys in parallel;
/// events without a partitionkey are ordered among themselves, as one more key).
enum class DeliveryOrder { Unordered, Ordered };

/// The annotation that selects DeliveryOrder, as Knative's Kafka broker spells it.
inline constexpr const char* kDeliveryOrderAnnotation = "kafka.eventing.knative.dev/delivery.order";
/// On a Trigger whose subscriber is an MCP Agent: the tool each event calls, and its arguments' template
/// (core/event_arguments.hpp).
inline constexpr const char* kToolAnnotation = "sluice.dev/tool";
inline constexpr const char* kToolArgumentsAnnotation = "sluice.dev/tool-arguments";

struct TriggerSpec {
  std::string name;
  std::string broker;
  std::map<std::string, std::string> annotations;
  /// `filters` when set, else `filter.attributes`, else match-all.
  Filter filter;
  Destination subscriber;
  /// The Trigger's own delivery, not merged with the Broker's: the server passes
  /// merge(broker, trigger) to the dispatcher (see TriggerDispatcher).
  DeliverySpec delivery;
  DeliveryOrder order = DeliveryOrder::Unordered;
};

/// Parses and validates a Trigger manifest (JSON, as core/manifest.hpp produces from YAML). Accepts
/// apiVersion eventing.knative.dev/v1 or sluice.dev/v1 and kind Trigger; unknown fields under `spec`
/// are rejected (a typo must not silently change behaviour). A `cesql` filter is compiled here, so a
/// syntax error fails the apply with its position ("spec.filters[0].cesql": "position 7: …").
Result<TriggerSpec> parse_trigger(const nlohmann::json& manifest);

/// Parses a `delivery` object (of a Broker or a Trigger). `path` names it in errors, for example
/// "spec.delivery". A null value is an empty spec.
Result<DeliverySpec> parse_delivery(const nlohmann::json& delivery, const std::string& path);

/// Parses a Knative Destination (`{uri}` or `{ref, uri?}`) found at `path`.
Result<Destination> parse_destination(const nlohmann::json& value, const std::string& path);

/// Field by field: the trigger's value where it sets one, else the broker's.
DeliverySpec merge(const DeliverySpec& broker, const DeliverySpec& trigger);

/// The wait before retry number `retry_number` (1 for the first retry): exponential
/// delay * 2^(n-1), linear delay * n, capped by backoffMax when set. Saturates instead of overflowing.
std::chrono::milliseconds backoff_delay(const DeliverySpec& delivery, int retry_number);

/// Whether a delivery that got this status is tried again: 404, 408, 409, 429 and 5xx are (as
/// Knative's dispatcher does); 0 stands for a transport error (refused, reset, timeout) and is retried
/// too; every other status (other 4xx, 3xx, 1xx) is final.
bool is_retryable_status(int status);

/// The Retry-After header (RFC 9110 §10.2.3): delay-seconds, or an HTTP-date relative to `now`.
/// nullopt when malformed; a date in the past gives zero.
std::optional<std::chrono::milliseconds> parse_retry_after(std::string_view value,
                                                           std::chrono::system_clock::time_point now);

}  // namespace sluice
