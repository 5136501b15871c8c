#include "broker/kafka_client.hpp"

#include <algorithm>
#include <string_view>

namespace sluice {

namespace {

/// The hint for an error that reconnecting does not cure, "" for any other error.
std::string refusal_hint(int err, std::string_view reason) {
  switch (err) {
    case RD_KAFKA_RESP_ERR__AUTHENTICATION:
    case RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED:
      return "check sasl.mechanisms, sasl.username and sasl.password";
    case RD_KAFKA_RESP_ERR__SSL:
      return "check ssl.ca.location, and ssl.certificate.location and ssl.key.location if the cluster "
             "requires a client certificate";
    case RD_KAFKA_RESP_ERR__TRANSPORT:
      // A TLS alert from the cluster (OpenSSL's "SSL alert number N"): with TLS 1.3 a refused or missing
      // client certificate shows after the handshake, on the first read, as a transport error.
      if (reason.find("SSL alert number") != std::string_view::npos)
        return "check ssl.certificate.location and ssl.key.location (the client certificate the cluster "
               "requires) and ssl.ca.location";
      return "";
    default:
      return "";
  }
}

}  // namespace

Result<rd_kafka_conf_t*> make_kafka_conf(const std::map<std::string, std::string>& properties) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char errstr[512];
  for (const auto& [name, value] : properties) {
    if (rd_kafka_conf_set(conf, name.c_str(), value.c_str(), errstr, sizeof errstr) != RD_KAFKA_CONF_OK) {
      rd_kafka_conf_destroy(conf);
      return make_error(name, errstr, 400);
    }
  }
  return conf;
}

Result<KafkaConfig> parse_kafka_config(const nlohmann::json& v, const std::string& field) {
  if (!v.is_object()) return make_error(field, "must be an object of librdkafka properties", 400);
  KafkaConfig config;
  for (const auto& [key, value] : v.items()) {
    if (value.is_string()) {
      config.values[key] = value.get<std::string>();
    } else if (value.is_number() || value.is_boolean()) {
      config.values[key] = value.dump();
    } else if (is_secret_key_ref(value)) {
      auto ref = parse_secret_key_ref(value, field + "." + key);
      if (!ref) return ref.error();
      config.secrets[key] = ref.value();
    } else {
      return make_error(field + "." + key, "must be a string, number, boolean or {secretKeyRef: {name, key}}",
                        400);
    }
  }
  // Secret values are not known here: a stand-in checks that the property takes a string.
  auto check = config.values;
  for (const auto& [key, ref] : config.secrets) check[key] = "secret";
  auto conf = make_kafka_conf(check);
  if (!conf) return make_error(field + "." + conf.error().subject, conf.error().message, 400);
  rd_kafka_conf_destroy(conf.value());
  return config;
}

Result<std::map<std::string, std::string>> resolve_kafka_config(const KafkaConfig& config,
                                                                const SecretResolver& resolve,
                                                                const std::string& field) {
  auto secrets = resolve_secrets(config.secrets, resolve, field + ".");
  if (!secrets) return secrets.error();
  auto out = config.values;
  for (auto& [key, value] : secrets.value()) out[key] = std::move(value);
  return out;
}

KafkaRecord record_of(const rd_kafka_message_t& message) {
  KafkaRecord record;
  if (message.key != nullptr) record.key.emplace(static_cast<const char*>(message.key), message.key_len);
  if (message.payload != nullptr)
    record.value.emplace(static_cast<const char*>(message.payload), message.len);
  rd_kafka_timestamp_type_t type = RD_KAFKA_TIMESTAMP_NOT_AVAILABLE;
  record.timestamp_ms = rd_kafka_message_timestamp(&message, &type);
  rd_kafka_headers_t* headers = nullptr;
  if (rd_kafka_message_headers(&message, &headers) == RD_KAFKA_RESP_ERR_NO_ERROR && headers != nullptr) {
    const char* name = nullptr;
    const void* value = nullptr;
    std::size_t size = 0;
    for (std::size_t i = 0;
         rd_kafka_header_get_all(headers, i, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR; ++i)
      record.headers.emplace_back(
          name, value != nullptr ? std::string(static_cast<const char*>(value), size) : std::string());
  }
  return record;
}

rd_kafka_resp_err_t produce_record(rd_kafka_t* producer, const std::string& topic, const KafkaRecord& record,
                                   void* opaque) {
  rd_kafka_headers_t* headers = rd_kafka_headers_new(record.headers.size());
  for (const auto& [name, value] : record.headers)
    rd_kafka_header_add(headers, name.data(), static_cast<ssize_t>(name.size()), value.data(),
                        static_cast<ssize_t>(value.size()));
  // librdkafka copies key and value (RD_KAFKA_MSG_F_COPY) and owns the headers once the call succeeds.
  const void* key = record.key ? record.key->data() : nullptr;
  const std::size_t key_len = record.key ? record.key->size() : 0;
  void* value = record.value ? const_cast<char*>(record.value->data()) : nullptr;
  const std::size_t value_len = record.value ? record.value->size() : 0;
  const rd_kafka_resp_err_t err = rd_kafka_producev(
      producer, RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
      RD_KAFKA_V_KEY(key, key_len), RD_KAFKA_V_VALUE(value, value_len), RD_KAFKA_V_HEADERS(headers),
      RD_KAFKA_V_TIMESTAMP(record.timestamp_ms > 0 ? record.timestamp_ms : 0), RD_KAFKA_V_OPAQUE(opaque),
      RD_KAFKA_V_END);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) rd_kafka_headers_destroy(headers);
  return err;
}

int kafka_partition_count(rd_kafka_t* client, const std::string& topic, std::chrono::milliseconds timeout) {
  const rd_kafka_metadata_t* metadata = nullptr;
  if (rd_kafka_metadata(client, 1, nullptr, &metadata, static_cast<int>(timeout.count())) !=
      RD_KAFKA_RESP_ERR_NO_ERROR)
    return 0;
  int count = 0;
  for (int i = 0; i < metadata->topic_cnt; ++i)
    if (topic == metadata->topics[i].topic && metadata->topics[i].err == RD_KAFKA_RESP_ERR_NO_ERROR)
      count = metadata->topics[i].partition_cnt;
  rd_kafka_metadata_destroy(metadata);
  return count;
}

Status ensure_kafka_topic(rd_kafka_t* client, const std::string& topic, int partitions,
                          int replication_factor, std::chrono::milliseconds timeout,
                          const std::map<std::string, std::string>& configs) {
  if (kafka_partition_count(client, topic, timeout) > 0) return ok();
  char errstr[512];
  rd_kafka_NewTopic_t* new_topic =
      rd_kafka_NewTopic_new(topic.c_str(), partitions, replication_factor, errstr, sizeof errstr);
  if (new_topic == nullptr) return make_error("topic " + topic, errstr, 400);
  for (const auto& [name, value] : configs) {
    if (rd_kafka_resp_err_t err = rd_kafka_NewTopic_set_config(new_topic, name.c_str(), value.c_str()); err) {
      rd_kafka_NewTopic_destroy(new_topic);
      return make_error("topic " + topic + " config " + name, rd_kafka_err2str(err), 400);
    }
  }
  rd_kafka_queue_t* queue = rd_kafka_queue_new(client);
  rd_kafka_AdminOptions_t* options = rd_kafka_AdminOptions_new(client, RD_KAFKA_ADMIN_OP_CREATETOPICS);
  rd_kafka_AdminOptions_set_operation_timeout(options, static_cast<int>(timeout.count()), errstr,
                                              sizeof errstr);
  rd_kafka_AdminOptions_set_request_timeout(options, static_cast<int>(timeout.count()), errstr,
                                            sizeof errstr);
  rd_kafka_CreateTopics(client, &new_topic, 1, options, queue);
  rd_kafka_event_t* event = rd_kafka_queue_poll(queue, static_cast<int>(timeout.count()) + 1000);
  Status status = ok();
  if (event == nullptr) {
    status =
        make_error("topic " + topic, "creating the topic timed out (is the Kafka cluster reachable?)", 503);
  } else if (rd_kafka_event_error(event) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    status = make_error("topic " + topic,
                        std::string("creating the topic failed: ") + rd_kafka_event_error_string(event), 503);
  } else {
    const rd_kafka_CreateTopics_result_t* result = rd_kafka_event_CreateTopics_result(event);
    std::size_t count = 0;
    const rd_kafka_topic_result_t** results = rd_kafka_CreateTopics_result_topics(result, &count);
    for (std::size_t i = 0; i < count; ++i) {
      const rd_kafka_resp_err_t err = rd_kafka_topic_result_error(results[i]);
      if (err != RD_KAFKA_RESP_ERR_NO_ERROR && err != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
        status = make_error(
            "topic " + topic,
            std::string("creating the topic failed: ") + (rd_kafka_topic_result_error_string(results[i])
                                                              ? rd_kafka_topic_result_error_string(results[i])
                                                              : rd_kafka_err2str(err)),
            503);
    }
  }
  if (event != nullptr) rd_kafka_event_destroy(event);
  rd_kafka_AdminOptions_destroy(options);
  rd_kafka_queue_destroy(queue);
  rd_kafka_NewTopic_destroy(new_topic);
  // Clusters without a controller in their metadata (librdkafka's mock cluster) cannot run CreateTopics
  // but may create topics on first use.
  if (!status) {
    rd_kafka_topic_t* handle = rd_kafka_topic_new(client, topic.c_str(), nullptr);
    const rd_kafka_metadata_t* metadata = nullptr;
    if (handle != nullptr &&
        rd_kafka_metadata(client, 0, handle, &metadata, static_cast<int>(timeout.count())) ==
            RD_KAFKA_RESP_ERR_NO_ERROR)
      rd_kafka_metadata_destroy(metadata);
    if (handle != nullptr) rd_kafka_topic_destroy(handle);
    if (kafka_partition_count(client, topic, timeout) > 0) return ok();
  }
  return status;
}

void KafkaErrors::note(int err, const char* reason) {
  const std::string text =
      reason != nullptr ? reason : rd_kafka_err2str(static_cast<rd_kafka_resp_err_t>(err));
  const std::string hint = refusal_hint(err, text);
  std::lock_guard lock(mu_);
  // "N/N brokers are down" follows each broker's own error, which says more.
  if (err != RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN || last_.empty()) last_ = text;
  if (!hint.empty() && refusal_.empty()) refusal_ = text + " (" + hint + ")";
}

std::string KafkaErrors::last() const {
  std::lock_guard lock(mu_);
  return last_;
}

std::string KafkaErrors::refusal() const {
  std::lock_guard lock(mu_);
  return refusal_;
}

void KafkaErrors::clear_refusal() {
  std::lock_guard lock(mu_);
  refusal_.clear();
}

Status wait_for_kafka(rd_kafka_t* client, const KafkaErrors& errors, std::chrono::milliseconds timeout) {
  using std::chrono::steady_clock;
  const auto deadline = steady_clock::now() + timeout;
  for (;;) {
    rd_kafka_poll(client, 10);  // serves the error callback
    if (auto refusal = errors.refusal(); !refusal.empty())
      return make_error("", "refused the connection: " + refusal, 503);
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady_clock::now());
    if (left.count() <= 0) break;
    const rd_kafka_metadata_t* metadata = nullptr;
    if (rd_kafka_metadata(client, 0, nullptr, &metadata,
                          static_cast<int>(std::min<long>(left.count(), 250))) ==
        RD_KAFKA_RESP_ERR_NO_ERROR) {
      rd_kafka_metadata_destroy(metadata);
      return ok();
    }
  }
  const std::string last = errors.last();
  return make_error("",
                    "did not answer within " + std::to_string(timeout.count()) + " ms" +
                        (last.empty() ? "" : " (last error: " + last + ")"),
                    503);
}

Result<std::string> bootstrap_servers_of(const nlohmann::json& value, const std::string& field) {
  std::string servers;
  if (value.is_string()) {
    servers = value.get<std::string>();
  } else if (value.is_array()) {
    for (const auto& item : value) {
      if (!item.is_string()) return make_error(field, "must be a list of host:port strings", 400);
      if (!servers.empty()) servers += ",";
      servers += item.get<std::string>();
    }
  } else {
    return make_error(field, "is required: host:port of the Kafka cluster (a string or a list)", 400);
  }
  if (servers.empty()) return make_error(field, "must name at least one host:port", 400);
  return servers;
}

}  // namespace sluice
