#include "server/config_topic.hpp"

#include <unistd.h>

#include "core/http_server.hpp"
#include "core/log.hpp"

namespace sluice {
namespace {

constexpr std::string_view kScheme = "kafka://";
constexpr std::string_view kUsage = "expected kafka://HOST:PORT[,HOST:PORT...][/TOPIC][?PROPERTY=VALUE&...]";

Error url_error(const std::string& what) {
  return make_error("--config-store", what + " (" + std::string(kUsage) + ")", 400);
}

/// What a write's delivery report says, filled in by on_delivery from rd_kafka_flush (under the write
/// mutex). Shared with the record's opaque, so a report that comes after the writer gave up is harmless.
struct Delivery {
  bool reported = false;
  rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
  std::int32_t partition = 0;
  std::int64_t offset = -1;
};

ConfigRecord config_record(const rd_kafka_message_t& message) {
  ConfigRecord record;
  if (message.key) record.key.assign(static_cast<const char*>(message.key), message.key_len);
  if (message.payload) record.value.emplace(static_cast<const char*>(message.payload), message.len);
  record.partition = message.partition;
  record.offset = message.offset;
  return record;
}

}  // namespace

Result<ConfigStoreUrl> parse_config_store_url(std::string_view url) {
  if (url.substr(0, kScheme.size()) != kScheme) return url_error("\"" + std::string(url) + "\"");
  std::string_view rest = url.substr(kScheme.size());
  ConfigStoreUrl out;
  if (auto q = rest.find('?'); q != std::string_view::npos) {
    std::string_view query = rest.substr(q + 1);
    rest = rest.substr(0, q);
    while (!query.empty()) {
      auto amp = query.find('&');
      std::string_view pair = query.substr(0, amp);
      query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
      auto eq = pair.find('=');
      auto name = url_decode(pair.substr(0, eq));
      auto value = eq == std::string_view::npos ? std::nullopt : url_decode(pair.substr(eq + 1));
      if (!name || name->empty() || !value) return url_error("bad property \"" + std::string(pair) + "\"");
      out.properties[*name] = *value;
    }
  }
  if (auto slash = rest.find('/'); slash != std::string_view::npos) {
    if (slash + 1 < rest.size()) out.topic = std::string(rest.substr(slash + 1));
    rest = rest.substr(0, slash);
  }
  if (rest.empty()) return url_error("no bootstrap servers");
  if (out.topic.find('/') != std::string::npos) return url_error("bad topic \"" + out.topic + "\"");
  out.bootstrap_servers = std::string(rest);
  // The properties must be ones librdkafka knows, with values it takes.
  auto check = out.properties;
  check["bootstrap.servers"] = out.bootstrap_servers;
  auto conf = make_kafka_conf(check);
  if (!conf) return url_error("property " + conf.error().subject + ": " + conf.error().message);
  rd_kafka_conf_destroy(conf.value());
  return out;
}

Result<std::unique_ptr<KafkaConfigTopic>> KafkaConfigTopic::open(const ConfigStoreUrl& url,
                                                                 std::chrono::milliseconds timeout) {
  auto topic = std::unique_ptr<KafkaConfigTopic>(new KafkaConfigTopic());
  topic->url_ = url;
  topic->timeout_ = timeout;
  char errstr[512];

  auto producer_properties = url.properties;
  producer_properties["bootstrap.servers"] = url.bootstrap_servers;
  producer_properties["acks"] = "all";
  producer_properties["enable.idempotence"] = "true";
  producer_properties["linger.ms"] = "0";
  producer_properties["message.timeout.ms"] = std::to_string(timeout.count());
  producer_properties.try_emplace("client.id", "sluice-config-writer");
  auto producer_conf = make_kafka_conf(producer_properties);
  if (!producer_conf) return url_error(producer_conf.error().to_string());
  rd_kafka_conf_set_dr_msg_cb(producer_conf.value(), &KafkaConfigTopic::on_delivery);
  rd_kafka_conf_set_error_cb(producer_conf.value(), &KafkaConfigTopic::on_error);
  rd_kafka_conf_set_opaque(producer_conf.value(), topic.get());
  rd_kafka_t* producer = rd_kafka_new(RD_KAFKA_PRODUCER, producer_conf.value(), errstr, sizeof errstr);
  if (producer == nullptr) {
    rd_kafka_conf_destroy(producer_conf.value());
    return make_error("--config-store", std::string("cannot create the Kafka producer: ") + errstr, 400);
  }
  topic->producer_.reset(producer);
  // A cluster that does not answer, or refuses the client, is reported as such: creating the topic
  // would only time out later (after several timeouts) with a reason that names the controller.
  if (auto st = wait_for_kafka(producer, topic->errors_, timeout); !st)
    return make_error("--config-store", "Kafka at " + url.bootstrap_servers + " " + st.error().message, 503);
  if (auto st = ensure_kafka_topic(producer, url.topic, 1, 1, timeout, {{"cleanup.policy", "compact"}}); !st)
    return make_error("--config-store " + url.bootstrap_servers, st.error().to_string(), 503);

  // A reader, not a group member: every node reads every partition from the beginning. librdkafka's
  // consumer API wants a group.id, but nothing is joined or committed.
  auto reader_properties = url.properties;
  reader_properties["bootstrap.servers"] = url.bootstrap_servers;
  reader_properties["group.id"] = "sluice-config-reader-" + std::to_string(::getpid());
  reader_properties["enable.auto.commit"] = "false";
  reader_properties["enable.partition.eof"] = "true";
  reader_properties["fetch.wait.max.ms"] = "100";
  reader_properties.try_emplace("client.id", "sluice-config-reader");
  auto reader_conf = make_kafka_conf(reader_properties);
  if (!reader_conf) return url_error(reader_conf.error().to_string());
  rd_kafka_t* reader = rd_kafka_new(RD_KAFKA_CONSUMER, reader_conf.value(), errstr, sizeof errstr);
  if (reader == nullptr) {
    rd_kafka_conf_destroy(reader_conf.value());
    return make_error("--config-store", std::string("cannot create the Kafka consumer: ") + errstr, 400);
  }
  topic->reader_.reset(reader);
  rd_kafka_poll_set_consumer(reader);
  return topic;
}

KafkaConfigTopic::~KafkaConfigTopic() {
  stop();
  if (reader_) rd_kafka_consumer_close(reader_.get());
  if (producer_) rd_kafka_flush(producer_.get(), 1000);
}

void KafkaConfigTopic::stop() {
  stopping_.store(true, std::memory_order_release);
  if (follower_.joinable()) follower_.join();
}

Result<std::vector<ConfigRecord>> KafkaConfigTopic::read_to_end() {
  const int partitions = kafka_partition_count(reader_.get(), url_.topic, timeout_);
  if (partitions <= 0)
    return make_error("--config-store",
                      "topic " + url_.topic + " on " + url_.bootstrap_servers +
                          " is not available (is the Kafka cluster reachable?)",
                      503);
  std::map<std::int32_t, std::int64_t> ends;
  KafkaPartitionList assignment(rd_kafka_topic_partition_list_new(partitions));
  for (std::int32_t p = 0; p < partitions; ++p) {
    std::int64_t low = 0;
    std::int64_t high = 0;
    if (auto err = rd_kafka_query_watermark_offsets(reader_.get(), url_.topic.c_str(), p, &low, &high,
                                                    static_cast<int>(timeout_.count()));
        err)
      return make_error("--config-store",
                        "cannot read the end of " + url_.topic + ": " + rd_kafka_err2str(err), 503);
    ends[p] = high;
    rd_kafka_topic_partition_list_add(assignment.get(), url_.topic.c_str(), p)->offset =
        RD_KAFKA_OFFSET_BEGINNING;
  }
  if (auto err = rd_kafka_assign(reader_.get(), assignment.get()); err)
    return make_error("--config-store",
                      std::string("cannot read ") + url_.topic + ": " + rd_kafka_err2str(err), 503);
  return read_until(ends);
}

Result<std::vector<ConfigRecord>> KafkaConfigTopic::read_until(
    const std::map<std::int32_t, std::int64_t>& ends) {
  std::vector<ConfigRecord> records;
  std::map<std::int32_t, std::int64_t> next;  // partition → next offset seen
  auto done = [&] {
    for (const auto& [p, end] : ends)
      if (end > 0 && next[p] < end) return false;
    return true;
  };
  const auto deadline = std::chrono::steady_clock::now() + timeout_;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline)
      return make_error("--config-store", "reading " + url_.topic + " to its end timed out", 503);
    rd_kafka_message_t* message = rd_kafka_consumer_poll(reader_.get(), 100);
    if (message == nullptr) continue;
    if (message->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      next[message->partition] = std::max(next[message->partition], message->offset);
    } else if (message->err) {
      SLUICE_LOG(server, warn, "config store {}: {}", url_.topic, rd_kafka_message_errstr(message));
    } else {
      next[message->partition] = message->offset + 1;
      records.push_back(config_record(*message));
    }
    rd_kafka_message_destroy(message);
  }
  std::lock_guard lock(applied_mu_);
  for (const auto& [p, end] : ends) applied_[p] = std::max(next[p], end);
  return records;
}

void KafkaConfigTopic::follow(std::function<void(const ConfigRecord&)> apply) {
  follower_ = std::thread([this, apply = std::move(apply)] {
    while (!stopping_.load(std::memory_order_acquire)) {
      rd_kafka_message_t* message = rd_kafka_consumer_poll(reader_.get(), 100);
      if (message == nullptr) continue;
      if (message->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        const ConfigRecord record = config_record(*message);
        apply(record);
        mark_applied(record.partition, record.offset + 1);
      } else if (message->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        SLUICE_LOG(server, warn, "config store {}: {}", url_.topic, rd_kafka_message_errstr(message));
      }
      rd_kafka_message_destroy(message);
    }
  });
}

void KafkaConfigTopic::mark_applied(std::int32_t partition, std::int64_t offset) {
  {
    std::lock_guard lock(applied_mu_);
    auto& applied = applied_[partition];
    applied = std::max(applied, offset);
  }
  applied_cv_.notify_all();
}

void KafkaConfigTopic::on_error(rd_kafka_t*, int err, const char* reason, void* opaque) {
  static_cast<KafkaConfigTopic*>(opaque)->errors_.note(err, reason);
}

void KafkaConfigTopic::on_delivery(rd_kafka_t*, const rd_kafka_message_t* message, void*) {
  std::unique_ptr<std::shared_ptr<Delivery>> box(static_cast<std::shared_ptr<Delivery>*>(message->_private));
  Delivery& delivery = **box;
  delivery.reported = true;
  delivery.err = message->err;
  delivery.partition = message->partition;
  delivery.offset = message->offset;
}

Result<ConfigRecord> KafkaConfigTopic::write(const std::string& key,
                                             const std::optional<std::string>& value) {
  std::lock_guard lock(write_mu_);
  auto shared = std::make_shared<Delivery>();
  const Delivery& delivery = *shared;
  auto box = std::make_unique<std::shared_ptr<Delivery>>(shared);
  KafkaRecord record;
  record.key = key;
  record.value = value;
  if (auto err = produce_record(producer_.get(), url_.topic, record, box.get()); err)
    return make_error("config store", std::string("cannot write ") + key + ": " + rd_kafka_err2str(err), 503);
  box.release();  // on_delivery owns it now
  // The delivery report comes within message.timeout.ms; flush serves it on this thread.
  rd_kafka_flush(producer_.get(), static_cast<int>(timeout_.count()) + 1000);
  if (!delivery.reported)
    return make_error("config store", "writing " + key + " to " + url_.topic + " timed out", 503);
  if (delivery.err)
    return make_error("config store",
                      "writing " + key + " to " + url_.topic + " failed: " + rd_kafka_err2str(delivery.err),
                      503);
  ConfigRecord written;
  written.key = key;
  written.value = value;
  written.partition = delivery.partition;
  written.offset = delivery.offset;
  return written;
}

bool KafkaConfigTopic::wait_applied(const ConfigRecord& written, std::chrono::milliseconds timeout) {
  std::unique_lock lock(applied_mu_);
  return applied_cv_.wait_for(lock, timeout, [&] { return applied_[written.partition] > written.offset; });
}

}  // namespace sluice
