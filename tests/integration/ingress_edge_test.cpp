// Edges of the publish endpoint, the REST API and the command line of a real `sluice serve`: limits that
// can never be met, answers while recovering, methods a path does not take, options that do not exist.

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/integration/broker_support.hpp"

namespace sluice::testing {
namespace {

httplib::Headers event_headers(const std::string& id) {
  return {{"ce-specversion", "1.0"}, {"ce-id", id}, {"ce-type", "t"}, {"ce-source", "/tests"}};
}

std::string batch_of(int n, std::size_t data_size = 10) {
  std::string body = "[";
  for (int i = 0; i < n; ++i) {
    if (i) body += ",";
    body += R"({"specversion":"1.0","id":"b-)" + std::to_string(i) +
            R"(","type":"t","source":"/t","data":")" + std::string(data_size, 'x') + "\"}";
  }
  return body + "]";
}

class IngressEdge : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(server_.wait_ready()); }
  httplib::Client client() { return httplib::Client("127.0.0.1", server_.port()); }
  SluiceServer server_{{"--max-body", "64Ki"}};
};

TEST_F(IngressEdge, ABatchLargerThanTheRateLimitsBurstGets413) {
  apply_yaml(server_, broker_yaml("default", "ingress: {rateLimit: {eventsPerSecond: 1, burst: 2}}"));
  auto c = client();
  auto res = c.Post("/brokers/default", batch_of(3), "application/cloudevents-batch+json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 413) << res->body;
  EXPECT_NE(res->body.find("batch of 3 events can never pass"), std::string::npos) << res->body;
  EXPECT_NE(res->body.find("burst of 2"), std::string::npos) << res->body;
  // It took no tokens: a batch of two still passes, and the next event waits at least a second.
  res = c.Post("/brokers/default", batch_of(2), "application/cloudevents-batch+json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 202) << res->body;
  res = c.Post("/brokers/default", event_headers("one-more"), "{}", "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 429) << res->body;
  ASSERT_TRUE(res->has_header("Retry-After"));
  EXPECT_GE(std::stoi(res->get_header_value("Retry-After")), 1);
}

TEST_F(IngressEdge, ARequestTheByteQuotaRefusesUsesNoRateTokens) {
  apply_yaml(server_,
             broker_yaml("default",
                         "ingress: {maxEventSize: 2Ki, rateLimit: {eventsPerSecond: 0.001, burst: 2}, "
                         "quota: {bytesPerSecond: 1, burstBytes: 2Ki}}"));
  auto c = client();
  auto res = c.Post("/brokers/default", event_headers("a"), std::string(1500, 'x'), "text/plain");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 202) << res->body;
  res =
      c.Post("/brokers/default", event_headers("b"), std::string(1500, 'x'), "text/plain");  // over the quota
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 429) << res->body;
  EXPECT_NE(res->body.find("quota"), std::string::npos) << res->body;
  // The refused request gave its event token back: one is left for a small event.
  res = c.Post("/brokers/default", event_headers("c"), std::string(100, 'x'), "text/plain");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 202) << res->body;
}

TEST_F(IngressEdge, TheBatchMediaTypeIsCaseInsensitive) {
  apply_yaml(server_, broker_yaml("default", "ingress: {maxEventSize: 1Ki}"));
  // Larger than maxEventSize in all, each event well below it.
  const auto body = batch_of(10, 200);
  ASSERT_GT(body.size(), 1024u);
  auto res = client().Post("/brokers/default", body, "Application/CloudEvents-Batch+JSON");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 202) << res->body;
}

// JSON format §4.3: an empty batch is a valid request. It is acknowledged and stores nothing.
TEST_F(IngressEdge, AnEmptyBatchIsAcknowledgedAndStoresNothing) {
  apply_yaml(server_, broker_yaml("default"));
  auto res = client().Post("/brokers/default", "[]", "application/cloudevents-batch+json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 202) << res->body;
  std::string out;
  ASSERT_EQ(server_.cli({"get", "brokers", "default", "-o", "json"}, &out), 0) << out;
  EXPECT_EQ(nlohmann::json::parse(out)["status"]["log"]["endOffset"], 0) << out;
}

// maxEventSize bounds the event its publisher sent: the attributes the broker adds (arrival time, hop
// count, traceparent: about 150 bytes) do not push an event under the bound over it.
TEST_F(IngressEdge, MaxEventSizeDoesNotCountWhatTheBrokerAdds) {
  apply_yaml(server_, broker_yaml("default", "ingress: {maxEventSize: 1Ki}"));
  auto res = client().Post("/brokers/default", event_headers("fits"), std::string(950, 'x'), "text/plain");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 202) << res->body;
  // Over the bound in a batch: refused whole, naming the event and its size as sent.
  std::string body = R"([{"specversion":"1.0","id":"a","type":"t","source":"/t"},)"
                     R"({"specversion":"1.0","id":"b","type":"t","source":"/t","data":")" +
                     std::string(1100, 'y') + R"("}])";
  res = client().Post("/brokers/default", body, "application/cloudevents-batch+json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 413) << res->body;
  EXPECT_NE(
      res->body.find("(its protobuf encoding) exceeds the broker's maxEventSize of 1024 (batch event 1)"),
      std::string::npos)
      << res->body;
  EXPECT_EQ(res->body.find("event: event"), std::string::npos) << res->body;
  std::string out;
  ASSERT_EQ(server_.cli({"get", "brokers", "default", "-o", "json"}, &out), 0) << out;
  EXPECT_EQ(nlohmann::json::parse(out)["status"]["log"]["endOffset"], 1) << out;
}

TEST_F(IngressEdge, ABodyOverMaxBodyWithAContentLengthGets413) {
  apply_yaml(server_, broker_yaml("default"));
  auto res =
      client().Post("/brokers/default", event_headers("big"), std::string(100 << 10, 'x'), "text/plain");
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  EXPECT_EQ(res->status, 413) << res->body;
  EXPECT_NE(res->body.find("exceeds the limit of 65536 bytes"), std::string::npos) << res->body;
}

TEST_F(IngressEdge, AMalformedEscapeInTheBrokerNameGets400) {
  apply_yaml(server_, broker_yaml("b1"));
  auto c = client();
  for (const std::string path : {"/brokers/%zz", "/brokers/b%3", "/brokers/b%"}) {
    auto res = c.Post(path, event_headers("e"), "{}", "application/json");
    ASSERT_TRUE(res) << path;
    EXPECT_EQ(res->status, 400) << path << ": " << res->body;
    EXPECT_NE(res->body.find("malformed percent-encoding"), std::string::npos) << res->body;
  }
  auto escaped = c.Post("/brokers/b%31", event_headers("e"), "{}", "application/json");
  ASSERT_TRUE(escaped);
  EXPECT_EQ(escaped->status, 202) << escaped->body;
  auto unknown = c.Post("/brokers/b%32", event_headers("e"), "{}", "application/json");
  ASSERT_TRUE(unknown);
  EXPECT_EQ(unknown->status, 404) << unknown->body;
}

TEST_F(IngressEdge, ProbesAndMetricsTakeOnlyGetAndHead) {
  auto c = client();
  for (const std::string path : {"/healthz", "/readyz", "/metrics"}) {
    auto get = c.Get(path);
    ASSERT_TRUE(get);
    EXPECT_EQ(get->status, 200) << path;
    auto post = c.Post(path, "", "text/plain");
    ASSERT_TRUE(post);
    EXPECT_EQ(post->status, 405) << path;
    EXPECT_EQ(post->get_header_value("Allow"), "GET, HEAD") << path;
    auto del = c.Delete(path);
    ASSERT_TRUE(del);
    EXPECT_EQ(del->status, 405) << path;
  }
}

TEST_F(IngressEdge, Every405OfTheRestApiSaysWhatIsAllowed) {
  apply_yaml(server_, broker_yaml("default"));
  auto c = client();
  auto expect_405 = [](const httplib::Result& res, const std::string& allow, const std::string& what) {
    ASSERT_TRUE(res) << what;
    EXPECT_EQ(res->status, 405) << what << ": " << res->body;
    EXPECT_EQ(res->get_header_value("Allow"), allow) << what;
  };
  expect_405(c.Get("/apis/v1/apply"), "POST", "GET /apis/v1/apply");
  expect_405(c.Post("/apis/v1/brokers/default", broker_yaml("default"), "application/yaml"),
             "GET, PUT, DELETE", "POST /apis/v1/brokers/default");
  expect_405(c.Delete("/apis/v1/brokers"), "GET, POST", "DELETE /apis/v1/brokers");
  expect_405(c.Put("/apis/v1/brokers", broker_yaml("default"), "application/yaml"), "GET, POST",
             "PUT /apis/v1/brokers");
  expect_405(c.Patch("/apis/v1/brokers/default", "{}", "application/json"), "GET, PUT, DELETE",
             "PATCH /apis/v1/brokers/default");
}

TEST(IngressRecovering, AnswersWith503AndRetryAfterUntilReady) {
  // Recovery applies --apply files; one that is a FIFO holds it until the test writes the manifest.
  TempDir dir;
  const std::string fifo = dir.path() + "/manifest.yaml";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  SluiceServer server({"--apply", fifo});
  httplib::Client c("127.0.0.1", server.port());
  c.set_connection_timeout(std::chrono::milliseconds(200));
  ASSERT_TRUE(wait_until([&] {
    auto res = c.Get("/healthz");
    return res && res->status == 200;
  }));
  auto api = c.Get("/apis/v1/brokers");
  ASSERT_TRUE(api);
  EXPECT_EQ(api->status, 503) << api->body;
  EXPECT_EQ(api->get_header_value("Retry-After"), "1");
  auto early = c.Post("/brokers/default", event_headers("early"), "{}", "application/json");
  ASSERT_TRUE(early);
  EXPECT_EQ(early->status, 503) << early->body;
  EXPECT_NE(early->body.find("recovering"), std::string::npos) << early->body;
  EXPECT_EQ(early->get_header_value("Retry-After"), "1");

  const int fd = ::open(fifo.c_str(), O_WRONLY);
  ASSERT_GE(fd, 0);
  const std::string manifest = broker_yaml("default");
  ASSERT_EQ(::write(fd, manifest.data(), manifest.size()), static_cast<ssize_t>(manifest.size()));
  ::close(fd);
  ASSERT_TRUE(server.wait_ready());
  EXPECT_EQ(publish(server, "later", "t"), 202);
}

TEST(IngressCommandLine, UnknownLogLevelsAndRequestLogFieldsAreRefused) {
  TempDir dir;
  const std::string serve = built_program("sluice") + " serve --listen 127.0.0.1:0 --data-dir " + dir.path();
  std::string out;
  EXPECT_EQ(run_command(serve + " --log-level loud", &out), 2) << out;
  EXPECT_NE(out.find("unknown log level \"loud\""), std::string::npos) << out;
  EXPECT_NE(out.find("trace, debug, info, warn, error"), std::string::npos) << out;
  EXPECT_EQ(run_command(serve + " --request-log --request-log-fields status,bogus", &out), 2) << out;
  EXPECT_NE(out.find("unknown field \"bogus\""), std::string::npos) << out;
  EXPECT_NE(out.find("latency_ms"), std::string::npos) << out;
}

TEST(IngressCommandLine, PublishNamesAnUnknownOption) {
  std::string out;
  EXPECT_EQ(run_command(built_program("sluice") +
                            " publish default --type t --source /s --bogus x --server http://127.0.0.1:1",
                        &out),
            2)
      << out;
  EXPECT_NE(out.find("unknown option --bogus"), std::string::npos) << out;
}

}  // namespace
}  // namespace sluice::testing
