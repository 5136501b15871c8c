#include "broker/broker_registry.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <span>

#include "core/log.hpp"
#include "core/metrics.hpp"
#include "core/protobuf_format.hpp"
#include "core/trace.hpp"

namespace sluice {
namespace {

constexpr const char* kDuplicatesHelp =
    "Events acknowledged as duplicates within the window (not stored again).";

}  // namespace

std::string IdempotencyCache::key(const std::string& source, const std::string& id) {
  std::string k;
  k.reserve(source.size() + id.size() + 1);
  k += source;
  k += '\0';
  k += id;
  return k;
}

void IdempotencyCache::expire(std::int64_t now_ms) {
  while (!order_.empty() &&
         (order_.front().first + window_.count() <= now_ms || order_.size() > max_entries_)) {
    auto it = seen_.find(order_.front().second);
    if (it != seen_.end() && it->second.claimed_ms == order_.front().first) seen_.erase(it);
    order_.pop_front();
  }
}

IdempotencyCache::Claim IdempotencyCache::claim(const std::string& source, const std::string& id,
                                                std::int64_t now_ms) {
  std::lock_guard lock(mu_);
  expire(now_ms);
  auto k = key(source, id);
  auto [it, inserted] = seen_.try_emplace(k, Entry{now_ms, false});
  if (!inserted) return it->second.stored ? Claim::stored : Claim::storing;
  order_.emplace_back(now_ms, std::move(k));
  return Claim::claimed;
}

void IdempotencyCache::confirm(const std::string& source, const std::string& id) {
  std::lock_guard lock(mu_);
  if (auto it = seen_.find(key(source, id)); it != seen_.end()) it->second.stored = true;
}

void IdempotencyCache::release(const std::string& source, const std::string& id) {
  std::lock_guard lock(mu_);
  seen_.erase(key(source, id));
}

std::size_t IdempotencyCache::size() const {
  std::lock_guard lock(mu_);
  return seen_.size();
}

void BrokerRegistry::put(std::shared_ptr<Broker> broker) {
  // Series that may stay at zero for long are there from the start (dashboards and alerts see 0, not
  // "no data").
  auto& metrics = MetricsRegistry::global();
  metrics.counter("sluice_broker_events_dropped_total", "Events dropped by a broker, by reason.",
                  {{"broker", broker->spec.name}, {"reason", "ttl"}});
  broker->appended_events =
      &metrics.counter("sluice_broker_events_appended_total", "Events durably appended to a broker's log.",
                       {{"broker", broker->spec.name}});
  broker->appended_bytes =
      &metrics.counter("sluice_broker_appended_bytes_total", "Bytes of events appended to a broker's log.",
                       {{"broker", broker->spec.name}});
  broker->duplicates =
      &metrics.counter("sluice_broker_duplicates_total", kDuplicatesHelp, {{"broker", broker->spec.name}});
  std::unique_lock lock(mu_);
  unavailable_.erase(broker->spec.name);
  brokers_[broker->spec.name] = std::move(broker);
}

Error BrokerRegistry::not_found(const std::string& name) const {
  if (auto reason = unavailable(name))
    return make_error("broker", "broker \"" + name + "\" is not ready: " + *reason, 503);
  return make_error("broker", "no broker named \"" + name + "\"", 404);
}

void BrokerRegistry::set_unavailable(const std::string& name, std::string reason) {
  std::unique_lock lock(mu_);
  unavailable_[name] = std::move(reason);
}

std::optional<std::string> BrokerRegistry::unavailable(const std::string& name) const {
  std::shared_lock lock(mu_);
  auto it = unavailable_.find(name);
  if (it == unavailable_.end() || brokers_.count(name)) return std::nullopt;
  return it->second;
}

std::shared_ptr<Broker> BrokerRegistry::remove(const std::string& name) {
  std::unique_lock lock(mu_);
  unavailable_.erase(name);
  auto it = brokers_.find(name);
  if (it == brokers_.end()) return nullptr;
  auto broker = std::move(it->second);
  brokers_.erase(it);
  return broker;
}

std::shared_ptr<Broker> BrokerRegistry::find(const std::string& name) const {
  std::shared_lock lock(mu_);
  auto it = brokers_.find(name);
  return it == brokers_.end() ? nullptr : it->second;
}

std::vector<std::shared_ptr<Broker>> BrokerRegistry::all() const {
  std::shared_lock lock(mu_);
  std::vector<std::shared_ptr<Broker>> out;
  for (const auto& [name, broker] : brokers_) out.push_back(broker);
  return out;
}

void rebuild_idempotency(Broker& broker, std::int64_t window_start_ms) {
  if (!broker.idempotency || !broker.idempotency->enabled()) return;
  // Only the window is read, not the whole log (at segment granularity for a file log).
  std::uint64_t offset = broker.log->offset_for_time(window_start_ms);
  const std::uint64_t end = broker.log->end_offset();
  while (offset < end) {
    auto records = broker.log->read(offset, 1024);
    if (!records) {
      SLUICE_LOG(broker, warn,
                 "[broker={}] rebuilding the idempotency window stopped at offset {}: {}; a copy of an event "
                 "stored after it is not recognised as a duplicate until the window has passed",
                 broker.spec.name, offset, records.error().to_string());
      break;
    }
    if (records.value().empty()) break;
    for (const auto& record : records.value()) {
      offset = record.offset + 1;
      if (record.append_time_ms < window_start_ms) continue;
      auto event = parse_protobuf(record.payload, Validation::stored);
      if (event && broker.idempotency->claim(event.value().source, event.value().id, record.append_time_ms) ==
                       IdempotencyCache::Claim::claimed)
        broker.idempotency->confirm(event.value().source, event.value().id);
    }
  }
}

namespace {

/// The RFC 3339 text of a millisecond, formatted once per millisecond and I/O thread.
const std::string& arrival_text(std::int64_t unix_millis) {
  thread_local std::int64_t millis = -1;
  thread_local std::string text;
  if (unix_millis != millis) {
    text = format_rfc3339(unix_millis);
    millis = unix_millis;
  }
  return text;
}

}  // namespace

std::optional<int> broker_ttl(const CloudEvent& event) {
  auto it = event.extensions.find("knativebrokerttl");
  if (it == event.extensions.end()) return std::nullopt;
  if (it->second.type == AttributeType::Integer) return it->second.integer;
  int value = 0;
  const auto& text = it->second.text;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || ptr != text.data() + text.size()) return std::nullopt;
  return value;
}

void PublishCompletion::operator()(Result<std::uint64_t> result) {
  const auto end_ns = unix_now_ns();
  for (auto& span : spans) {
    span.end_unix_ns = end_ns;
    span.error = !result;
    if (!result) span.attributes.emplace_back("error", result.error().message);
  }
  Tracer::global().record(std::span<Span>(spans.data(), spans.size()));
  if (result) {
    broker->appended_events->inc(static_cast<double>(count));
    broker->appended_bytes->inc(static_cast<double>(bytes));
    if (broker->idempotency)
      for (auto& [source, id] : claimed) broker->idempotency->confirm(source, id);
    if (duplicates > 0) broker->duplicates->inc(static_cast<double>(duplicates));
  } else if (broker->idempotency) {
    for (auto& [source, id] : claimed) broker->idempotency->release(source, id);
  }
  done(std::move(result));
}

void BrokerRegistry::publish(const std::string& name, std::vector<CloudEvent> events,
                             std::function<void(Result<std::uint64_t>)> done, asio::any_io_executor home) {
  auto broker = find(name);
  if (!broker) {
    done(not_found(name));
    return;
  }
  publish(std::move(broker), std::move(events), std::move(done), std::move(home));
}

void BrokerRegistry::publish(std::shared_ptr<Broker> broker, std::vector<CloudEvent> events,
                             std::function<void(Result<std::uint64_t>)> done, asio::any_io_executor home) {
  const std::string& name = broker->spec.name;
  auto& metrics = MetricsRegistry::global();
  const std::int64_t now_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(clock_.wall().time_since_epoch()).count();
  const std::string& arrival = arrival_text(now_ms);
  const std::int64_t start_ns = unix_now_ns();
  auto completion = std::make_unique<PublishCompletion>();
  completion->broker = broker;
  completion->done = std::move(done);
  auto& spans = completion->spans;
  auto& claimed = completion->claimed;
  // A batch is all-or-nothing: a refused event releases the idempotency keys its batch claimed so far.
  auto fail = [&completion](Error error) {
    for (auto& [source, id] : completion->claimed) completion->broker->idempotency->release(source, id);
    completion->done(std::move(error));
  };
  std::vector<std::string> payloads;
  payloads.reserve(events.size());
  std::int64_t bytes = 0;
  for (auto& event : events) {
    auto ttl = broker_ttl(event);
    if (event.extensions.count("knativebrokerttl") && !ttl) {
      fail(make_error("knativebrokerttl", "must be an integer hop count", 400));
      return;
    }
    if (ttl && *ttl <= 0) {
      metrics
          .counter("sluice_broker_events_dropped_total", "Events dropped by a broker, by reason.",
                   {{"broker", name}, {"reason", "ttl"}})
          .inc();
      SLUICE_LOG(broker, warn,
                 "[broker={}] dropped event id={} source={}: hop limit (knativebrokerttl) exhausted", name,
                 event.id, event.source);
      fail(make_error("knativebrokerttl",
                      "hop limit exhausted: the event has looped through brokers too often", 400));
      return;
    }
    // What the broker adds to the stored event (a hop count, the arrival time, a traceparent: a new root
    // when the publisher gave none) is written while encoding, sorted by name.
    std::optional<TraceParent> parent;
    if (auto it = event.extensions.find("traceparent"); it != event.extensions.end())
      parent = TraceParent::parse(it->second.to_header_string());
    std::array<char, TraceParent::kTextSize> root_text;
    std::string_view root_traceparent;
    if (!parent) {
      parent = TraceParent::make_root();
      parent->write(root_text.data());
      root_traceparent = std::string_view(root_text.data(), root_text.size());
    }
    std::array<ExtraAttribute, 3> added;
    std::size_t n_added = 0;
    added[n_added++] = {"knativearrivaltime", AttributeType::String, arrival};
    if (!ttl) added[n_added++] = {"knativebrokerttl", AttributeType::Integer, {}, broker->spec.ttl};
    if (!root_traceparent.empty())
      added[n_added++] = {"traceparent", AttributeType::String, root_traceparent};
    // The broker's "publish" span is a child of the event's traceparent.
    Span span;
    span.trace_id = parent->trace_id;
    span.span_id = SpanId::random();
    span.parent_span_id = parent->span_id;
    span.name = "publish";
    span.event_id = event.id;
    span.start_unix_ns = start_ns;
    span.attributes = {{"broker", name}, {"event.type", event.type}, {"event.source", event.source}};
    spans.push_back(std::move(span));
    if (broker->idempotency && broker->idempotency->enabled()) {
      const auto claim = broker->idempotency->claim(event.source, event.id, now_ms);
      // Stored before, or earlier in this batch: acknowledge only.
      if (claim == IdempotencyCache::Claim::stored ||
          (claim == IdempotencyCache::Claim::storing &&
           std::find(claimed.begin(), claimed.end(), std::pair(event.source, event.id)) != claimed.end())) {
        ++completion->duplicates;
        continue;
      }
      if (claim == IdempotencyCache::Claim::storing) {
        fail(make_error("event",
                        "an event with source \"" + event.source + "\" and id \"" + event.id +
                            "\" is being stored; retry",
                        503));
        return;
      }
      claimed.emplace_back(event.source, event.id);
    }
    payloads.push_back(to_protobuf(event, std::span(added.data(), n_added)));
    bytes += static_cast<std::int64_t>(payloads.back().size());
    // maxEventSize bounds the event as its publisher sent it: what the broker adds does not count (the
    // encoding without it is made only when the stored record is over the bound).
    if (static_cast<std::int64_t>(payloads.back().size()) > broker->spec.max_event_size) {
      const std::size_t sent = to_protobuf(event).size();
      if (static_cast<std::int64_t>(sent) > broker->spec.max_event_size) {
        std::string where;
        if (events.size() > 1) where = " (batch event " + std::to_string(&event - events.data()) + ")";
        fail(make_error("",
                        "event of " + std::to_string(sent) +
                            " bytes (its protobuf encoding) exceeds the broker's maxEventSize of " +
                            std::to_string(broker->spec.max_event_size) + where,
                        413));
        return;
      }
    }
  }
  if (payloads.empty()) {
    broker->duplicates->inc(static_cast<double>(completion->duplicates));
    completion->done(broker->log->end_offset());
    return;
  }
  completion->count = payloads.size();
  completion->bytes = bytes;
  completion->home = std::move(home);
  // The callback holds only the completion's address (it fits in std::function without allocating);
  // the log calls it exactly once.
  broker->log->append(std::move(payloads), [c = completion.release()](Result<std::uint64_t> result) {
    std::unique_ptr<PublishCompletion> owned(c);
    if (!owned->home) return (*owned)(std::move(result));
    auto home = owned->home;
    asio::post(home, [owned = std::move(owned), result = std::move(result)]() mutable {
      (*owned)(std::move(result));
    });
  });
}

}  // namespace sluice
