// TLS of a real `sluice serve`: HTTPS publishing with certificates made by openssl for the test,
// certificate reload without a restart, clear errors for a bad certificate or key, and triggers that
// deliver to https:// subscribers (another sluice's TLS listener) they trust, and only those.

#include <fstream>
#include <mutex>
#include <thread>

#include "tests/integration/broker_support.hpp"

namespace sluice::testing {
namespace {

/// A self-signed certificate for 127.0.0.1 in DIR/NAME.crt and DIR/NAME.key.
void make_certificate(const std::string& dir, const std::string& name) {
  std::string out;
  ASSERT_EQ(run_command("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "
                        "/CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 -keyout " +
                            dir + "/" + name + ".key -out " + dir + "/" + name + ".crt",
                        &out),
            0)
      << out;
}

int https_get(int port, const std::string& ca_file, const std::string& path) {
  httplib::SSLClient client("127.0.0.1", port);
  client.set_ca_cert_path(ca_file.c_str());
  client.enable_server_certificate_verification(true);
  client.set_connection_timeout(std::chrono::seconds(2));
  auto res = client.Get(path);
  return res ? res->status : 0;
}

TEST(Tls, PublishesOverHttpsAndReloadsTheCertificate) {
  TempDir dir;
  make_certificate(dir.path(), "first");
  make_certificate(dir.path(), "second");
  ASSERT_EQ(run_command("cp " + dir.path() + "/first.crt " + dir.path() + "/server.crt && cp " + dir.path() +
                        "/first.key " + dir.path() + "/server.key"),
            0);
  const int tls_port = free_port();
  SluiceServer server({"--tls-listen", "127.0.0.1:" + std::to_string(tls_port), "--tls-cert",
                       dir.path() + "/server.crt", "--tls-key", dir.path() + "/server.key"});
  ASSERT_TRUE(server.wait_ready());
  apply_yaml(server, broker_yaml());

  httplib::SSLClient client("127.0.0.1", tls_port);
  client.set_ca_cert_path((dir.path() + "/first.crt").c_str());
  client.enable_server_certificate_verification(true);
  auto res =
      client.Post("/brokers/default",
                  {{"ce-specversion", "1.0"}, {"ce-id", "tls-1"}, {"ce-type", "t"}, {"ce-source", "/tls"}},
                  R"({"secure":true})", "application/json");
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  EXPECT_EQ(res->status, 202) << res->body;
  EXPECT_EQ(https_get(tls_port, dir.path() + "/first.crt", "/healthz"), 200);
  // A client that trusts another certificate refuses the connection; plain HTTP is told why.
  EXPECT_EQ(https_get(tls_port, dir.path() + "/second.crt", "/healthz"), 0);
  httplib::Client plain("127.0.0.1", tls_port);
  plain.set_read_timeout(std::chrono::seconds(2));
  auto plain_res = plain.Get("/healthz");
  ASSERT_TRUE(plain_res) << httplib::to_string(plain_res.error());
  EXPECT_EQ(plain_res->status, 400);
  EXPECT_EQ(plain_res->body, "Client sent an HTTP request to an HTTPS server.\n");
  EXPECT_EQ(https_get(tls_port, dir.path() + "/first.crt", "/healthz"), 200);  // and TLS still works

  // Renewal: new files in place; new connections get the new certificate without a restart.
  ASSERT_EQ(run_command("cp " + dir.path() + "/second.crt " + dir.path() + "/server.crt && cp " + dir.path() +
                        "/second.key " + dir.path() + "/server.key"),
            0);
  EXPECT_TRUE(wait_until([&] { return https_get(tls_port, dir.path() + "/second.crt", "/healthz") == 200; },
                         std::chrono::seconds(15), std::chrono::milliseconds(200)));
  EXPECT_EQ(https_get(tls_port, dir.path() + "/first.crt", "/healthz"), 0);
}

TEST(Tls, AKeyThatDoesNotMatchTheCertificateStopsTheServer) {
  TempDir dir;
  make_certificate(dir.path(), "a");
  make_certificate(dir.path(), "b");
  Process serve(built_program("sluice"),
                {"serve", "--listen", "127.0.0.1:" + std::to_string(free_port()), "--data-dir",
                 dir.path() + "/d", "--tls-listen", "127.0.0.1:" + std::to_string(free_port()), "--tls-cert",
                 dir.path() + "/a.crt", "--tls-key", dir.path() + "/b.key"});
  EXPECT_EQ(serve.wait(std::chrono::seconds(10)), 1);
  EXPECT_NE(serve.output().find("--tls-key " + dir.path() + "/b.key"), std::string::npos) << serve.output();
  EXPECT_NE(serve.output().find("mismatch"), std::string::npos) << serve.output();

  // A certificate file that is not there: named, with the system's reason.
  Process missing(built_program("sluice"),
                  {"serve", "--listen", "127.0.0.1:" + std::to_string(free_port()), "--data-dir",
                   dir.path() + "/m", "--tls-listen", "127.0.0.1:" + std::to_string(free_port()),
                   "--tls-cert", dir.path() + "/none.crt", "--tls-key", dir.path() + "/a.key"});
  EXPECT_EQ(missing.wait(std::chrono::seconds(10)), 1);
  EXPECT_NE(missing.output().find("--tls-cert " + dir.path() +
                                  "/none.crt: cannot load the certificate chain: No such file or directory"),
            std::string::npos)
      << missing.output();
}

TEST(Tls, TriggersDeliverToHttpsSubscribersTheyTrust) {
  TempDir dir;
  make_certificate(dir.path(), "receiver");
  make_certificate(dir.path(), "other");
  const int tls_port = free_port();
  SluiceServer receiver({"--tls-listen", "127.0.0.1:" + std::to_string(tls_port), "--tls-cert",
                         dir.path() + "/receiver.crt", "--tls-key", dir.path() + "/receiver.key"});
  ASSERT_TRUE(receiver.wait_ready());
  HttpSink sink;
  apply_yaml(receiver, broker_yaml() + "---\n" + trigger_yaml("out", sink.url()));
  const std::string https = "https://127.0.0.1:" + std::to_string(tls_port) + "/brokers/default";

  SluiceServer sender({"--outbound-ca", dir.path() + "/receiver.crt"});
  ASSERT_TRUE(sender.wait_ready());
  apply_yaml(sender, broker_yaml() + "---\n" + trigger_yaml("forward", https));
  ASSERT_EQ(publish(sender, "secure-1", "com.example.t"), 202);
  ASSERT_TRUE(sink.wait_for(1));
  EXPECT_EQ(received_ids(sink), std::vector<std::string>{"secure-1"});
  EXPECT_TRUE(
      wait_until([&] { return trigger_status(sender, "forward")["delivery"].value("delivered", 0) == 1; }));

  // Trusting another CA, a server refuses the receiver's certificate and says so.
  SluiceServer doubter({"--outbound-ca", dir.path() + "/other.crt"});
  ASSERT_TRUE(doubter.wait_ready());
  apply_yaml(doubter, broker_yaml() + "---\n" + trigger_yaml("forward", https, "  delivery: {retry: 0}\n"));
  ASSERT_EQ(publish(doubter, "doubted-1", "com.example.t"), 202);
  EXPECT_TRUE(wait_until([&] {
    return doubter.process().output().find("certificate verify failed") != std::string::npos;
  })) << doubter.process().output();
  EXPECT_EQ(trigger_status(doubter, "forward")["delivery"].value("delivered", -1), 0);
  EXPECT_EQ(received_ids(sink), std::vector<std::string>{"secure-1"});

  // A CA file that cannot be read stops the server with the file named.
  Process bad(built_program("sluice"),
              {"serve", "--listen", "127.0.0.1:" + std::to_string(free_port()), "--data-dir",
               dir.path() + "/bad", "--outbound-ca", dir.path() + "/none.pem"});
  EXPECT_EQ(bad.wait(std::chrono::seconds(10)), 1);
  EXPECT_NE(
      bad.output().find(dir.path() + "/none.pem: cannot load CA certificates: No such file or directory"),
      std::string::npos)
      << bad.output();
}

// --outbound-cert/--outbound-key: deliveries present a client certificate to subscribers that require one
// (an HTTPS server here that verifies clients against the certificate made for Sluice).
TEST(Tls, DeliveriesPresentTheClientCertificateASubscriberRequires) {
  TempDir dir;
  make_certificate(dir.path(), "subscriber");
  make_certificate(dir.path(), "client");
  make_certificate(dir.path(), "stranger");
  httplib::SSLServer subscriber((dir.path() + "/subscriber.crt").c_str(),
                                (dir.path() + "/subscriber.key").c_str(),
                                (dir.path() + "/client.crt").c_str());
  ASSERT_TRUE(subscriber.is_valid());
  std::mutex mu;
  std::vector<std::string> received;
  subscriber.Post("/", [&](const httplib::Request& req, httplib::Response& res) {
    std::lock_guard lock(mu);
    received.push_back(req.get_header_value("ce-id"));
    res.status = 200;
  });
  const int port = subscriber.bind_to_any_port("127.0.0.1");
  std::thread serving([&] { subscriber.listen_after_bind(); });
  auto received_ids = [&] {
    std::lock_guard lock(mu);
    return received;
  };
  const std::string https = "https://127.0.0.1:" + std::to_string(port) + "/";

  SluiceServer sender({"--outbound-ca", dir.path() + "/subscriber.crt", "--outbound-cert",
                       dir.path() + "/client.crt", "--outbound-key", dir.path() + "/client.key"});
  ASSERT_TRUE(sender.wait_ready());
  apply_yaml(sender, broker_yaml() + "---\n" + trigger_yaml("forward", https));
  ASSERT_EQ(publish(sender, "with-cert", "com.example.t"), 202);
  EXPECT_TRUE(wait_until([&] { return received_ids().size() == 1; })) << sender.process().output();

  // A certificate the subscriber does not trust, and none at all: the handshake fails, nothing arrives.
  SluiceServer stranger({"--outbound-ca", dir.path() + "/subscriber.crt", "--outbound-cert",
                         dir.path() + "/stranger.crt", "--outbound-key", dir.path() + "/stranger.key"});
  SluiceServer anonymous({"--outbound-ca", dir.path() + "/subscriber.crt"});
  for (SluiceServer* server : {&stranger, &anonymous}) {
    ASSERT_TRUE(server->wait_ready());
    apply_yaml(*server, broker_yaml() + "---\n" + trigger_yaml("forward", https, "  delivery: {retry: 0}\n"));
    ASSERT_EQ(publish(*server, "refused", "com.example.t"), 202);
    EXPECT_TRUE(wait_until([&] {
      return trigger_status(*server, "forward")["delivery"].value("failedAttempts", 0) >= 1;
    })) << trigger_status(*server, "forward").dump();
    EXPECT_EQ(trigger_status(*server, "forward")["delivery"].value("delivered", -1), 0);
  }
  EXPECT_EQ(received_ids(), std::vector<std::string>{"with-cert"});

  // A key that does not match the certificate stops the server with the files named.
  Process bad(
      built_program("sluice"),
      {"serve", "--listen", "127.0.0.1:" + std::to_string(free_port()), "--data-dir", dir.path() + "/bad",
       "--outbound-cert", dir.path() + "/client.crt", "--outbound-key", dir.path() + "/stranger.key"});
  EXPECT_EQ(bad.wait(std::chrono::seconds(10)), 1);
  EXPECT_NE(bad.output().find(dir.path() + "/stranger.key"), std::string::npos) << bad.output();
  subscriber.stop();
  serving.join();
}

}  // namespace
}  // namespace sluice::testing
