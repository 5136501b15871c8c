#include "core/cloud_event.hpp"

#include <array>
#include <charconv>
#include <chrono>
#include <cstdio>

#include "core/base64.hpp"
#include "core/text.hpp"

namespace sluice {
namespace {

bool is_alpha(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

bool digits(std::string_view s, std::size_t pos, std::size_t n) {
  if (pos + n > s.size()) return false;
  for (std::size_t i = pos; i < pos + n; ++i)
    if (!is_ascii_digit(s[i])) return false;
  return true;
}

int number(std::string_view s, std::size_t pos, std::size_t n) {
  int v = 0;
  for (std::size_t i = pos; i < pos + n; ++i) v = v * 10 + (s[i] - '0');
  return v;
}

bool is_json_media_type(std::string_view ct) {
  auto semi = ct.find(';');
  if (semi != std::string_view::npos) ct = ct.substr(0, semi);
  while (!ct.empty() && ct.back() == ' ') ct.remove_suffix(1);
  auto lower_equals = [](std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
      char c = a[i];
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
      if (c != b[i]) return false;
    }
    return true;
  };
  if (lower_equals(ct, "application/json") || lower_equals(ct, "text/json")) return true;
  return ct.size() >= 5 && lower_equals(ct.substr(ct.size() - 5), "+json");
}

/// Why `s` may not be a CloudEvents String (spec.md, "Type System"): the first control character
/// (U+0000-U+001F, U+007F-U+009F), surrogate code point or Unicode noncharacter it holds, or the first
/// byte that is not UTF-8. nullopt when every character is allowed. One pass over the bytes; allocates
/// only to describe a refused character.
std::optional<std::string> disallowed_character(std::string_view s) {
  auto refuse = [](std::uint32_t code_point, const char* what) {
    char buf[112];
    std::snprintf(buf, sizeof buf, "contains U+%04X, %s, which CloudEvents strings may not hold",
                  static_cast<unsigned>(code_point), what);
    return std::optional<std::string>(buf);
  };
  auto not_utf8 = [](unsigned char byte, std::size_t offset) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "is not UTF-8 (byte 0x%02X at offset %zu)", unsigned(byte), offset);
    return std::optional<std::string>(buf);
  };
  const std::size_t n = s.size();
  std::size_t i = 0;
  while (i < n) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7F) {
      ++i;
      continue;
    }
    if (c < 0x80) return refuse(c, "a control character");
    const Utf8Sequence seq = decode_utf8_sequence(s, i);
    if (seq.length == 0) return not_utf8(static_cast<unsigned char>(s[seq.bad]), seq.bad);
    const std::uint32_t cp = seq.code_point;
    if (cp <= 0x9F) return refuse(cp, "a control character");
    if (cp >= 0xD800 && cp <= 0xDFFF) return refuse(cp, "a surrogate code point");
    if ((cp >= 0xFDD0 && cp <= 0xFDEF) || (cp & 0xFFFE) == 0xFFFE)
      return refuse(cp, "a Unicode noncharacter");
    i += seq.length;
  }
  return std::nullopt;
}

/// The authority that starts at `pos`: up to the first '/', '?' or '#'.
std::string_view authority_at(std::string_view s, std::size_t pos) {
  s.remove_prefix(pos);
  return s.substr(0, s.find_first_of("/?#"));
}

/// False when the authority of a URI-reference holds a '[' or ']' outside one IP-literal host: '['
/// right after "//" (or after the userinfo's '@'), closed by ']' before the port or the path.
bool authority_brackets_balanced(std::string_view s) {
  std::size_t start = std::string_view::npos;
  if (s.substr(0, 2) == "//") {
    start = 2;
  } else {
    auto colon = s.find(':');
    if (colon != std::string_view::npos && colon < s.find_first_of("/?#") && s.substr(colon + 1, 2) == "//")
      start = colon + 3;  // the scheme was checked by the caller
  }
  if (start == std::string_view::npos) return true;
  std::string_view authority = authority_at(s, start);
  auto at = authority.rfind('@');
  if (at != std::string_view::npos) {
    if (authority.substr(0, at).find_first_of("[]") != std::string_view::npos) return false;
    authority.remove_prefix(at + 1);
  }
  if (!authority.empty() && authority.front() == '[') {
    auto close = authority.find(']');
    if (close == std::string_view::npos) return false;
    if (authority.substr(1, close - 1).find('[') != std::string_view::npos) return false;
    authority.remove_prefix(close + 1);
    if (!authority.empty() && authority.front() != ':') return false;
  }
  return authority.find_first_of("[]") == std::string_view::npos;
}

/// A quoted attribute value for a violation message, cut after 100 bytes (at a UTF-8 boundary).
std::string quote_value(std::string_view value) {
  constexpr std::size_t kMax = 100;
  if (value.size() <= kMax) return "\"" + std::string(value) + "\"";
  std::size_t cut = kMax;
  while (cut > 0 && (static_cast<unsigned char>(value[cut]) & 0xC0) == 0x80) --cut;
  return "\"" + std::string(value.substr(0, cut)) + "\"...";
}

struct Parsed {
  std::int64_t millis;
};

// Days from civil (Howard Hinnant's algorithm).
std::int64_t days_from_civil(int y, unsigned m, unsigned d) {
  y -= m <= 2;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

unsigned days_in_month(int y, unsigned m) {
  static constexpr std::array<unsigned, 12> kDays{31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return m == 2 && leap ? 29 : kDays[m - 1];
}

}  // namespace

std::string_view to_string(AttributeType type) {
  switch (type) {
    case AttributeType::Boolean:
      return "Boolean";
    case AttributeType::Integer:
      return "Integer";
    case AttributeType::String:
      return "String";
    case AttributeType::Binary:
      return "Binary";
    case AttributeType::Uri:
      return "URI";
    case AttributeType::UriRef:
      return "URI-reference";
    case AttributeType::Timestamp:
      return "Timestamp";
  }
  return "String";
}

std::string AttributeValue::to_header_string() const {
  return type == AttributeType::Binary ? base64_encode(text) : text;
}

const std::string* CloudEvent::attribute_text(std::string_view name) const {
  if (name == "id") return &id;
  if (name == "source") return &source;
  if (name == "specversion") return &specversion;
  if (name == "type") return &type;
  if (name == "datacontenttype") return datacontenttype ? &*datacontenttype : nullptr;
  if (name == "dataschema") return dataschema ? &*dataschema : nullptr;
  if (name == "subject") return subject ? &*subject : nullptr;
  if (name == "time") return time ? &*time : nullptr;
  auto it = extensions.find(std::string(name));
  return it == extensions.end() ? nullptr : &it->second.text;
}

std::optional<AttributeValue> CloudEvent::attribute(std::string_view name) const {
  if (name == "id") return AttributeValue::of_string(id);
  if (name == "source") return AttributeValue::of_uri_ref(source);
  if (name == "specversion") return AttributeValue::of_string(specversion);
  if (name == "type") return AttributeValue::of_string(type);
  if (name == "datacontenttype") {
    if (!datacontenttype) return std::nullopt;
    return AttributeValue::of_string(*datacontenttype);
  }
  if (name == "dataschema") {
    if (!dataschema) return std::nullopt;
    return AttributeValue::of_uri(*dataschema);
  }
  if (name == "subject") {
    if (!subject) return std::nullopt;
    return AttributeValue::of_string(*subject);
  }
  if (name == "time") {
    if (!time) return std::nullopt;
    return AttributeValue::of_timestamp(*time);
  }
  auto it = extensions.find(std::string(name));
  if (it == extensions.end()) return std::nullopt;
  return it->second;
}

void CloudEvent::set_attribute(std::string_view name, std::string value) {
  if (name == "id")
    id = std::move(value);
  else if (name == "source")
    source = std::move(value);
  else if (name == "specversion")
    specversion = std::move(value);
  else if (name == "type")
    type = std::move(value);
  else if (name == "datacontenttype")
    datacontenttype = std::move(value);
  else if (name == "dataschema")
    dataschema = std::move(value);
  else if (name == "subject")
    subject = std::move(value);
  else if (name == "time")
    time = std::move(value);
  else
    extensions[std::string(name)] = AttributeValue::of_string(std::move(value));
}

bool CloudEvent::erase_attribute(std::string_view name) {
  auto clear = [](std::optional<std::string>& o) {
    bool had = o.has_value();
    o.reset();
    return had;
  };
  if (name == "datacontenttype") return clear(datacontenttype);
  if (name == "dataschema") return clear(dataschema);
  if (name == "subject") return clear(subject);
  if (name == "time") return clear(time);
  if (is_context_attribute(name)) return false;
  return extensions.erase(std::string(name)) > 0;
}

bool CloudEvent::data_is_json() const {
  return !datacontenttype || is_json_media_type(*datacontenttype);
}

bool is_context_attribute(std::string_view name) {
  return name == "id" || name == "source" || name == "specversion" || name == "type" ||
         name == "datacontenttype" || name == "dataschema" || name == "subject" || name == "time";
}

bool is_valid_attribute_name(std::string_view name) {
  if (name.empty()) return false;
  for (char c : name)
    if (!((c >= 'a' && c <= 'z') || is_ascii_digit(c))) return false;
  return true;
}

bool is_absolute_uri(std::string_view s) {
  if (s.empty() || !is_alpha(s[0])) return false;
  for (std::size_t i = 1; i < s.size(); ++i) {
    char c = s[i];
    if (c == ':') return i + 1 <= s.size() && is_uri_reference(s);
    if (!(is_alpha(c) || is_ascii_digit(c) || c == '+' || c == '-' || c == '.')) return false;
  }
  return false;
}

bool is_uri_reference(std::string_view s) {
  // RFC 3986 forbids controls, spaces and a few delimiters outside their roles; '%' must start a
  // percent-encoding. Non-ASCII is tolerated (IRIs are common in the wild).
  for (std::size_t i = 0; i < s.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c <= 0x20 || c == 0x7F || c == '"' || c == '<' || c == '>' || c == '\\' || c == '^' || c == '`' ||
        c == '{' || c == '|' || c == '}')
      return false;
    if (c == '%') {
      auto hex = [](char h) { return is_ascii_digit(h) || (h >= 'a' && h <= 'f') || (h >= 'A' && h <= 'F'); };
      if (i + 2 >= s.size() || !hex(s[i + 1]) || !hex(s[i + 2])) return false;
    }
  }
  // The first segment of a relative reference may not contain ':' (it would read as a scheme).
  auto colon = s.find(':');
  if (colon != std::string_view::npos) {
    auto slash = s.find_first_of("/?#");
    if (slash == std::string_view::npos || colon < slash) {
      if (colon == 0) return false;
      for (std::size_t i = 0; i < colon; ++i) {
        char c = s[i];
        if (!(is_alpha(c) || (i > 0 && (is_ascii_digit(c) || c == '+' || c == '-' || c == '.'))))
          return false;
      }
    }
  }
  return authority_brackets_balanced(s);
}

bool is_cloudevents_string(std::string_view s) {
  return !disallowed_character(s);
}

bool is_media_type(std::string_view s) {
  const std::size_t n = s.size();
  std::size_t i = 0;
  auto token = [&] {
    const std::size_t start = i;
    while (i < n && is_token_char(s[i])) ++i;
    return i > start;
  };
  auto ows = [&] {
    while (i < n && (s[i] == ' ' || s[i] == '\t')) ++i;
  };
  if (!token() || i == n || s[i] != '/') return false;
  ++i;
  if (!token()) return false;
  while (i < n) {
    ows();
    if (i == n || s[i] != ';') return false;
    ++i;
    ows();
    if (i == n || s[i] == ';') continue;  // an empty parameter, as RFC 9110 §5.6.6 allows
    if (!token() || i == n || s[i] != '=') return false;
    ++i;
    if (i < n && s[i] == '"') {
      // quoted-string: qdtext (HTAB, SP, VCHAR but '"' and '\\', obs-text) or '\\' quoted-pair.
      for (++i;; ++i) {
        if (i == n) return false;
        auto c = static_cast<unsigned char>(s[i]);
        if (c == '"') break;
        if (c == '\\') {
          if (++i == n) return false;
          c = static_cast<unsigned char>(s[i]);
        }
        if ((c < 0x20 && c != '\t') || c == 0x7F) return false;
      }
      ++i;
    } else if (!token()) {
      return false;
    }
  }
  return true;
}

std::optional<std::int64_t> parse_rfc3339_millis(std::string_view s) {
  // YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)
  if (s.size() < 20 || !digits(s, 0, 4) || s[4] != '-' || !digits(s, 5, 2) || s[7] != '-' ||
      !digits(s, 8, 2) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') || !digits(s, 11, 2) ||
      s[13] != ':' || !digits(s, 14, 2) || s[16] != ':' || !digits(s, 17, 2))
    return std::nullopt;
  int year = number(s, 0, 4);
  unsigned month = static_cast<unsigned>(number(s, 5, 2));
  unsigned day = static_cast<unsigned>(number(s, 8, 2));
  int hour = number(s, 11, 2), minute = number(s, 14, 2), second = number(s, 17, 2);
  if (month < 1 || month > 12 || day < 1 || day > days_in_month(year, month) || hour > 23 || minute > 59 ||
      second > 60)
    return std::nullopt;
  std::size_t pos = 19;
  int millis = 0;
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    std::size_t start = pos;
    while (pos < s.size() && is_ascii_digit(s[pos])) {
      if (pos - start < 3) millis = millis * 10 + (s[pos] - '0');
      ++pos;
    }
    if (pos == start) return std::nullopt;
    for (std::size_t n = pos - start; n < 3; ++n) millis *= 10;
  }
  if (pos >= s.size()) return std::nullopt;
  int offset_minutes = 0;
  if (s[pos] == 'Z' || s[pos] == 'z') {
    ++pos;
  } else if (s[pos] == '+' || s[pos] == '-') {
    if (!digits(s, pos + 1, 2) || pos + 3 >= s.size() || s[pos + 3] != ':' || !digits(s, pos + 4, 2))
      return std::nullopt;
    int oh = number(s, pos + 1, 2), om = number(s, pos + 4, 2);
    if (oh > 23 || om > 59) return std::nullopt;
    offset_minutes = (s[pos] == '+' ? 1 : -1) * (oh * 60 + om);
    pos += 6;
  } else {
    return std::nullopt;
  }
  if (pos != s.size()) return std::nullopt;
  std::int64_t days = days_from_civil(year, month, day);
  std::int64_t secs = days * 86400 + hour * 3600 + minute * 60 + std::min(second, 59) - offset_minutes * 60;
  return secs * 1000 + millis;
}

bool is_rfc3339(std::string_view s) {
  return parse_rfc3339_millis(s).has_value();
}

std::string format_rfc3339(std::int64_t unix_millis) {
  using namespace std::chrono;
  auto tp = sys_time<milliseconds>(milliseconds(unix_millis));
  auto day = floor<days>(tp);
  year_month_day ymd(day);
  hh_mm_ss hms(tp - day);
  char buf[40];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02d.%03dZ", int(ymd.year()),
                unsigned(ymd.month()), unsigned(ymd.day()), int(hms.hours().count()),
                int(hms.minutes().count()), int(hms.seconds().count()), int(hms.subseconds().count()));
  return buf;
}

std::vector<Violation> validate(const CloudEvent& e, Validation mode) {
  std::vector<Violation> out;
  if (mode == Validation::stored) {
    for (auto [name, value] :
         {std::pair<const char*, const std::string*>{"id", &e.id}, {"source", &e.source}, {"type", &e.type}})
      if (value->empty()) out.push_back({name, "required attribute is missing or empty"});
    if (e.specversion != "1.0")
      out.push_back({"specversion", "must be \"1.0\", got " + quote_value(e.specversion)});
    return out;
  }
  // Refuses a value holding a character CloudEvents strings may not hold; true when it was refused.
  auto bad_characters = [&](const std::string& name, std::string_view value) {
    auto why = disallowed_character(value);
    if (why) out.push_back({name, std::move(*why)});
    return why.has_value();
  };
  // True when the value is present and holds only allowed characters.
  auto required = [&](const char* name, const std::string& value) {
    if (!value.empty()) return !bad_characters(name, value);
    out.push_back({name, "required attribute is missing or empty"});
    return false;
  };
  required("id", e.id);
  const bool source_ok = required("source", e.source);
  required("type", e.type);
  if (e.specversion.empty()) {
    out.push_back({"specversion", "required attribute is missing or empty"});
  } else if (e.specversion != "1.0") {
    out.push_back({"specversion", "must be \"1.0\", got " + quote_value(e.specversion)});
  }
  if (source_ok && !is_uri_reference(e.source))
    out.push_back({"source", "must be a URI-reference (RFC 3986)"});
  if (e.datacontenttype) {
    if (e.datacontenttype->empty()) {
      out.push_back({"datacontenttype", "must be non-empty when present (RFC 2046 media type)"});
    } else if (!bad_characters("datacontenttype", *e.datacontenttype) && !is_media_type(*e.datacontenttype)) {
      out.push_back({"datacontenttype",
                     "must be a media type such as \"text/plain; charset=utf-8\" (RFC 2045 "
                     "type/subtype, then ;name=value parameters), got " +
                         quote_value(*e.datacontenttype)});
    }
  }
  if (e.dataschema && !bad_characters("dataschema", *e.dataschema) && !is_absolute_uri(*e.dataschema))
    out.push_back({"dataschema", "must be an absolute URI (RFC 3986)"});
  if (e.subject) {
    if (e.subject->empty())
      out.push_back({"subject", "must be non-empty when present"});
    else
      bad_characters("subject", *e.subject);
  }
  if (e.time && !is_rfc3339(*e.time))
    out.push_back({"time", "must be an RFC 3339 timestamp such as 2026-01-02T15:04:05Z"});
  for (const auto& [name, value] : e.extensions) {
    if (!is_valid_attribute_name(name)) {
      out.push_back({name, "extension names must consist of lowercase letters a-z and digits 0-9"});
    } else if (name == "data") {
      out.push_back({name, "`data` is reserved for the event's payload and may not name an attribute"});
    } else if (is_context_attribute(name)) {
      out.push_back({name, "context attribute stored as an extension"});
    }
    switch (value.type) {
      case AttributeType::String:
        bad_characters(name, value.text);
        break;
      case AttributeType::Uri:
        if (!bad_characters(name, value.text) && !is_absolute_uri(value.text))
          out.push_back({name, "URI value must be absolute"});
        break;
      case AttributeType::UriRef:
        if (!bad_characters(name, value.text) && !is_uri_reference(value.text))
          out.push_back({name, "URI-reference value is malformed"});
        break;
      case AttributeType::Timestamp:
        if (!is_rfc3339(value.text)) out.push_back({name, "Timestamp value must be RFC 3339"});
        break;
      case AttributeType::Boolean:
      case AttributeType::Integer:
      case AttributeType::Binary:
        break;
    }
  }
  return out;
}

}  // namespace sluice
