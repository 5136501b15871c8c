#include "core/cloud_event.hpp"

#include <array>
#include <charconv>
#include <chrono>
#include <cstdio>

#include "core/base64.hpp"

namespace sluice {
namespace {

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
bool is_alpha(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

bool digits(std::string_view s, std::size_t pos, std::size_t n) {
  if (pos + n > s.size()) return false;
  for (std::size_t i = pos; i < pos + n; ++i)
    if (!is_digit(s[i])) return false;
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
    if (!((c >= 'a' && c <= 'z') || is_digit(c))) return false;
  return true;
}

bool is_absolute_uri(std::string_view s) {
  if (s.empty() || !is_alpha(s[0])) return false;
  for (std::size_t i = 1; i < s.size(); ++i) {
    char c = s[i];
    if (c == ':') return i + 1 <= s.size() && is_uri_reference(s);
    if (!(is_alpha(c) || is_digit(c) || c == '+' || c == '-' || c == '.')) return false;
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
      auto hex = [](char h) { return is_digit(h) || (h >= 'a' && h <= 'f') || (h >= 'A' && h <= 'F'); };
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
        if (!(is_alpha(c) || (i > 0 && (is_digit(c) || c == '+' || c == '-' || c == '.')))) return false;
      }
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
    while (pos < s.size() && is_digit(s[pos])) {
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

std::vector<Violation> validate(const CloudEvent& e) {
  std::vector<Violation> out;
  auto required = [&](const char* name, const std::string& value) {
    if (value.empty()) out.push_back({name, "required attribute is missing or empty"});
  };
  required("id", e.id);
  required("source", e.source);
  required("type", e.type);
  if (e.specversion.empty()) {
    out.push_back({"specversion", "required attribute is missing or empty"});
  } else if (e.specversion != "1.0") {
    out.push_back({"specversion", "must be \"1.0\", got \"" + e.specversion + "\""});
  }
  if (!e.source.empty() && !is_uri_reference(e.source))
    out.push_back({"source", "must be a URI-reference (RFC 3986)"});
  if (e.datacontenttype && e.datacontenttype->empty())
    out.push_back({"datacontenttype", "must be non-empty when present (RFC 2046 media type)"});
  if (e.dataschema && !is_absolute_uri(*e.dataschema))
    out.push_back({"dataschema", "must be an absolute URI (RFC 3986)"});
  if (e.subject && e.subject->empty()) out.push_back({"subject", "must be non-empty when present"});
  if (e.time && !is_rfc3339(*e.time))
    out.push_back({"time", "must be an RFC 3339 timestamp such as 2026-01-02T15:04:05Z"});
  for (const auto& [name, value] : e.extensions) {
    if (!is_valid_attribute_name(name)) {
      out.push_back({name, "extension names must consist of lowercase letters a-z and digits 0-9"});
    } else if (is_context_attribute(name)) {
      out.push_back({name, "context attribute stored as an extension"});
    }
    if (value.type == AttributeType::Timestamp && !is_rfc3339(value.text))
      out.push_back({name, "Timestamp value must be RFC 3339"});
    if (value.type == AttributeType::Uri && !is_absolute_uri(value.text))
      out.push_back({name, "URI value must be absolute"});
    if (value.type == AttributeType::UriRef && !is_uri_reference(value.text))
      out.push_back({name, "URI-reference value is malformed"});
  }
  return out;
}

}  // namespace sluice
