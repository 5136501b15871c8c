// How the CLI reports a server it cannot reach: the operating system's reason in full, not httplib's
// one-word error name.

#include "server/cli_client.hpp"

#include <gtest/gtest.h>

#include <sstream>

#include "tests/support/process.hpp"

namespace sluice::cli {
namespace {

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

}  // namespace
}  // namespace sluice::cli
