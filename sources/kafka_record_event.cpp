#include "sources/kafka_record_event.hpp"

#include <cctype>
#include <ctime>

#include "core/http_binding.hpp"

namespace sluice {

std::string rfc3339_from_ms(std::int64_t ms) {
  const std::time_t seconds = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms % 1000));
  return buf;
}

namespace {

bool is_event_format(std::string_view content_type) {
  constexpr std::string_view kPrefix = "application/cloudevents";
  while (!content_type.empty() && (content_type.front() == ' ' || content_type.front() == '\t'))
    content_type.remove_prefix(1);
  return content_type.size() >= kPrefix.size() && iequals(content_type.substr(0, kPrefix.size()), kPrefix);
}

}  // namespace

Result<CloudEvent> kafka_record_to_event(const KafkaRecord& record, const std::string& source_name,
                                         const std::string& topic, std::int32_t partition,
                                         std::int64_t offset) {
  if (is_cloudevent_record(record)) {
    // A record that claims to be a CloudEvent but is not a valid one is converted like any other record,
    // as Knative's KafkaSource does, so that no record of the topic is lost.
    if (auto decoded = decode_kafka(record)) return decoded;
  }
  CloudEvent event;
  const std::string p = std::to_string(partition);
  const std::string o = std::to_string(offset);
  event.id = "partition:" + p + "/offset:" + o;
  event.type = kKafkaEventType;
  event.source = "/apis/v1/namespaces/default/kafkasources/" + source_name + "#" + topic;
  event.subject = "partition:" + p + "#" + o;
  if (record.timestamp_ms >= 0) event.time = rfc3339_from_ms(record.timestamp_ms);
  // Keys and header values are bytes: those that are no CloudEvents String (not UTF-8, or holding control
  // characters) are carried as Binary extensions, so that the event stays valid.
  auto attribute = [](const std::string& value) {
    return is_cloudevents_string(value) ? AttributeValue::of_string(value) : AttributeValue::of_binary(value);
  };
  if (record.key) {
    event.extensions["key"] = attribute(*record.key);
    event.extensions["partitionkey"] = attribute(*record.key);
  }
  for (const auto& [name, value] : record.headers) {
    // An event format (application/cloudevents…) is not the type of the value here: the record could
    // not be read in that format.
    if (iequals(name, "content-type") && is_cloudevents_string(value) && is_media_type(value) &&
        !is_event_format(value)) {
      event.datacontenttype = value;
      continue;
    }
    std::string extension = "kafkaheader";
    for (char c : name) {
      const char lower = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if ((lower >= 'a' && lower <= 'z') || (lower >= '0' && lower <= '9')) extension += lower;
    }
    event.extensions[extension] = attribute(value);
  }
  event.data = record.value;
  return event;
}

}  // namespace sluice
