#include "trigger/dispatcher.hpp"

#include "core/request_log.hpp"
#include "core/trace.hpp"

#include <algorithm>
#include <deque>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <vector>

#include "core/base64.hpp"
#include "core/http_binding.hpp"
#include "core/log.hpp"
#include "core/protobuf_format.hpp"
#include "trigger/kafka_partition_log.hpp"
#include "trigger/low_water_mark.hpp"

namespace sluice {

namespace {

using std::chrono::milliseconds;

constexpr const char* kTtlExtension = "knativebrokerttl";
constexpr std::size_t kErrorDataBytes = 1024;

Labels trigger_labels(const std::string& broker, const std::string& trigger) {
  return {{"broker", broker}, {"trigger", trigger}};
}

constexpr const char* kBacklogHelp =
    "Events between the trigger's low-water mark and the log end (on a Kafka-backed broker, the consumer "
    "group's lag).";

Labels with_reason(Labels labels, const char* reason) {
  labels.emplace_back("reason", reason);
  return labels;
}

// The hop counter of an event: Integer, or a String of digits (HTTP binary mode carries no type);
// anything else counts as absent.
int event_ttl(const CloudEvent& event, int fallback) {
  auto it = event.extensions.find(kTtlExtension);
  if (it == event.extensions.end()) return fallback;
  if (it->second.type == AttributeType::Integer) return it->second.integer;
  const std::string& text = it->second.text;
  if (text.empty() || text.size() > 9) return fallback;
  int value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return fallback;
    value = value * 10 + (c - '0');
  }
  return value;
}

constexpr const char* kDroppedHelp =
    "Events given up without a dead-letter sink: retries ran out (retries_exhausted), the subscriber "
    "answered a status that is not retried such as 400 (not_retryable), or the log record is not a "
    "CloudEvent (undecodable).";

// A publish error that retrying cannot fix: a 4xx from the ingress path (400 invalid event, 403 event
// policy, 404 broker gone, 413 over maxEventSize, ...), except 408 and 429, which say "later".
bool is_final_rejection(int code) {
  return code >= 400 && code <= 499 && code != 408 && code != 429;
}

constexpr const char* kRepliesDroppedHelp =
    "Replies not published to the broker, by reason (ttl: the hop limit knativebrokerttl ran out; "
    "rejected: the broker refused the reply for good, e.g. over maxEventSize).";

std::string format_ms(milliseconds d) {
  return std::to_string(d.count()) + "ms";
}

// The event's W3C tracestate (the CloudEvents distributed tracing extension), or "": it is vendor data
// of the event's trace, which goes with every traceparent sent on the event's behalf (W3C Trace Context
// §3.3), unchanged since Sluice adds no entry of its own.
std::string tracestate_of(const CloudEvent& event) {
  auto it = event.extensions.find("tracestate");
  return it == event.extensions.end() ? std::string() : it->second.to_header_string();
}

}  // namespace

struct TriggerMetricSet {
  TriggerMetricSet(MetricsRegistry& r, const std::string& broker, const std::string& trigger)
      : delivered(r.counter("sluice_trigger_events_delivered_total",
                            "Events acknowledged (2xx) by the trigger's subscriber.",
                            trigger_labels(broker, trigger))),
        failed(r.counter("sluice_trigger_events_failed_total",
                         "Failed delivery attempts (non-2xx, transport error, timeout, invalid reply).",
                         trigger_labels(broker, trigger))),
        retried(r.counter("sluice_trigger_events_retried_total", "Delivery retries scheduled.",
                          trigger_labels(broker, trigger))),
        dead_lettered(r.counter("sluice_trigger_events_dead_lettered_total",
                                "Events accepted by the dead-letter sink after retries ran out.",
                                trigger_labels(broker, trigger))),
        filtered(r.counter("sluice_trigger_events_filtered_total", "Events the trigger's filter rejected.",
                           trigger_labels(broker, trigger))),
        dropped_exhausted(r.counter("sluice_trigger_events_dropped_total", kDroppedHelp,
                                    with_reason(trigger_labels(broker, trigger), "retries_exhausted"))),
        dropped_not_retryable(r.counter("sluice_trigger_events_dropped_total", kDroppedHelp,
                                        with_reason(trigger_labels(broker, trigger), "not_retryable"))),
        dropped_undecodable(r.counter("sluice_trigger_events_dropped_total", kDroppedHelp,
                                      with_reason(trigger_labels(broker, trigger), "undecodable"))),
        filter_errors(r.counter("sluice_trigger_filter_errors_total",
                                "CESQL filter evaluations that raised an error (the event did not match).",
                                trigger_labels(broker, trigger))),
        log_read_errors(r.counter("sluice_trigger_log_read_errors_total",
                                  "Reads of the broker's log that failed for this trigger (a record fails "
                                  "its CRC check, offsets missing from the log); the trigger retries them.",
                                  trigger_labels(broker, trigger))),
        expired(r.counter("sluice_trigger_events_expired_total",
                          "Events removed by the log's retention before this trigger delivered them.",
                          trigger_labels(broker, trigger))),
        replies(r.counter("sluice_trigger_replies_total",
                          "Replies from the subscriber published to the broker.",
                          trigger_labels(broker, trigger))),
        replies_dropped_ttl(r.counter("sluice_broker_replies_dropped_total", kRepliesDroppedHelp,
                                      {{"broker", broker}, {"reason", "ttl"}})),
        replies_dropped_rejected(r.counter("sluice_broker_replies_dropped_total", kRepliesDroppedHelp,
                                           {{"broker", broker}, {"reason", "rejected"}})),
        duration(r.histogram("sluice_trigger_delivery_duration_seconds",
                             "Duration of one delivery attempt to the subscriber.", latency_buckets(),
                             trigger_labels(broker, trigger))),
        backlog(r.gauge("sluice_trigger_backlog_events", kBacklogHelp, trigger_labels(broker, trigger))),
        in_flight(r.gauge("sluice_trigger_in_flight_events",
                          "Deliveries started and not done (retry waits and dead-letter retries included).",
                          trigger_labels(broker, trigger))),
        dlq_pending(r.gauge("sluice_trigger_dead_letter_pending_events",
                            "Events whose dead-letter sink is failing; they are kept and retried.",
                            trigger_labels(broker, trigger))) {}

  Counter& delivered;
  Counter& failed;
  Counter& retried;
  Counter& dead_lettered;
  Counter& filtered;
  Counter& dropped_exhausted;
  Counter& dropped_not_retryable;
  Counter& dropped_undecodable;
  Counter& filter_errors;
  Counter& log_read_errors;
  Counter& expired;
  Counter& replies;
  Counter& replies_dropped_ttl;
  Counter& replies_dropped_rejected;
  Histogram& duration;
  Gauge& backlog;
  Gauge& in_flight;
  Gauge& dlq_pending;
};

struct TriggerDispatcher::State : std::enable_shared_from_this<TriggerDispatcher::State> {
  struct Job {
    std::uint64_t offset = 0;
    CloudEvent event;  // without knativebrokerttl, which stays inside the broker (as in Knative)
    int ttl = 0;       // the event's hop counter
    bool ordered = false;
    std::string key;        // ordered: "" for events without a partitionkey, else "k" + the key
    std::size_t bytes = 0;  // of its log record: counted in buffered_bytes while it waits
  };

  enum class Outcome { Done, Abandoned };

  // One delivery attempt as the retry loop and the dead-letter step see it.
  struct Attempt {
    bool ok = false;
    bool retryable = true;
    int status = 0;  // 0: no HTTP response
    std::string dest;
    std::string error;
    std::string body_head;  // at most kErrorDataBytes of the response body
    std::optional<milliseconds> retry_after;
    std::vector<CloudEvent> replies;
  };

  struct Target {
    std::string url;
    SendFunction send;
  };

  State(TriggerSpec spec_in, std::string broker_in, EventLog& log_in, CursorStore& cursors_in,
        HttpClient& client_in, Clock& clock_in, asio::any_io_executor executor,
        SubscriberResolver resolver_in, ReplyPublisher publish_in, DispatcherOptions options_in)
      : name(spec_in.name),
        broker(std::move(broker_in)),
        key(cursor_key(broker, name)),
        log(log_in),
        cursors(cursors_in),
        client(client_in),
        clock(clock_in),
        strand(std::move(executor)),
        resolver(std::move(resolver_in)),
        publish(std::move(publish_in)),
        options(options_in),
        metrics(options.metrics != nullptr ? *options.metrics : MetricsRegistry::global(), broker, name),
        spec(std::make_shared<const TriggerSpec>(std::move(spec_in))),
        wake_timer(strand),
        commit_timer(strand),
        drain_timer(strand) {
    const std::uint64_t end = log.end_offset();
    const auto saved = cursors.load(key);
    std::uint64_t start = end;  // a new trigger sees the events published from now on
    if (!saved && options.start == StartPosition::Beginning) {
      start = log.start_offset();
      SLUICE_LOG(trigger, warn,
                 "[broker={} trigger={}] no cursor: it was lost (a damaged cursor journal, or a crash before "
                 "its first commit); starting at the beginning of the log (offset {}) so that nothing is "
                 "skipped",
                 broker, name, start);
    }
    if (saved) {
      start = *saved;
      if (start > end) {
        SLUICE_LOG(
            trigger, warn,
            "[broker={} trigger={}] committed cursor {} is past the log end {} (log replaced?): starting "
            "at the end",
            broker, name, start, end);
        start = end;
      }
    }
    lwm = LowWaterMark(start);
    last_commit = start;
    committed_atomic = start;
    low_atomic = start;
    // Before the caller answers (the apply that created the trigger): a trigger without a cursor is then
    // one that lost it.
    if (saved != start) commit();
  }

  // ---- configuration and collaborators ----
  const std::string name;
  const std::string broker;
  const std::string key;
  EventLog& log;
  CursorStore& cursors;
  HttpClient& client;
  Clock& clock;
  asio::any_io_executor strand;  // a single-threaded context: serialises all work without a strand
  SubscriberResolver resolver;
  ReplyPublisher publish;
  const DispatcherOptions options;
  TriggerMetricSet metrics;

  // ---- strand-only state ----
  std::shared_ptr<const TriggerSpec> spec;
  LowWaterMark lwm;
  std::uint64_t last_commit = 0;
  std::deque<Job> ready;                         // unordered jobs waiting for a slot
  std::map<std::string, std::deque<Job>> keyed;  // ordered jobs waiting, per key
  std::set<std::string> running_keys;            // keys with a job running
  std::deque<std::string> runnable;              // keys whose first waiting job may start
  std::size_t buffered = 0;                      // jobs in `ready` and `keyed`
  std::size_t buffered_bytes = 0;                // their records' bytes
  std::size_t running = 0;                       // job coroutines alive
  bool started = false;
  bool stopping = false;
  bool stopped = false;
  bool wake_pending = false;
  std::uint64_t subscription = 0;
  bool subscribed = false;
  asio::steady_timer wake_timer;
  asio::steady_timer commit_timer;
  asio::steady_timer drain_timer;
  std::set<asio::steady_timer*> sleepers;
  std::shared_ptr<CancelSignal> cancel = std::make_shared<CancelSignal>();
  std::vector<std::function<void()>> stop_waiters;

  // ---- counters readable from any thread ----
  std::atomic<std::uint64_t> delivered{0}, failed{0}, retried{0}, dead_lettered{0}, dlq_pending{0},
      dropped{0}, filtered{0}, filter_errors{0}, replies{0}, replies_dropped{0}, in_flight{0},
      committed_atomic{0}, low_atomic{0}, log_read_errors{0}, expired{0};
  // The error of the last read of the log, empty once a read succeeds again (stats() reads it).
  mutable std::mutex read_error_mu;
  std::string read_error;
  bool read_failing = false;  // the strand's view of read_error: clearing costs nothing while reads work
  // Offsets of a KafkaPartitionLog have gaps (compaction, transaction markers): skipping one is normal,
  // not data lost to retention.
  const bool offsets_have_gaps = dynamic_cast<const KafkaPartitionLog*>(&log) != nullptr;

  void set_read_error(std::string error) {
    if (error.empty() && !read_failing) return;
    read_failing = !error.empty();
    std::lock_guard lock(read_error_mu);
    read_error = std::move(error);
  }

  // Offsets [from, to) are gone from the log before this trigger read them: counted and logged, never
  // silent.
  void note_expired(std::uint64_t from, std::uint64_t to) {
    if (to <= from || offsets_have_gaps) return;
    expired.fetch_add(to - from, std::memory_order_relaxed);
    if (!stopped) metrics.expired.inc(static_cast<double>(to - from));
    SLUICE_LOG(trigger, warn,
               "[broker={} trigger={}] offsets {}..{} ({} events) were removed by retention before delivery: "
               "skipping them",
               broker, name, from, to - 1, to - from);
  }

  static void spawn(std::shared_ptr<State> self, asio::awaitable<void> work) {
    auto name = self->name;
    auto broker = self->broker;
    asio::co_spawn(self->strand, std::move(work), [name, broker](std::exception_ptr e) {
      if (!e) return;
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        SLUICE_LOG(trigger, err, "[broker={} trigger={}] internal error: {}", broker, name, ex.what());
      } catch (...) {
        SLUICE_LOG(trigger, err, "[broker={} trigger={}] internal error (unknown exception)", broker, name);
      }
    });
  }

  // Metric updates stop once stop() finished: the server may remove the series after that.
  void count(Counter& counter) {
    if (!stopped) counter.inc();
  }

  void note_progress() {
    low_atomic.store(lwm.low(), std::memory_order_relaxed);
    in_flight.store(running, std::memory_order_relaxed);
    if (!stopped) metrics.in_flight.set(static_cast<double>(running));
  }

  // ---- waking and sleeping ----
  void wake() {
    wake_pending = true;
    wake_timer.cancel();
  }

  asio::awaitable<void> wait_for_wake() {
    if (!wake_pending) {
      // A periodic look at the log end as well, in case a notification was missed.
      wake_timer.expires_after(std::chrono::seconds(1));
      boost::system::error_code ec;
      co_await wake_timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
    wake_pending = false;
  }

  /// Waits `d` unless stop() interrupts; true when the wait ran its course and the dispatcher still runs.
  asio::awaitable<bool> sleep(milliseconds d) {
    if (stopping) co_return false;
    asio::steady_timer timer(strand);
    timer.expires_after(d);
    sleepers.insert(&timer);
    boost::system::error_code ec;
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    sleepers.erase(&timer);
    co_return !stopping;
  }

  // ---- lifecycle ----
  void do_start() {
    if (started || stopping) return;
    started = true;
    commit();  // the starting cursor again, in case the constructor's commit failed
    auto weak = weak_from_this();
    subscription = log.subscribe([weak](std::uint64_t) {
      if (auto self = weak.lock()) asio::post(self->strand, [self] { self->wake(); });
    });
    subscribed = true;
    SLUICE_LOG(trigger, info, "[broker={} trigger={}] dispatching from offset {} to {} (filter {}, {})",
               broker, name, lwm.next(), request_log::redact_secrets(spec->subscriber.to_string()),
               spec->filter.to_string(), spec->order == DeliveryOrder::Ordered ? "ordered" : "unordered");
    auto self = shared_from_this();
    spawn(self, read_loop(self));
    spawn(self, commit_loop(self));
  }

  static asio::awaitable<void> stop_task(std::shared_ptr<State> self, milliseconds deadline,
                                         std::function<void()> done) {
    State& s = *self;
    if (done) s.stop_waiters.push_back(std::move(done));
    if (s.stopped) {
      s.notify_stopped();
      co_return;
    }
    if (s.stopping) co_return;  // the stop in progress notifies every waiter
    s.stopping = true;
    s.wake_timer.cancel();
    s.commit_timer.cancel();
    for (auto* timer : s.sleepers) timer->cancel();
    if (s.started) {
      const auto until = std::chrono::steady_clock::now() + deadline;
      boost::system::error_code ec;
      while (s.running > 0 && std::chrono::steady_clock::now() < until) {
        s.drain_timer.expires_at(until);
        co_await s.drain_timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      }
      const std::size_t cancelled = s.running;
      if (s.running > 0) {
        SLUICE_LOG(
            trigger, warn,
            "[broker={} trigger={}] stop deadline of {} passed with {} deliveries in flight: cancelling "
            "them (they stay uncommitted and are delivered again after a restart)",
            s.broker, s.name, format_ms(deadline), s.running);
        s.cancel->cancel();
        const auto grace = std::chrono::steady_clock::now() + std::chrono::seconds(1);
        while (s.running > 0 && std::chrono::steady_clock::now() < grace) {
          s.drain_timer.expires_at(grace);
          co_await s.drain_timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        }
      }
      s.commit();
      if (s.subscribed) s.log.unsubscribe(s.subscription);
      s.subscribed = false;
      SLUICE_LOG(trigger, info,
                 "[broker={} trigger={}] stopped at offset {} ({} deliveries cancelled in flight, delivered "
                 "again after a restart)",
                 s.broker, s.name, s.last_commit, cancelled);
    }
    s.stopped = true;
    s.notify_stopped();
  }

  void notify_stopped() {
    auto waiters = std::move(stop_waiters);
    stop_waiters.clear();
    for (auto& fn : waiters) fn();
  }

  // ---- cursor ----
  void commit() {
    if (stopped) return;
    const std::uint64_t low = lwm.low();
    low_atomic.store(low, std::memory_order_relaxed);
    if (auto st = cursors.commit(key, low); !st) {
      SLUICE_LOG(trigger, warn, "[broker={} trigger={}] cursor commit at {} failed: {}", broker, name, low,
                 st.error().to_string());
      return;
    }
    last_commit = low;
    committed_atomic.store(low, std::memory_order_relaxed);
  }

  void update_backlog() {
    const std::uint64_t end = log.end_offset();
    const std::uint64_t low = lwm.low();
    if (!stopped && options.report_backlog)
      metrics.backlog.set(static_cast<double>(end > low ? end - low : 0));
  }

  static asio::awaitable<void> commit_loop(std::shared_ptr<State> self) {
    State& s = *self;
    boost::system::error_code ec;
    while (!s.stopping) {
      s.commit_timer.expires_after(s.options.commit_interval);
      co_await s.commit_timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      if (s.stopping) break;
      if (s.lwm.low() != s.last_commit) s.commit();
      s.update_backlog();
    }
  }

  // ---- reading ----
  bool can_read() const {
    return !stopping && buffered < options.max_buffered_events &&
           buffered_bytes < options.max_buffered_bytes && lwm.next() - lwm.low() < options.max_window;
  }

  static asio::awaitable<void> read_loop(std::shared_ptr<State> self) {
    State& s = *self;
    while (!s.stopping) {
      if (!s.can_read()) {
        co_await s.wait_for_wake();
        continue;
      }
      std::uint64_t from = s.lwm.next();
      if (from >= s.log.end_offset()) {
        co_await s.wait_for_wake();
        continue;
      }
      if (const std::uint64_t start = s.log.start_offset(); from < start) {
        s.note_expired(from, start);
        s.lwm.skip_to(start);
        from = start;
      }
      const std::size_t room = s.options.max_buffered_events - s.buffered;
      const std::size_t window_room =
          static_cast<std::size_t>(s.options.max_window - (s.lwm.next() - s.lwm.low()));
      const std::size_t n =
          std::max<std::size_t>(1, std::min({s.options.read_batch_records, room, window_room}));
      const std::size_t bytes_room = std::max<std::size_t>(
          1, std::min(s.options.read_batch_bytes, s.options.max_buffered_bytes - s.buffered_bytes));
      auto records = s.log.read(from, n, bytes_room);
      if (!records) {
        s.log_read_errors.fetch_add(1, std::memory_order_relaxed);
        s.count(s.metrics.log_read_errors);
        s.set_read_error("reading the log at offset " + std::to_string(from) +
                         " failed: " + records.error().to_string());
        SLUICE_LOG(
            trigger, err, "[broker={} trigger={}] reading the log at offset {} failed: {} (retrying in {})",
            s.broker, s.name, from, records.error().to_string(), format_ms(s.options.read_error_backoff));
        co_await s.sleep(s.options.read_error_backoff);
        continue;
      }
      s.set_read_error({});
      if (records.value().empty()) {
        co_await s.wait_for_wake();
        continue;
      }
      for (auto& record : records.value()) {
        // read() starts later than asked when retention moved the log's start meanwhile.
        s.note_expired(from, record.offset);
        from = record.offset + 1;
        s.lwm.skip_to(record.offset);
        s.lwm.add(record.offset);
        s.accept(record);
      }
      s.note_progress();
      s.pump();
      s.maybe_commit();
    }
  }

  void accept(const LogRecord& record) {
    auto event = parse_protobuf(record.payload, Validation::stored);
    if (!event) {
      SLUICE_LOG(trigger, err, "[broker={} trigger={}] log record {} is not a CloudEvent ({}): skipping it",
                 broker, name, record.offset, event.error().to_string());
      dropped.fetch_add(1, std::memory_order_relaxed);
      count(metrics.dropped_undecodable);
      lwm.complete(record.offset);
      return;
    }
    bool had_error = false;
    const bool match = spec->filter.matches(event.value(), &had_error);
    if (had_error) {
      filter_errors.fetch_add(1, std::memory_order_relaxed);
      count(metrics.filter_errors);
    }
    if (!match) {
      filtered.fetch_add(1, std::memory_order_relaxed);
      count(metrics.filtered);
      lwm.complete(record.offset);
      return;
    }
    Job job;
    job.offset = record.offset;
    job.event = std::move(event.value());
    job.ttl = event_ttl(job.event, options.default_ttl);
    job.event.erase_attribute(kTtlExtension);
    job.bytes = record.payload.size();
    ++buffered;
    buffered_bytes += job.bytes;
    if (spec->order == DeliveryOrder::Ordered) {
      job.ordered = true;
      if (const std::string* pk = job.event.attribute_text("partitionkey")) job.key = "k" + *pk;
      auto& queue = keyed[job.key];
      queue.push_back(std::move(job));
      if (queue.size() == 1 && !running_keys.contains(queue.front().key))
        runnable.push_back(queue.front().key);
    } else {
      ready.push_back(std::move(job));
    }
  }

  void pump() {
    if (stopping) return;
    const std::size_t limit = static_cast<std::size_t>(spec->delivery.in_flight_limit());
    while (running < limit) {
      if (!runnable.empty()) {
        std::string k = std::move(runnable.front());
        runnable.pop_front();
        auto it = keyed.find(k);
        if (it == keyed.end() || it->second.empty()) continue;
        Job job = std::move(it->second.front());
        it->second.pop_front();
        if (it->second.empty()) keyed.erase(it);
        running_keys.insert(k);
        launch(std::move(job));
      } else if (!ready.empty()) {
        Job job = std::move(ready.front());
        ready.pop_front();
        launch(std::move(job));
      } else {
        break;
      }
    }
    note_progress();
  }

  void launch(Job job) {
    --buffered;
    buffered_bytes -= job.bytes;
    ++running;
    auto self = shared_from_this();
    spawn(self, run_job(self, std::move(job)));
  }

  void maybe_commit() {
    if (lwm.low() - last_commit >= options.commit_every) commit();
  }

  void finish(const Job& job, bool done) {
    --running;
    if (job.ordered) {
      running_keys.erase(job.key);
      auto it = keyed.find(job.key);
      if (it != keyed.end() && !it->second.empty()) runnable.push_back(job.key);
    }
    if (done) lwm.complete(job.offset);
    note_progress();
    if (stopping) {
      if (running == 0) drain_timer.cancel();
      return;
    }
    maybe_commit();
    pump();
    wake();  // the reader may be waiting for room
  }

  // ---- delivering ----
  static asio::awaitable<void> run_job(std::shared_ptr<State> self, Job job) {
    Outcome outcome = Outcome::Abandoned;
    try {
      outcome = co_await self->deliver(job);
    } catch (const std::exception& e) {
      SLUICE_LOG(trigger, err, "[broker={} trigger={}] delivery of offset {} failed internally: {}",
                 self->broker, self->name, job.offset, e.what());
    }
    self->finish(job, outcome == Outcome::Done);
  }

  Result<Target> resolve(const Destination& dest) {
    if (!dest.ref) return Target{dest.uri, {}};
    if (!resolver)
      return make_error(dest.to_string(),
                        "cannot resolve " + dest.ref->kind + " references here (no resolver)", 0);
    auto resolved = resolver(*dest.ref);
    if (!resolved) return resolved.error();
    return Target{resolved.value().url + dest.uri, std::move(resolved.value().send)};
  }

  asio::awaitable<Result<HttpResponse>> send(const Target& target, HttpRequest request) {
    if (target.send) co_return co_await target.send(std::move(request));
    co_return co_await client.send(std::move(request));
  }

  HttpRequest make_request(const CloudEvent& event, const DeliverySpec& delivery,
                           const std::string& url) const {
    HttpMessage message =
        encode_http(event, delivery.delivery_format() == DeliveryFormat::Structured ? HttpMode::Structured
                                                                                    : HttpMode::Binary);
    HttpRequest request;
    request.method = "POST";
    request.url = url;
    request.headers = std::move(message.headers);
    request.body = std::move(message.body);
    request.timeout = delivery.attempt_timeout();
    request.cancel = cancel;
    return request;
  }

  /// A span of the event's trace around one request sent on its behalf ("deliver", "dead-letter"): the
  /// request carries `traceparent` naming the span, and the event's `tracestate` when the span continues
  /// the event's own trace (a new root trace has no vendor data yet).
  struct TracedRequest {
    Span span;
    std::string traceparent;
    std::string tracestate;
  };

  TracedRequest begin_trace(const CloudEvent& event, const char* span_name) const {
    std::optional<TraceParent> parent;
    if (auto it = event.extensions.find("traceparent"); it != event.extensions.end())
      parent = TraceParent::parse(it->second.to_header_string());
    const TraceParent context = parent ? parent->child() : TraceParent::make_root();
    TracedRequest t;
    t.span.trace_id = context.trace_id;
    t.span.span_id = context.span_id;
    if (parent) t.span.parent_span_id = parent->span_id;
    t.span.name = span_name;
    t.span.event_id = event.id;
    t.span.start_unix_ns = unix_now_ns();
    t.traceparent = context.to_string();
    if (parent) t.tracestate = tracestate_of(event);
    return t;
  }

  /// Ends the span and records it, with the request-log line of the request. `error`: "" when none.
  void end_trace(TracedRequest& t, const char* dest_attribute, const std::string& dest, int status, bool ok,
                 const std::string& error) const {
    Span& span = t.span;
    span.end_unix_ns = unix_now_ns();
    if (request_log::enabled())
      request_log::write({{"kind", "dispatch"},
                          {"method", "POST"},
                          {"url", dest},
                          {"status", status},
                          {"latency_ms", static_cast<double>(span.end_unix_ns - span.start_unix_ns) / 1e6},
                          {"trace_id", span.trace_id.str()},
                          {"event_id", span.event_id},
                          {"broker", broker},
                          {"trigger", name},
                          {"error", error}});
    span.error = !ok;
    span.attributes = {{"broker", broker},
                       {"trigger", name},
                       {dest_attribute, dest},
                       {"http.status_code", std::to_string(status)}};
    if (!error.empty()) span.attributes.emplace_back("error", error);
    Tracer::global().record(std::move(span));
  }

  /// One attempt, traced: the subscriber gets a `traceparent` naming a "deliver" span that is a child of
  /// the event's traceparent (with the event's `tracestate`), and replies without a traceparent of their
  /// own continue that span.
  asio::awaitable<Attempt> attempt(const TriggerSpec& current, const CloudEvent& event) {
    TracedRequest trace = begin_trace(event, "deliver");
    Attempt a = co_await attempt_once(current, event, trace.traceparent, trace.tracestate);
    for (auto& reply : a.replies) {
      if (reply.extensions.count("traceparent")) continue;
      reply.extensions["traceparent"] = AttributeValue::of_string(trace.traceparent);
      if (!trace.tracestate.empty())
        reply.extensions["tracestate"] = AttributeValue::of_string(trace.tracestate);
    }
    end_trace(trace, "subscriber", a.dest, a.status, a.ok, a.ok ? "" : a.error);
    co_return a;
  }

  asio::awaitable<Attempt> attempt_once(const TriggerSpec& current, const CloudEvent& event,
                                        const std::string& traceparent, const std::string& tracestate) {
    Attempt a;
    auto target = resolve(current.subscriber);
    if (!target) {
      a.dest = current.subscriber.to_string();
      a.error = "cannot resolve the subscriber: " + target.error().to_string();
      co_return a;
    }
    a.dest = target.value().url;
    HttpRequest request = make_request(event, current.delivery, target.value().url);
    // Knative asks for a reply event this way; subscribers that have none answer with an empty body.
    request.headers.emplace_back("Prefer", "reply");
    request.headers.emplace_back("traceparent", traceparent);
    if (!tracestate.empty()) request.headers.emplace_back("tracestate", tracestate);
    // Of a non-2xx answer only knativeerrordata's 1 KiB is kept, so its status decides whatever its
    // size (a 400 with a huge body is final, not a transport error) and no megabytes are buffered.
    request.error_body_prefix = kErrorDataBytes;
    const SteadyTime started_at = clock.now();
    auto response = co_await send(target.value(), std::move(request));
    // An attempt that the trigger's stop cancelled says nothing about the subscriber.
    if (!stopped && !cancel->cancelled())
      metrics.duration.observe(std::chrono::duration<double>(clock.now() - started_at).count());
    if (!response) {
      a.error = response.error().to_string();
      co_return a;
    }
    HttpResponse& r = response.value();
    a.status = r.status;
    a.body_head = r.body.substr(0, std::min(r.body.size(), kErrorDataBytes));
    if (r.status >= 200 && r.status <= 299) {
      const std::string* content_type = r.header("content-type");
      const bool structured = content_type != nullptr && detect_http_mode(*content_type) != HttpMode::Binary;
      const bool binary_event = r.header("ce-specversion") != nullptr;
      if (r.body.empty() && !binary_event && !structured) {
        a.ok = true;
        co_return a;
      }
      HttpMessage message{std::move(r.headers), std::move(r.body)};
      auto events = decode_http(message);
      if (!events) {
        // A body that is not an event: the subscriber did not do what was asked (retried).
        a.error = "HTTP " + std::to_string(a.status) + " with a body that is not a CloudEvent (" +
                  events.error().to_string() + ")";
        co_return a;
      }
      a.ok = true;
      a.replies = std::move(events.value());
      co_return a;
    }
    a.retryable = is_retryable_status(r.status);
    a.error = "HTTP " + std::to_string(r.status);
    if (r.status == 429 || r.status == 503) {
      if (const std::string* value = r.header("retry-after"))
        a.retry_after = parse_retry_after(*value, clock.wall());
    }
    co_return a;
  }

  milliseconds pending_backoff(const DeliverySpec& delivery, int n) const {
    milliseconds wait = backoff_delay(delivery, n);
    if (!delivery.backoff_max) wait = std::min(wait, options.max_pending_backoff);
    return wait;
  }

  asio::awaitable<Outcome> deliver(const Job& job) {
    Attempt last;
    int retries_done = 0;
    for (;;) {
      if (stopping) co_return Outcome::Abandoned;
      const auto current = spec;  // an update() applies from the next attempt on
      last = co_await attempt(*current, job.event);
      if (last.ok) {
        const auto published = co_await publish_replies(job, last.replies, current->delivery);
        if (!published) co_return Outcome::Abandoned;
        if (published->empty()) {
          delivered.fetch_add(1, std::memory_order_relaxed);
          count(metrics.delivered);
          SLUICE_LOG(trigger, debug, "[broker={} trigger={}] delivered offset {} (id {}) to {}", broker, name,
                     job.offset, job.event.id, request_log::redact_secrets(last.dest));
          co_return Outcome::Done;
        }
        // The broker refused a reply for good: as for a body that is not a CloudEvent, the subscriber
        // did not answer with something the broker takes, so the delivery failed (retried, then
        // dead-lettered).
        last.ok = false;
        last.error = *published;
      }
      // Cancelled by the trigger's stop (deleted, its agent deleted, shutdown): not a failed attempt.
      if (cancel->cancelled()) co_return Outcome::Abandoned;
      failed.fetch_add(1, std::memory_order_relaxed);
      count(metrics.failed);
      if (stopping) co_return Outcome::Abandoned;
      const DeliverySpec& delivery = current->delivery;
      if (!last.retryable || retries_done >= delivery.retries()) break;
      ++retries_done;
      milliseconds wait = backoff_delay(delivery, retries_done);
      if (last.retry_after && delivery.retry_after_cap().count() > 0)
        wait = std::max(wait, std::min(*last.retry_after, delivery.retry_after_cap()));
      retried.fetch_add(1, std::memory_order_relaxed);
      count(metrics.retried);
      SLUICE_LOG(trigger, debug,
                 "[broker={} trigger={}] offset {} (id {}) to {} failed: {}; retry {}/{} in {}", broker, name,
                 job.offset, job.event.id, request_log::redact_secrets(last.dest),
                 request_log::redact_secrets(last.error), retries_done, delivery.retries(), format_ms(wait));
      if (!co_await sleep(wait)) co_return Outcome::Abandoned;
    }
    const auto current = spec;
    if (current->delivery.dead_letter_sink) co_return co_await dead_letter(job, last);
    dropped.fetch_add(1, std::memory_order_relaxed);
    note_given_up(job, last, "dropped", "");
    if (!last.retryable) {
      count(metrics.dropped_not_retryable);
      SLUICE_LOG(trigger, warn,
                 "[broker={} trigger={}] giving up on offset {} (id {}, type {}): {} from {} is not retried; "
                 "no deadLetterSink, the event is dropped",
                 broker, name, job.offset, job.event.id, job.event.type,
                 request_log::redact_secrets(last.error), request_log::redact_secrets(last.dest));
      co_return Outcome::Done;
    }
    count(metrics.dropped_exhausted);
    SLUICE_LOG(
        trigger, warn,
        "[broker={} trigger={}] giving up on offset {} (id {}, type {}) after {} retries: {} from {}; no "
        "deadLetterSink, the event is dropped",
        broker, name, job.offset, job.event.id, job.event.type, retries_done,
        request_log::redact_secrets(last.error), request_log::redact_secrets(last.dest));
    co_return Outcome::Done;
  }

  // Hands one reply to the publisher and waits for its verdict, which may come from any thread: the
  // callback posts to the strand and wakes this coroutine through a timer.
  asio::awaitable<Status> publish_one(const CloudEvent& reply) {
    struct Pending {
      explicit Pending(const asio::any_io_executor& strand) : signal(strand) {}
      asio::steady_timer signal;
      std::optional<Status> status;
    };
    auto pending = std::make_shared<Pending>(strand);
    pending->signal.expires_at(asio::steady_timer::time_point::max());
    auto executor = strand;
    publish(reply, [pending, executor](Status status) {
      asio::post(executor, [pending, status = std::move(status)]() mutable {
        pending->status = std::move(status);
        pending->signal.cancel();
      });
    });
    boost::system::error_code ec;
    while (!pending->status)
      co_await pending->signal.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    co_return std::move(*pending->status);
  }

  // Publishes each reply (hop limit applied); retries a failing publish while the failure is transient
  // (the log busy or failing), as the reply would otherwise be lost. A reply the broker refuses for good
  // (is_final_rejection) is not retried: it is counted in replies_dropped{reason="rejected"} and the
  // result is why (non-empty), for the delivery to count as failed. Empty: every reply was published
  // (or dropped by the hop limit). nullopt: stop() interrupted it.
  asio::awaitable<std::optional<std::string>> publish_replies(const Job& job, std::vector<CloudEvent>& out,
                                                              const DeliverySpec& delivery) {
    for (auto& reply : out) {
      const int ttl = job.ttl - 1;
      if (ttl <= 0) {
        replies_dropped.fetch_add(1, std::memory_order_relaxed);
        count(metrics.replies_dropped_ttl);
        SLUICE_LOG(trigger, warn,
                   "[broker={} trigger={}] dropping reply (id {}, type {}) to event {}: the hop limit "
                   "(knativebrokerttl) ran out, a loop of triggers and replies?",
                   broker, name, reply.id, reply.type, job.event.id);
        continue;
      }
      if (!publish) {
        SLUICE_LOG(trigger, warn,
                   "[broker={} trigger={}] no reply publisher: reply {} to event {} is dropped", broker, name,
                   reply.id, job.event.id);
        continue;
      }
      reply.extensions[kTtlExtension] = AttributeValue::of_int(ttl);
      for (int n = 1;; ++n) {
        Status status = co_await publish_one(reply);
        if (status) break;
        if (is_final_rejection(status.error().code)) {
          replies_dropped.fetch_add(1, std::memory_order_relaxed);
          count(metrics.replies_dropped_rejected);
          const std::string why = "the broker rejected reply " + reply.id + " (type " + reply.type +
                                  "): " + status.error().to_string();
          SLUICE_LOG(trigger, warn,
                     "[broker={} trigger={}] dropping reply {} to event {} (offset {}), rejected by the "
                     "broker (HTTP {}): {}; the delivery counts as failed",
                     broker, name, reply.id, job.event.id, job.offset, status.error().code,
                     status.error().to_string());
          co_return why;
        }
        const milliseconds wait = pending_backoff(delivery, n);
        SLUICE_LOG(trigger, warn,
                   "[broker={} trigger={}] publishing reply {} to event {} failed: {}; retrying in {}",
                   broker, name, reply.id, job.event.id, status.error().to_string(), format_ms(wait));
        if (!co_await sleep(wait)) co_return std::nullopt;
      }
      replies.fetch_add(1, std::memory_order_relaxed);
      count(metrics.replies);
    }
    co_return std::string();
  }

  // Notes an event given up on in the dead-letter journal (the dashboard's "recent dead letters").
  void note_given_up(const Job& job, const Attempt& last, std::string outcome, std::string sink) {
    DeadLetterRecord r;
    r.unix_millis = unix_now_ns() / 1000000;
    r.broker = broker;
    r.trigger = name;
    r.outcome = std::move(outcome);
    r.sink = std::move(sink);
    r.id = job.event.id;
    r.type = job.event.type;
    r.source = job.event.source;
    r.error = last.error;
    r.error_dest = last.dest;
    r.error_code = last.status;
    r.error_data = last.body_head;
    (options.dead_letters != nullptr ? *options.dead_letters : DeadLetterJournal::global())
        .record(std::move(r));
  }

  // Sends the event to the dead-letter sink with Knative's error extensions. A failing sink does not
  // lose the event: it stays in flight (dlq_pending) and is tried again with backoff until it succeeds
  // or stop() abandons it (then it is delivered again after a restart).
  asio::awaitable<Outcome> dead_letter(const Job& job, const Attempt& last) {
    CloudEvent letter = job.event;
    letter.extensions["knativeerrordest"] = AttributeValue::of_string(last.dest);
    if (last.status != 0) letter.extensions["knativeerrorcode"] = AttributeValue::of_int(last.status);
    if (!last.body_head.empty())
      letter.extensions["knativeerrordata"] = AttributeValue::of_string(base64_encode(last.body_head));
    bool pending = false;
    auto leave = [&](Outcome outcome) {
      if (pending) {
        dlq_pending.fetch_sub(1, std::memory_order_relaxed);
        if (!stopped) metrics.dlq_pending.add(-1);
      }
      return outcome;
    };
    for (int n = 1;; ++n) {
      if (stopping) co_return leave(Outcome::Abandoned);
      const auto current = spec;
      if (!current->delivery.dead_letter_sink) {
        // An update() removed the sink while this event waited for it.
        dropped.fetch_add(1, std::memory_order_relaxed);
        count(metrics.dropped_exhausted);
        SLUICE_LOG(trigger, warn,
                   "[broker={} trigger={}] deadLetterSink removed: offset {} (id {}) is dropped", broker,
                   name, job.offset, job.event.id);
        co_return leave(Outcome::Done);
      }
      std::string error;
      std::string sink = current->delivery.dead_letter_sink->to_string();
      auto target = resolve(*current->delivery.dead_letter_sink);
      if (!target) {
        error = "cannot resolve: " + target.error().to_string();
      } else {
        sink = target.value().url;
        // Each try is a "dead-letter" span of the event's trace, as deliveries are "deliver" spans, and
        // the sink gets a `traceparent` header naming it.
        TracedRequest trace = begin_trace(job.event, "dead-letter");
        HttpRequest request = make_request(letter, current->delivery, target.value().url);
        request.headers.emplace_back("traceparent", trace.traceparent);
        if (!trace.tracestate.empty()) request.headers.emplace_back("tracestate", trace.tracestate);
        auto response = co_await send(target.value(), std::move(request));
        const int status = response ? response.value().status : 0;
        end_trace(trace, "sink", sink, status, status >= 200 && status <= 299,
                  response ? "" : response.error().to_string());
        if (response && response.value().status >= 200 && response.value().status <= 299) {
          dead_lettered.fetch_add(1, std::memory_order_relaxed);
          count(metrics.dead_lettered);
          note_given_up(job, last, "deadLettered", sink);
          SLUICE_LOG(trigger, info,
                     "[broker={} trigger={}] offset {} (id {}) dead-lettered to {} after: {} from {}", broker,
                     name, job.offset, job.event.id, request_log::redact_secrets(sink),
                     request_log::redact_secrets(last.error), request_log::redact_secrets(last.dest));
          co_return leave(Outcome::Done);
        }
        error = response ? "HTTP " + std::to_string(response.value().status) : response.error().to_string();
      }
      if (!pending) {
        pending = true;
        dlq_pending.fetch_add(1, std::memory_order_relaxed);
        if (!stopped) metrics.dlq_pending.add(1);
      }
      const milliseconds wait = pending_backoff(current->delivery, n);
      SLUICE_LOG(
          trigger, warn,
          "[broker={} trigger={}] dead-letter sink {} failed for offset {} (id {}): {}; the event stays "
          "pending, retrying in {}",
          broker, name, request_log::redact_secrets(sink), job.offset, job.event.id,
          request_log::redact_secrets(error), format_ms(wait));
      if (!co_await sleep(wait)) co_return leave(Outcome::Abandoned);
    }
  }
};

TriggerDispatcher::TriggerDispatcher(TriggerSpec spec, std::string broker, EventLog& log,
                                     CursorStore& cursors, HttpClient& client, Clock& clock,
                                     asio::any_io_executor executor, SubscriberResolver resolver,
                                     ReplyPublisher publish, DispatcherOptions options)
    : name_(spec.name), broker_(broker) {
  state_ = std::make_shared<State>(std::move(spec), std::move(broker), log, cursors, client, clock,
                                   std::move(executor), std::move(resolver), std::move(publish), options);
}

TriggerDispatcher::~TriggerDispatcher() {
  if (state_) async_stop(std::chrono::seconds(10), nullptr);
}

void TriggerDispatcher::start() {
  auto state = state_;
  asio::post(state->strand, [state] { state->do_start(); });
}

void TriggerDispatcher::async_stop(std::chrono::milliseconds deadline, std::function<void()> done) {
  auto state = state_;
  asio::post(state->strand, [state, deadline, done = std::move(done)]() mutable {
    State::spawn(state, State::stop_task(state, deadline, std::move(done)));
  });
}

void TriggerDispatcher::stop(std::chrono::milliseconds deadline) {
  auto finished = std::make_shared<std::promise<void>>();
  auto future = finished->get_future();
  async_stop(deadline, [finished] { finished->set_value(); });
  if (future.wait_for(deadline + std::chrono::seconds(5)) != std::future_status::ready)
    SLUICE_LOG(trigger, warn, "[broker={} trigger={}] stop did not complete (is the executor running?)",
               broker_, name_);
}

Status TriggerDispatcher::update(TriggerSpec spec) {
  if (spec.name != name_)
    return make_error("metadata.name", "a dispatcher keeps its trigger: recreate it to rename", 400);
  if (spec.broker != broker_)
    return make_error("spec.broker", "moving a trigger to another broker needs a new dispatcher (and cursor)",
                      400);
  auto state = state_;
  asio::post(state->strand, [state, spec = std::make_shared<const TriggerSpec>(std::move(spec))] {
    state->spec = spec;
    SLUICE_LOG(trigger, info, "[broker={} trigger={}] updated: subscriber {}, filter {}, {}", state->broker,
               state->name, request_log::redact_secrets(spec->subscriber.to_string()),
               spec->filter.to_string(), spec->order == DeliveryOrder::Ordered ? "ordered" : "unordered");
    state->pump();
    state->wake();
  });
  return ok();
}

nlohmann::json to_status_json(const TriggerStats& s) {
  nlohmann::json out = {{"delivered", s.delivered},
                        {"failedAttempts", s.failed},
                        {"retried", s.retried},
                        {"deadLettered", s.dead_lettered},
                        {"deadLetterPending", s.dlq_pending},
                        {"dropped", s.dropped},
                        {"filtered", s.filtered},
                        {"filterErrors", s.filter_errors},
                        {"replies", s.replies},
                        {"repliesDropped", s.replies_dropped},
                        {"inFlight", s.in_flight},
                        {"backlog", s.backlog},
                        {"committedOffset", s.committed_offset},
                        {"latency",
                         {{"attempts", s.attempts_timed},
                          {"meanSeconds", s.latency_mean_seconds},
                          {"p50Seconds", s.latency_p50_seconds},
                          {"p99Seconds", s.latency_p99_seconds}}},
                        {"logReadErrors", s.log_read_errors},
                        {"expired", s.expired}};
  if (!s.read_error.empty()) out["readError"] = s.read_error;
  return out;
}

TriggerStats TriggerDispatcher::stats() const {
  const State& s = *state_;
  TriggerStats out;
  auto load = [](const std::atomic<std::uint64_t>& v) { return v.load(std::memory_order_relaxed); };
  out.delivered = load(s.delivered);
  out.failed = load(s.failed);
  out.retried = load(s.retried);
  out.dead_lettered = load(s.dead_lettered);
  out.dlq_pending = load(s.dlq_pending);
  out.dropped = load(s.dropped);
  out.filtered = load(s.filtered);
  out.filter_errors = load(s.filter_errors);
  out.replies = load(s.replies);
  out.replies_dropped = load(s.replies_dropped);
  out.log_read_errors = load(s.log_read_errors);
  out.expired = load(s.expired);
  {
    std::lock_guard lock(s.read_error_mu);
    out.read_error = s.read_error;
  }
  out.in_flight = load(s.in_flight);
  out.committed_offset = load(s.committed_atomic);
  out.low_water_mark = load(s.low_atomic);
  const std::uint64_t end = s.log.end_offset();
  out.backlog = end > out.low_water_mark ? end - out.low_water_mark : 0;
  const Histogram& duration = s.metrics.duration;
  out.attempts_timed = duration.count();
  if (out.attempts_timed > 0) {
    out.latency_mean_seconds = duration.sum() / static_cast<double>(out.attempts_timed);
    out.latency_p50_seconds = duration.quantile(0.5);
    out.latency_p99_seconds = duration.quantile(0.99);
  }
  return out;
}

std::string TriggerDispatcher::cursor_key(const std::string& broker, const std::string& trigger) {
  return broker + "/" + trigger;
}

void TriggerDispatcher::set_backlog_metric(MetricsRegistry& registry, const std::string& broker,
                                           const std::string& trigger, double events) {
  registry.gauge("sluice_trigger_backlog_events", kBacklogHelp, trigger_labels(broker, trigger)).set(events);
}

void TriggerDispatcher::remove_metrics(MetricsRegistry& registry, const std::string& broker,
                                       const std::string& trigger) {
  const Labels labels = trigger_labels(broker, trigger);
  for (const char* name : {"sluice_trigger_events_delivered_total", "sluice_trigger_events_failed_total",
                           "sluice_trigger_events_retried_total", "sluice_trigger_events_dead_lettered_total",
                           "sluice_trigger_events_filtered_total", "sluice_trigger_filter_errors_total",
                           "sluice_trigger_replies_total", "sluice_trigger_delivery_duration_seconds",
                           "sluice_trigger_log_read_errors_total", "sluice_trigger_events_expired_total",
                           "sluice_trigger_backlog_events", "sluice_trigger_in_flight_events",
                           "sluice_trigger_dead_letter_pending_events"})
    registry.remove(name, labels);
  registry.remove("sluice_trigger_events_dropped_total", with_reason(labels, "retries_exhausted"));
  registry.remove("sluice_trigger_events_dropped_total", with_reason(labels, "not_retryable"));
  registry.remove("sluice_trigger_events_dropped_total", with_reason(labels, "undecodable"));
}

}  // namespace sluice
