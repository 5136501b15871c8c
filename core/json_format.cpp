#include "core/json_format.hpp"

#include <cstdint>
#include <limits>
#include <optional>
#include <utility>

#include "core/base64.hpp"
#include "core/text.hpp"

namespace sluice {
namespace {

using nlohmann::json;

constexpr int kBadRequest = 400;

// What the parser saw for the `data` member of one event (the value itself is not put in the DOM).
struct DataMember {
  bool present = false;
  bool is_string = false;
  bool is_null = false;
  std::string string_value;  // the decoded string when is_string
  std::string json_text;     // the exact JSON text of the value
};

// SAX handler that builds the DOM of the document except the `data` members of the event objects,
// which would otherwise be built only to be thrown away (their text is taken from the input instead),
// and that bounds the nesting depth. Never throws on malformed input.
class EventSax {
 public:
  // event_depth: 1 when the document is one event, 2 when it is a batch (array of events).
  EventSax(json& root, std::size_t event_depth) : dom_(root, false), event_depth_(event_depth) {}

  bool null() {
    return skipping_scalar([](DataMember& d) { d.is_null = true; }) || dom_.null();
  }
  bool boolean(bool v) {
    return skipping_scalar([](DataMember&) {}) || dom_.boolean(v);
  }
  bool number_integer(json::number_integer_t v) {
    return skipping_scalar([](DataMember&) {}) || dom_.number_integer(v);
  }
  bool number_unsigned(json::number_unsigned_t v) {
    return skipping_scalar([](DataMember&) {}) || dom_.number_unsigned(v);
  }
  bool number_float(json::number_float_t v, const std::string& s) {
    return skipping_scalar([](DataMember&) {}) || dom_.number_float(v, s);
  }
  bool string(std::string& v) {
    return skipping_scalar([&](DataMember& d) {
             d.is_string = true;
             d.string_value = std::move(v);
           }) ||
           dom_.string(v);
  }
  bool binary(json::binary_t& v) {
    return skipping_scalar([](DataMember&) {}) || dom_.binary(v);
  }

  bool start_object(std::size_t len) {
    if (!enter()) return false;
    if (skip_depth_ > 0 || skip_next_) return skip_enter();
    if (depth_ == event_depth_) data_.emplace_back();
    return dom_.start_object(len);
  }
  bool start_array(std::size_t len) {
    if (!enter()) return false;
    if (skip_depth_ > 0 || skip_next_) return skip_enter();
    return dom_.start_array(len);
  }
  bool end_object() {
    --depth_;
    if (skip_depth_ > 0) return skip_leave();
    return dom_.end_object();
  }
  bool end_array() {
    --depth_;
    if (skip_depth_ > 0) return skip_leave();
    return dom_.end_array();
  }
  bool key(std::string& k) {
    if (skip_depth_ > 0) return true;
    if (depth_ == event_depth_ && k == "data" && !data_.empty()) {
      data_.back() = DataMember{};
      data_.back().present = true;
      skip_next_ = true;
      return true;
    }
    return dom_.key(k);
  }

  template <class Exception>
  bool parse_error(std::size_t, const std::string&, const Exception& ex) {
    std::string what = ex.what();
    // "[json.exception.parse_error.101] parse error at line 1, column 2: ..." → drop the tag.
    auto close = what.find("] ");
    error_ = "malformed JSON: " + (close == std::string::npos ? what : what.substr(close + 2));
    return false;
  }

  const std::string& error() const { return error_; }
  std::vector<DataMember>& data() { return data_; }

 private:
  bool enter() {
    if (++depth_ > kMaxJsonDepth) {
      error_ = "malformed JSON: nesting deeper than " + std::to_string(kMaxJsonDepth) + " levels";
      return false;
    }
    return true;
  }
  bool skip_enter() {
    skip_next_ = false;
    ++skip_depth_;
    return true;
  }
  bool skip_leave() {
    --skip_depth_;
    return true;
  }
  // Handles a scalar that is (part of) a skipped `data` value; returns false when it belongs to the DOM.
  template <class F>
  bool skipping_scalar(F&& record) {
    if (skip_depth_ > 0) return true;
    if (!skip_next_) return false;
    skip_next_ = false;
    record(data_.back());
    return true;
  }

  nlohmann::detail::json_sax_dom_parser<json> dom_;
  std::size_t event_depth_;
  std::size_t depth_ = 0;
  std::size_t skip_depth_ = 0;
  bool skip_next_ = false;
  std::vector<DataMember> data_;
  std::string error_;
};

// --- Raw scanning of text the parser has accepted, to recover the exact bytes of `data` members.

bool is_ws(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

std::size_t skip_ws(std::string_view s, std::size_t p) {
  while (p < s.size() && is_ws(s[p])) ++p;
  return p;
}

std::size_t skip_bom(std::string_view s) {
  return s.substr(0, 3) == "\xEF\xBB\xBF" ? 3 : 0;
}

// p at an opening quote; returns the position after the closing quote.
std::size_t skip_string(std::string_view s, std::size_t p) {
  ++p;
  while (p < s.size() && s[p] != '"') p += s[p] == '\\' ? 2 : 1;
  return p + 1;
}

// p at the first byte of a value; returns the position after it. Iterative: depth is only a counter.
std::size_t skip_value(std::string_view s, std::size_t p) {
  if (p >= s.size()) return p;
  if (s[p] == '"') return skip_string(s, p);
  if (s[p] == '{' || s[p] == '[') {
    std::size_t depth = 0;
    while (p < s.size()) {
      char c = s[p];
      if (c == '"') {
        p = skip_string(s, p);
        continue;
      }
      if (c == '{' || c == '[') ++depth;
      if (c == '}' || c == ']') {
        if (--depth == 0) return p + 1;
      }
      ++p;
    }
    return p;
  }
  while (p < s.size() && !is_ws(s[p]) && s[p] != ',' && s[p] != '}' && s[p] != ']') ++p;
  return p;
}

bool key_equals(std::string_view raw_key, std::string_view name) {
  // raw_key includes its quotes.
  std::string_view inner = raw_key.substr(1, raw_key.size() - 2);
  if (inner.find('\\') == std::string_view::npos) return inner == name;
  json decoded = json::parse(raw_key, nullptr, false);
  return decoded.is_string() && decoded.get_ref<const std::string&>() == name;
}

// p at '{' of an object; the exact text of its last member named `name`, or nullopt.
std::optional<std::string_view> last_member(std::string_view s, std::size_t p, std::string_view name) {
  std::optional<std::string_view> found;
  p = skip_ws(s, p + 1);
  while (p < s.size() && s[p] == '"') {
    std::size_t key_end = skip_string(s, p);
    bool match = key_equals(s.substr(p, key_end - p), name);
    p = skip_ws(s, key_end);  // at ':'
    p = skip_ws(s, p + 1);
    std::size_t value_end = skip_value(s, p);
    if (match) found = s.substr(p, value_end - p);
    p = skip_ws(s, value_end);
    if (p < s.size() && s[p] == ',') p = skip_ws(s, p + 1);
  }
  return found;
}

// The `data` text of every event object in the document, in order (one entry per object event).
std::vector<std::optional<std::string_view>> data_spans(std::string_view s, bool batch) {
  std::vector<std::optional<std::string_view>> out;
  std::size_t p = skip_ws(s, skip_bom(s));
  if (!batch) {
    if (p < s.size() && s[p] == '{') out.push_back(last_member(s, p, "data"));
    return out;
  }
  if (p >= s.size() || s[p] != '[') return out;
  p = skip_ws(s, p + 1);
  while (p < s.size() && s[p] != ']') {
    if (s[p] == '{') out.push_back(last_member(s, p, "data"));
    p = skip_ws(s, skip_value(s, p));
    if (p < s.size() && s[p] == ',') p = skip_ws(s, p + 1);
  }
  return out;
}

// --- Members → CloudEvent

const char* json_type_name(const json& v) {
  return v.type_name();
}

void decode_members(const json& object, DataMember data, CloudEvent& e, std::vector<Violation>& problems) {
  std::optional<std::string> data_base64;
  bool has_base64 = false;
  for (const auto& [name, value] : object.items()) {
    if (value.is_null()) continue;  // json-format.md §2.2: null is the same as absent.
    if (name == "data") continue;   // handled through `data`
    if (name == "data_base64") {
      has_base64 = true;
      if (!value.is_string()) {
        problems.push_back({name, std::string("must be a base64 string, got ") + json_type_name(value)});
        continue;
      }
      data_base64 = base64_decode(value.get_ref<const std::string&>());
      if (!data_base64) problems.push_back({name, "is not valid base64 (RFC 4648 §4, padding optional)"});
      continue;
    }
    if (is_context_attribute(name)) {
      if (!value.is_string()) {
        problems.push_back({name, std::string("must be a JSON string, got ") + json_type_name(value)});
        continue;
      }
      e.set_attribute(name, value.get_ref<const std::string&>());
      continue;
    }
    if (value.is_boolean()) {
      e.extensions[name] = AttributeValue::of_bool(value.get<bool>());
    } else if (value.is_string()) {
      e.extensions[name] = AttributeValue::of_string(value.get_ref<const std::string&>());
    } else if (value.is_number_integer()) {
      bool in_range;
      std::int64_t n = 0;
      if (value.is_number_unsigned()) {
        auto u = value.get<std::uint64_t>();
        in_range = u <= static_cast<std::uint64_t>(std::numeric_limits<std::int32_t>::max());
        n = in_range ? static_cast<std::int64_t>(u) : 0;
      } else {
        n = value.get<std::int64_t>();
        in_range =
            n >= std::numeric_limits<std::int32_t>::min() && n <= std::numeric_limits<std::int32_t>::max();
      }
      if (in_range) {
        e.extensions[name] = AttributeValue::of_int(static_cast<std::int32_t>(n));
      } else {
        problems.push_back({name, "Integer extension value is outside the 32-bit signed range"});
      }
    } else if (value.is_number_float()) {
      problems.push_back({name, "extension values may not be fractional numbers (Integer is int32)"});
    } else {
      problems.push_back({name, std::string("extension values must be a string, boolean or integer, got ") +
                                    json_type_name(value)});
    }
  }
  if (data.present && has_base64) {
    problems.push_back({"data", "data and data_base64 are mutually exclusive"});
    return;
  }
  if (data_base64) {
    e.data = std::move(*data_base64);
  } else if (data.present) {
    if (e.data_is_json()) {
      e.data = std::move(data.json_text);
    } else if (data.is_string) {
      e.data = std::move(data.string_value);
    } else if (!data.is_null) {
      e.data = std::move(data.json_text);  // lenient: non-string data with a non-JSON content type
    }
  }
}

Error first_problem(const std::vector<Violation>& problems, const std::string& where = "") {
  const auto& p = problems.front();
  return make_error(p.attribute, where.empty() ? p.message : p.message + " (" + where + ")", kBadRequest);
}

// Parses with EventSax; fills root and the per-event data members.
Result<std::vector<DataMember>> parse_document(std::string_view text, json& root, bool batch) {
  if (text.find('\0') != std::string_view::npos) {
    return make_error("", "malformed JSON: NUL byte in the document", kBadRequest);
  }
  EventSax sax(root, batch ? 2 : 1);
  bool ok = json::sax_parse(text.begin(), text.end(), &sax, json::input_format_t::json, true, false);
  if (!ok || !sax.error().empty()) {
    return make_error("", sax.error().empty() ? "malformed JSON" : sax.error(), kBadRequest);
  }
  auto& data = sax.data();
  bool any = false;
  for (const auto& d : data) any = any || d.present;
  if (any) {
    auto spans = data_spans(text, batch);
    for (std::size_t i = 0; i < data.size() && i < spans.size(); ++i) {
      if (data[i].present && spans[i]) data[i].json_text.assign(spans[i]->data(), spans[i]->size());
    }
  }
  return std::move(data);
}

Result<CloudEvent> checked(CloudEvent e, const std::vector<Violation>& problems, const std::string& where,
                           Validation mode = Validation::publish) {
  if (!problems.empty()) return first_problem(problems, where);
  auto violations = validate(e, mode);
  if (!violations.empty()) return first_problem(violations, where);
  return e;
}

// --- CloudEvent → JSON text

void append_member_name(std::string& out, std::string_view name, bool& first) {
  if (!first) out += ',';
  first = false;
  append_json_string(out, name);
  out += ':';
}

void append_attribute_value(std::string& out, const AttributeValue& v) {
  switch (v.type) {
    case AttributeType::Boolean:
      out += v.boolean ? "true" : "false";
      return;
    case AttributeType::Integer:
      out += std::to_string(v.integer);
      return;
    case AttributeType::Binary:
      append_json_string(out, base64_encode(v.text));
      return;
    default:
      append_json_string(out, v.text);
  }
}

// JSON data without the whitespace around the value: decoding keeps only the value's own bytes.
std::string_view trim_json_ws(std::string_view s) {
  while (!s.empty() && is_ws(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_ws(s.back())) s.remove_suffix(1);
  return s;
}

// True when `s` can be embedded as a JSON value as it is. nlohmann's lexer reads a NUL byte as the end of
// input (so "{}\0junk" passes json::accept) and skips a leading BOM; neither may appear inside a document.
bool is_json_text(std::string_view s) {
  return s.find('\0') == std::string_view::npos && skip_bom(s) == 0 && json::accept(s);
}

}  // namespace

bool is_valid_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    if (static_cast<unsigned char>(s[i]) < 0x80) {
      ++i;
      continue;
    }
    const Utf8Sequence seq = decode_utf8_sequence(s, i);
    if (seq.length == 0 || (seq.code_point >= 0xD800 && seq.code_point <= 0xDFFF)) return false;
    i += seq.length;
  }
  return true;
}

void append_json_string(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += '"';
  std::size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      // Copy one well-formed UTF-8 sequence, or write U+FFFD for one bad byte.
      std::size_t len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
      if (i + len <= s.size() && is_valid_utf8(s.substr(i, len))) {
        out.append(s.data() + i, len);
        i += len;
      } else {
        out += "\xEF\xBF\xBD";
        ++i;
      }
      continue;
    }
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      default:
        if (c < 0x20) {
          out += "\\u00";
          out += kHex[c >> 4];
          out += kHex[c & 15];
        } else {
          out += static_cast<char>(c);
        }
    }
    ++i;
  }
  out += '"';
}

Result<UncheckedJsonEvent> parse_json_event_unchecked(std::string_view text) {
  json root;
  auto data = parse_document(text, root, false);
  if (!data) return data.error();
  if (!root.is_object()) {
    return make_error("",
                      std::string("a structured-mode event must be a JSON object, got ") + root.type_name(),
                      kBadRequest);
  }
  UncheckedJsonEvent out;
  out.event.specversion.clear();  // absent unless the document has it
  DataMember member = data.value().empty() ? DataMember{} : std::move(data.value().front());
  decode_members(root, std::move(member), out.event, out.problems);
  return out;
}

Result<CloudEvent> parse_json_event(std::string_view text, Validation mode) {
  auto parsed = parse_json_event_unchecked(text);
  if (!parsed) return parsed.error();
  return checked(std::move(parsed.value().event), parsed.value().problems, "", mode);
}

Result<std::vector<CloudEvent>> parse_json_batch(std::string_view text) {
  json root;
  auto data = parse_document(text, root, true);
  if (!data) return data.error();
  if (!root.is_array()) {
    return make_error("", std::string("a batch must be a JSON array of events, got ") + root.type_name(),
                      kBadRequest);
  }
  std::vector<CloudEvent> events;
  events.reserve(root.size());
  std::size_t object_index = 0;
  for (std::size_t i = 0; i < root.size(); ++i) {
    const json& element = root[i];
    std::string where = "batch event " + std::to_string(i);
    if (!element.is_object()) {
      return make_error("",
                        std::string("each batch element must be a JSON object, got ") + element.type_name() +
                            " (" + where + ")",
                        kBadRequest);
    }
    DataMember member;
    if (object_index < data.value().size()) member = std::move(data.value()[object_index]);
    ++object_index;
    CloudEvent e;
    e.specversion.clear();
    std::vector<Violation> problems;
    decode_members(element, std::move(member), e, problems);
    auto event = checked(std::move(e), problems, where);
    if (!event) return event.error();
    events.push_back(std::move(event.value()));
  }
  return events;
}

Result<CloudEvent> event_from_json(const nlohmann::json& value) {
  if (!value.is_object()) {
    return make_error("",
                      std::string("a structured-mode event must be a JSON object, got ") + value.type_name(),
                      kBadRequest);
  }
  DataMember member;
  if (auto it = value.find("data"); it != value.end()) {
    member.present = true;
    member.is_null = it->is_null();
    member.is_string = it->is_string();
    if (member.is_string) member.string_value = it->get_ref<const std::string&>();
    member.json_text = it->dump(-1, ' ', false, json::error_handler_t::replace);
  }
  CloudEvent e;
  e.specversion.clear();
  std::vector<Violation> problems;
  decode_members(value, std::move(member), e, problems);
  return checked(std::move(e), problems, "");
}

nlohmann::json event_to_json(const CloudEvent& e) {
  json out = json::object();
  out["specversion"] = e.specversion;
  out["id"] = e.id;
  out["source"] = e.source;
  out["type"] = e.type;
  if (e.datacontenttype) out["datacontenttype"] = *e.datacontenttype;
  if (e.dataschema) out["dataschema"] = *e.dataschema;
  if (e.subject) out["subject"] = *e.subject;
  if (e.time) out["time"] = *e.time;
  for (const auto& [name, v] : e.extensions) {
    switch (v.type) {
      case AttributeType::Boolean:
        out[name] = v.boolean;
        break;
      case AttributeType::Integer:
        out[name] = v.integer;
        break;
      case AttributeType::Binary:
        out[name] = base64_encode(v.text);
        break;
      default:
        out[name] = v.text;
    }
  }
  if (e.data) {
    if (e.data_is_json()) {
      json parsed =
          is_json_text(*e.data) ? json::parse(*e.data, nullptr, false) : json(json::value_t::discarded);
      if (parsed.is_discarded()) {
        out["data_base64"] = base64_encode(*e.data);
      } else {
        out["data"] = std::move(parsed);
      }
    } else if (is_valid_utf8(*e.data)) {
      out["data"] = *e.data;
    } else {
      out["data_base64"] = base64_encode(*e.data);
    }
  }
  return out;
}

std::optional<std::string> binary_content_type(const CloudEvent& e) {
  if (e.datacontenttype) return e.datacontenttype;
  if (e.data && is_json_text(*e.data)) return std::string("application/json");
  return std::nullopt;
}

std::string to_json(const CloudEvent& e) {
  std::string out;
  out.reserve(256 + (e.data ? e.data->size() : 0));
  out += '{';
  bool first = true;
  auto member = [&](std::string_view name, const std::string& value) {
    append_member_name(out, name, first);
    append_json_string(out, value);
  };
  member("specversion", e.specversion);
  member("id", e.id);
  member("source", e.source);
  member("type", e.type);
  if (e.datacontenttype) member("datacontenttype", *e.datacontenttype);
  if (e.dataschema) member("dataschema", *e.dataschema);
  if (e.subject) member("subject", *e.subject);
  if (e.time) member("time", *e.time);
  for (const auto& [name, v] : e.extensions) {
    if (name == "data" || name == "data_base64") continue;  // would collide with the payload members
    append_member_name(out, name, first);
    append_attribute_value(out, v);
  }
  if (e.data) {
    if (e.data_is_json()) {
      std::string_view text = trim_json_ws(*e.data);
      if (is_json_text(text)) {
        append_member_name(out, "data", first);
        out += text;
      } else {
        // Not JSON after all: carry the bytes exactly (§3.1.1, Binary data).
        append_member_name(out, "data_base64", first);
        out += '"';
        out += base64_encode(*e.data);
        out += '"';
      }
    } else if (is_valid_utf8(*e.data)) {
      append_member_name(out, "data", first);
      append_json_string(out, *e.data);
    } else {
      append_member_name(out, "data_base64", first);
      out += '"';
      out += base64_encode(*e.data);
      out += '"';
    }
  }
  out += '}';
  return out;
}

std::string to_json_batch(const std::vector<CloudEvent>& events) {
  std::string out = "[";
  for (std::size_t i = 0; i < events.size(); ++i) {
    if (i > 0) out += ',';
    out += to_json(events[i]);
  }
  out += ']';
  return out;
}

}  // namespace sluice
