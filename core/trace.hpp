#pragma once
// Tracing: W3C Trace Context (`traceparent`) carried by events as the CloudEvents distributed tracing
// extension, spans recorded for what Sluice does with an event (publish, each delivery attempt, each
// reply), kept in memory for `sluice trace EVENT_ID`, and exported in OTLP/HTTP JSON when a collector is
// configured.
//
// Sluice's spans: "publish" (an event stored by a broker; its parent is the publisher's span named by
// the event's traceparent), "deliver" (one attempt of a trigger, with the subscriber, status and
// attempt number; the subscriber receives a `traceparent` header naming this span), "dead-letter" (one
// try to send the event to the trigger's dead-letter sink, which receives a `traceparent` naming it),
// and "reply" (a reply published by a subscriber's answer). All carry the event id, so one event's path is
// one query.

#include <array>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

namespace sluice {

/// Fills `out[0..digits)` with random lowercase hex, never all zero.
void fill_random_hex(char* out, std::size_t digits);
/// Copies `hex` into `out` when it is exactly `digits` lowercase hex digits, not all zero.
bool parse_hex_id(std::string_view hex, char* out, std::size_t digits);

/// A W3C Trace Context id in lowercase hex, held inline (ids are made for every stored event, so they
/// never allocate): 32 digits for a trace id, 16 for a span id. Empty until set (all zero is not an id).
template <std::size_t Digits>
class HexId {
 public:
  HexId() = default;
  /// nullopt unless `hex` is exactly `Digits` lowercase hex digits, not all zero.
  static std::optional<HexId> parse(std::string_view hex) {
    HexId id;
    if (!parse_hex_id(hex, id.digits_.data(), Digits)) return std::nullopt;
    return id;
  }
  static HexId random() {
    HexId id;
    fill_random_hex(id.digits_.data(), Digits);
    return id;
  }
  bool empty() const { return digits_[0] == '\0'; }
  std::string_view view() const {
    return empty() ? std::string_view() : std::string_view(digits_.data(), Digits);
  }
  std::string str() const { return std::string(view()); }
  auto operator<=>(const HexId&) const = default;

 private:
  std::array<char, Digits> digits_{};
};

using TraceId = HexId<32>;
using SpanId = HexId<16>;

template <std::size_t Digits>
void to_json(nlohmann::json& j, const HexId<Digits>& id) {
  j = id.str();
}

/// A parsed `traceparent`: version 00, 16-byte trace id, 8-byte parent span id, flags.
struct TraceParent {
  TraceId trace_id;
  SpanId span_id;
  std::uint8_t flags = 1;

  /// nullopt unless the value follows W3C Trace Context (version 00; other versions are read by their
  /// first four fields as the recommendation says).
  static std::optional<TraceParent> parse(std::string_view value);
  /// The header text is always this long (version 00).
  static constexpr std::size_t kTextSize = 55;
  /// Writes the header text to out[0..kTextSize).
  void write(char* out) const;
  std::string to_string() const;
  /// A new root: random trace and span ids, sampled.
  static TraceParent make_root();
  /// The same trace with a new span id (a child of this one).
  TraceParent child() const;
};

struct Span {
  TraceId trace_id;
  SpanId span_id;
  SpanId parent_span_id;  // empty for a root
  std::string name;       // publish | deliver | dead-letter | reply
  std::string event_id;
  std::int64_t start_unix_ns = 0;
  std::int64_t end_unix_ns = 0;
  bool error = false;
  /// In the order set; names are unique.
  std::vector<std::pair<std::string, std::string>> attributes;
};

/// Keeps the most recent spans in memory and hands them to an OTLP exporter. Thread-safe.
class Tracer {
 public:
  static Tracer& global();
  /// Spans kept in memory by default (`sluice serve --trace-history`).
  static constexpr std::size_t kDefaultHistory = 100000;
  /// Spans queued for an OTLP exporter at most (a collector that is down loses the rest).
  static constexpr std::size_t kMaxPendingExport = 100000;
  explicit Tracer(std::size_t capacity = kDefaultHistory) : capacity_(capacity) {}
  ~Tracer();

  /// Keeps the most recent `spans` from now on (0: none; spans are still exported), forgetting those kept.
  void set_history(std::size_t spans);

  void record(Span span);
  /// Records several under one lock (the spans of a batch), moving from them.
  void record(std::span<Span> spans);
  /// Every recorded span of an event (and of its trace), oldest first.
  std::vector<Span> spans_of_event(const std::string& event_id) const;

  /// Starts exporting batches to `endpoint` (an OTLP/HTTP collector base URL; spans go to
  /// endpoint + "/v1/traces" as JSON) every `interval`. Call once, before traffic.
  void export_to(std::string endpoint, std::chrono::milliseconds interval = std::chrono::milliseconds(1000));
  /// Stops the exporter after one last batch.
  void stop_export();

  /// An OTLP ExportTraceServiceRequest (JSON encoding) for these spans.
  static nlohmann::json to_otlp(const std::vector<Span>& spans);
  static nlohmann::json to_json(const Span& span);

 private:
  void export_loop();
  /// Keeps one span (and queues it for export); mu_ held.
  void keep_locked(Span span);

  std::size_t capacity_;
  mutable std::mutex mu_;
  std::vector<Span> spans_;  // a ring of up to capacity_ spans; once full, oldest_ is the next to go
  std::size_t oldest_ = 0;
  std::vector<Span> pending_export_;
  std::string endpoint_;
  std::chrono::milliseconds interval_{1000};
  bool stop_ = false;
  std::thread exporter_;
  std::condition_variable cv_;
};

/// Nanoseconds since the Unix epoch, now.
std::int64_t unix_now_ns();

}  // namespace sluice
