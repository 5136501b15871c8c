// The attribute rules of CloudEvents 1.0 as the publish endpoint and `sluice publish` of a real
// `sluice serve` apply them: the reserved name `data`, characters Strings may not hold, media types and
// URI authorities. Each refusal is a 400 naming the attribute.

#include "tests/integration/broker_support.hpp"

namespace sluice::testing {
namespace {

httplib::Headers event_headers(const std::string& id) {
  return {{"ce-specversion", "1.0"}, {"ce-id", id}, {"ce-type", "t"}, {"ce-source", "/tests"}};
}

class IngressAttributeValidation : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_.wait_ready());
    apply_yaml(server_, broker_yaml("default"));
  }
  /// Posts in binary mode; returns the answer, or fails the test on a transport error.
  httplib::Response post_binary(httplib::Headers headers, const std::string& body,
                                const std::string& content_type) {
    httplib::Client client("127.0.0.1", server_.port());
    auto res = client.Post("/brokers/default", headers, body, content_type);
    EXPECT_TRUE(res);
    return res ? *res : httplib::Response{};
  }
  httplib::Response post_structured(const std::string& body) {
    return post_binary({}, body, "application/cloudevents+json");
  }
  SluiceServer server_;
};

TEST_F(IngressAttributeValidation, DataIsNoExtensionName) {
  auto headers = event_headers("d-1");
  headers.emplace("ce-data", "v");
  auto res = post_binary(headers, "{}", "application/json");
  EXPECT_EQ(res.status, 400) << res.body;
  EXPECT_NE(res.body.find("data"), std::string::npos) << res.body;
  EXPECT_NE(res.body.find("reserved for the event's payload"), std::string::npos) << res.body;

  std::string out;
  EXPECT_NE(server_.cli({"publish", "default", "--type", "t", "--source", "/cli", "--ext", "data=v"}, &out),
            0)
      << out;
  EXPECT_NE(out.find("reserved for the event's payload"), std::string::npos) << out;
  EXPECT_EQ(
      server_.cli({"publish", "default", "--type", "t", "--source", "/cli", "--ext", "dataref=v"}, &out), 0)
      << out;
}

TEST_F(IngressAttributeValidation, StringsRefuseControlCharactersAndNoncharacters) {
  auto headers = event_headers("c-1");
  headers.emplace("ce-subject", "a%07b");  // percent-decoded to U+0007
  auto res = post_binary(headers, "{}", "application/json");
  EXPECT_EQ(res.status, 400) << res.body;
  EXPECT_NE(res.body.find("subject"), std::string::npos) << res.body;
  EXPECT_NE(res.body.find("U+0007, a control character"), std::string::npos) << res.body;

  res = post_structured(R"({"specversion":"1.0","id":"c-2","type":"t\u0085","source":"/t"})");
  EXPECT_EQ(res.status, 400) << res.body;
  EXPECT_NE(res.body.find("U+0085"), std::string::npos) << res.body;

  res = post_structured(R"({"specversion":"1.0","id":"c-3","type":"t","source":"/t","tenant":"x\uFFFF"})");
  EXPECT_EQ(res.status, 400) << res.body;
  EXPECT_NE(res.body.find("tenant"), std::string::npos) << res.body;
  EXPECT_NE(res.body.find("U+FFFF, a Unicode noncharacter"), std::string::npos) << res.body;

  res = post_structured(
      R"({"specversion":"1.0","id":"c-4","type":"t","source":"/t","subject":"caf\u00e9 \ud83d\ude00"})");
  EXPECT_EQ(res.status, 202) << res.body;
}

TEST_F(IngressAttributeValidation, DataContentTypeMustBeAMediaType) {
  auto res = post_binary(event_headers("m-1"), "x", "not a media type");
  EXPECT_EQ(res.status, 400) << res.body;
  EXPECT_NE(res.body.find("datacontenttype"), std::string::npos) << res.body;
  EXPECT_NE(res.body.find(R"(got \"not a media type\")"), std::string::npos) << res.body;

  res = post_structured(
      R"({"specversion":"1.0","id":"m-2","type":"t","source":"/t","datacontenttype":"text"})");
  EXPECT_EQ(res.status, 400) << res.body;
  EXPECT_NE(res.body.find("datacontenttype"), std::string::npos) << res.body;

  for (const char* ok : {"text/plain", "application/json; charset=utf-8", "application/octet-stream",
                         "multipart/form-data; boundary=----WebKitFormBoundary7MA4YWxkTrZu0gW"}) {
    res = post_binary(event_headers(std::string("ok-") + ok), "x", ok);
    EXPECT_EQ(res.status, 202) << ok << ": " << res.body;
  }

  // An empty Content-Type says nothing: the event has no datacontenttype.
  HttpSink sink;
  apply_yaml(server_, trigger_yaml("all", sink.url()));
  auto headers = event_headers("empty-ct");
  headers.emplace("Content-Type", "");
  res = post_binary(headers, "", "");
  EXPECT_EQ(res.status, 202) << res.body;
  ASSERT_TRUE(sink.wait_for(1));
  EXPECT_EQ(sink.requests()[0].header("ce-id"), "empty-ct");
  EXPECT_EQ(sink.requests()[0].header("content-type"), "");
}

TEST_F(IngressAttributeValidation, UnclosedIpLiteralIsNoUriReference) {
  auto headers = event_headers("u-1");
  headers.erase("ce-source");
  headers.emplace("ce-source", "http://[::1");
  auto res = post_binary(headers, "{}", "application/json");
  EXPECT_EQ(res.status, 400) << res.body;
  EXPECT_NE(res.body.find("source"), std::string::npos) << res.body;

  res = post_structured(
      R"({"specversion":"1.0","id":"u-2","type":"t","source":"http://[::1]:8080/x","dataschema":"http://[::1/s"})");
  EXPECT_EQ(res.status, 400) << res.body;
  EXPECT_NE(res.body.find("dataschema"), std::string::npos) << res.body;
}

}  // namespace
}  // namespace sluice::testing
