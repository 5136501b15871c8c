#pragma once
// KafkaGroupDispatcher: a Kafka consumer group whose records are delivered by TriggerDispatchers, one per
// assigned partition. It runs the triggers of Kafka-backed brokers (group sluice-trigger-<broker>-<trigger>)
// and KafkaSources (their spec.consumerGroup).
//
// Scale-out: every `sluice serve` that runs the same resource joins the same group, and Kafka splits the
// partitions between them. A node that stops or dies loses its partitions to the others (after
// session.timeout.ms for a dead one), which resume at the group's committed offsets.
//
// Delivery: each partition gets a KafkaPartitionLog (bounded buffer fed by this consumer) and a
// TriggerDispatcher on it, with the dispatcher's whole behaviour: bounded in flight, ordered per
// partitionkey when the spec says so, retries, backoff, dead-letter sink. Offsets: the dispatcher's
// low-water mark (everything below it acknowledged) is committed to the group as the partition's offset,
// so a commit never passes an event that was not delivered: at-least-once, in order, no gaps.
//
// Start: as Knative's controller does for a new trigger or source, the group's offsets are initialised when
// it is created: every partition without a committed offset gets the earliest or latest offset
// (start_at_earliest) committed before the group is joined, so events published after the resource
// exists are delivered even if the first assignment comes seconds later. A deleted trigger's final commits
// are marked (stop(true)), and offsets marked when the group starts count as never committed: a trigger
// created again under the same name starts at the end of the topic, not where the deleted one stopped.
//
// Rebalance: on revoke, the partition's dispatcher stops (deliveries in flight get revoke_grace to finish),
// its final low-water mark is committed synchronously, and only then is the partition released. On
// assign, a partition resumes at its committed offset; one the group never committed starts at the
// earliest or latest offset (start_at_earliest) and that position is committed at once.
//
// Threading: one consumer thread per group polls Kafka, runs rebalances and fills the buffers; each
// partition's dispatcher runs on the single-threaded context that `pick_slot` gives it. status() and
// update() may be called from any thread.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "broker/kafka_client.hpp"
#include "core/clock.hpp"
#include "core/http_client.hpp"
#include "core/kafka_binding.hpp"
#include "trigger/dispatcher.hpp"
#include "trigger/trigger_spec.hpp"

namespace sluice {

struct KafkaGroupOptions {
  std::string bootstrap_servers;
  std::string group_id;
  std::vector<std::string> topics;
  /// Where a partition without a committed offset starts: earliest, or latest (the default).
  bool start_at_earliest = false;
  /// Extra librdkafka consumer properties (session.timeout.ms, security settings, …).
  std::map<std::string, std::string> config;
  /// Bound of records fetched and not yet read by each partition's dispatcher.
  std::size_t partition_buffer = 2000;
  /// How long deliveries in flight may finish when a partition is revoked or the group stops.
  std::chrono::milliseconds revoke_grace{5000};
  /// Name in log lines, e.g. "trigger=t broker=b" or "kafkasource=s".
  std::string log_context;
  DispatcherOptions dispatcher;
};

/// Turns a consumed record into the CloudEvent to deliver; an Error drops the record (logged, counted as
/// undecodable by the dispatcher).
using KafkaRecordConverter = std::function<Result<CloudEvent>(
    const KafkaRecord& record, const std::string& topic, std::int32_t partition, std::int64_t offset)>;

/// Where one partition's dispatcher runs: a single-threaded context's executor and the HttpClient it owns.
struct DispatchSlot {
  asio::any_io_executor executor;
  HttpClient* client = nullptr;
};

class KafkaGroupDispatcher {
 public:
  /// `owner` is the dispatchers' `broker` argument (metric label): the broker's name for a trigger.
  KafkaGroupDispatcher(KafkaGroupOptions options, TriggerSpec spec, std::string owner,
                       KafkaRecordConverter convert, std::function<DispatchSlot()> pick_slot, Clock& clock,
                       SubscriberResolver resolver, ReplyPublisher publish);
  /// stop()s.
  ~KafkaGroupDispatcher();
  KafkaGroupDispatcher(const KafkaGroupDispatcher&) = delete;
  KafkaGroupDispatcher& operator=(const KafkaGroupDispatcher&) = delete;

  /// Creates the consumer, initialises the offsets of partitions the group never committed, and joins the
  /// group (assignment follows asynchronously). Blocking for a few round trips to the cluster. Fails
  /// (code 400) on a bad consumer property.
  Status start();
  /// Leaves the group: each partition's dispatcher stops (revoke_grace) and commits. Blocking; idempotent.
  /// `forget_offsets` (the resource was deleted): the final commits are marked, so that a group started
  /// again under the same id (the resource created again) starts where a new one does.
  void stop(bool forget_offsets = false);
  /// Applies a changed spec (subscriber, delivery, ordering) to every partition, now and later.
  Status update(TriggerSpec spec);

  /// {partitions: [{topic, partition, committedOffset, highWatermark, lag, buffered, inFlight}], lag,
  ///  delivery: {delivered, failedAttempts, retried, deadLettered, dropped, inFlight, backlog (= lag)},
  ///  lastError}. lag: high watermark − committed offset of the partitions held now.
  nlohmann::json status() const;
  /// Sum of the per-partition dispatcher stats (partitions held now).
  TriggerStats stats() const;
  /// Number of partitions this member holds now.
  std::size_t assigned() const;

 private:
  struct Partition;
  void run();
  void initialize_offsets();
  void on_rebalance(rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* partitions);
  void assign(rd_kafka_topic_partition_list_t* partitions);
  void revoke(rd_kafka_topic_partition_list_t* partitions);
  void release(Partition& partition);
  void handle(rd_kafka_message_t* message);
  void resume_drained();
  /// Sets sluice_trigger_backlog_events to the group's lag (the partitions' dispatchers do not).
  void report_backlog();
  struct Lag {
    std::int64_t committed = 0;
    std::int64_t high = -1;  // -1: not known yet
    std::int64_t lag = 0;    // high − committed
  };
  Lag lag_locked(const std::string& topic, std::int32_t partition, const Partition& p) const;
  void note_error(const std::string& message);
  void commit_offset(const std::string& topic, std::int32_t partition, std::uint64_t offset, bool sync,
                     bool mark_deleted = false);
  static void rebalance_trampoline(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                                   rd_kafka_topic_partition_list_t* parts, void* opaque);
  static void error_trampoline(rd_kafka_t* rk, int err, const char* reason, void* opaque);

  const KafkaGroupOptions options_;
  const std::string owner_;
  KafkaRecordConverter convert_;
  std::function<DispatchSlot()> pick_slot_;
  Clock& clock_;
  SubscriberResolver resolver_;
  ReplyPublisher publish_;

  KafkaHandle consumer_;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> forget_offsets_{false};                   // stop(true): the final commits are marked
  std::set<std::pair<std::string, std::int32_t>> forgotten_;  // marked at start (guarded by mu_)
  // Where each partition without offsets of its own started when the group started (the end of the
  // topic, or its beginning): assign() starts there when committing it did not get through, so that
  // what was published between start() and the assignment is not skipped (guarded by mu_).
  std::map<std::pair<std::string, std::int32_t>, std::int64_t> initial_offsets_;
  bool any_paused_ = false;                                   // consumer thread only
  std::chrono::steady_clock::time_point backlog_reported_{};  // consumer thread only
  bool started_ = false;
  std::mutex stop_mu_;

  mutable std::mutex mu_;  // partitions_, spec_, last_error_
  TriggerSpec spec_;
  std::map<std::pair<std::string, std::int32_t>, std::shared_ptr<Partition>> partitions_;
  std::string last_error_;
  KafkaErrors errors_;  // what the error callback heard, for notReady
};

}  // namespace sluice
