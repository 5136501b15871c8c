#include "core/http_binding.hpp"

#include <algorithm>
#include <optional>

#include <boost/container/small_vector.hpp>

#include "core/json_format.hpp"

namespace sluice {
namespace {

constexpr int kBadRequest = 400;
constexpr int kUnsupportedMediaType = 415;

constexpr std::string_view kStructuredJson = "application/cloudevents+json";
constexpr std::string_view kBatchJson = "application/cloudevents-batch+json";

bool istarts_with(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::string lowercase(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = ascii_lower(c);
  return out;
}

/// The first header with this name (case-insensitive), or nullopt.
std::optional<std::string_view> find_header(HttpHeaderViews headers, std::string_view name) {
  for (const auto& [k, v] : headers)
    if (iequals(k, name)) return v;
  return std::nullopt;
}

/// `body` is the message's body, moved in by callers that own the message.
Result<CloudEvent> decode_binary(HttpHeaderViews headers, std::string body) {
  CloudEvent e;
  e.specversion.clear();
  boost::container::small_vector<std::string_view, 16> seen;  // attribute names, as the headers spell them
  std::optional<std::string_view> ce_datacontenttype;
  for (const auto& [name, raw] : headers) {
    if (!istarts_with(name, "ce-")) continue;
    const std::string_view spelled = name.substr(3);
    if (spelled.empty()) return make_error(std::string(name), "header names no attribute", kBadRequest);
    std::string attribute = lowercase(spelled);
    for (auto s : seen) {
      if (iequals(s, spelled))
        return make_error(attribute, "appears in more than one ce- header", kBadRequest);
    }
    seen.push_back(spelled);
    auto value = decode_header_value(raw);
    if (!value) {
      return make_error(attribute, "header value is not UTF-8 after percent-decoding (§3.1.3.2)",
                        kBadRequest);
    }
    if (attribute == "datacontenttype") {
      // §3.1.1: Content-Type carries it; a ce-datacontenttype header is only used when that is missing.
      ce_datacontenttype = raw;
      continue;
    }
    e.set_attribute(attribute, std::move(*value));
  }
  auto content_type = find_header(headers, "content-type");
  if (content_type && trim(*content_type).empty()) content_type.reset();  // an empty header says nothing
  if (content_type) {
    e.datacontenttype = std::string(trim(*content_type));
    // Optional whitespace may be a tab (RFC 9110 §5.6.3); a String attribute may hold no control character.
    std::replace(e.datacontenttype->begin(), e.datacontenttype->end(), '\t', ' ');
    if (!is_valid_utf8(*e.datacontenttype)) {
      return make_error("datacontenttype", "Content-Type is not UTF-8", kBadRequest);
    }
  } else if (ce_datacontenttype) {
    e.datacontenttype = decode_header_value(*ce_datacontenttype).value_or("");
  }
  if (!body.empty() || content_type) e.data = std::move(body);
  auto violations = validate(e);
  if (!violations.empty()) {
    return make_error(violations.front().attribute, violations.front().message, kBadRequest);
  }
  return e;
}

}  // namespace

const std::string* HttpMessage::header(std::string_view name) const {
  for (const auto& [k, v] : headers)
    if (iequals(k, name)) return &v;
  return nullptr;
}

HttpMode detect_http_mode(std::string_view content_type) {
  content_type = trim(content_type);
  if (istarts_with(content_type, "application/cloudevents-batch")) return HttpMode::Batched;
  if (istarts_with(content_type, "application/cloudevents")) return HttpMode::Structured;
  return HttpMode::Binary;
}

std::string media_type_essence(std::string_view content_type) {
  auto semi = content_type.find(';');
  return lowercase(trim(content_type.substr(0, semi)));
}

Status check_event_format(std::string_view content_type, std::string_view expected) {
  std::string essence = media_type_essence(content_type);
  if (essence != expected) {
    return make_error(
        "content-type",
        "unsupported event format \"" + essence + "\"; this broker reads " + std::string(expected),
        kUnsupportedMediaType);
  }
  // Parameters: only charset matters, and the JSON format is UTF-8 (RFC 8259 §8.1).
  std::size_t pos = content_type.find(';');
  while (pos != std::string_view::npos) {
    std::size_t next = content_type.find(';', pos + 1);
    std::string_view param =
        trim(content_type.substr(pos + 1, next == std::string_view::npos ? next : next - pos - 1));
    auto eq = param.find('=');
    if (eq != std::string_view::npos && iequals(trim(param.substr(0, eq)), "charset")) {
      std::string_view value = trim(param.substr(eq + 1));
      if (value.size() >= 2 && value.front() == '"' && value.back() == '"')
        value = value.substr(1, value.size() - 2);
      if (!iequals(value, "utf-8") && !iequals(value, "utf8")) {
        return make_error("content-type", "unsupported charset \"" + std::string(value) + "\"; use UTF-8",
                          kUnsupportedMediaType);
      }
    }
    pos = next;
  }
  return ok();
}

std::string percent_encode_header(std::string_view value) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(value.size());
  for (char ch : value) {
    auto c = static_cast<unsigned char>(ch);
    if (c <= 0x20 || c >= 0x7F || c == '"' || c == '%') {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += ch;
    }
  }
  return out;
}

std::optional<std::string> decode_header_value(std::string_view value) {
  value = trim(value);
  std::string unquoted;
  if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
    // RFC 7230 §3.2.6 quoted-string: backslash escapes any one character.
    std::string_view inner = value.substr(1, value.size() - 2);
    unquoted.reserve(inner.size());
    for (std::size_t i = 0; i < inner.size(); ++i) {
      if (inner[i] == '\\' && i + 1 < inner.size()) ++i;
      unquoted += inner[i];
    }
    value = unquoted;
  }
  std::string out;
  out.reserve(value.size());
  for (std::size_t i = 0; i < value.size(); ++i) {
    if (value[i] == '%' && i + 2 < value.size() && hex_value(value[i + 1]) >= 0 &&
        hex_value(value[i + 2]) >= 0) {
      out += static_cast<char>(hex_value(value[i + 1]) * 16 + hex_value(value[i + 2]));
      i += 2;
    } else {
      out += value[i];  // lenient: a malformed escape stays as it is
    }
  }
  if (!is_valid_utf8(out)) return std::nullopt;
  return out;
}

namespace {

/// `owned_body` is the body when the caller gives it up (a binary-mode event takes it over).
Result<std::vector<CloudEvent>> decode_http_message(HttpHeaderViews headers, const std::string& body,
                                                    std::string* owned_body) {
  auto content_type = find_header(headers, "content-type");
  HttpMode mode = content_type ? detect_http_mode(*content_type) : HttpMode::Binary;
  switch (mode) {
    case HttpMode::Batched: {
      if (auto st = check_event_format(*content_type, kBatchJson); !st) return st.error();
      return parse_json_batch(body);
    }
    case HttpMode::Structured: {
      if (auto st = check_event_format(*content_type, kStructuredJson); !st) return st.error();
      auto e = parse_json_event(body);
      if (!e) return e.error();
      std::vector<CloudEvent> out;
      out.push_back(std::move(e.value()));
      return out;
    }
    case HttpMode::Binary:
      break;
  }
  auto e = owned_body ? decode_binary(headers, std::move(*owned_body)) : decode_binary(headers, body);
  if (!e) return e.error();
  std::vector<CloudEvent> out;
  out.push_back(std::move(e.value()));
  return out;
}

using HeaderViewBuffer = boost::container::small_vector<std::pair<std::string_view, std::string_view>, 16>;

HeaderViewBuffer header_views(const HttpMessage& msg) {
  HeaderViewBuffer views;
  for (const auto& [k, v] : msg.headers) views.emplace_back(k, v);
  return views;
}

}  // namespace

Result<std::vector<CloudEvent>> decode_http(const HttpMessage& msg) {
  auto views = header_views(msg);
  return decode_http_message({views.data(), views.size()}, msg.body, nullptr);
}

Result<std::vector<CloudEvent>> decode_http(HttpMessage&& msg) {
  auto views = header_views(msg);
  return decode_http_message({views.data(), views.size()}, msg.body, &msg.body);
}

Result<std::vector<CloudEvent>> decode_http(HttpHeaderViews headers, std::string body) {
  return decode_http_message(headers, body, &body);
}

HttpMessage encode_http(const CloudEvent& e, HttpMode mode) {
  HttpMessage msg;
  if (mode == HttpMode::Batched) return encode_http_batch({e});
  if (mode == HttpMode::Structured) {
    msg.headers.emplace_back("Content-Type", "application/cloudevents+json; charset=utf-8");
    msg.body = to_json(e);
    return msg;
  }
  msg.headers.reserve(8 + e.extensions.size());
  for_each_header_attribute(e, [&](std::string_view name, std::string_view value) {
    msg.headers.emplace_back(std::string("ce-").append(name), percent_encode_header(value));
  });
  if (auto content_type = binary_content_type(e)) msg.headers.emplace_back("Content-Type", *content_type);
  if (e.data) msg.body = *e.data;
  return msg;
}

HttpMessage encode_http_batch(const std::vector<CloudEvent>& events) {
  HttpMessage msg;
  msg.headers.emplace_back("Content-Type", "application/cloudevents-batch+json; charset=utf-8");
  msg.body = to_json_batch(events);
  return msg;
}

}  // namespace sluice
