#include "core/request_log.hpp"

#include <gtest/gtest.h>

namespace sluice::request_log {
namespace {

TEST(RequestLogRedaction, CredentialQueryParametersAreMasked) {
  EXPECT_EQ(redact_secrets("/apis/v1/brokers?access_token=abc.def&limit=5"),
            "/apis/v1/brokers?access_token=REDACTED&limit=5");
  EXPECT_EQ(
      redact_secrets("/x?a=1&token=t&api_key=k&apiKey=k&sig=s&X-Amz-Signature=s#frag"),
      "/x?a=1&token=REDACTED&api_key=REDACTED&apiKey=REDACTED&sig=REDACTED&X-Amz-Signature=REDACTED#frag");
  EXPECT_EQ(redact_secrets("/x?password=p&client_secret=c&code=oauth&key="),
            "/x?password=REDACTED&client_secret=REDACTED&code=REDACTED&key=REDACTED");
}

TEST(RequestLogRedaction, OtherParametersAndPathsAreKept) {
  for (const char* kept : {"/brokers/default", "/agents/echo/?q=1", "/x?keyword=a&monkey=b&author=c",
                           "/x?token", "/x?&=1", "/x?", "?", "&", "a & b", ""})
    EXPECT_EQ(redact_secrets(kept), kept);
}

TEST(RequestLogRedaction, UserInformationOfUrlsIsMasked) {
  EXPECT_EQ(redact_secrets("https://bob:hunter2@hooks.example.com/x?y=1"),
            "https://REDACTED@hooks.example.com/x?y=1");
  EXPECT_EQ(redact_secrets("http://u:p@w@h:80/"), "http://REDACTED@h:80/");
  EXPECT_EQ(redact_secrets("http://h/a@b"), "http://h/a@b");
}

TEST(RequestLogRedaction, UrlsInsideMessagesAreMasked) {
  EXPECT_EQ(redact_secrets("http://127.0.0.1:9/x?token=abc: connection refused (127.0.0.1:9)"),
            "http://127.0.0.1:9/x?token=REDACTED: connection refused (127.0.0.1:9)");
  EXPECT_EQ(redact_secrets("HTTP 500 from \"http://a:b@h/?sig=1\""),
            "HTTP 500 from \"http://REDACTED@h/?sig=REDACTED\"");
}

}  // namespace
}  // namespace sluice::request_log
