#include "core/kafka_binding.hpp"

#include "core/http_binding.hpp"
#include "core/json_format.hpp"

namespace sluice {
namespace {

const std::string* find_header(const KafkaRecord& r, std::string_view name) {
  for (const auto& [k, v] : r.headers)
    if (iequals(k, name)) return &v;
  return nullptr;
}

bool is_structured(const std::string* content_type) {
  constexpr std::string_view kPrefix = "application/cloudevents";
  if (!content_type) return false;
  std::string_view ct = *content_type;
  while (!ct.empty() && (ct.front() == ' ' || ct.front() == '\t')) ct.remove_prefix(1);
  return ct.size() >= kPrefix.size() && iequals(ct.substr(0, kPrefix.size()), kPrefix);
}

Result<CloudEvent> decode_binary(const KafkaRecord& r, const std::string* content_type, Validation mode) {
  CloudEvent e;
  e.specversion.clear();
  std::vector<std::string> seen;
  for (const auto& [name, value] : r.headers) {
    if (name.size() < 3 || !iequals(std::string_view(name).substr(0, 3), "ce_")) continue;
    std::string attribute = name.substr(3);
    for (auto& c : attribute)
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (attribute.empty()) return make_error(name, "header names no attribute", 400);
    for (const auto& s : seen)
      if (s == attribute) return make_error(attribute, "appears in more than one ce_ header", 400);
    seen.push_back(attribute);
    if (!is_valid_utf8(value)) return make_error(attribute, "header value is not UTF-8 (§3.2.3)", 400);
    if (attribute == "datacontenttype") {
      if (!content_type) e.datacontenttype = value;  // content-type wins (§3.2.1)
      continue;
    }
    e.set_attribute(attribute, value);
  }
  if (content_type && !content_type->empty()) {
    if (!is_valid_utf8(*content_type)) return make_error("datacontenttype", "content-type is not UTF-8", 400);
    e.datacontenttype = *content_type;
  }
  if (r.value) e.data = *r.value;
  auto violations = validate(e, mode);
  if (!violations.empty()) {
    return make_error(violations.front().attribute, violations.front().message, 400);
  }
  return e;
}

}  // namespace

KafkaRecord encode_kafka(const CloudEvent& e, KafkaMode mode) {
  KafkaRecord r;
  if (auto it = e.extensions.find("partitionkey"); it != e.extensions.end())
    r.key = it->second.to_header_string();
  // The record timestamp stays the producer's clock (-1): Kafka rolls and deletes segments by record
  // timestamps, so an old `time` would have the record deleted long before its retention.
  if (mode == KafkaMode::Structured) {
    r.headers.emplace_back("content-type", "application/cloudevents+json; charset=utf-8");
    r.value = to_json(e);
    return r;
  }
  r.headers.reserve(8 + e.extensions.size());
  for_each_header_attribute(e, [&](std::string_view name, std::string_view value) {
    r.headers.emplace_back(std::string("ce_").append(name), std::string(value));
  });
  // Only a datacontenttype the event has: an implied application/json header would read back as one.
  if (e.datacontenttype) r.headers.emplace_back("content-type", *e.datacontenttype);
  if (e.data) r.value = *e.data;
  return r;
}

bool is_cloudevent_record(const KafkaRecord& r) {
  return find_header(r, "ce_specversion") != nullptr || is_structured(find_header(r, "content-type"));
}

Result<CloudEvent> decode_kafka(const KafkaRecord& r, Validation mode) {
  const std::string* content_type = find_header(r, "content-type");
  if (!is_structured(content_type)) return decode_binary(r, content_type, mode);
  if (auto st = check_event_format(*content_type, "application/cloudevents+json"); !st) return st.error();
  if (!r.value) return make_error("", "structured-mode record has no value", 400);
  return parse_json_event(*r.value, mode);
}

}  // namespace sluice
