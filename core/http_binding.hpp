#pragma once
// The HTTP protocol binding (http-protocol-binding.md in shared/reference/cloudevents): binary mode
// (`ce-` headers, body = data), structured mode (`application/cloudevents+json`) and batched mode
// (`application/cloudevents-batch+json`), independent of any HTTP library.
//
// Binary-mode header values are percent-encoded on encode (§3.1.3.2: space, `"`, `%`, and bytes outside
// 0x21-0x7E, upper-case hex). Decoding is lenient where the spec allows it and strict where it must be:
//  - a quoted-string value ("...", backslash escapes) is unquoted first;
//  - a `%` not followed by two hex digits is kept literally (never an error);
//  - raw non-ASCII bytes are accepted as-is (the npm `cloudevents` client sends UTF-8 unencoded);
//  - the decoded value must be well-formed UTF-8 (so `%C0%A0`, an overlong form, is rejected with 400).
// Content-Type ↔ datacontenttype. An empty body with no Content-Type is an event without data; an
// empty body with a Content-Type is empty data. On encode, data without a datacontenttype gets
// `Content-Type: application/json`, the type the JSON format implies (json-format.md §3.1.2).

#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/cloud_event.hpp"
#include "core/result.hpp"
#include "core/text.hpp"

namespace sluice {

/// An HTTP message as the codecs see it: headers in arrival order and the body.
struct HttpMessage {
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;

  /// The first header with this name (case-insensitive), or nullptr.
  const std::string* header(std::string_view name) const;
};

/// A message's headers as views, for decoding straight from an HTTP library's parsed message.
using HttpHeaderViews = std::span<const std::pair<std::string_view, std::string_view>>;

enum class HttpMode { Binary, Structured, Batched };

/// The content mode a Content-Type selects (§3): `application/cloudevents-batch…` → Batched,
/// `application/cloudevents…` → Structured, anything else (or empty) → Binary. Case-insensitive.
HttpMode detect_http_mode(std::string_view content_type);

/// Decodes the events of a message in any mode; Binary and Structured give exactly one event, Batched
/// zero or more. Errors: 400 for an invalid event (subject = the attribute), 415 for a structured or
/// batched Content-Type whose format is not JSON (e.g. `application/cloudevents+xml`) or whose charset
/// is not UTF-8.
Result<std::vector<CloudEvent>> decode_http(const HttpMessage& msg);
/// The same, moving the body into the event's data instead of copying it.
Result<std::vector<CloudEvent>> decode_http(HttpMessage&& msg);
/// The same, from headers that stay where they are and a body taken over.
Result<std::vector<CloudEvent>> decode_http(HttpHeaderViews headers, std::string body);

/// Encodes one event in Binary or Structured mode. Batched is meant for encode_http_batch; given here it
/// produces a batch of one.
HttpMessage encode_http(const CloudEvent& e, HttpMode mode = HttpMode::Binary);

/// Encodes events as one batched-mode message (`application/cloudevents-batch+json; charset=utf-8`).
HttpMessage encode_http_batch(const std::vector<CloudEvent>& events);

/// Percent-encodes a binary-mode header value (§3.1.3.2).
std::string percent_encode_header(std::string_view value);

/// Decodes a binary-mode header value: unquotes a quoted-string, then one round of percent-decoding
/// (malformed `%` sequences kept literally). nullopt when the result is not well-formed UTF-8.
std::optional<std::string> decode_header_value(std::string_view value);

/// The media type of a Content-Type without parameters, trimmed and lower-cased ("Text/Plain; x=y" →
/// "text/plain").
std::string media_type_essence(std::string_view content_type);

/// Checks a structured or batched Content-Type: the format must be `+json` (`expected` is the full
/// media type) and a charset parameter, when present, must be UTF-8. Error code 415 otherwise.
Status check_event_format(std::string_view content_type, std::string_view expected);

}  // namespace sluice
