// Kafka over TLS and SASL/PLAIN, end to end: a Kafka-backed broker and a KafkaSource reach the mock cluster
// through tests/helpers/kafka_secure_proxy.cpp, which adds TLS (with or without a required client
// certificate) and SASL/PLAIN in front of it. Certificates are made by openssl for the test (a CA, a server
// certificate for 127.0.0.1 and a client certificate signed by it, and an unrelated CA); the SASL password
// comes from a Secret. kcat talks to the mock cluster directly, as an independent client.

#include <set>

#include "tests/integration/kafka_support.hpp"

namespace sluice::testing {
namespace {

constexpr const char* kUser = "sluice-svc";
constexpr const char* kPassword = "hunter2-kafka";

/// In `dir`: ca.crt/ca.key, server.crt/server.key (127.0.0.1, signed by ca), client.crt/client.key (signed
/// by ca) and other-ca.crt (a CA that signed nothing here).
void make_certificates(const std::string& dir) {
  const std::string key = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes";
  const std::string signed_by_ca = "-CA ca.crt -CAkey ca.key -CAcreateserial -days 2";
  const std::vector<std::string> steps = {
      "openssl req -x509 " + key + " -days 2 -subj /CN=sluice-test-ca -keyout ca.key -out ca.crt",
      "openssl req -x509 " + key + " -days 2 -subj /CN=other-ca -keyout other-ca.key -out other-ca.crt",
      "openssl req " + key +
          " -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 -keyout server.key -out server.csr",
      "openssl x509 -req -in server.csr -copy_extensions copy " + signed_by_ca + " -out server.crt",
      "openssl req " + key + " -subj /CN=sluice-client -keyout client.key -out client.csr",
      "openssl x509 -req -in client.csr " + signed_by_ca + " -out client.crt"};
  std::string script = "set -e; cd " + dir;
  for (const auto& step : steps) script += "; " + step;
  std::string out;
  ASSERT_EQ(run_command(script, &out), 0) << out;
}

/// kafka_secure_proxy in front of `kafka`, with `args` (--cert, --key, --client-ca, --sasl-user, …).
class SecureProxy {
 public:
  SecureProxy(const MockKafka& kafka, std::vector<std::string> args) {
    args.insert(args.begin(), {"--upstream", kafka.bootstrap()});
    process_ = start_helper("kafka_secure_proxy", args, bootstrap_);
  }
  const std::string& bootstrap() const { return bootstrap_; }
  std::string output() const { return process_->output(); }

 private:
  std::unique_ptr<Process> process_;
  std::string bootstrap_;
};

/// The proxy's arguments: TLS with the server certificate made in `dir`, then `more`.
/// What the proxy asks of a client besides TLS: a SASL/PLAIN password, or a certificate of its own.
enum class Guard { Password, ClientCertificate };

/// Certificates in a temporary folder, the mock cluster behind the proxy, a sink and a running server:
/// what every test here starts from. Check `server.wait_ready()` first.
struct SecureSetup {
  SecureSetup(const std::vector<std::string>& topics, Guard guard)
      : kafka(topics), proxy(kafka, proxy_args(guard)) {}

  std::vector<std::string> proxy_args(Guard guard) const {
    make_certificates(dir.path());
    std::vector<std::string> args = {"--cert", dir.path() + "/server.crt", "--key",
                                     dir.path() + "/server.key"};
    if (guard == Guard::Password)
      args.insert(args.end(), {"--sasl-user", kUser, "--sasl-password", kPassword});
    else
      args.insert(args.end(), {"--client-ca", dir.path() + "/ca.crt"});
    return args;
  }

  TempDir dir;
  MockKafka kafka;
  SecureProxy proxy;
  HttpSink sink;
  SluiceServer server;
};

std::string secret_yaml(const std::string& password) {
  return "apiVersion: v1\nkind: Secret\nmetadata: {name: kafka-creds}\nstringData: {password: " + password +
         "}\n";
}

/// librdkafka properties for SASL_SSL with the password from the Secret kafka-creds, trusting `ca_file`.
std::string sasl_ssl_config(const std::string& ca_file) {
  return std::string("security.protocol: SASL_SSL, sasl.mechanisms: PLAIN, sasl.username: ") + kUser +
         ", sasl.password: {secretKeyRef: {name: kafka-creds, key: password}}, ssl.ca.location: \"" +
         ca_file + "\"";
}

/// A Broker on Kafka with `config` and the short timeouts of the other Kafka tests.
std::string secure_broker_yaml(const std::string& name, const std::string& bootstrap,
                               const std::string& topic, const std::string& config) {
  return broker_yaml(name, "storage: kafka, kafka: {bootstrapServers: \"" + bootstrap +
                               "\", topic: " + topic + ", config: {" + config +
                               ", session.timeout.ms: \"3000\", heartbeat.interval.ms: \"300\", "
                               "message.timeout.ms: \"5000\"}}");
}

/// Publishes ids PREFIX0..PREFIX(n-1) to `broker`; returns those answered 202 (failing the test for others).
std::set<std::string> publish_all(SluiceServer& server, const std::string& broker, const std::string& prefix,
                                  int n) {
  std::set<std::string> acknowledged;
  for (int i = 0; i < n; ++i) {
    const std::string id = prefix + std::to_string(i);
    const int status = publish(server, id, "order.created", R"({"n":1})",
                               {{"partitionkey", "k" + std::to_string(i % 5)}}, broker);
    EXPECT_EQ(status, 202) << id;
    if (status == 202) acknowledged.insert(id);
  }
  return acknowledged;
}

/// The ce_id header of every record of `topic`, read by kcat from the mock cluster itself.
std::multiset<std::string> stored_ids(const MockKafka& kafka, const std::string& topic) {
  std::multiset<std::string> ids;
  const std::string out = kafka.consume(topic, "%h\\n");
  for (std::size_t at = out.find("ce_id="); at != std::string::npos; at = out.find("ce_id=", at + 1)) {
    const auto end = out.find_first_of(",\n", at);
    ids.insert(out.substr(at + 6, end - at - 6));
  }
  return ids;
}

TEST(KafkaSecure, BrokerOverSaslSslStoresAndDeliversEveryEvent) {
  SecureSetup setup({"kb-events:4"}, Guard::Password);
  auto& [dir, kafka, proxy, sink, server] = setup;
  ASSERT_TRUE(server.wait_ready());
  apply_yaml(server, secret_yaml(kPassword) + "---\n" +
                         secure_broker_yaml("kb", proxy.bootstrap(), "kb-events",
                                            sasl_ssl_config(dir.path() + "/ca.crt")) +
                         "---\n" + trigger_yaml("t1", sink.url(), "", "kb"));
  ASSERT_EQ(ready_message(server, "brokers", "kb"), "True: ") << proxy.output();

  const auto acknowledged = publish_all(server, "kb", "e", 50);
  ASSERT_EQ(acknowledged.size(), 50u);
  EXPECT_TRUE(wait_all_delivered(sink, acknowledged, std::chrono::seconds(20)))
      << "delivered " << sink.count() << " of 50\n"
      << server.process().output();
  // Every event is in the topic exactly once (idempotent producer), as a client outside Sluice sees it.
  const auto stored = stored_ids(kafka, "kb-events");
  EXPECT_EQ(stored, std::multiset<std::string>(acknowledged.begin(), acknowledged.end()));
  EXPECT_TRUE(wait_until([&] { return resource_status(server, "triggers", "t1").value("lag", -1) == 0; }))
      << resource_status(server, "triggers", "t1").dump();
  EXPECT_EQ(server.process().output().find(kPassword), std::string::npos) << "the password shows nowhere";

  // A changed Secret reaches the running broker: its producer is made again with the new value. A value
  // the cluster refuses leaves the broker not ready with the reason while the producer that works goes
  // on serving; the right value again makes it ready.
  apply_yaml(server, secret_yaml("rotated-wrongly"));
  const std::string message = ready_message(server, "brokers", "kb");
  EXPECT_NE(message.find("Invalid username or password"), std::string::npos) << message;
  EXPECT_EQ(publish(server, "after-rotation", "t", R"({"n":1})", {}, "kb"), 202);
  apply_yaml(server, secret_yaml(kPassword));
  EXPECT_EQ(ready_message(server, "brokers", "kb"), "True: ");
  EXPECT_EQ(publish(server, "after-fix", "t", R"({"n":1})", {}, "kb"), 202);
  EXPECT_TRUE(wait_all_delivered(sink, {"after-rotation", "after-fix"}, std::chrono::seconds(20)));
}

TEST(KafkaSecure, SourceOverSaslSslDeliversWhatKcatProduced) {
  SecureSetup setup({"orders:1"}, Guard::Password);
  auto& [dir, kafka, proxy, sink, server] = setup;
  ASSERT_TRUE(server.wait_ready());
  std::string batch;
  for (int i = 0; i < 10; ++i) batch += "k" + std::to_string(i) + ":v" + std::to_string(i) + "\n";
  ASSERT_EQ(kafka.produce("orders", batch, "-K:"), 0);  // before the source exists
  apply_yaml(server, secret_yaml(kPassword) +
                         "---\napiVersion: sources.knative.dev/v1beta1\nkind: KafkaSource\nmetadata: {name: "
                         "orders}\nspec:\n  bootstrapServers: [\"" +
                         proxy.bootstrap() +
                         "\"]\n  topics: [orders]\n  initialOffset: earliest\n  sink: {uri: \"" + sink.url() +
                         "\"}\n  config: {" + sasl_ssl_config(dir.path() + "/ca.crt") +
                         ", session.timeout.ms: \"3000\", heartbeat.interval.ms: \"300\"}\n");
  ASSERT_TRUE(sink.wait_for(10, std::chrono::seconds(15))) << server.process().output() << proxy.output();
  ASSERT_EQ(kafka.produce("orders", batch, "-K:"), 0);  // while it reads
  std::set<std::string> expected;
  for (int i = 0; i < 20; ++i) expected.insert("partition:0/offset:" + std::to_string(i));
  EXPECT_TRUE(wait_all_delivered(sink, expected, std::chrono::seconds(15)))
      << "delivered " << sink.count() << " of 20\n"
      << server.process().output();
  for (const auto& r : sink.requests()) {
    if (r.header("ce-id") != "partition:0/offset:3") continue;
    EXPECT_EQ(r.header("ce-key"), "k3");
    EXPECT_EQ(r.body, "v3");
  }
  EXPECT_TRUE(wait_until([&] {
    return resource_status(server, "kafkasources", "orders").value("lag", -1) == 0;
  })) << resource_status(server, "kafkasources", "orders").dump();
}

// An untrusted certificate or a wrong password: the broker is not ready and says why, nothing is
// acknowledged, and once the manifest and the Secret are right it works.
TEST(KafkaSecure, RefusedCredentialsOrCertificatesSayWhyAndAcknowledgeNothing) {
  SecureSetup setup({"kb-events:2"}, Guard::Password);
  auto& [dir, kafka, proxy, sink, server] = setup;
  ASSERT_TRUE(server.wait_ready());
  const std::string refused =
      "False: spec.kafka: Kafka at " + proxy.bootstrap() + " refused the connection: ";

  // A CA that did not sign the proxy's certificate: TLS fails (before SASL starts).
  apply_yaml(server, secret_yaml("not-the-password") + "---\n" +
                         secure_broker_yaml("kb", proxy.bootstrap(), "kb-events",
                                            sasl_ssl_config(dir.path() + "/other-ca.crt")) +
                         "---\n" + trigger_yaml("t1", sink.url(), "", "kb"));
  std::string message = ready_message(server, "brokers", "kb");
  EXPECT_EQ(message.find(refused), 0u) << message;
  EXPECT_NE(message.find("SSL handshake failed"), std::string::npos) << message;
  EXPECT_NE(message.find("certificate verify failed"), std::string::npos) << message;
  EXPECT_NE(message.find("(check ssl.ca.location"), std::string::npos) << message;
  // Not ready: a publish is refused with 503 (the broker exists), never acknowledged.
  EXPECT_EQ(publish(server, "refused-1", "t", R"({"n":1})", {}, "kb"), 503);

  // The right CA, a wrong password: SASL authentication fails.
  const std::string broker =
      secure_broker_yaml("kb", proxy.bootstrap(), "kb-events", sasl_ssl_config(dir.path() + "/ca.crt"));
  apply_yaml(server, broker);
  message = ready_message(server, "brokers", "kb");
  EXPECT_EQ(message.find(refused), 0u) << message;
  EXPECT_NE(message.find("SASL authentication error: Authentication failed: Invalid username or password"),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("(check sasl.mechanisms, sasl.username and sasl.password)"), std::string::npos)
      << message;
  EXPECT_EQ(publish(server, "refused-2", "t", R"({"n":1})", {}, "kb"), 503);

  // The same from a KafkaSource: its status names the failure, and apply does not wait out Kafka's
  // timeouts (5 s for metadata, 5 s for committed offsets) when the cluster has said no.
  HttpSink source_sink;
  const auto source_applied = std::chrono::steady_clock::now();
  apply_yaml(server,
             "apiVersion: sources.knative.dev/v1beta1\nkind: KafkaSource\nmetadata: {name: refused}\nspec:\n"
             "  bootstrapServers: [\"" +
                 proxy.bootstrap() +
                 "\"]\n  topics: [kb-events]\n  initialOffset: earliest\n  sink: {uri: \"" +
                 source_sink.url() + "\"}\n  config: {" + sasl_ssl_config(dir.path() + "/ca.crt") + "}\n");
  EXPECT_LT(std::chrono::steady_clock::now() - source_applied, std::chrono::seconds(4));
  EXPECT_TRUE(wait_until([&] {
    return resource_status(server, "kafkasources", "refused")
               .value("lastError", "")
               .find("Invalid username or password") != std::string::npos;
  })) << resource_status(server, "kafkasources", "refused").dump();
  EXPECT_TRUE(wait_until([&] {
    const auto ready = ready_message(server, "kafkasources", "refused");
    return ready.rfind("False: Kafka at " + proxy.bootstrap() + " refused the connection: ", 0) == 0 &&
           ready.find("Invalid username or password") != std::string::npos;
  })) << ready_message(server, "kafkasources", "refused");

  // The right password in the Secret: the broker is tried again and is ready; every acknowledged event is
  // delivered, and the refused ones were never stored. The running KafkaSource's consumer is made again
  // with the new password (a rotated Secret reaches running clients) and reads the topic too.
  apply_yaml(server, secret_yaml(kPassword));
  ASSERT_EQ(ready_message(server, "brokers", "kb"), "True: ") << proxy.output();
  ASSERT_TRUE(wait_until([&] { return assigned_partitions(server, "triggers", "t1") == 2; },
                         std::chrono::seconds(15)))
      << resource_status(server, "triggers", "t1").dump();
  const auto acknowledged = publish_all(server, "kb", "ok", 10);
  EXPECT_TRUE(wait_all_delivered(sink, acknowledged, std::chrono::seconds(15))) << server.process().output();
  EXPECT_EQ(stored_ids(kafka, "kb-events"),
            std::multiset<std::string>(acknowledged.begin(), acknowledged.end()));
  EXPECT_TRUE(wait_all_delivered(source_sink, acknowledged, std::chrono::seconds(20)))
      << resource_status(server, "kafkasources", "refused").dump();
  EXPECT_EQ(ready_message(server, "kafkasources", "refused"), "True: ");
  const auto output = server.process().output();
  EXPECT_EQ(output.find(kPassword), std::string::npos) << "the password shows nowhere";
  EXPECT_EQ(output.find("not-the-password"), std::string::npos);
}

// TLS only, with a client certificate required by the cluster: Sluice presents one and works; without
// one the broker is not ready and says the cluster wants a certificate.
TEST(KafkaSecure, MutualTlsWorksWithAClientCertificateAndSaysWhyWithout) {
  SecureSetup setup({"kb-events:2", "kb-nocert:1"}, Guard::ClientCertificate);
  auto& [dir, kafka, proxy, sink, server] = setup;
  ASSERT_TRUE(server.wait_ready());
  const std::string ssl = "security.protocol: SSL, ssl.ca.location: \"" + dir.path() + "/ca.crt\"";
  apply_yaml(server,
             secure_broker_yaml("kb", proxy.bootstrap(), "kb-events",
                                ssl + ", ssl.certificate.location: \"" + dir.path() +
                                    "/client.crt\", ssl.key.location: \"" + dir.path() + "/client.key\"") +
                 "---\n" + trigger_yaml("t1", sink.url(), "", "kb"));
  ASSERT_EQ(ready_message(server, "brokers", "kb"), "True: ") << proxy.output();
  const auto acknowledged = publish_all(server, "kb", "m", 20);
  EXPECT_TRUE(wait_all_delivered(sink, acknowledged, std::chrono::seconds(15))) << server.process().output();
  EXPECT_EQ(stored_ids(kafka, "kb-events"),
            std::multiset<std::string>(acknowledged.begin(), acknowledged.end()));

  apply_yaml(server, secure_broker_yaml("nocert", proxy.bootstrap(), "kb-nocert", ssl));
  const std::string message = ready_message(server, "brokers", "nocert");
  EXPECT_EQ(message.find("False: spec.kafka: Kafka at " + proxy.bootstrap() + " refused the connection: "),
            0u)
      << message;
  EXPECT_NE(message.find("certificate required"), std::string::npos) << message;
  EXPECT_NE(message.find("check ssl.certificate.location and ssl.key.location"), std::string::npos)
      << message;
  EXPECT_EQ(publish(server, "nocert-1", "t", R"({"n":1})", {}, "nocert"), 503);
  EXPECT_TRUE(stored_ids(kafka, "kb-nocert").empty());
}

}  // namespace
}  // namespace sluice::testing
