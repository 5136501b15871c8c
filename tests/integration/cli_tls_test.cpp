// The CLI against a server's TLS listener whose certificate it does not trust: the error used to ask
// whether `sluice serve` was running; it says how to trust the certificate, and doing so works.

#include "tests/integration/broker_support.hpp"

namespace sluice::testing {
namespace {

TEST(CliTls, AnUntrustedCertificateSaysHowToTrustIt) {
  TempDir dir;
  std::string out;
  ASSERT_EQ(run_command("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "
                        "/CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 -keyout " +
                            dir.path() + "/server.key -out " + dir.path() + "/server.crt 2>&1",
                        &out),
            0)
      << out;
  const int tls_port = free_port();
  SluiceServer server({"--tls-listen", "127.0.0.1:" + std::to_string(tls_port), "--tls-cert",
                       dir.path() + "/server.crt", "--tls-key", dir.path() + "/server.key"});
  ASSERT_TRUE(server.wait_ready());
  const std::string get = built_program("sluice") +
                          " get brokers --server https://127.0.0.1:" + std::to_string(tls_port) + " 2>&1";
  EXPECT_EQ(run_command("SSL_CERT_FILE=/dev/null " + get, &out), 1) << out;
  EXPECT_NE(out.find("the server's TLS certificate could not be verified"), std::string::npos) << out;
  EXPECT_NE(out.find("set SSL_CERT_FILE"), std::string::npos) << out;
  EXPECT_EQ(out.find("is `sluice serve` running"), std::string::npos) << out;
  EXPECT_EQ(run_command("SSL_CERT_FILE=" + dir.path() + "/server.crt " + get, &out), 0) << out;
  EXPECT_NE(out.find("No brokers found."), std::string::npos) << out;
}

}  // namespace
}  // namespace sluice::testing
