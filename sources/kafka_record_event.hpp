#pragma once
// How a KafkaSource turns a Kafka record into the CloudEvent it delivers.
//
// A record that is a CloudEvent (a ce_specversion header, or a content-type application/cloudevents…)
// is decoded by the Kafka protocol binding and passes through unchanged. Any other record, and one that
// claims to be a CloudEvent but is not a valid one, becomes a CloudEvent as Knative's KafkaSource makes it:
//   id            partition:<p>/offset:<o>
//   type          dev.knative.kafka.event
//   source        /apis/v1/namespaces/default/kafkasources/<source name>#<topic>
//   subject       partition:<p>#<o>
//   time          the record timestamp (RFC 3339, UTC, milliseconds); absent when the record has none
//   key           the record key (absent for a null key), and partitionkey with the same value
//   kafkaheader<name>   one extension per header, the name lowercased with everything but a-z and 0-9
//                        removed (a later header with the same name wins)
//   datacontenttype     the content-type header, which then is not repeated as kafkaheadercontenttype
//                        (unless it is no media type, or an event format: application/cloudevents…)
//   data          the record value (none for a null value)

#include <cstdint>
#include <string>

#include "core/cloud_event.hpp"
#include "core/kafka_binding.hpp"
#include "core/result.hpp"

namespace sluice {

inline constexpr const char* kKafkaEventType = "dev.knative.kafka.event";

/// Converts one record of `topic` read by the KafkaSource `source_name`. Every record converts.
Result<CloudEvent> kafka_record_to_event(const KafkaRecord& record, const std::string& source_name,
                                         const std::string& topic, std::int32_t partition,
                                         std::int64_t offset);

/// RFC 3339 text of a Unix time in milliseconds: 2024-05-01T12:00:00.123Z.
std::string rfc3339_from_ms(std::int64_t ms);

}  // namespace sluice
