#pragma once
// The brokers a server runs: each with its spec, its event log and its idempotency cache.
// Ingress, dispatchers and the control plane look brokers up here; the server's controller adds and
// removes them as Broker resources change.

#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include <boost/container/small_vector.hpp>

#include "broker/broker_spec.hpp"
#include "broker/event_log.hpp"
#include "broker/token_bucket.hpp"
#include "core/asio.hpp"
#include "core/clock.hpp"
#include "core/cloud_event.hpp"
#include "core/metrics.hpp"
#include "core/result.hpp"
#include "core/trace.hpp"

namespace sluice {

/// Remembers (source, id) pairs published within a window so that a retried publish is acknowledged
/// without storing the event twice. Thread-safe. Bounded by `max_entries` (oldest forgotten first).
class IdempotencyCache {
 public:
  explicit IdempotencyCache(std::chrono::milliseconds window, std::size_t max_entries = 1'000'000)
      : window_(window), max_entries_(max_entries) {}

  enum class Claim {
    claimed,  // new: store the event, then confirm() or release() the key
    stored,   // stored within the window: acknowledge without storing again
    storing,  // another publish of the key is still being appended: its outcome is not known yet
  };
  /// Claims the key for a publish at `now_ms`.
  Claim claim(const std::string& source, const std::string& id, std::int64_t now_ms);
  /// Marks a claimed key as stored (its append is durable): later claims get `stored`.
  void confirm(const std::string& source, const std::string& id);
  /// Gives a claimed key back (the append failed), so a retry can store it.
  void release(const std::string& source, const std::string& id);
  bool enabled() const { return window_.count() > 0; }
  std::size_t size() const;

 private:
  static std::string key(const std::string& source, const std::string& id);
  void expire(std::int64_t now_ms);

  std::chrono::milliseconds window_;
  std::size_t max_entries_;
  mutable std::mutex mu_;
  struct Entry {
    std::int64_t claimed_ms;
    bool stored;
  };
  std::unordered_map<std::string, Entry> seen_;
  std::deque<std::pair<std::int64_t, std::string>> order_;
};

/// One running broker.
struct Broker;

/// What finishing one publish takes once the log answers: its spans, counters and the caller's callback.
/// One allocation per publish, made and freed on the caller's thread when it gives a home executor.
struct PublishCompletion {
  std::shared_ptr<Broker> broker;
  std::vector<std::pair<std::string, std::string>> claimed;  // idempotency keys to confirm or release
  std::size_t count = 0;
  std::size_t duplicates = 0;  // events of the batch acknowledged as already stored
  std::int64_t bytes = 0;
  boost::container::small_vector<Span, 1> spans;
  std::function<void(Result<std::uint64_t>)> done;
  asio::any_io_executor home;

  void operator()(Result<std::uint64_t> result);
};

struct Broker {
  BrokerSpec spec;
  std::shared_ptr<EventLog> log;
  std::unique_ptr<IdempotencyCache> idempotency;
  std::unique_ptr<TokenBucket> rate_limit;  // spec.ingress.rateLimit; null = unlimited
  std::unique_ptr<TokenBucket> byte_quota;  // spec.ingress.quota, in bytes; null = unlimited
  // The broker's append counters, looked up once by BrokerRegistry::put (series of brokers are never
  // removed): appends complete on the log's writer thread, between group commits.
  Counter* appended_events = nullptr;
  Counter* appended_bytes = nullptr;
  Counter* duplicates = nullptr;  // events acknowledged as already stored
};

class BrokerRegistry {
 public:
  explicit BrokerRegistry(Clock& clock) : clock_(clock) {}

  void put(std::shared_ptr<Broker> broker);
  std::shared_ptr<Broker> remove(const std::string& name);
  std::shared_ptr<Broker> find(const std::string& name) const;
  std::vector<std::shared_ptr<Broker>> all() const;

  /// How often the server tries again to open an unavailable broker's log: also the Retry-After of
  /// the 503 its publishers get.
  static constexpr std::chrono::seconds kUnavailableRetry{5};

  /// A Broker resource that exists but has no log (its Kafka cluster refused or did not answer):
  /// publishing to it answers 503 with `reason` instead of 404. put() and remove() clear it.
  void set_unavailable(const std::string& name, std::string reason);
  /// The reason set by set_unavailable, if the name has no broker and one was set.
  std::optional<std::string> unavailable(const std::string& name) const;
  /// What to answer for a name find() does not know: 503 for an unavailable broker, else 404.
  Error not_found(const std::string& name) const;

  /// Normalises events for storage (knativearrivaltime, knativebrokerttl, hop check, idempotency)
  /// and appends them to the broker's log as one all-or-nothing batch. `done` gets the first offset,
  /// or an Error whose code is the HTTP status to answer (400, 404, 413, 429, 503). A batch whose
  /// events were all stored before is acknowledged with the end offset and stores nothing. An event
  /// whose (source, id) another publish is still appending fails the batch with 503: only once that
  /// append is durable is a retry acknowledged as a duplicate (or, if it failed, stored).
  ///
  /// `done` runs on the log's writer thread, or, given `home` (the caller's I/O context), there: the
  /// writer then only posts the completion, and what finishing a publish takes (its spans, counters,
  /// freeing what the caller's thread allocated) is done on the caller's thread, off the writer's cycle.
  /// Errors found before appending call `done` at once, on the calling thread.
  void publish(const std::string& broker, std::vector<CloudEvent> events,
               std::function<void(Result<std::uint64_t>)> done, asio::any_io_executor home = {});
  /// The same, for a broker the caller has already found.
  void publish(std::shared_ptr<Broker> broker, std::vector<CloudEvent> events,
               std::function<void(Result<std::uint64_t>)> done, asio::any_io_executor home = {});

  Clock& clock() { return clock_; }

 private:
  Clock& clock_;
  mutable std::shared_mutex mu_;
  std::map<std::string, std::shared_ptr<Broker>> brokers_;
  std::map<std::string, std::string> unavailable_;
};

/// Refills a broker's idempotency cache with the (source, id) of records appended since
/// `window_start_ms`, so duplicates are recognised across restarts.
void rebuild_idempotency(Broker& broker, std::int64_t window_start_ms);

/// Reads the hop counter (knativebrokerttl, Integer or digits); nullopt when absent or malformed.
std::optional<int> broker_ttl(const CloudEvent& event);

}  // namespace sluice
