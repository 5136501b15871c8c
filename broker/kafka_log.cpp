#include "broker/kafka_log.hpp"

#include <charconv>
#include <mutex>
#include <optional>

#include "core/log.hpp"
#include "core/protobuf_format.hpp"

namespace sluice {

namespace {

/// spec.kafka.config's message.timeout.ms, when set: a positive number of milliseconds (0, librdkafka's
/// "forever", would hang publishers). Error names the field.
Result<std::optional<std::chrono::milliseconds>> message_timeout_of(const KafkaConfig& config) {
  auto it = config.values.find("message.timeout.ms");
  if (it == config.values.end()) return std::optional<std::chrono::milliseconds>();
  std::int64_t ms = 0;
  const auto [end, ec] = std::from_chars(it->second.data(), it->second.data() + it->second.size(), ms);
  if (ec != std::errc() || end != it->second.data() + it->second.size() || ms < 1)
    return make_error(
        "spec.kafka.config.message.timeout.ms",
        "must be a positive number of milliseconds (how long a publish waits for Kafka), not \"" +
            it->second + "\"",
        400);
  return std::optional<std::chrono::milliseconds>(ms);
}

}  // namespace

Result<KafkaBrokerSettings> parse_kafka_broker_settings(const BrokerSpec& spec) {
  KafkaBrokerSettings settings;
  settings.topic = "sluice-broker-" + spec.name;
  const auto& k = spec.kafka;
  for (const auto& [key, value] : k.items()) {
    (void)value;
    if (key != "bootstrapServers" && key != "topic" && key != "partitions" && key != "replicationFactor" &&
        key != "config")
      return make_error(
          "spec.kafka." + key,
          "unknown field (known: bootstrapServers, topic, partitions, replicationFactor, config)", 400);
  }
  if (!k.contains("bootstrapServers"))
    return make_error("spec.kafka.bootstrapServers",
                      "is required with storage: kafka (host:port of the Kafka cluster, a string or a list)",
                      400);
  auto servers = bootstrap_servers_of(k["bootstrapServers"], "spec.kafka.bootstrapServers");
  if (!servers) return servers.error();
  settings.bootstrap_servers = servers.value();
  if (k.contains("topic")) {
    if (!k["topic"].is_string() || k["topic"].get<std::string>().empty())
      return make_error("spec.kafka.topic", "must be a non-empty topic name", 400);
    settings.topic = k["topic"].get<std::string>();
  }
  auto positive_int = [&](const char* key, int& out) -> Status {
    if (!k.contains(key)) return ok();
    if (!k[key].is_number_integer() || k[key].get<int>() < 1)
      return make_error(std::string("spec.kafka.") + key, "must be a positive integer", 400);
    out = k[key].get<int>();
    return ok();
  };
  if (auto st = positive_int("partitions", settings.partitions); !st) return st.error();
  if (auto st = positive_int("replicationFactor", settings.replication_factor); !st) return st.error();
  if (k.contains("config")) {
    auto config = parse_kafka_config(k["config"], "spec.kafka.config");
    if (!config) return config.error();
    if (auto timeout = message_timeout_of(config.value()); !timeout) return timeout.error();
    settings.config = std::move(config).value();
  }
  return settings;
}

// One append(): completes when the last of its records has a delivery report.
struct KafkaLog::Batch {
  AppendCallback done;
  std::chrono::steady_clock::time_point started;
  std::mutex mu;
  std::size_t remaining = 0;
  std::optional<std::int64_t> first_offset;  // of the batch's first record
  std::optional<Error> error;
};

KafkaLog::KafkaLog(KafkaLogOptions options) : options_(std::move(options)) {}

Result<std::unique_ptr<KafkaLog>> KafkaLog::open(KafkaLogOptions options) {
  std::map<std::string, std::string> properties = options.settings.config.values;
  for (const auto& [key, value] : options.resolved_secrets) properties[key] = value;
  properties["bootstrap.servers"] = options.settings.bootstrap_servers;
  properties["enable.idempotence"] = "true";
  properties["acks"] = "all";
  properties.try_emplace("linger.ms", "0");  // each publisher waits for its ack: batching comes from load
  properties["queue.buffering.max.messages"] =
      std::to_string(std::max<std::size_t>(1, options.max_pending_records));
  // spec.kafka.config may set message.timeout.ms: how long a publish waits for Kafka (an unreachable
  // cluster included) before the ingress answers 503.
  auto timeout = message_timeout_of(options.settings.config);
  if (!timeout) return timeout.error();
  if (timeout.value()) options.delivery_timeout = *timeout.value();
  properties["message.timeout.ms"] = std::to_string(options.delivery_timeout.count());
  properties.try_emplace("partitioner", "murmur2_random");  // the Java client's partitioner for keyed records
  properties.try_emplace("client.id", "sluice-broker-" + options.name);
  auto conf = make_kafka_conf(properties);
  if (!conf) return make_error("spec.kafka.config." + conf.error().subject, conf.error().message, 400);
  rd_kafka_conf_set_dr_msg_cb(conf.value(), &KafkaLog::on_delivery_report);
  rd_kafka_conf_set_error_cb(conf.value(), &KafkaLog::on_error);
  auto log = std::unique_ptr<KafkaLog>(new KafkaLog(std::move(options)));
  rd_kafka_conf_set_opaque(conf.value(), log.get());
  char errstr[512];
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf.value(), errstr, sizeof errstr);
  if (rk == nullptr) {
    rd_kafka_conf_destroy(conf.value());
    return make_error("spec.kafka", std::string("cannot create the Kafka producer: ") + errstr, 400);
  }
  log->producer_.reset(rk);
  const auto& s = log->options_.settings;
  if (auto st = wait_for_kafka(rk, log->errors_, log->options_.admin_timeout); !st)
    return make_error("spec.kafka", "Kafka at " + s.bootstrap_servers + " " + st.error().message, 503);
  if (auto st =
          ensure_kafka_topic(rk, s.topic, s.partitions, s.replication_factor, log->options_.admin_timeout);
      !st)
    return st.error();
  log->poller_ = std::thread([raw = log.get()] { raw->poll_loop(); });
  SLUICE_LOG(broker, info, "[broker={}] Kafka log on topic {} at {}", log->options_.name, s.topic,
             s.bootstrap_servers);
  return log;
}

KafkaLog::~KafkaLog() {
  close();
}

void KafkaLog::poll_loop() {
  while (!closing_.load(std::memory_order_acquire)) rd_kafka_poll(producer_.get(), 100);
}

void KafkaLog::on_delivery_report(rd_kafka_t*, const rd_kafka_message_t* message, void* opaque) {
  static_cast<KafkaLog*>(opaque)->finish_records(static_cast<Batch*>(message->_private), 1, message);
}

void KafkaLog::on_error(rd_kafka_t*, int err, const char* reason, void* opaque) {
  auto* log = static_cast<KafkaLog*>(opaque);
  log->errors_.note(err, reason);
  SLUICE_LOG(broker, warn, "[broker={}] kafka: {}: {}", log->options_.name,
             rd_kafka_err2name(static_cast<rd_kafka_resp_err_t>(err)), reason);
}

namespace {

// A record Kafka refuses for its size is refused for good: 413, not a 503 that asks for a retry.
bool is_too_large(rd_kafka_resp_err_t err) {
  return err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE || err == RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE;
}

Error too_large(const std::string& broker, rd_kafka_resp_err_t err) {
  return make_error("broker " + broker,
                    std::string("the event is larger than Kafka takes (") + rd_kafka_err2str(err) +
                        "; the producer's message.max.bytes, 1000000 unless spec.kafka.config sets it, "
                        "and the topic's max.message.bytes bound it)",
                    413);
}

}  // namespace

void KafkaLog::finish_records(Batch* batch, std::size_t count, const rd_kafka_message_t* message) {
  bool last = false;
  {
    std::lock_guard lock(batch->mu);
    if (message != nullptr) {
      if (message->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        if (!batch->error)
          batch->error =
              is_too_large(message->err)
                  ? too_large(options_.name, message->err)
                  : make_error("kafka",
                               std::string("the event was not stored: ") + rd_kafka_err2str(message->err),
                               503);
      } else {
        records_.fetch_add(1, std::memory_order_relaxed);
        if (!batch->first_offset) batch->first_offset = message->offset;
      }
    }
    batch->remaining -= count;
    last = batch->remaining == 0;
  }
  if (!last) return;
  std::unique_ptr<Batch> owned(batch);
  unfinished_.fetch_sub(1, std::memory_order_acq_rel);
  if (options_.on_delivered) options_.on_delivered(std::chrono::steady_clock::now() - owned->started);
  if (owned->error) {
    failed_.fetch_add(1, std::memory_order_relaxed);
    owned->done(*owned->error);
  } else {
    batches_.fetch_add(1, std::memory_order_relaxed);
    owned->done(static_cast<std::uint64_t>(owned->first_offset.value_or(0)));
  }
}

void KafkaLog::append(std::vector<std::string> payloads, AppendCallback done) {
  if (payloads.empty()) {
    done(std::uint64_t{0});
    return;
  }
  if (closed_.load(std::memory_order_acquire) || closing_.load(std::memory_order_acquire)) {
    rejected_.fetch_add(1, std::memory_order_relaxed);
    done(make_error("broker " + options_.name, "the log is closed", 503));
    return;
  }
  std::vector<KafkaRecord> records;
  records.reserve(payloads.size());
  for (const auto& payload : payloads) {
    auto event = parse_protobuf(payload);
    if (!event) {
      rejected_.fetch_add(1, std::memory_order_relaxed);
      done(make_error("broker " + options_.name, "not a CloudEvent: " + event.error().to_string(), 400));
      return;
    }
    records.push_back(encode_kafka(event.value(), KafkaMode::Binary));
  }
  auto* batch = new Batch;
  unfinished_.fetch_add(1, std::memory_order_acq_rel);
  batch->done = std::move(done);
  batch->started = std::chrono::steady_clock::now();
  batch->remaining = records.size();
  for (std::size_t i = 0; i < records.size(); ++i) {
    const rd_kafka_resp_err_t err =
        produce_record(producer_.get(), options_.settings.topic, records[i], batch);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) continue;
    {
      std::lock_guard lock(batch->mu);
      batch->error =
          is_too_large(err)
              ? too_large(options_.name, err)
              : make_error("broker " + options_.name,
                           err == RD_KAFKA_RESP_ERR__QUEUE_FULL
                               ? "too many events waiting for Kafka; retry later"
                               : std::string("producing to Kafka failed: ") + rd_kafka_err2str(err),
                           503);
    }
    if (i == 0) rejected_.fetch_add(1, std::memory_order_relaxed);
    finish_records(batch, records.size() - i, nullptr);
    return;
  }
}

Result<std::vector<LogRecord>> KafkaLog::read(std::uint64_t, std::size_t, std::size_t) const {
  return std::vector<LogRecord>{};
}

std::uint64_t KafkaLog::subscribe(std::function<void(std::uint64_t)>) {
  return 0;
}

void KafkaLog::unsubscribe(std::uint64_t) {}

Status KafkaLog::flush() {
  if (!producer_) return ok();
  const auto deadline =
      std::chrono::steady_clock::now() + options_.delivery_timeout + std::chrono::seconds(1);
  // Our own count, not rd_kafka_outq_len: that also counts the client's own requests (metadata, the
  // idempotent producer's id), which never leave while the cluster refuses the connection.
  while (unfinished_.load(std::memory_order_acquire) > 0) {
    if (std::chrono::steady_clock::now() > deadline)
      return make_error("broker " + options_.name,
                        "records still waiting for Kafka after the delivery timeout", 503);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return ok();
}

void KafkaLog::close() {
  if (closed_.exchange(true)) return;
  if (!producer_) return;
  (void)flush();
  closing_.store(true, std::memory_order_release);
  if (poller_.joinable()) poller_.join();
  // Whatever is still queued fails its batch rather than hanging its publisher.
  rd_kafka_purge(producer_.get(), RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  while (unfinished_.load(std::memory_order_acquire) > 0 && std::chrono::steady_clock::now() < deadline)
    rd_kafka_poll(producer_.get(), 10);  // serves the purged records' reports
  producer_.reset();
}

KafkaLogStats KafkaLog::stats() const {
  return {records_.load(), batches_.load(), failed_.load(), rejected_.load()};
}

}  // namespace sluice
