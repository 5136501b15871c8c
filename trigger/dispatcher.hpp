#pragma once
// TriggerDispatcher: delivers one Trigger's events from its broker's log to its subscriber.
//
// Reading: the dispatcher owns a cursor in the broker's EventLog. A trigger that has a committed cursor
// (CursorStore) resumes there. One without a cursor starts where DispatcherOptions::start says: a new
// trigger at the log's end when the dispatcher is constructed, as Knative triggers see only events
// published after they exist; a trigger that existed before and lost its cursor (a damaged journal) at
// the log's beginning, delivering again rather than skipping. The constructor commits that starting
// cursor, so every trigger that exists has one: a restart never skips what was published in between, and
// a trigger found without a cursor has lost it.
//
// Per event: decode (protobuf format), filter, then deliver in binary content mode (structured when
// spec.delivery.format is json) with `Prefer: reply`. An attempt succeeds on 2xx; its body, when it holds
// a CloudEvent (binary or structured; a batch gives several), is a reply published to the broker through
// ReplyPublisher, while an empty body is a plain acknowledgement and any other body is a failed attempt.
// Failed attempts are retried when is_retryable_status() says so, after backoff_delay(); on 429 and 503 a
// Retry-After header (seconds or HTTP-date) lengthens the wait, up to retryAfterMax. When retries run
// out (or the status is final) the event goes to the dead-letter sink with Knative's extensions
// knativeerrordest, knativeerrorcode and knativeerrordata (base64 of at most 1 KiB of the last body); if
// that sink fails too the event stays pending and the dead letter is retried with backoff until it
// succeeds (Knative's Kafka broker would drop it; Sluice does not), counted in dlq_pending. Without a
// dead-letter sink the event is dropped with a log line and sluice_trigger_events_dropped_total.
//
// Hop limit: the broker-internal extension knativebrokerttl is removed from what the subscriber and the
// dead-letter sink receive (as Knative's broker filter does), and a reply carries knativebrokerttl = the
// event's own − 1 (the event's value is an Integer or a string of digits; absent means
// DispatcherOptions::default_ttl). A reply whose ttl would be ≤ 0 is not
// published: it is logged and counted in sluice_broker_replies_dropped_total{reason="ttl"}, and the
// delivery itself counts as done. A reply whose publish fails transiently (503, 429, 5xx) is retried with
// backoff; one the broker refuses for good (4xx other than 408/429, e.g. 413 over maxEventSize) is logged,
// counted in replies_dropped{reason="rejected"}, and the delivery counts as a failed attempt (retried,
// then dead-lettered), like a body that is not a CloudEvent.
//
// In flight: unordered triggers run up to maxInFlight deliveries at once, completing in any order.
// Ordered triggers (annotation kafka.eventing.knative.dev/delivery.order: ordered) deliver the events of
// one `partitionkey` one at a time in log order (retries included) and different keys in parallel, up to
// maxInFlight keys at once; events without a partitionkey are ordered among themselves. Events waiting
// for a retry or for the dead-letter sink keep their slot, so a dead subscriber stalls only its trigger.
//
// Cursor: the committed offset is the low-water mark (LowWaterMark): everything below it is done. Commits
// are coalesced (every commit_interval, or commit_every events) and made once more by stop(). Delivery is
// at-least-once: events in flight at a crash or an expired stop deadline are delivered again.
//
// Threading: everything runs on the given executor, which must be single-threaded (an IoPool context:
// Boost 1.74 loses heap-held strands); each dispatcher is independent (no lock
// is shared between triggers on the delivery path), so a slow subscriber never blocks other triggers.
// stats() may be called from any thread. Lifetime: the EventLog, CursorStore, HttpClient and Clock must
// outlive the dispatcher's work: stop() it (and let the executor finish what stop() gave up on) before
// destroying them.
//
// Metrics (labels {broker, trigger}): sluice_trigger_events_delivered_total, _failed_total (failed
// attempts), _retried_total, _dead_lettered_total, _filtered_total, _dropped_total{reason},
// sluice_trigger_filter_errors_total, sluice_trigger_log_read_errors_total (the log answered an error:
// a damaged record, offsets missing), sluice_trigger_events_expired_total (removed by retention before
// they were read), sluice_trigger_replies_total, sluice_trigger_delivery_duration_seconds
// (per attempt), sluice_trigger_backlog_events, sluice_trigger_in_flight_events,
// sluice_trigger_dead_letter_pending_events; and sluice_broker_replies_dropped_total{broker, reason}.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "broker/cursor_store.hpp"
#include "broker/event_log.hpp"
#include "core/asio.hpp"
#include "core/clock.hpp"
#include "core/cloud_event.hpp"
#include "core/http_client.hpp"
#include "core/metrics.hpp"
#include "core/result.hpp"
#include "trigger/dead_letter_journal.hpp"
#include "trigger/trigger_spec.hpp"

namespace sluice {

/// Sends one request somewhere other than a plain URL (an Agent's requests go through the activator).
/// Must honour request.timeout and request.cancel, and report transport failures as Error (code 0).
using SendFunction = std::function<asio::awaitable<Result<HttpResponse>>(HttpRequest)>;

/// Where a Destination's ref leads: requests go to `url` (with the Destination's uri path appended)
/// through `send`, or through the dispatcher's HttpClient when `send` is empty.
struct ResolvedDestination {
  std::string url;
  SendFunction send;
};

/// Resolves a ref ({kind: Agent|Service, name}) for each attempt, so that an Agent created after the
/// Trigger is found. An Error counts as a failed, retryable attempt. Called on the dispatcher's strand.
using SubscriberResolver = std::function<Result<ResolvedDestination>(const SubscriberRef& ref)>;

/// Appends a reply to the broker (the ingress path: validation, knativearrivaltime, durability) and calls
/// `done` once it is durable or failed, from any thread. A failure is retried with backoff.
using ReplyPublisher = std::function<void(CloudEvent reply, std::function<void(Status)> done)>;

/// Where a trigger without a committed cursor begins (a committed cursor always wins).
enum class StartPosition {
  End,        // a new trigger: the events published from now on
  Beginning,  // a trigger whose cursor was lost: everything its log holds (at least once)
};

struct DispatcherOptions {
  /// Where to begin when the CursorStore holds no cursor for this trigger.
  StartPosition start = StartPosition::End;
  /// Coalescing of cursor commits: at most every commit_interval, or as soon as the low-water mark
  /// moved commit_every offsets.
  std::chrono::milliseconds commit_interval{100};
  std::uint64_t commit_every = 1000;
  /// One log read: at most this many records / about this many bytes.
  std::size_t read_batch_records = 256;
  std::size_t read_batch_bytes = 4 << 20;
  /// Bound of matching events read but not yet started (waiting for a slot or, when ordered, for an
  /// earlier event with the same key).
  std::size_t max_buffered_events = 1000;
  /// And of the bytes of their log records (at least one event is buffered, however large): with events
  /// near maxEventSize the count alone would let one trigger hold a gigabyte behind a slow subscriber.
  std::size_t max_buffered_bytes = 8 << 20;
  /// Bound of the offsets between the low-water mark and the read position: one stuck event stops
  /// reading this far ahead of it.
  std::uint64_t max_window = 100000;
  /// knativebrokerttl assumed for events that carry none.
  int default_ttl = 255;
  /// Longest wait between attempts to reach a failing dead-letter sink or to publish a reply, when
  /// backoffMax is not set.
  std::chrono::milliseconds max_pending_backoff{60000};
  /// Wait before reading again after the log answered an error (a damaged record).
  std::chrono::milliseconds read_error_backoff{1000};
  /// Registry for the metrics; null = MetricsRegistry::global().
  MetricsRegistry* metrics = nullptr;
  /// Sets sluice_trigger_backlog_events. Off where the owner knows the backlog better: a Kafka group's
  /// partitions see only the records fetched, and the group reports its lag (set_backlog_metric()).
  bool report_backlog = true;
  /// Where events given up on are noted for the dashboard; null = DeadLetterJournal::global().
  DeadLetterJournal* dead_letters = nullptr;
};

/// A snapshot of counters since the dispatcher was constructed (the Prometheus counters, by contrast,
/// live as long as the registry).
struct TriggerStats {
  std::uint64_t delivered = 0;         // events acknowledged by the subscriber (2xx)
  std::uint64_t failed = 0;            // failed attempts (non-2xx, transport error, timeout, bad reply)
  std::uint64_t retried = 0;           // retries scheduled
  std::uint64_t dead_lettered = 0;     // events accepted by the dead-letter sink
  std::uint64_t dlq_pending = 0;       // events whose dead-letter sink is failing now (kept, retried)
  std::uint64_t dropped = 0;           // events given up without a dead-letter sink, or undecodable
  std::uint64_t filtered = 0;          // events the filter rejected
  std::uint64_t filter_errors = 0;     // CESQL evaluation errors
  std::uint64_t replies = 0;           // replies published to the broker
  std::uint64_t replies_dropped = 0;   // replies dropped by the hop limit or rejected by the broker
  std::uint64_t in_flight = 0;         // deliveries started and not done (retry waits included)
  std::uint64_t committed_offset = 0;  // the last cursor committed
  std::uint64_t low_water_mark = 0;    // what the next commit will write
  std::uint64_t backlog = 0;           // log end − low-water mark
  std::uint64_t log_read_errors = 0;   // reads of the log that failed (damaged record, missing offsets)
  std::uint64_t expired = 0;           // events removed by retention before this trigger read them
  // The error of the last read of the log (it is retried every read_error_backoff); empty once a read
  // succeeds. Non-empty means the trigger is stuck at that offset until the log is repaired.
  std::string read_error;
  // Delivery attempts' duration, from the trigger's histogram (sluice_trigger_delivery_duration_seconds,
  // which lives as long as the trigger): how many, their mean, and the median and 99th percentile
  // estimated from the buckets.
  std::uint64_t attempts_timed = 0;
  double latency_mean_seconds = 0;
  double latency_p50_seconds = 0;
  double latency_p99_seconds = 0;
};

/// The counters as a trigger's `status.delivery` shows them (camelCase keys).
nlohmann::json to_status_json(const TriggerStats& stats);

class TriggerDispatcher {
 public:
  /// `spec.delivery` must already be the effective one: merge(broker's delivery, trigger's). `broker` is
  /// the broker's name (metric labels, cursor key, logs), normally spec.broker. `resolver` may be empty
  /// when neither the subscriber nor the dead-letter sink uses a ref. Commits the starting cursor when the
  /// store holds none (or one past the log's end), on the calling thread; nothing else runs before
  /// start().
  TriggerDispatcher(TriggerSpec spec, std::string broker, EventLog& log, CursorStore& cursors,
                    HttpClient& client, Clock& clock, asio::any_io_executor executor,
                    SubscriberResolver resolver, ReplyPublisher publish, DispatcherOptions options = {});
  /// Asks a running dispatcher to stop (without waiting); work still in flight keeps the internal state
  /// alive until it finishes.
  ~TriggerDispatcher();
  TriggerDispatcher(const TriggerDispatcher&) = delete;
  TriggerDispatcher& operator=(const TriggerDispatcher&) = delete;

  /// Subscribes to the log and starts reading (committing the starting cursor again if the constructor
  /// could not). Once only.
  void start();

  /// Stops reading, lets deliveries in flight finish up to `deadline` (then cancels them: they stay
  /// uncommitted and are delivered again after a restart), drops retry waits, commits the low-water mark
  /// and unsubscribes from the log. `done` runs on the dispatcher's strand. Idempotent; a stop before
  /// start() completes at once.
  void async_stop(std::chrono::milliseconds deadline, std::function<void()> done);

  /// async_stop() and wait. Must not be called from a thread that runs the executor (it would wait for
  /// itself); gives up waiting after deadline + 5 s if the executor is not running.
  void stop(std::chrono::milliseconds deadline = std::chrono::seconds(10));

  /// Applies a changed Trigger (filter, subscriber, delivery, ordering) to what is read and attempted
  /// from now on; the cursor and the deliveries in flight are kept. The name and broker must not
  /// change (recreate the dispatcher for that). `spec.delivery` is the merged one, as in the constructor.
  Status update(TriggerSpec spec);

  /// Thread-safe snapshot.
  TriggerStats stats() const;

  const std::string& name() const { return name_; }
  const std::string& broker() const { return broker_; }

  /// The CursorStore key of a trigger ("broker/trigger"): erase it when the Trigger is deleted.
  static std::string cursor_key(const std::string& broker, const std::string& trigger);

  /// Removes this trigger's series from the registry (the Trigger was deleted). Call only after stop(),
  /// and only when no other dispatcher for the same trigger exists (they share the series).
  static void remove_metrics(MetricsRegistry& registry, const std::string& broker,
                             const std::string& trigger);
  /// Sets sluice_trigger_backlog_events{broker, trigger} for an owner that reports it itself.
  static void set_backlog_metric(MetricsRegistry& registry, const std::string& broker,
                                 const std::string& trigger, double events);

  struct State;  // internal

 private:
  std::string name_;
  std::string broker_;
  std::shared_ptr<State> state_;
};

}  // namespace sluice
