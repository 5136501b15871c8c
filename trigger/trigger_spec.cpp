#include "trigger/trigger_spec.hpp"

#include <array>
#include <cctype>
#include <cmath>
#include <limits>

#include "core/duration.hpp"
#include "core/event_arguments.hpp"
#include "core/manifest.hpp"
#include "core/text.hpp"
#include "core/url.hpp"

namespace sluice {

namespace {

Error spec_error(std::string path, std::string message) {
  return make_error(std::move(path), std::move(message), 400);
}

Status check_known_fields(const nlohmann::json& object, const std::string& path,
                          std::initializer_list<std::string_view> known) {
  for (auto it = object.begin(); it != object.end(); ++it) {
    bool found = false;
    for (auto k : known) found = found || it.key() == k;
    if (!found) {
      std::string list;
      for (auto k : known) {
        if (!list.empty()) list += ", ";
        list += k;
      }
      return spec_error(path + "." + it.key(), "unknown field (known: " + list + ")");
    }
  }
  return ok();
}

Result<std::chrono::milliseconds> duration_field(const nlohmann::json& value, const std::string& path,
                                                 const char* example) {
  const std::string hint = std::string("must be an ISO-8601 duration such as ") + example;
  if (!value.is_string()) return spec_error(path, hint);
  auto d = parse_iso8601_duration(value.get_ref<const std::string&>());
  if (!d) return spec_error(path, d.error().message + " (" + hint + ")");
  return d.value();
}

Result<int> int_field(const nlohmann::json& value, const std::string& path, long long min, long long max,
                      const std::string& what) {
  if (!value.is_number_integer()) return spec_error(path, "must be an integer " + what);
  // nlohmann keeps non-negative integers as unsigned: a huge one must not wrap into range.
  if (value.is_number_unsigned() && value.get<unsigned long long>() > static_cast<unsigned long long>(max))
    return spec_error(path, "must be an integer " + what);
  const long long v = value.get<long long>();
  if (v < min || v > max) return spec_error(path, "must be an integer " + what);
  return static_cast<int>(value.get<long long>());
}

}  // namespace

std::string Destination::to_string() const {
  if (!ref) return uri;
  if (!ref->tool.empty()) return ref->kind + "/" + ref->name + " tool " + ref->tool;
  return ref->kind + "/" + ref->name + uri;
}

// `sluice.dev/tool` and `sluice.dev/tool-arguments`: each event becomes a tools/call on an MCP Agent.
static Status bind_tool(TriggerSpec& spec) {
  auto tool = spec.annotations.find(kToolAnnotation);
  auto arguments = spec.annotations.find(kToolArgumentsAnnotation);
  const std::string tool_field = std::string("metadata.annotations[") + kToolAnnotation + "]";
  if (tool == spec.annotations.end()) {
    if (arguments != spec.annotations.end())
      return spec_error(std::string("metadata.annotations[") + kToolArgumentsAnnotation + "]",
                        std::string("needs ") + kToolAnnotation + ": the tool these are the arguments of");
    return ok();
  }
  if (tool->second.empty()) return spec_error(tool_field, "must name a tool of the subscriber Agent");
  if (!spec.subscriber.ref || spec.subscriber.ref->kind != "Agent" || !spec.subscriber.uri.empty())
    return spec_error(tool_field,
                      "needs a subscriber {ref: {kind: Agent, name: …}} (an MCP agent) without a uri");
  spec.subscriber.ref->tool = tool->second;
  if (arguments != spec.annotations.end()) {
    auto parsed = EventArguments::parse(
        arguments->second, std::string("metadata.annotations[") + kToolArgumentsAnnotation + "]");
    if (!parsed) return parsed.error();
    spec.subscriber.ref->tool_arguments = arguments->second;
  }
  return ok();
}

Result<Destination> parse_destination(const nlohmann::json& value, const std::string& path) {
  if (!value.is_object()) return spec_error(path, "must be an object with uri or ref");
  if (auto st = check_known_fields(value, path, {"uri", "ref"}); !st) return st.error();
  Destination dest;
  const bool has_ref = value.contains("ref") && !value["ref"].is_null();
  if (has_ref) {
    const auto& ref = value["ref"];
    const std::string ref_path = path + ".ref";
    if (!ref.is_object())
      return spec_error(ref_path,
                        "must be an object with kind and name, e.g. {kind: Agent, name: summarizer}");
    // `namespace` is accepted (and ignored) so that Knative manifests apply unchanged: Sluice has none.
    if (auto st = check_known_fields(ref, ref_path, {"apiVersion", "kind", "name", "namespace"}); !st)
      return st.error();
    SubscriberRef r;
    if (!ref.contains("kind") || !ref["kind"].is_string())
      return spec_error(ref_path + ".kind",
                        "is required: Agent (sluice.dev/v1) or Service (serving.knative.dev/v1)");
    r.kind = ref["kind"].get<std::string>();
    if (r.kind != "Agent" && r.kind != "Service")
      return spec_error(ref_path + ".kind",
                        quote(r.kind) + " cannot be a subscriber: use Agent or Service, or a uri");
    if (ref.contains("apiVersion")) {
      if (!ref["apiVersion"].is_string()) return spec_error(ref_path + ".apiVersion", "must be a string");
      r.api_version = ref["apiVersion"].get<std::string>();
      const char* expected = r.kind == "Agent" ? "sluice.dev/v1" : "serving.knative.dev/v1";
      if (!r.api_version.empty() && r.api_version != expected)
        return spec_error(ref_path + ".apiVersion",
                          quote(r.api_version) + " does not serve kind " + r.kind + ": use " + expected);
    }
    if (!ref.contains("name") || !ref["name"].is_string())
      return spec_error(ref_path + ".name", "is required: the name of the " + r.kind);
    r.name = ref["name"].get<std::string>();
    if (!is_valid_resource_name(r.name))
      return spec_error(ref_path + ".name", quote(r.name) +
                                                " is not a valid name: use 1-63 lowercase letters, "
                                                "digits and '-', starting and ending with a letter or digit");
    if (ref.contains("namespace") && !ref["namespace"].is_string())
      return spec_error(ref_path + ".namespace", "must be a string");
    dest.ref = std::move(r);
  }
  if (value.contains("uri") && !value["uri"].is_null()) {
    const std::string uri_path = path + ".uri";
    if (!value["uri"].is_string())
      return spec_error(uri_path, "must be a string such as http://127.0.0.1:9000/events");
    dest.uri = value["uri"].get<std::string>();
    if (has_ref) {
      if (!dest.uri.starts_with("/"))
        return spec_error(uri_path,
                          "with ref, uri must be a path such as /events (appended to the ref's address)");
    } else {
      auto parsed = parse_url(dest.uri);
      if (!parsed)
        return spec_error(uri_path,
                          parsed.error().message + " (expected a URL such as http://127.0.0.1:9000/)");
    }
  }
  if (!has_ref && dest.uri.empty())
    return spec_error(path, "needs uri (http://…) or ref ({kind: Agent, name: …})");
  return dest;
}

Result<DeliverySpec> parse_delivery(const nlohmann::json& delivery, const std::string& path) {
  DeliverySpec spec;
  if (delivery.is_null()) return spec;
  if (!delivery.is_object()) return spec_error(path, "must be an object");
  if (auto st = check_known_fields(delivery, path,
                                   {"retry", "backoffPolicy", "backoffDelay", "backoffMax", "timeout",
                                    "retryAfterMax", "deadLetterSink", "format", "maxInFlight"});
      !st)
    return st.error();
  auto present = [&](const char* key) { return delivery.contains(key) && !delivery[key].is_null(); };
  if (present("retry")) {
    auto r = int_field(delivery["retry"], path + ".retry", 0, 1000000,
                       "between 0 and 1000000 (retries after the first attempt)");
    if (!r) return r.error();
    spec.retry = r.value();
  }
  if (present("backoffPolicy")) {
    const auto& v = delivery["backoffPolicy"];
    const std::string field = path + ".backoffPolicy";
    if (!v.is_string()) return spec_error(field, "must be \"exponential\" or \"linear\"");
    const auto& s = v.get_ref<const std::string&>();
    if (s == "exponential")
      spec.backoff_policy = BackoffPolicy::Exponential;
    else if (s == "linear")
      spec.backoff_policy = BackoffPolicy::Linear;
    else
      return spec_error(field, "must be \"exponential\" or \"linear\", got " + quote(s));
  }
  if (present("backoffDelay")) {
    auto d = duration_field(delivery["backoffDelay"], path + ".backoffDelay", "PT0.2S");
    if (!d) return d.error();
    spec.backoff_delay = d.value();
  }
  if (present("backoffMax")) {
    auto d = duration_field(delivery["backoffMax"], path + ".backoffMax", "PT30S");
    if (!d) return d.error();
    if (d.value().count() <= 0)
      return spec_error(path + ".backoffMax", "must be longer than zero, such as PT30S");
    spec.backoff_max = d.value();
  }
  if (present("timeout")) {
    auto d = duration_field(delivery["timeout"], path + ".timeout", "PT30S");
    if (!d) return d.error();
    if (d.value().count() <= 0)
      return spec_error(path + ".timeout", "must be longer than zero, such as PT30S");
    spec.timeout = d.value();
  }
  if (present("retryAfterMax")) {
    auto d = duration_field(delivery["retryAfterMax"], path + ".retryAfterMax",
                            "PT60S (PT0S ignores Retry-After)");
    if (!d) return d.error();
    spec.retry_after_max = d.value();
  }
  if (present("deadLetterSink")) {
    auto d = parse_destination(delivery["deadLetterSink"], path + ".deadLetterSink");
    if (!d) return d.error();
    spec.dead_letter_sink = std::move(d.value());
  }
  if (present("format")) {
    const auto& v = delivery["format"];
    const std::string field = path + ".format";
    if (!v.is_string()) return spec_error(field, "must be \"binary\" or \"json\" (structured mode)");
    const auto& s = v.get_ref<const std::string&>();
    if (s == "binary")
      spec.format = DeliveryFormat::Binary;
    else if (s == "json")
      spec.format = DeliveryFormat::Structured;
    else
      return spec_error(field, "must be \"binary\" or \"json\" (structured mode), got " + quote(s));
  }
  if (present("maxInFlight")) {
    auto r = int_field(delivery["maxInFlight"], path + ".maxInFlight", 1, DeliverySpec::kMaxMaxInFlight,
                       "between 1 and " + std::to_string(DeliverySpec::kMaxMaxInFlight));
    if (!r) return r.error();
    spec.max_in_flight = r.value();
  }
  return spec;
}

DeliverySpec merge(const DeliverySpec& broker, const DeliverySpec& trigger) {
  DeliverySpec out;
  out.retry = trigger.retry ? trigger.retry : broker.retry;
  out.backoff_policy = trigger.backoff_policy ? trigger.backoff_policy : broker.backoff_policy;
  out.backoff_delay = trigger.backoff_delay ? trigger.backoff_delay : broker.backoff_delay;
  out.backoff_max = trigger.backoff_max ? trigger.backoff_max : broker.backoff_max;
  out.timeout = trigger.timeout ? trigger.timeout : broker.timeout;
  out.retry_after_max = trigger.retry_after_max ? trigger.retry_after_max : broker.retry_after_max;
  out.dead_letter_sink = trigger.dead_letter_sink ? trigger.dead_letter_sink : broker.dead_letter_sink;
  out.format = trigger.format ? trigger.format : broker.format;
  out.max_in_flight = trigger.max_in_flight ? trigger.max_in_flight : broker.max_in_flight;
  return out;
}

Result<TriggerSpec> parse_trigger(const nlohmann::json& manifest) {
  if (!manifest.is_object()) return spec_error("", "a Trigger manifest must be an object");
  if (!manifest.contains("apiVersion") || !manifest["apiVersion"].is_string())
    return spec_error("apiVersion", "is required: eventing.knative.dev/v1 or sluice.dev/v1");
  const auto& api = manifest["apiVersion"].get_ref<const std::string&>();
  if (api != "eventing.knative.dev/v1" && api != "sluice.dev/v1")
    return spec_error("apiVersion",
                      quote(api) + " does not serve Trigger: use eventing.knative.dev/v1 or sluice.dev/v1");
  if (!manifest.contains("kind") || manifest["kind"] != "Trigger")
    return spec_error("kind", "must be Trigger");

  TriggerSpec spec;
  if (!manifest.contains("metadata") || !manifest["metadata"].is_object())
    return spec_error("metadata", "is required (an object with a name)");
  const auto& metadata = manifest["metadata"];
  if (!metadata.contains("name") || !metadata["name"].is_string())
    return spec_error("metadata.name", "is required (a string)");
  spec.name = metadata["name"].get<std::string>();
  if (!is_valid_resource_name(spec.name))
    return spec_error("metadata.name", quote(spec.name) +
                                           " is not a valid name: use 1-63 lowercase letters, digits "
                                           "and '-', starting and ending with a letter or digit");
  if (metadata.contains("annotations") && !metadata["annotations"].is_null()) {
    const auto& annotations = metadata["annotations"];
    if (!annotations.is_object())
      return spec_error("metadata.annotations", "must be a map of string to string");
    for (auto it = annotations.begin(); it != annotations.end(); ++it) {
      if (!it.value().is_string())
        return spec_error("metadata.annotations[" + it.key() + "]",
                          "must be a string (quote numbers and booleans)");
      spec.annotations[it.key()] = it.value().get<std::string>();
    }
  }
  if (auto it = spec.annotations.find(kDeliveryOrderAnnotation); it != spec.annotations.end()) {
    if (it->second == "ordered")
      spec.order = DeliveryOrder::Ordered;
    else if (it->second == "unordered")
      spec.order = DeliveryOrder::Unordered;
    else
      return spec_error(std::string("metadata.annotations[") + kDeliveryOrderAnnotation + "]",
                        "must be \"ordered\" or \"unordered\", got " + quote(it->second));
  }

  if (!manifest.contains("spec") || !manifest["spec"].is_object())
    return spec_error("spec", "is required (an object with broker and subscriber)");
  const auto& s = manifest["spec"];
  if (auto st = check_known_fields(s, "spec", {"broker", "filter", "filters", "subscriber", "delivery"}); !st)
    return st.error();

  if (!s.contains("broker") || !s["broker"].is_string() || s["broker"].get_ref<const std::string&>().empty())
    return spec_error("spec.broker",
                      "is required: the name of the Broker whose events this Trigger receives");
  spec.broker = s["broker"].get<std::string>();
  if (!is_valid_resource_name(spec.broker))
    return spec_error("spec.broker", quote(spec.broker) + " is not a valid Broker name");

  // Both are validated; a non-empty `filters` wins, as in Knative (filter_handler.go uses
  // spec.filters when len > 0): `filters: []` falls back to `filter.attributes`.
  Filter attributes_filter;
  if (s.contains("filter")) {
    auto f = Filter::from_attributes(s["filter"], "spec.filter");
    if (!f) return f.error();
    attributes_filter = std::move(f.value());
  }
  const bool has_filters =
      s.contains("filters") && !s["filters"].is_null() && !(s["filters"].is_array() && s["filters"].empty());
  if (has_filters) {
    auto f = Filter::from_dialects(s["filters"], "spec.filters");
    if (!f) return f.error();
    spec.filter = std::move(f.value());
  } else {
    spec.filter = std::move(attributes_filter);
  }

  if (!s.contains("subscriber") || s["subscriber"].is_null())
    return spec_error("spec.subscriber", "is required: {uri: http://…} or {ref: {kind: Agent, name: …}}");
  auto subscriber = parse_destination(s["subscriber"], "spec.subscriber");
  if (!subscriber) return subscriber.error();
  spec.subscriber = std::move(subscriber.value());
  if (auto st = bind_tool(spec); !st) return st.error();

  if (s.contains("delivery")) {
    auto delivery = parse_delivery(s["delivery"], "spec.delivery");
    if (!delivery) return delivery.error();
    spec.delivery = std::move(delivery.value());
  }
  return spec;
}

std::chrono::milliseconds backoff_delay(const DeliverySpec& delivery, int retry_number) {
  using std::chrono::milliseconds;
  // Far beyond any useful wait, and far from overflowing steady_clock arithmetic (about 31 years).
  constexpr double kCeilingMs = 1e12;
  const int n = retry_number < 1 ? 1 : retry_number;
  const double base = static_cast<double>(delivery.delay().count());
  double ms = delivery.policy() == BackoffPolicy::Exponential ? base * std::ldexp(1.0, std::min(n - 1, 1000))
                                                              : base * static_cast<double>(n);
  if (!(ms < kCeilingMs)) ms = kCeilingMs;
  milliseconds out{static_cast<milliseconds::rep>(ms)};
  const milliseconds cap = delivery.delay_cap();
  if (cap.count() > 0 && out > cap) out = cap;
  return out;
}

bool is_retryable_status(int status) {
  return status == 0 || status == 404 || status == 408 || status == 409 || status == 429 ||
         (status >= 500 && status <= 599);
}

namespace {

bool parse_digits(std::string_view s, int& out) {
  if (s.empty() || s.size() > 9) return false;
  out = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    out = out * 10 + (c - '0');
  }
  return true;
}

int month_index(std::string_view m) {
  static constexpr std::array<std::string_view, 12> kMonths = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                               "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  for (std::size_t i = 0; i < kMonths.size(); ++i)
    if (kMonths[i] == m) return static_cast<int>(i) + 1;
  return 0;
}

bool parse_clock(std::string_view s, int& h, int& m, int& sec) {
  return s.size() == 8 && s[2] == ':' && s[5] == ':' && parse_digits(s.substr(0, 2), h) &&
         parse_digits(s.substr(3, 2), m) && parse_digits(s.substr(6, 2), sec) && h < 24 && m < 60 && sec < 61;
}

std::vector<std::string_view> split_spaces(std::string_view s) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && s[i] == ' ') ++i;
    std::size_t j = i;
    while (j < s.size() && s[j] != ' ') ++j;
    if (j > i) out.push_back(s.substr(i, j - i));
    i = j;
  }
  return out;
}

// A year is as good as forever for a Retry-After that retryAfterMax caps anyway: longer waits saturate.
constexpr std::chrono::milliseconds kRetryAfterSaturation{365LL * 24 * 3600 * 1000};

// HTTP-date (RFC 9110 §5.6.7): IMF-fixdate, and the obsolete RFC 850 and asctime forms recipients
// must accept.
// Seconds precision: a system_clock::time_point counts nanoseconds and overflows after the year 2262.
std::optional<std::chrono::sys_seconds> parse_http_date(std::string_view s) {
  auto parts = split_spaces(s);
  int day = 0, month = 0, year = 0, h = 0, m = 0, sec = 0;
  if (parts.size() == 6 && parts[0].ends_with(",") && parts[5] == "GMT") {
    // Sun, 06 Nov 1994 08:49:37 GMT
    month = month_index(parts[2]);
    if (!parse_digits(parts[1], day) || month == 0 || !parse_digits(parts[3], year) || parts[3].size() != 4 ||
        !parse_clock(parts[4], h, m, sec))
      return std::nullopt;
  } else if (parts.size() == 4 && parts[0].ends_with(",") && parts[3] == "GMT") {
    // Sunday, 06-Nov-94 08:49:37 GMT (two-digit years: RFC 9110 says interpret as within 50 years).
    auto d = parts[1];
    if (d.size() != 9 || d[2] != '-' || d[6] != '-') return std::nullopt;
    month = month_index(d.substr(3, 3));
    if (!parse_digits(d.substr(0, 2), day) || month == 0 || !parse_digits(d.substr(7, 2), year) ||
        !parse_clock(parts[2], h, m, sec))
      return std::nullopt;
    year += year < 70 ? 2000 : 1900;
  } else if (parts.size() == 5) {
    // Sun Nov  6 08:49:37 1994
    month = month_index(parts[1]);
    if (month == 0 || !parse_digits(parts[2], day) || !parse_clock(parts[3], h, m, sec) ||
        !parse_digits(parts[4], year))
      return std::nullopt;
  } else {
    return std::nullopt;
  }
  const std::chrono::year_month_day ymd{std::chrono::year{year},
                                        std::chrono::month{static_cast<unsigned>(month)},
                                        std::chrono::day{static_cast<unsigned>(day)}};
  if (!ymd.ok()) return std::nullopt;
  return std::chrono::sys_days{ymd} + std::chrono::hours{h} + std::chrono::minutes{m} +
         std::chrono::seconds{sec};
}

}  // namespace

std::optional<std::chrono::milliseconds> parse_retry_after(std::string_view value,
                                                           std::chrono::system_clock::time_point now) {
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
  if (value.empty()) return std::nullopt;
  if (std::isdigit(static_cast<unsigned char>(value.front()))) {
    long long seconds = 0;
    for (char c : value) {
      if (c < '0' || c > '9') return std::nullopt;
      seconds = std::min<long long>(seconds * 10 + (c - '0'), kRetryAfterSaturation.count() / 1000);
    }
    return std::chrono::milliseconds{seconds * 1000};
  }
  auto when = parse_http_date(value);
  if (!when) return std::nullopt;
  const auto when_ms = std::chrono::time_point_cast<std::chrono::milliseconds>(*when);
  const auto now_ms = std::chrono::time_point_cast<std::chrono::milliseconds>(now);
  if (when_ms <= now_ms) return std::chrono::milliseconds{0};
  return std::min<std::chrono::milliseconds>(when_ms - now_ms, kRetryAfterSaturation);
}

}  // namespace sluice
