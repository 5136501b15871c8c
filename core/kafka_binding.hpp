#pragma once
// The Kafka protocol binding (kafka-protocol-binding.md in shared/reference/cloudevents), independent of
// librdkafka so that the broker's KafkaLog, KafkaSource and tests share one mapping.
//
// Binary mode: every attribute but datacontenttype is a `ce_<name>` header holding the attribute's
// canonical string (UTF-8, no percent-encoding in Kafka; Binary extensions base64); `content-type` ↔
// datacontenttype; the value is the data, and an event without data has no value (a tombstone, §3.2.2).
// An event without a datacontenttype has no content-type header (JSON data included), so that it reads
// back unchanged.
// Structured mode: `content-type: application/cloudevents+json; charset=utf-8` and the JSON event as the
// value. In both modes the `partitionkey` extension becomes the record key and stays in the event (§3.1).

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/cloud_event.hpp"
#include "core/result.hpp"

namespace sluice {

/// A Kafka record as the codecs see it. A missing key or value (null) differs from an empty one.
struct KafkaRecord {
  std::optional<std::string> key;
  std::vector<std::pair<std::string, std::string>> headers;
  std::optional<std::string> value;
  std::int64_t timestamp_ms = -1;  // -1: let the producer/broker assign it
};

enum class KafkaMode { Binary, Structured };

/// Encodes an event as a record. The record timestamp is -1 (the producer's clock), whatever the event's
/// `time`: Kafka rolls and deletes segments by record timestamps (segment.ms, retention.ms), so an old
/// `time` would get the record deleted minutes after it was stored.
KafkaRecord encode_kafka(const CloudEvent& e, KafkaMode mode = KafkaMode::Binary);

/// True when the record looks like a CloudEvent: a `ce_specversion` header, or a content-type starting
/// with `application/cloudevents` (both matched case-insensitively).
bool is_cloudevent_record(const KafkaRecord& r);

/// Decodes a record in either mode (chosen by its content-type, §3). Errors: 400 for an invalid event
/// (subject = the attribute), 415 for a structured content-type whose format is not JSON.
/// `mode`: Validation::stored for records of a broker's own topic.
Result<CloudEvent> decode_kafka(const KafkaRecord& r, Validation mode = Validation::publish);

}  // namespace sluice
