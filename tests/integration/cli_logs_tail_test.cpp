// `sluice logs --tail` and `GET /apis/v1/logs/{agent}?tail=`: a tail that is no byte count ("1Ki", "x")
// used to be read as 1 byte or as 0 (the whole logs) without a word; it is refused, naming the value.

#include "tests/integration/broker_support.hpp"

namespace sluice::testing {
namespace {

TEST(LogsTail, ATailThatIsNoByteCountIsRefused) {
  SluiceServer server;
  ASSERT_TRUE(server.wait_ready());
  httplib::Client client("127.0.0.1", server.port());
  for (const char* tail : {"1Ki", "x", "-1", "", "99999999999999999999"}) {
    auto res = client.Get(std::string("/apis/v1/logs/echo?tail=") + tail);
    ASSERT_TRUE(res) << tail;
    EXPECT_EQ(res->status, 400) << tail << ": " << res->body;
    EXPECT_NE(res->body.find("tail must be a number of bytes"), std::string::npos) << res->body;
  }
  // A byte count passes the check: the agent is then looked up.
  auto res = client.Get("/apis/v1/logs/echo?tail=100");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 404) << res->body;

  std::string out;
  EXPECT_EQ(server.cli({"logs", "echo", "--tail", "1Ki"}, &out), 2) << out;
  EXPECT_NE(out.find("--tail expects a number of bytes (0: whole logs), got 1Ki"), std::string::npos) << out;
  EXPECT_EQ(server.cli({"logs", "echo", "--tail", "100"}, &out), 1) << out;
  EXPECT_NE(out.find("echo"), std::string::npos) << out;
}

}  // namespace
}  // namespace sluice::testing
