#include "core/protobuf_format.hpp"

#include <climits>
#include <cstdio>
#include <utility>

#include <google/protobuf/arena.h>

#include "core/http_binding.hpp"
#include "core/json_format.hpp"

namespace sluice {
namespace {

namespace pb = io::cloudevents::v1;
using PbValue = pb::CloudEvent_CloudEventAttributeValue;

constexpr int kBadRequest = 400;
// google.protobuf.Timestamp's range: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z.
constexpr std::int64_t kMinSeconds = -62135596800;
constexpr std::int64_t kMaxSeconds = 253402300799;

std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

void civil_from_days(std::int64_t z, std::int64_t* y, unsigned* m, unsigned* d) {
  z += 719468;
  const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  *d = doy - (153 * mp + 2) / 5 + 1;
  *m = mp < 10 ? mp + 3 : mp - 9;
  *y = static_cast<std::int64_t>(yoe) + era * 400 + (*m <= 2);
}

bool digits(std::string_view s, std::size_t pos, std::size_t n, int* out) {
  if (pos + n > s.size()) return false;
  int v = 0;
  for (std::size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    v = v * 10 + (s[i] - '0');
  }
  *out = v;
  return true;
}

void set_timestamp_or_string(PbValue* v, const std::string& text) {
  std::int64_t seconds;
  std::int32_t nanos;
  if (parse_canonical_timestamp(text, &seconds, &nanos)) {
    auto* ts = v->mutable_ce_timestamp();
    ts->set_seconds(seconds);
    ts->set_nanos(nanos);
  } else {
    v->set_ce_string(text);
  }
}

void set_value(PbValue* v, const AttributeValue& a) {
  switch (a.type) {
    case AttributeType::Boolean:
      v->set_ce_boolean(a.boolean);
      return;
    case AttributeType::Integer:
      v->set_ce_integer(a.integer);
      return;
    case AttributeType::String:
      v->set_ce_string(a.text);
      return;
    case AttributeType::Binary:
      v->set_ce_bytes(a.text);
      return;
    case AttributeType::Uri:
      v->set_ce_uri(a.text);
      return;
    case AttributeType::UriRef:
      v->set_ce_uri_ref(a.text);
      return;
    case AttributeType::Timestamp:
      set_timestamp_or_string(v, a.text);
      return;
  }
}

bool is_text_media_type(const CloudEvent& e) {
  if (e.data_is_json()) return true;
  return media_type_essence(*e.datacontenttype).rfind("text/", 0) == 0;
}

// Moves a string out of a message that the caller owns (parse_protobuf), copies otherwise. Empty
// strings are never moved from: they may be protobuf's shared default instance.
std::string take(const std::string& s, bool steal) {
  if (steal && !s.empty()) return std::move(const_cast<std::string&>(s));
  return s;
}

Result<AttributeValue> attribute_from_proto(const std::string& name, const PbValue& v, bool steal) {
  switch (v.attr_case()) {
    case PbValue::kCeBoolean:
      return AttributeValue::of_bool(v.ce_boolean());
    case PbValue::kCeInteger:
      return AttributeValue::of_int(v.ce_integer());
    case PbValue::kCeString:
      return AttributeValue::of_string(take(v.ce_string(), steal));
    case PbValue::kCeBytes:
      return AttributeValue::of_binary(take(v.ce_bytes(), steal));
    case PbValue::kCeUri:
      return AttributeValue::of_uri(take(v.ce_uri(), steal));
    case PbValue::kCeUriRef:
      return AttributeValue::of_uri_ref(take(v.ce_uri_ref(), steal));
    case PbValue::kCeTimestamp: {
      const auto& ts = v.ce_timestamp();
      if (ts.seconds() < kMinSeconds || ts.seconds() > kMaxSeconds || ts.nanos() < 0 ||
          ts.nanos() > 999999999) {
        return make_error(name, "Timestamp is outside 0001-01-01..9999-12-31 or has invalid nanos",
                          kBadRequest);
      }
      return AttributeValue::of_timestamp(format_proto_timestamp(ts.seconds(), ts.nanos()));
    }
    case PbValue::ATTR_NOT_SET:
      break;
  }
  return make_error(name, "attribute value has no type set", kBadRequest);
}

Result<CloudEvent> convert(const pb::CloudEvent& in, bool steal, Validation mode) {
  CloudEvent e;
  e.id = take(in.id(), steal);
  e.source = take(in.source(), steal);
  e.specversion = take(in.spec_version(), steal);
  e.type = take(in.type(), steal);
  for (const auto& [name, pv] : in.attributes()) {
    if (name == "id" || name == "source" || name == "specversion" || name == "type") {
      return make_error(name, "required attributes are fields of the message, not entries of `attributes`",
                        kBadRequest);
    }
    auto value = attribute_from_proto(name, pv, steal);
    if (!value) return value.error();
    AttributeValue& a = value.value();
    if (is_context_attribute(name)) {
      bool stringish =
          a.type == AttributeType::String || a.type == AttributeType::Uri || a.type == AttributeType::UriRef;
      if (name == "time" ? !(stringish || a.type == AttributeType::Timestamp) : !stringish) {
        return make_error(name,
                          std::string("has type ") + std::string(to_string(a.type)) + ", expected a string" +
                              (name == "time" ? " or Timestamp" : ""),
                          kBadRequest);
      }
      e.set_attribute(name, std::move(a.text));
    } else {
      e.extensions.emplace(name, std::move(a));
    }
  }
  switch (in.data_case()) {
    case pb::CloudEvent::kBinaryData:
      e.data = take(in.binary_data(), steal);
      break;
    case pb::CloudEvent::kTextData:
      e.data = take(in.text_data(), steal);
      break;
    case pb::CloudEvent::kProtoData:
      e.data = take(in.proto_data().value(), steal);
      break;
    case pb::CloudEvent::DATA_NOT_SET:
      break;
  }
  auto violations = validate(e, mode);
  if (!violations.empty()) {
    return make_error(violations.front().attribute, violations.front().message, kBadRequest);
  }
  return e;
}

}  // namespace

bool parse_canonical_timestamp(std::string_view s, std::int64_t* seconds, std::int32_t* nanos) {
  // YYYY-MM-DDTHH:MM:SS[.fff|.ffffff|.fffffffff]Z
  int year, month, day, hour, minute, second;
  if (s.size() < 20 || !digits(s, 0, 4, &year) || s[4] != '-' || !digits(s, 5, 2, &month) || s[7] != '-' ||
      !digits(s, 8, 2, &day) || s[10] != 'T' || !digits(s, 11, 2, &hour) || s[13] != ':' ||
      !digits(s, 14, 2, &minute) || s[16] != ':' || !digits(s, 17, 2, &second) || s.back() != 'Z')
    return false;
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 59) return false;
  std::size_t frac = s.size() - 20;  // characters between the seconds and 'Z'
  int n = 0;
  if (frac != 0) {
    if (s[19] != '.' || (frac != 4 && frac != 7 && frac != 10) || !digits(s, 20, frac - 1, &n)) return false;
    for (std::size_t k = frac - 1; k < 9; ++k) n *= 10;
  }
  std::int64_t days = days_from_civil(year, static_cast<unsigned>(month), static_cast<unsigned>(day));
  std::int64_t secs = days * 86400 + hour * 3600 + minute * 60 + second;
  if (secs < kMinSeconds || secs > kMaxSeconds) return false;
  // Reject what would not come back identical (Feb 30, 9 digits where 3 suffice, …).
  if (format_proto_timestamp(secs, n) != s) return false;
  *seconds = secs;
  *nanos = n;
  return true;
}

std::string format_proto_timestamp(std::int64_t seconds, std::int32_t nanos) {
  std::int64_t days = seconds >= 0 ? seconds / 86400 : (seconds - 86399) / 86400;
  std::int64_t rem = seconds - days * 86400;
  std::int64_t y;
  unsigned m, d;
  civil_from_days(days, &y, &m, &d);
  char buf[48];
  int len = std::snprintf(buf, sizeof buf, "%04lld-%02u-%02uT%02d:%02d:%02d", static_cast<long long>(y), m, d,
                          static_cast<int>(rem / 3600), static_cast<int>(rem / 60 % 60),
                          static_cast<int>(rem % 60));
  std::string out(buf, static_cast<std::size_t>(len));
  if (nanos != 0) {
    if (nanos % 1000000 == 0) {
      std::snprintf(buf, sizeof buf, ".%03d", nanos / 1000000);
    } else if (nanos % 1000 == 0) {
      std::snprintf(buf, sizeof buf, ".%06d", nanos / 1000);
    } else {
      std::snprintf(buf, sizeof buf, ".%09d", nanos);
    }
    out += buf;
  }
  out += 'Z';
  return out;
}

void to_proto(const CloudEvent& e, pb::CloudEvent* out) {
  out->Clear();
  out->set_id(e.id);
  out->set_source(e.source);
  out->set_spec_version(e.specversion);
  out->set_type(e.type);
  auto& attrs = *out->mutable_attributes();
  if (e.datacontenttype) attrs[std::string("datacontenttype")].set_ce_string(*e.datacontenttype);
  if (e.dataschema) attrs[std::string("dataschema")].set_ce_uri(*e.dataschema);
  if (e.subject) attrs[std::string("subject")].set_ce_string(*e.subject);
  if (e.time) set_timestamp_or_string(&attrs[std::string("time")], *e.time);
  for (const auto& [name, value] : e.extensions) set_value(&attrs[name], value);
  if (e.data) {
    if (is_text_media_type(e) && is_valid_utf8(*e.data)) {
      out->set_text_data(*e.data);
    } else {
      out->set_binary_data(*e.data);
    }
  }
}

namespace {

// The wire format written directly (every log append and Kafka record goes through here; building a
// pb::CloudEvent first costs an allocation per string and map entry). The unit tests check that the
// library parses it into exactly what to_proto() builds.
enum WireType : std::uint32_t { kVarint = 0, kLengthDelimited = 2 };

void put_varint(std::string& out, std::uint64_t v) {
  while (v >= 0x80) {
    out += static_cast<char>((v & 0x7f) | 0x80);
    v >>= 7;
  }
  out += static_cast<char>(v);
}

void put_tag(std::string& out, std::uint32_t field, WireType type) {
  put_varint(out, (field << 3) | type);
}

void put_bytes(std::string& out, std::uint32_t field, std::string_view bytes) {
  put_tag(out, field, kLengthDelimited);
  put_varint(out, bytes.size());
  out += bytes;
}

// proto3: a singular string field at its default (empty) is not written.
void put_nonempty(std::string& out, std::uint32_t field, std::string_view bytes) {
  if (!bytes.empty()) put_bytes(out, field, bytes);
}

/// A length-delimited field whose content `write` appends: one length byte is reserved and widened
/// afterwards if the content is 128 bytes or more.
template <class Write>
void put_nested(std::string& out, std::uint32_t field, Write write) {
  put_tag(out, field, kLengthDelimited);
  const std::size_t at = out.size();
  out += '\0';
  write(out);
  const std::size_t length = out.size() - at - 1;
  if (length < 0x80) {
    out[at] = static_cast<char>(length);
    return;
  }
  std::string prefix;
  put_varint(prefix, length);
  out.replace(at, 1, prefix);
}

/// A CloudEventAttributeValue (every member is in a oneof, so written even at its default).
void put_value(std::string& out, AttributeType type, std::string_view text, bool boolean,
               std::int32_t integer) {
  switch (type) {
    case AttributeType::Boolean:
      put_tag(out, 1, kVarint);
      put_varint(out, boolean ? 1 : 0);
      return;
    case AttributeType::Integer:
      put_tag(out, 2, kVarint);
      put_varint(out, static_cast<std::uint64_t>(static_cast<std::int64_t>(integer)));  // sign-extended
      return;
    case AttributeType::String:
      return put_bytes(out, 3, text);
    case AttributeType::Binary:
      return put_bytes(out, 4, text);
    case AttributeType::Uri:
      return put_bytes(out, 5, text);
    case AttributeType::UriRef:
      return put_bytes(out, 6, text);
    case AttributeType::Timestamp: {
      std::int64_t seconds;
      std::int32_t nanos;
      if (!parse_canonical_timestamp(text, &seconds, &nanos)) return put_bytes(out, 3, text);
      put_nested(out, 7, [&](std::string& ts) {
        if (seconds != 0) {
          put_tag(ts, 1, kVarint);
          put_varint(ts, static_cast<std::uint64_t>(seconds));
        }
        if (nanos != 0) {
          put_tag(ts, 2, kVarint);
          put_varint(ts, static_cast<std::uint64_t>(static_cast<std::int64_t>(nanos)));
        }
      });
      return;
    }
  }
}

/// One entry of the `attributes` map (field 5): a message of key (1) and value (2).
void put_attribute(std::string& out, std::string_view name, AttributeType type, std::string_view text,
                   bool boolean = false, std::int32_t integer = 0) {
  put_nested(out, 5, [&](std::string& entry) {
    put_bytes(entry, 1, name);
    put_nested(entry, 2, [&](std::string& value) { put_value(value, type, text, boolean, integer); });
  });
}

}  // namespace

std::string to_protobuf(const CloudEvent& e) {
  return to_protobuf(e, {});
}

std::string to_protobuf(const CloudEvent& e, std::span<const ExtraAttribute> extra) {
  std::string out;
  out.reserve(64 + e.id.size() + e.source.size() + e.type.size() + (e.data ? e.data->size() : 0) +
              (e.extensions.size() + extra.size()) * 48);
  put_nonempty(out, 1, e.id);
  put_nonempty(out, 2, e.source);
  put_nonempty(out, 3, e.specversion);
  put_nonempty(out, 4, e.type);
  if (e.datacontenttype) put_attribute(out, "datacontenttype", AttributeType::String, *e.datacontenttype);
  if (e.dataschema) put_attribute(out, "dataschema", AttributeType::Uri, *e.dataschema);
  if (e.subject) put_attribute(out, "subject", AttributeType::String, *e.subject);
  if (e.time) put_attribute(out, "time", AttributeType::Timestamp, *e.time);
  // The extensions and the extra ones, merged by name (an extra one replaces an extension of its name).
  auto next = extra.begin();
  auto put_extra = [&] {
    put_attribute(out, next->name, next->type, next->text, false, next->integer);
    ++next;
  };
  for (const auto& [name, v] : e.extensions) {
    while (next != extra.end() && next->name < name) put_extra();
    if (next != extra.end() && next->name == name) {
      put_extra();
      continue;
    }
    put_attribute(out, name, v.type, v.text, v.boolean, v.integer);
  }
  while (next != extra.end()) put_extra();
  if (e.data) put_bytes(out, is_text_media_type(e) && is_valid_utf8(*e.data) ? 7 : 6, *e.data);
  return out;
}

Result<CloudEvent> parse_protobuf(std::string_view bytes, Validation mode) {
  if (bytes.size() > static_cast<std::size_t>(INT_MAX)) {
    return make_error("", "protobuf event larger than 2 GiB", kBadRequest);
  }
  google::protobuf::Arena arena;
  auto* msg = google::protobuf::Arena::CreateMessage<pb::CloudEvent>(&arena);
  if (!msg->ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return make_error("", "malformed protobuf CloudEvent (io.cloudevents.v1.CloudEvent)", kBadRequest);
  }
  return convert(*msg, true, mode);
}

Result<CloudEvent> from_proto(const pb::CloudEvent& in) {
  return convert(in, false, Validation::publish);
}

}  // namespace sluice
