#pragma once
// The official CloudEvents protobuf format (protobuf-format.md, proto/cloudevents.proto,
// `application/cloudevents+protobuf`), also the record format of the event log.
//
// Mapping: id, source, spec_version, type are fields; every other attribute is in `attributes` with its
// type: datacontenttype and subject ce_string, dataschema ce_uri, time ce_timestamp, extensions by their
// AttributeType (Boolean ce_boolean, Integer ce_integer, String ce_string, Binary ce_bytes, URI ce_uri,
// URI-reference ce_uri_ref, Timestamp ce_timestamp). Data is text_data when it is JSON or text/* and
// valid UTF-8, binary_data otherwise.
//
// Round trips are exact: a timestamp is written as google.protobuf.Timestamp only when its text is the
// canonical form read back (UTC `Z`, 0/3/6/9 fraction digits, e.g. 2018-04-05T17:31:00Z); any other
// text (an offset, other precision) is written as ce_string so that the event comes back unchanged.
// Decoding accepts ce_string, ce_uri or ce_uri_ref for string-valued context attributes and ce_string or
// ce_timestamp for `time`. proto_data (a google.protobuf.Any) decodes to the Any's value bytes.

#include <span>
#include <string>
#include <string_view>

#include "core/cloud_event.hpp"
#include "core/result.hpp"
#include "proto/cloudevents.pb.h"

namespace sluice {

/// Serialises the event in the protobuf format.
std::string to_protobuf(const CloudEvent& e);

/// An extension written while encoding, without inserting it into the event (what the broker adds to
/// every stored event: arrival time, hop count, traceparent). String and Integer types only.
struct ExtraAttribute {
  std::string_view name;
  AttributeType type = AttributeType::String;
  std::string_view text;     // a String's value
  std::int32_t integer = 0;  // an Integer's value
};

/// Serialises the event with `extra` extensions merged in, as if the event carried them: `extra` is
/// sorted by name, and an extra attribute replaces an extension of the same name.
std::string to_protobuf(const CloudEvent& e, std::span<const ExtraAttribute> extra);

/// Parses and validates a protobuf-format event. Errors have code 400 (subject = the attribute).
/// `mode`: Validation::stored for records read back from a broker's log.
Result<CloudEvent> parse_protobuf(std::string_view bytes, Validation mode = Validation::publish);

/// Fills `out` (cleared first) from the event.
void to_proto(const CloudEvent& e, io::cloudevents::v1::CloudEvent* out);

/// Converts a protobuf message to a validated event (copies its strings).
Result<CloudEvent> from_proto(const io::cloudevents::v1::CloudEvent& in);

/// A canonical RFC 3339 UTC timestamp as protobuf seconds and nanos; false when `text` is not in the
/// exact form format_proto_timestamp() produces (so that the conversion is lossless).
bool parse_canonical_timestamp(std::string_view text, std::int64_t* seconds, std::int32_t* nanos);

/// Formats seconds/nanos as RFC 3339 UTC with 0, 3, 6 or 9 fraction digits (as protobuf's TimeUtil).
std::string format_proto_timestamp(std::int64_t seconds, std::int32_t nanos);

}  // namespace sluice
