#include "core/trace.hpp"

#include <httplib.h>

#include <algorithm>
#include <random>
#include <set>

#include "core/log.hpp"
#include "core/request_log.hpp"
#include "core/text.hpp"

namespace sluice {
namespace {

bool is_lower_hex(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

bool all_zero(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c == '0'; });
}

constexpr char kLowerHex[] = "0123456789abcdef";

nlohmann::json otlp_attribute(const std::string& key, const std::string& value) {
  return {{"key", key}, {"value", {{"stringValue", value}}}};
}

}  // namespace

void fill_random_hex(char* out, std::size_t digits) {
  thread_local std::mt19937_64 gen(std::random_device{}());
  for (std::size_t i = 0; i < digits;) {
    std::uint64_t v = gen();
    for (int k = 0; k < 16 && i < digits; ++k, ++i, v >>= 4) out[i] = kLowerHex[v & 0xf];
  }
  if (all_zero(std::string_view(out, digits))) out[digits - 1] = '1';
}

bool parse_hex_id(std::string_view hex, char* out, std::size_t digits) {
  if (hex.size() != digits || !is_lower_hex(hex) || all_zero(hex)) return false;
  std::copy(hex.begin(), hex.end(), out);
  return true;
}

std::optional<TraceParent> TraceParent::parse(std::string_view value) {
  // version "-" trace-id "-" parent-id "-" flags
  if (value.size() < 55 || value[2] != '-' || value[35] != '-' || value[52] != '-') return std::nullopt;
  const auto version = value.substr(0, 2);
  if (!is_lower_hex(version) || version == "ff") return std::nullopt;
  if (version == "00" && value.size() != 55) return std::nullopt;
  if (version != "00" && value.size() > 55 && value[55] != '-') return std::nullopt;
  auto trace_id = TraceId::parse(value.substr(3, 32));
  auto span_id = SpanId::parse(value.substr(36, 16));
  const auto flags = value.substr(53, 2);
  if (!trace_id || !span_id || !is_lower_hex(flags)) return std::nullopt;
  return TraceParent{*trace_id, *span_id,
                     static_cast<std::uint8_t>(hex_value(flags[0]) * 16 + hex_value(flags[1]))};
}

void TraceParent::write(char* out) const {
  out = std::copy_n("00-", 3, out);
  out = std::copy_n(trace_id.view().data(), 32, out);
  *out++ = '-';
  out = std::copy_n(span_id.view().data(), 16, out);
  *out++ = '-';
  *out++ = kLowerHex[flags >> 4];
  *out = kLowerHex[flags & 0xf];
}

std::string TraceParent::to_string() const {
  std::string out(kTextSize, '\0');
  write(out.data());
  return out;
}

TraceParent TraceParent::make_root() {
  return TraceParent{TraceId::random(), SpanId::random(), 1};
}

TraceParent TraceParent::child() const {
  return TraceParent{trace_id, SpanId::random(), flags};
}

std::int64_t unix_now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Tracer& Tracer::global() {
  static Tracer tracer;
  return tracer;
}

Tracer::~Tracer() {
  stop_export();
}

void Tracer::set_history(std::size_t spans) {
  std::lock_guard lock(mu_);
  capacity_ = spans;
  spans_.clear();
  spans_.shrink_to_fit();
  oldest_ = 0;
}

namespace {

// Spans leave the server (OTLP, `sluice trace`): URLs in their attributes (a subscriber signed with
// `?sig=`, a sink with `user:password@`) lose their credentials, as in request logs. Only values that
// could hold one are rewritten, so most spans allocate nothing here.
void redact_attributes(Span& span) {
  for (auto& [key, value] : span.attributes) {
    const auto scheme = value.find("://");
    if (scheme != std::string::npos && value.find_first_of("@=", scheme) != std::string::npos)
      value = request_log::redact_secrets(value);
  }
}

}  // namespace

void Tracer::record(Span span) {
  redact_attributes(span);
  std::lock_guard lock(mu_);
  keep_locked(std::move(span));
}

void Tracer::keep_locked(Span span) {
  if (!endpoint_.empty() && pending_export_.size() < kMaxPendingExport) pending_export_.push_back(span);
  if (capacity_ == 0) return;
  if (spans_.size() < capacity_) {
    spans_.push_back(std::move(span));
    return;
  }
  // Full: the oldest slot takes the new span by copy assignment, which keeps the buffers its strings and
  // attribute vector already have, so a steady stream of spans allocates and frees nothing here.
  spans_[oldest_] = span;
  oldest_ = (oldest_ + 1) % capacity_;
}

void Tracer::record(std::span<Span> spans) {
  for (auto& span : spans) redact_attributes(span);
  std::lock_guard lock(mu_);
  for (auto& span : spans) keep_locked(std::move(span));
}

std::vector<Span> Tracer::spans_of_event(const std::string& event_id) const {
  std::lock_guard lock(mu_);
  std::set<TraceId> traces;
  for (const auto& s : spans_)
    if (s.event_id == event_id) traces.insert(s.trace_id);
  std::vector<Span> out;
  for (std::size_t i = 0; i < spans_.size(); ++i) {  // oldest first
    const Span& s = spans_[(oldest_ + i) % spans_.size()];
    if (s.event_id == event_id || traces.count(s.trace_id)) out.push_back(s);
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const Span& a, const Span& b) { return a.start_unix_ns < b.start_unix_ns; });
  return out;
}

nlohmann::json Tracer::to_json(const Span& span) {
  return {{"traceId", span.trace_id},
          {"spanId", span.span_id},
          {"parentSpanId", span.parent_span_id},
          {"name", span.name},
          {"eventId", span.event_id},
          {"startUnixNano", span.start_unix_ns},
          {"endUnixNano", span.end_unix_ns},
          {"error", span.error},
          {"attributes", nlohmann::json(std::map<std::string, std::string>(span.attributes.begin(),
                                                                           span.attributes.end()))}};
}

nlohmann::json Tracer::to_otlp(const std::vector<Span>& spans) {
  auto out = nlohmann::json::array();
  for (const auto& s : spans) {
    auto attributes = nlohmann::json::array({otlp_attribute("cloudevents.event_id", s.event_id)});
    for (const auto& [k, v] : s.attributes) attributes.push_back(otlp_attribute(k, v));
    nlohmann::json span = {{"traceId", s.trace_id},
                           {"spanId", s.span_id},
                           {"name", s.name},
                           {"kind", s.name == "deliver" ? 3 : 5},  // CLIENT for deliveries, else CONSUMER
                           {"startTimeUnixNano", std::to_string(s.start_unix_ns)},
                           {"endTimeUnixNano", std::to_string(s.end_unix_ns)},
                           {"attributes", attributes},
                           {"status", {{"code", s.error ? 2 : 1}}}};
    if (!s.parent_span_id.empty()) span["parentSpanId"] = s.parent_span_id.str();
    out.push_back(std::move(span));
  }
  return {{"resourceSpans",
           {{{"resource", {{"attributes", {otlp_attribute("service.name", "sluice")}}}},
             {"scopeSpans", {{{"scope", {{"name", "sluice"}}}, {"spans", out}}}}}}}};
}

void Tracer::export_to(std::string endpoint, std::chrono::milliseconds interval) {
  std::lock_guard lock(mu_);
  while (!endpoint.empty() && endpoint.back() == '/') endpoint.pop_back();
  endpoint_ = std::move(endpoint);
  interval_ = interval;
  stop_ = false;
  exporter_ = std::thread([this] { export_loop(); });
}

void Tracer::stop_export() {
  {
    std::lock_guard lock(mu_);
    if (!exporter_.joinable()) return;
    stop_ = true;
  }
  cv_.notify_all();
  exporter_.join();
}

void Tracer::export_loop() {
  httplib::Client client(endpoint_);
  client.set_connection_timeout(std::chrono::seconds(2));
  client.set_read_timeout(std::chrono::seconds(5));
  for (;;) {
    std::vector<Span> batch;
    bool last = false;
    {
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, interval_, [this] { return stop_; });
      batch.swap(pending_export_);
      last = stop_;
      if (pending_export_.capacity() > kMaxPendingExport) pending_export_.shrink_to_fit();
    }
    if (!batch.empty()) {
      // A collector that is down loses these spans (they stay queryable in memory); never the events.
      auto res = client.Post("/v1/traces", to_otlp(batch).dump(), "application/json");
      if (!res || res->status / 100 != 2)
        SLUICE_LOG(server, warn, "OTLP export of {} spans to {} failed: {}", batch.size(), endpoint_,
                   res ? "HTTP " + std::to_string(res->status) : httplib::to_string(res.error()));
    }
    if (last) return;
  }
}

}  // namespace sluice
