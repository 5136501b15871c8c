#include "trigger/kafka_group.hpp"

#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "broker/cursor_store.hpp"
#include "core/log.hpp"
#include "core/protobuf_format.hpp"
#include "trigger/kafka_partition_log.hpp"

namespace sluice {
namespace {

// A payload parse_protobuf() rejects: the dispatcher logs it and counts it as undecodable.
const std::string kUndecodable = std::string("\xff\xff\xff", 3);

// Commit metadata of the offsets of a deleted resource's group: a group created again under the same id
// starts where a new one does.
constexpr std::string_view kDeletedMark = "sluice:deleted";

bool marked_deleted(const rd_kafka_topic_partition_t& tp) {
  return tp.metadata != nullptr &&
         std::string_view(static_cast<const char*>(tp.metadata), tp.metadata_size) == kDeletedMark;
}

}  // namespace

struct KafkaGroupDispatcher::Partition {
  std::string topic;
  std::int32_t partition = 0;
  std::string key;  // the dispatcher's cursor key
  std::shared_ptr<KafkaPartitionLog> log;
  std::unique_ptr<CursorStore> cursors;
  std::unique_ptr<TriggerDispatcher> dispatcher;
  std::atomic<bool> owned{true};  // false once revoked: late commits must not reach the group
  bool paused = false;            // consumer thread only
};

KafkaGroupDispatcher::KafkaGroupDispatcher(KafkaGroupOptions options, TriggerSpec spec, std::string owner,
                                           KafkaRecordConverter convert,
                                           std::function<DispatchSlot()> pick_slot, Clock& clock,
                                           SubscriberResolver resolver, ReplyPublisher publish)
    : options_(std::move(options)),
      owner_(std::move(owner)),
      convert_(std::move(convert)),
      pick_slot_(std::move(pick_slot)),
      clock_(clock),
      resolver_(std::move(resolver)),
      publish_(std::move(publish)),
      spec_(std::move(spec)) {}

KafkaGroupDispatcher::~KafkaGroupDispatcher() {
  stop();
}

Status KafkaGroupDispatcher::start() {
  std::lock_guard stop_lock(stop_mu_);
  if (started_) return ok();
  // Prefetch is bounded in bytes (4 MiB per partition). A bound in messages (queued.min.messages)
  // makes librdkafka 2.0 fetch once a second when its queue is over it, and each resume after a full
  // partition buffer waits for a fetch: with queued.min.messages 1000, a 500-record buffer and the
  // default fetch.wait.max.ms of 500, a source read about 1,000 records/s. spec.config overrides these.
  std::map<std::string, std::string> properties = {{"session.timeout.ms", "10000"},
                                                   {"heartbeat.interval.ms", "1000"},
                                                   {"queued.max.messages.kbytes", "4096"},
                                                   {"fetch.wait.max.ms", "100"}};
  for (const auto& [key, value] : options_.config) properties[key] = value;
  properties["bootstrap.servers"] = options_.bootstrap_servers;
  properties["group.id"] = options_.group_id;
  properties["enable.auto.commit"] = "false";
  properties["enable.auto.offset.store"] = "false";
  properties["enable.partition.eof"] = "false";
  properties["auto.offset.reset"] = options_.start_at_earliest ? "earliest" : "latest";
  properties.try_emplace("client.id", options_.group_id);
  auto conf = make_kafka_conf(properties);
  if (!conf) return conf.error();
  rd_kafka_conf_set_opaque(conf.value(), this);
  rd_kafka_conf_set_rebalance_cb(conf.value(), &KafkaGroupDispatcher::rebalance_trampoline);
  rd_kafka_conf_set_error_cb(conf.value(), &KafkaGroupDispatcher::error_trampoline);
  char errstr[512];
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf.value(), errstr, sizeof errstr);
  if (rk == nullptr) {
    rd_kafka_conf_destroy(conf.value());
    return make_error("kafka consumer", errstr, 400);
  }
  consumer_.reset(rk);
  initialize_offsets();  // before the main queue goes to the consumer queue: it polls for errors
  rd_kafka_poll_set_consumer(rk);
  KafkaPartitionList topics(rd_kafka_topic_partition_list_new(static_cast<int>(options_.topics.size())));
  for (const auto& topic : options_.topics)
    rd_kafka_topic_partition_list_add(topics.get(), topic.c_str(), RD_KAFKA_PARTITION_UA);
  if (rd_kafka_resp_err_t err = rd_kafka_subscribe(rk, topics.get()); err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    consumer_.reset();
    return make_error("kafka consumer", std::string("subscribing failed: ") + rd_kafka_err2str(err), 503);
  }
  started_ = true;
  thread_ = std::thread([this] { run(); });
  SLUICE_LOG(trigger, info, "[{}] joined consumer group {} on {}", options_.log_context, options_.group_id,
             options_.bootstrap_servers);
  return ok();
}

void KafkaGroupDispatcher::initialize_offsets() {
  rd_kafka_t* rk = consumer_.get();
  const auto timeout = std::chrono::milliseconds(5000);
  // A cluster that refuses the client (credentials, certificates) says so at once: no point waiting
  // out the metadata and offset timeouts, and start() runs under the controller's lock.
  if (auto st = wait_for_kafka(rk, errors_, timeout); !st) {
    note_error("Kafka at " + options_.bootstrap_servers + " " + st.error().message);
    return;
  }
  KafkaPartitionList all(rd_kafka_topic_partition_list_new(8));
  for (const auto& topic : options_.topics) {
    const int count = kafka_partition_count(rk, topic, timeout);
    for (int p = 0; p < count; ++p) rd_kafka_topic_partition_list_add(all.get(), topic.c_str(), p);
  }
  if (all->cnt == 0) return;  // the topics do not exist yet: partitions start where assign() puts them
  if (rd_kafka_resp_err_t err = rd_kafka_committed(rk, all.get(), static_cast<int>(timeout.count())); err) {
    note_error(std::string("reading committed offsets failed: ") + rd_kafka_err2str(err));
    return;
  }
  KafkaPartitionList fresh(rd_kafka_topic_partition_list_new(all->cnt));
  for (int i = 0; i < all->cnt; ++i) {
    const rd_kafka_topic_partition_t& tp = all->elems[i];
    if (tp.offset >= 0 && !marked_deleted(tp)) continue;
    if (tp.offset >= 0) {
      std::lock_guard lock(mu_);
      forgotten_.insert({tp.topic, tp.partition});
    }
    std::int64_t low = 0;
    std::int64_t high = 0;
    if (rd_kafka_query_watermark_offsets(rk, tp.topic, tp.partition, &low, &high,
                                         static_cast<int>(timeout.count())) != RD_KAFKA_RESP_ERR_NO_ERROR)
      continue;
    const std::int64_t initial = options_.start_at_earliest ? low : high;
    rd_kafka_topic_partition_list_add(fresh.get(), tp.topic, tp.partition)->offset = initial;
    std::lock_guard lock(mu_);
    initial_offsets_[{tp.topic, tp.partition}] = initial;
  }
  if (fresh->cnt == 0) return;
  if (rd_kafka_resp_err_t err = rd_kafka_commit(rk, fresh.get(), 0); err) {
    note_error(std::string("initializing the group's offsets failed: ") + rd_kafka_err2str(err));
    return;
  }
  SLUICE_LOG(trigger, info, "[{}] group {} starts {} partition(s) at the {} offset", options_.log_context,
             options_.group_id, fresh->cnt, options_.start_at_earliest ? "earliest" : "latest");
}

void KafkaGroupDispatcher::stop(bool forget_offsets) {
  std::lock_guard stop_lock(stop_mu_);
  if (!started_) return;
  forget_offsets_.store(forget_offsets);
  stopping_.store(true);
  if (thread_.joinable()) thread_.join();
  consumer_.reset();
  started_ = false;
}

Status KafkaGroupDispatcher::update(TriggerSpec spec) {
  std::lock_guard lock(mu_);
  spec_ = spec;
  for (auto& [tp, partition] : partitions_)
    if (auto st = partition->dispatcher->update(spec); !st) return st;
  return ok();
}

void KafkaGroupDispatcher::run() {
  rd_kafka_t* rk = consumer_.get();
  while (!stopping_.load()) {
    // While a partition is paused (its buffer full), poll briefly so that it resumes as soon as its
    // dispatcher drained half of it: a paused partition has nothing to deliver, so a long poll would
    // leave it idle.
    rd_kafka_message_t* message = rd_kafka_consumer_poll(rk, any_paused_ ? 2 : 100);
    if (message != nullptr) {
      handle(message);
      rd_kafka_message_destroy(message);
    }
    resume_drained();
    if (const auto now = std::chrono::steady_clock::now();
        now - backlog_reported_ >= std::chrono::seconds(1)) {
      backlog_reported_ = now;
      report_backlog();
    }
  }
  rd_kafka_consumer_close(rk);  // revokes what is assigned (on_rebalance), which stops and commits
  std::vector<std::shared_ptr<Partition>> left;
  {
    std::lock_guard lock(mu_);
    for (auto& [tp, partition] : partitions_) left.push_back(partition);
  }
  for (auto& partition : left) release(*partition);
  std::lock_guard lock(mu_);
  partitions_.clear();
}

void KafkaGroupDispatcher::rebalance_trampoline(rd_kafka_t*, rd_kafka_resp_err_t err,
                                                rd_kafka_topic_partition_list_t* parts, void* opaque) {
  static_cast<KafkaGroupDispatcher*>(opaque)->on_rebalance(err, parts);
}

void KafkaGroupDispatcher::error_trampoline(rd_kafka_t*, int err, const char* reason, void* opaque) {
  auto* self = static_cast<KafkaGroupDispatcher*>(opaque);
  self->errors_.note(err, reason);
  self->note_error(std::string(rd_kafka_err2name(static_cast<rd_kafka_resp_err_t>(err))) + ": " + reason);
}

void KafkaGroupDispatcher::note_error(const std::string& message) {
  SLUICE_LOG(trigger, warn, "[{}] kafka: {}", options_.log_context, message);
  std::lock_guard lock(mu_);
  last_error_ = message;
}

void KafkaGroupDispatcher::on_rebalance(rd_kafka_resp_err_t err,
                                        rd_kafka_topic_partition_list_t* partitions) {
  const bool cooperative = std::string(rd_kafka_rebalance_protocol(consumer_.get())) == "COOPERATIVE";
  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    assign(partitions);
    if (cooperative) {
      if (rd_kafka_error_t* e = rd_kafka_incremental_assign(consumer_.get(), partitions)) {
        note_error(std::string("assign: ") + rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
      }
    } else {
      rd_kafka_assign(consumer_.get(), partitions);
    }
    return;
  }
  if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
    revoke(partitions);
  } else {
    note_error(std::string("rebalance failed: ") + rd_kafka_err2str(err));
    revoke(partitions);
  }
  if (cooperative) {
    if (rd_kafka_error_t* e = rd_kafka_incremental_unassign(consumer_.get(), partitions))
      rd_kafka_error_destroy(e);
  } else {
    rd_kafka_assign(consumer_.get(), nullptr);
  }
}

void KafkaGroupDispatcher::assign(rd_kafka_topic_partition_list_t* partitions) {
  errors_.clear_refusal();  // the group took this consumer: whatever refused it before is over
  rd_kafka_t* rk = consumer_.get();
  KafkaPartitionList committed(rd_kafka_topic_partition_list_copy(partitions));
  rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
  for (int attempt = 0; attempt < 5; ++attempt) {
    err = rd_kafka_committed(rk, committed.get(), 5000);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) break;
  }
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
    note_error(std::string("reading committed offsets failed: ") + rd_kafka_err2str(err) +
               " (partitions start at the reset position)");
  TriggerSpec spec;
  {
    std::lock_guard lock(mu_);
    spec = spec_;
  }
  for (int i = 0; i < partitions->cnt; ++i) {
    rd_kafka_topic_partition_t& tp = partitions->elems[i];
    std::int64_t start =
        err == RD_KAFKA_RESP_ERR_NO_ERROR ? committed->elems[i].offset : RD_KAFKA_OFFSET_INVALID;
    // Offsets a deleted trigger left (marked when this group started, still marked: committing the fresh
    // position did not get through) count as none. Marks found later are another member's, which left
    // without this one: its offsets hold.
    // Without usable offsets: the position taken when the group started, as its commit would have kept.
    const bool marked = start >= 0 && marked_deleted(committed->elems[i]);
    {
      std::lock_guard lock(mu_);
      if (marked && forgotten_.count({tp.topic, tp.partition}) > 0) start = RD_KAFKA_OFFSET_INVALID;
      if (auto it = initial_offsets_.find({tp.topic, tp.partition});
          start < 0 && it != initial_offsets_.end())
        start = it->second;
    }
    if (start < 0) {
      std::int64_t low = 0;
      std::int64_t high = 0;
      if (rd_kafka_resp_err_t w =
              rd_kafka_query_watermark_offsets(rk, tp.topic, tp.partition, &low, &high, 5000);
          w != RD_KAFKA_RESP_ERR_NO_ERROR) {
        note_error(std::string("reading watermarks failed: ") + rd_kafka_err2str(w));
        tp.offset = options_.start_at_earliest ? RD_KAFKA_OFFSET_BEGINNING : RD_KAFKA_OFFSET_END;
        continue;  // consumed from the reset position, without a dispatcher: records are not taken
      }
      start = options_.start_at_earliest ? low : high;
    }
    tp.offset = start;
    auto partition = std::make_shared<Partition>();
    partition->topic = tp.topic;
    partition->partition = tp.partition;
    partition->key = TriggerDispatcher::cursor_key(owner_, spec.name);
    partition->log =
        std::make_shared<KafkaPartitionLog>(static_cast<std::uint64_t>(start), options_.partition_buffer);
    Partition* raw = partition.get();
    partition->cursors = CursorStore::in_memory([this, raw](const std::string&, std::uint64_t offset) {
      if (raw->owned.load()) commit_offset(raw->topic, raw->partition, offset, false);
    });
    (void)partition->cursors->commit(partition->key, static_cast<std::uint64_t>(start));
    DispatchSlot slot = pick_slot_();
    DispatcherOptions dispatcher_options = options_.dispatcher;
    dispatcher_options.report_backlog = false;  // a partition sees only what was fetched: report_backlog()
    partition->dispatcher =
        std::make_unique<TriggerDispatcher>(spec, owner_, *partition->log, *partition->cursors, *slot.client,
                                            clock_, slot.executor, resolver_, publish_, dispatcher_options);
    partition->dispatcher->start();
    SLUICE_LOG(trigger, info, "[{}] assigned {}[{}] at offset {}", options_.log_context, partition->topic,
               partition->partition, start);
    std::lock_guard lock(mu_);
    partitions_[{partition->topic, partition->partition}] = std::move(partition);
  }
}

void KafkaGroupDispatcher::release(Partition& partition) {
  if (!partition.owned.load()) return;
  partition.dispatcher->stop(options_.revoke_grace);
  partition.owned.store(false);
  if (auto offset = partition.cursors->load(partition.key))
    commit_offset(partition.topic, partition.partition, *offset, true, forget_offsets_.load());
  SLUICE_LOG(trigger, info, "[{}] released {}[{}] at offset {}", options_.log_context, partition.topic,
             partition.partition, partition.cursors->load(partition.key).value_or(0));
}

void KafkaGroupDispatcher::revoke(rd_kafka_topic_partition_list_t* partitions) {
  std::vector<std::shared_ptr<Partition>> revoked;
  {
    std::lock_guard lock(mu_);
    for (int i = 0; i < partitions->cnt; ++i) {
      auto it = partitions_.find({partitions->elems[i].topic, partitions->elems[i].partition});
      if (it != partitions_.end()) revoked.push_back(it->second);
    }
  }
  // Stop every revoked partition's dispatcher at once, then commit each one's final low-water mark.
  struct Countdown {
    std::mutex mu;
    std::condition_variable cv;
    std::size_t pending = 0;
  };
  auto countdown = std::make_shared<Countdown>();
  countdown->pending = revoked.size();
  for (auto& partition : revoked)
    partition->dispatcher->async_stop(options_.revoke_grace, [countdown] {
      std::lock_guard lock(countdown->mu);
      --countdown->pending;
      countdown->cv.notify_all();
    });
  {
    std::unique_lock lock(countdown->mu);
    countdown->cv.wait_for(lock, options_.revoke_grace + std::chrono::seconds(5),
                           [&] { return countdown->pending == 0; });
  }
  for (auto& partition : revoked) release(*partition);
  std::lock_guard lock(mu_);
  for (auto& partition : revoked) partitions_.erase({partition->topic, partition->partition});
}

void KafkaGroupDispatcher::commit_offset(const std::string& topic, std::int32_t partition,
                                         std::uint64_t offset, bool sync, bool mark_deleted) {
  KafkaPartitionList list(rd_kafka_topic_partition_list_new(1));
  rd_kafka_topic_partition_t* tp = rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), partition);
  tp->offset = static_cast<std::int64_t>(offset);
  if (mark_deleted) {
    tp->metadata = std::malloc(kDeletedMark.size());  // freed with the list
    if (tp->metadata != nullptr) {
      std::memcpy(tp->metadata, kDeletedMark.data(), kDeletedMark.size());
      tp->metadata_size = kDeletedMark.size();
    }
  }
  const rd_kafka_resp_err_t err = rd_kafka_commit(consumer_.get(), list.get(), sync ? 0 : 1);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR && err != RD_KAFKA_RESP_ERR__NO_OFFSET)
    note_error("committing offset " + std::to_string(offset) + " of " + topic + "[" +
               std::to_string(partition) + "] failed: " + rd_kafka_err2str(err));
}

void KafkaGroupDispatcher::handle(rd_kafka_message_t* message) {
  if (message->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    if (message->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) note_error(rd_kafka_message_errstr(message));
    return;
  }
  const std::string topic = rd_kafka_topic_name(message->rkt);
  std::shared_ptr<Partition> partition;
  {
    std::lock_guard lock(mu_);
    auto it = partitions_.find({topic, message->partition});
    if (it != partitions_.end()) partition = it->second;
  }
  if (!partition) return;  // revoked meanwhile: its new owner reads it from the committed offset
  const KafkaRecord record = record_of(*message);
  LogRecord log_record;
  log_record.offset = static_cast<std::uint64_t>(message->offset);
  log_record.append_time_ms = record.timestamp_ms;
  auto event = convert_(record, topic, message->partition, message->offset);
  if (event) {
    log_record.payload = to_protobuf(event.value());
  } else {
    SLUICE_LOG(trigger, warn, "[{}] record {}[{}]@{} cannot be delivered: {}", options_.log_context, topic,
               message->partition, message->offset, event.error().to_string());
    log_record.payload = kUndecodable;
  }
  partition->log->push(std::move(log_record));
  if (!partition->paused && partition->log->full()) {
    KafkaPartitionList list(rd_kafka_topic_partition_list_new(1));
    rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), message->partition);
    rd_kafka_pause_partitions(consumer_.get(), list.get());
    partition->paused = true;
    any_paused_ = true;
  }
}

void KafkaGroupDispatcher::resume_drained() {
  std::vector<std::shared_ptr<Partition>> drained;
  bool still_paused = false;
  {
    std::lock_guard lock(mu_);
    for (auto& [tp, partition] : partitions_) {
      if (!partition->paused) continue;
      if (partition->log->buffered() <= partition->log->capacity() / 2)
        drained.push_back(partition);
      else
        still_paused = true;
    }
  }
  for (auto& partition : drained) {
    KafkaPartitionList list(rd_kafka_topic_partition_list_new(1));
    rd_kafka_topic_partition_list_add(list.get(), partition->topic.c_str(), partition->partition);
    rd_kafka_resume_partitions(consumer_.get(), list.get());
    partition->paused = false;
  }
  any_paused_ = still_paused;
}

TriggerStats KafkaGroupDispatcher::stats() const {
  TriggerStats total;
  std::lock_guard lock(mu_);
  for (const auto& [tp, partition] : partitions_) {
    const TriggerStats s = partition->dispatcher->stats();
    total.delivered += s.delivered;
    total.failed += s.failed;
    total.retried += s.retried;
    total.dead_lettered += s.dead_lettered;
    total.dlq_pending += s.dlq_pending;
    total.dropped += s.dropped;
    total.filtered += s.filtered;
    total.filter_errors += s.filter_errors;
    total.replies += s.replies;
    total.replies_dropped += s.replies_dropped;
    total.in_flight += s.in_flight;
    // Every partition's dispatcher observes the trigger's one histogram: any of them has the latency.
    total.attempts_timed = s.attempts_timed;
    total.latency_mean_seconds = s.latency_mean_seconds;
    total.latency_p50_seconds = s.latency_p50_seconds;
    total.latency_p99_seconds = s.latency_p99_seconds;
  }
  return total;
}

std::size_t KafkaGroupDispatcher::assigned() const {
  std::lock_guard lock(mu_);
  return partitions_.size();
}

KafkaGroupDispatcher::Lag KafkaGroupDispatcher::lag_locked(const std::string& topic, std::int32_t partition,
                                                           const Partition& p) const {
  Lag out;
  out.committed = static_cast<std::int64_t>(p.cursors->load(p.key).value_or(0));
  std::int64_t low = -1;
  // The watermarks librdkafka last fetched: no request to the cluster.
  if (consumer_) rd_kafka_get_watermark_offsets(consumer_.get(), topic.c_str(), partition, &low, &out.high);
  out.lag = out.high >= 0 ? std::max<std::int64_t>(0, out.high - out.committed) : 0;
  return out;
}

void KafkaGroupDispatcher::report_backlog() {
  std::int64_t total = 0;
  std::string name;
  {
    std::lock_guard lock(mu_);
    name = spec_.name;
    for (const auto& [tp, partition] : partitions_) total += lag_locked(tp.first, tp.second, *partition).lag;
  }
  MetricsRegistry& registry =
      options_.dispatcher.metrics != nullptr ? *options_.dispatcher.metrics : MetricsRegistry::global();
  TriggerDispatcher::set_backlog_metric(registry, owner_, name, static_cast<double>(total));
}

nlohmann::json KafkaGroupDispatcher::status() const {
  nlohmann::json partitions = nlohmann::json::array();
  std::int64_t total_lag = 0;
  std::string last_error;
  {
    std::lock_guard lock(mu_);
    last_error = last_error_;
    for (const auto& [tp, partition] : partitions_) {
      const Lag lag = lag_locked(tp.first, tp.second, *partition);
      total_lag += lag.lag;
      const TriggerStats s = partition->dispatcher->stats();
      partitions.push_back({{"topic", tp.first},
                            {"partition", tp.second},
                            {"committedOffset", lag.committed},
                            {"highWatermark", lag.high},
                            {"lag", lag.lag},
                            {"buffered", partition->log->buffered()},
                            {"inFlight", s.in_flight}});
    }
  }
  const TriggerStats s = stats();
  nlohmann::json out = {{"consumerGroup", options_.group_id},
                        {"partitions", partitions},
                        {"lag", total_lag},
                        {"delivery", to_status_json(s)}};
  // The backlog the agents' autoscaler reads (sluice.dev/target-backlog) is the group's lag, as KEDA's
  // Kafka scaler reads it: the partitions' buffers hold only what was fetched, and a partition's
  // dispatcher sees nothing of what Kafka has not handed over yet.
  out["delivery"]["backlog"] = total_lag;
  if (!last_error.empty()) out["lastError"] = last_error;
  // Refused credentials or certificates are not cured by reconnecting: not ready, and why.
  if (auto refusal = errors_.refusal(); !refusal.empty())
    out["notReady"] = {
        {"reason", "KafkaRefused"},
        {"message", "Kafka at " + options_.bootstrap_servers + " refused the connection: " + refusal}};
  return out;
}

}  // namespace sluice
