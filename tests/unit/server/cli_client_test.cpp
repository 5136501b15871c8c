// How the CLI reports a server it cannot reach: the operating system's reason in full, not httplib's
// one-word error name.

#include "server/cli_client.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/process.hpp"

namespace sluice::cli {
namespace {

// SLUICE_SERVER set but empty (`SLUICE_SERVER= sluice get brokers`) means the default server, not an
// empty URL that every command refuses.
TEST(CliClient, AnEmptySluiceServerVariableMeansTheDefaultServer) {
  const char* saved = std::getenv("SLUICE_SERVER");
  const std::optional<std::string> restore = saved ? std::optional<std::string>(saved) : std::nullopt;
  std::vector<std::string> args;
  ::setenv("SLUICE_SERVER", "", 1);
  EXPECT_EQ(server_of(args).base, "http://127.0.0.1:8080");
  ::setenv("SLUICE_SERVER", "http://example.test:9000/", 1);
  EXPECT_EQ(server_of(args).base, "http://example.test:9000");
  args = {"--server", "http://127.0.0.1:1"};
  EXPECT_EQ(server_of(args).base, "http://127.0.0.1:1");
  if (restore)
    ::setenv("SLUICE_SERVER", restore->c_str(), 1);
  else
    ::unsetenv("SLUICE_SERVER");
}

TEST(CliClient, ARefusedConnectionSaysConnectionRefused) {
  const Target target{"http://127.0.0.1:" + std::to_string(testing::free_port()), ""};
  EXPECT_EQ(transport_error_text(target, httplib::Error::Connection), "Connection refused");
}

TEST(CliClient, AnUnknownHostNamesTheResolverError) {
  const Target target{"http://sluice-nowhere.invalid:8080", ""};
  const std::string text = transport_error_text(target, httplib::Error::Connection);
  EXPECT_NE(text, "Connection");
  EXPECT_NE(text.find("(sluice-nowhere.invalid)"), std::string::npos) << text;
}

TEST(CliClient, ReportFailurePrintsTheWholeReasonAndReturnsOne) {
  const Target target{"http://127.0.0.1:" + std::to_string(testing::free_port()), ""};
  auto client = client_for(target);
  auto res = client.Get("/readyz");
  ASSERT_FALSE(res);
  std::ostringstream captured;
  auto* saved = std::cerr.rdbuf(captured.rdbuf());
  const int code = report_failure(target, res);
  std::cerr.rdbuf(saved);
  EXPECT_EQ(code, 1);
  EXPECT_EQ(captured.str(), "error: cannot reach sluice at " + target.base +
                                ": Connection refused (is `sluice serve` running? set --server or "
                                "SLUICE_SERVER)\n");
}

// A 401 says how the CLI sends a token, which the server's message ("missing Authorization header")
// does not.
TEST(CliClient, AnUnauthorizedAnswerSaysHowToGiveAToken) {
  auto report = [](const std::string& token) {
    auto response = std::make_unique<httplib::Response>();
    response->status = 401;
    response->body = R"json({"error":"missing Authorization header (expected \"Bearer TOKEN\")"})json";
    const httplib::Result res(std::move(response), httplib::Error::Success);
    std::ostringstream captured;
    auto* saved = std::cerr.rdbuf(captured.rdbuf());
    EXPECT_EQ(report_failure(Target{"http://127.0.0.1:1", token}, res), 1);
    std::cerr.rdbuf(saved);
    return captured.str();
  };
  EXPECT_EQ(report(""),
            "error: missing Authorization header (expected \"Bearer TOKEN\") (give --token TOKEN or set "
            "SLUICE_TOKEN)\n");
  EXPECT_NE(report("wrong-token-0123456789").find("(the token from --token or SLUICE_TOKEN was refused)"),
            std::string::npos);
}

}  // namespace
}  // namespace sluice::cli
