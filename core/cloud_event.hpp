#pragma once
// The CloudEvents 1.0 event (spec.md in shared/reference/cloudevents) and its validation rules.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sluice {

/// The CloudEvents type system (spec.md, "Type System").
enum class AttributeType { Boolean, Integer, String, Binary, Uri, UriRef, Timestamp };

std::string_view to_string(AttributeType type);

/// One attribute value. Every kind keeps its canonical string form in `text` (Boolean "true"/"false",
/// Integer in decimal, Binary as the raw bytes, Timestamp as RFC 3339), so string-based codecs and
/// filters read `text` while typed codecs (JSON, protobuf) use `type` and the typed members.
struct AttributeValue {
  AttributeType type = AttributeType::String;
  std::string text;
  bool boolean = false;
  std::int32_t integer = 0;

  static AttributeValue of_string(std::string s) { return {AttributeType::String, std::move(s), false, 0}; }
  static AttributeValue of_bool(bool b) { return {AttributeType::Boolean, b ? "true" : "false", b, 0}; }
  static AttributeValue of_int(std::int32_t i) {
    return {AttributeType::Integer, std::to_string(i), false, i};
  }
  static AttributeValue of_binary(std::string bytes) {
    return {AttributeType::Binary, std::move(bytes), false, 0};
  }
  static AttributeValue of_uri(std::string s) { return {AttributeType::Uri, std::move(s), false, 0}; }
  static AttributeValue of_uri_ref(std::string s) { return {AttributeType::UriRef, std::move(s), false, 0}; }
  static AttributeValue of_timestamp(std::string s) {
    return {AttributeType::Timestamp, std::move(s), false, 0};
  }

  /// The canonical string encoding used by HTTP and Kafka headers (Binary is base64 there).
  std::string to_header_string() const;

  bool operator==(const AttributeValue&) const = default;
};

/// A CloudEvent. Required context attributes are plain strings; optional ones are std::optional.
/// Extensions are kept sorted by name so that encodings are deterministic.
struct CloudEvent {
  std::string id;
  std::string source;  // URI-reference
  std::string specversion = "1.0";
  std::string type;
  std::optional<std::string> datacontenttype;
  std::optional<std::string> dataschema;  // URI
  std::optional<std::string> subject;
  std::optional<std::string> time;  // RFC 3339
  std::map<std::string, AttributeValue, std::less<>>
      extensions;  // transparent: lookups by literal do not allocate

  /// The payload as bytes. For JSON content (datacontenttype absent or `*json*`) codecs keep the JSON
  /// text verbatim as it arrived.
  std::optional<std::string> data;

  /// Looks up any attribute by name (context attributes first, then extensions), as filters see it.
  /// Returns nullopt when the event does not carry it.
  std::optional<AttributeValue> attribute(std::string_view name) const;

  /// Fast string view of an attribute's canonical text, or nullptr when absent. Never allocates.
  const std::string* attribute_text(std::string_view name) const;

  /// Sets a context attribute or an extension from its string form (as HTTP binary mode carries it).
  /// Unknown names become String extensions.
  void set_attribute(std::string_view name, std::string value);

  /// Removes an attribute (optional context attribute or extension). Returns false when it was absent
  /// or is a required attribute.
  bool erase_attribute(std::string_view name);

  /// True when the data is JSON: datacontenttype absent, `application/json`, `text/json` or `+json`.
  bool data_is_json() const;

  bool operator==(const CloudEvent&) const = default;
};

/// Calls `fn(name, text)` for every attribute a binary-mode binding carries as a header (HTTP `ce-`,
/// Kafka `ce_`): the context attributes but datacontenttype, in spec order, then the extensions.
template <class Fn>
void for_each_header_attribute(const CloudEvent& e, Fn&& fn) {
  fn("specversion", e.specversion);
  fn("id", e.id);
  fn("source", e.source);
  fn("type", e.type);
  if (e.dataschema) fn("dataschema", *e.dataschema);
  if (e.subject) fn("subject", *e.subject);
  if (e.time) fn("time", *e.time);
  for (const auto& [name, value] : e.extensions) fn(name, value.to_header_string());
}

/// One broken validation rule, naming the attribute.
struct Violation {
  std::string attribute;
  std::string message;
};

/// Checks spec.md's rules: required attributes present and non-empty, specversion "1.0", source a
/// URI-reference, dataschema a URI, datacontenttype a media type, time RFC 3339, extension names
/// [a-z0-9]{1,20} and not `data` (names longer than 20 characters are accepted as the spec only
/// RECOMMENDs the limit), and String, URI and URI-reference values UTF-8 without control characters
/// (U+0000-U+001F, U+007F-U+009F), surrogates or Unicode noncharacters. One violation per attribute at
/// most, besides a bad extension name.
///
/// `stored`: an event read back from a log this server (or an earlier version of it) wrote, which was
/// checked when it was published; only what delivering it needs is checked (the required attributes and
/// specversion), so that records stored under earlier rules stay deliverable.
enum class Validation { publish, stored };
std::vector<Violation> validate(const CloudEvent& event, Validation mode = Validation::publish);

/// True for the names of context attributes defined by the core spec.
bool is_context_attribute(std::string_view name);

/// True when `name` is a valid attribute name: lowercase a-z and 0-9 only, non-empty.
bool is_valid_attribute_name(std::string_view name);

/// A media type as RFC 2045 and RFC 9110 §8.3.1 write it: token "/" token, then parameters
/// `; name=value` (value a token or a quoted-string) with optional spaces around the ';'.
bool is_media_type(std::string_view s);

/// True when `s` may be a CloudEvents String: UTF-8 without control characters, surrogates or
/// noncharacters (what validate() asks of String values).
bool is_cloudevents_string(std::string_view s);

/// RFC 3339 date-time (with `T` or `t`, fractional seconds, `Z` or an offset).
bool is_rfc3339(std::string_view s);

/// URI-reference per RFC 3986 (lenient on characters, strict on structure; an authority may hold '['
/// and ']' only around an IP-literal host).
bool is_uri_reference(std::string_view s);

/// Absolute URI per RFC 3986: a scheme followed by ':'.
bool is_absolute_uri(std::string_view s);

/// RFC 3339 UTC timestamp with millisecond precision, e.g. 2026-11-22T10:00:00.123Z.
std::string format_rfc3339(std::int64_t unix_millis);

/// Parses an RFC 3339 timestamp to Unix milliseconds; nullopt when malformed.
std::optional<std::int64_t> parse_rfc3339_millis(std::string_view s);

}  // namespace sluice
