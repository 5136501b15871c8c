#pragma once
// The JSON event format (json-format.md in shared/reference/cloudevents): one event as a JSON object
// (`application/cloudevents+json`) and a batch as a JSON array (`application/cloudevents-batch+json`).
//
// Data rules (json-format.md §3.1):
//  - decode: for JSON content (datacontenttype absent or `*/json`, `*/*+json`) the `data` member is kept
//    verbatim, as the exact bytes of the input, in CloudEvent::data (a JSON string stays quoted, `null`
//    is the 4 bytes "null"). For other content types a string `data` becomes the string's bytes; a
//    non-string `data` is kept as its JSON text (lenient; the spec allows rejecting it) and `null` means
//    no data. `data_base64` decodes to bytes; `data` and `data_base64` together are an error.
//  - encode: JSON content is written as a raw JSON value when it is valid JSON (whitespace around the
//    value is dropped: it is not part of the value, and decoding could not give it back), else (bytes that
//    only claim to be JSON, e.g. binary data without a datacontenttype) as `data_base64`, so that decoding
//    gives the same bytes back; other content is a `data` string when it is valid UTF-8, else
//    `data_base64`.
// Attributes: `null` means absent (§2.2). Context attributes must be JSON strings. Extensions map JSON
// boolean → Boolean, integer within int32 → Integer, string → String; anything else is an error.
// Every error has code 400 and names the attribute in Error::subject (empty for syntax errors).

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/cloud_event.hpp"
#include "core/result.hpp"

namespace sluice {

/// Containers nested deeper than this (anywhere in the document) are rejected, so that a hostile
/// document cannot exhaust the stack of code that walks a parsed value recursively.
inline constexpr std::size_t kMaxJsonDepth = 512;

/// Parses one structured-mode event and validates it; fails with the first problem found.
/// `mode`: Validation::stored for events read back from a broker's Kafka topic.
Result<CloudEvent> parse_json_event(std::string_view json, Validation mode = Validation::publish);

/// Parses a JSON batch (an array of events, possibly empty); fails on the first bad event, naming its
/// position in the message.
Result<std::vector<CloudEvent>> parse_json_batch(std::string_view json);

/// Builds an event from an already parsed JSON object and validates it. `data` is re-serialised from
/// the value (the original bytes are not available here).
Result<CloudEvent> event_from_json(const nlohmann::json& value);

/// The event as a JSON value; JSON data is parsed into the value (data that is not valid JSON becomes
/// `data_base64`).
nlohmann::json event_to_json(const CloudEvent& e);

/// The content type a binary-mode message carries: datacontenttype; else application/json when the data
/// is JSON text (the JSON format's implied type, §3.1.1); else none (bytes without a datacontenttype
/// are not labelled as anything).
std::optional<std::string> binary_content_type(const CloudEvent& e);

/// The event in the JSON format, with JSON data copied verbatim. Never throws on odd input: invalid
/// UTF-8 in attribute values is replaced by U+FFFD.
std::string to_json(const CloudEvent& e);

/// A JSON batch: `[event,event,...]`.
std::string to_json_batch(const std::vector<CloudEvent>& events);

/// An event parsed without validate(), with every problem found in its members (wrong JSON types,
/// bad base64, `data` with `data_base64`). For tools that report all problems at once.
struct UncheckedJsonEvent {
  CloudEvent event;
  std::vector<Violation> problems;
};

/// Parses one event, collecting member problems instead of stopping at the first, and without running
/// validate(). Fails (code 400) only when the text is not JSON or not a JSON object.
Result<UncheckedJsonEvent> parse_json_event_unchecked(std::string_view json);

/// True when `bytes` is well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates, ≤ U+10FFFF).
bool is_valid_utf8(std::string_view bytes);

/// Appends `s` as a JSON string literal (quotes included); invalid UTF-8 becomes U+FFFD.
void append_json_string(std::string& out, std::string_view s);

}  // namespace sluice
