// `sluice publish` against a real `sluice serve`: what the event that arrives at a subscriber carries for
// each way of giving data (JSON, --content-type, none), what the CLI refuses before sending anything, and
// how it reports a server that is down.

#include <fstream>
#include <string>

#include "tests/integration/broker_support.hpp"

namespace sluice::testing {
namespace {

class PublishCli : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_.wait_ready());
    apply_yaml(server_, broker_yaml("default"));
    apply_yaml(server_, trigger_yaml("all", sink_.url()));
  }

  int publish_cli(std::vector<std::string> extra, std::string* out) {
    std::vector<std::string> args{"publish", "default", "--type", "com.example.cli", "--source", "/cli"};
    args.insert(args.end(), extra.begin(), extra.end());
    return server_.cli(args, out);
  }

  /// The one request the sink received for the last publish.
  ReceivedRequest delivered() {
    EXPECT_TRUE(sink_.wait_for(1));
    auto requests = sink_.requests();
    return requests.empty() ? ReceivedRequest{} : requests.back();
  }

  long long stored_events() {
    std::string out;
    EXPECT_EQ(server_.cli({"get", "brokers", "default", "-o", "json"}, &out), 0) << out;
    return nlohmann::json::parse(out)["status"]["log"]["endOffset"].get<long long>();
  }

  HttpSink sink_;
  SluiceServer server_;
  TempDir dir_;
};

TEST_F(PublishCli, JsonDataIsSentAsApplicationJson) {
  std::string out;
  ASSERT_EQ(publish_cli({"--id", "j-1", "--data", R"({"n": 1})"}, &out), 0) << out;
  const auto r = delivered();
  EXPECT_EQ(r.header("ce-id"), "j-1");
  EXPECT_EQ(r.header("content-type"), "application/json");
  EXPECT_EQ(r.body, R"({"n": 1})");
}

TEST_F(PublishCli, DataThatIsNotJsonIsRefusedWithoutContentType) {
  std::string out;
  EXPECT_EQ(publish_cli({"--data", "{bad"}, &out), 2) << out;
  EXPECT_NE(out.find("--data is not valid JSON: parse error at line 1, column "), std::string::npos) << out;
  EXPECT_NE(out.find("use --content-type to send other data"), std::string::npos) << out;

  // Bytes that are not UTF-8, from a file: refused too, without echoing them.
  const std::string binary("\x89PNG\r\n\x1a\n\xff\xfe\x00\x01", 12);
  std::ofstream(dir_.path() + "/blob.bin", std::ios::binary) << binary;
  EXPECT_EQ(publish_cli({"--data", "@" + dir_.path() + "/blob.bin"}, &out), 2) << out;
  EXPECT_NE(out.find("--data is not valid JSON"), std::string::npos) << out;
  EXPECT_EQ(out.find("PNG"), std::string::npos) << out;

  // A JSON content type does not make invalid JSON acceptable.
  EXPECT_EQ(publish_cli({"--data", "{bad", "--content-type", "application/json"}, &out), 2) << out;
  EXPECT_NE(out.find("--data is not valid JSON"), std::string::npos) << out;
  EXPECT_EQ(stored_events(), 0);
  EXPECT_EQ(sink_.count(), 0u);
}

TEST_F(PublishCli, ContentTypeSendsOtherDataAsItIs) {
  std::string out;
  ASSERT_EQ(publish_cli({"--id", "t-1", "--data", "hello", "--content-type", "text/plain"}, &out), 0) << out;
  ASSERT_TRUE(sink_.wait_for(1));
  EXPECT_EQ(sink_.requests()[0].header("content-type"), "text/plain");
  EXPECT_EQ(sink_.requests()[0].body, "hello");

  const std::string binary("\x89PNG\r\n\x1a\n\xff\xfe\x00\x01", 12);
  std::ofstream(dir_.path() + "/blob.bin", std::ios::binary) << binary;
  ASSERT_EQ(publish_cli({"--id", "b-1", "--data", "@" + dir_.path() + "/blob.bin", "--content-type",
                         "application/octet-stream"},
                        &out),
            0)
      << out;
  ASSERT_TRUE(sink_.wait_for(2));
  EXPECT_EQ(sink_.requests()[1].header("content-type"), "application/octet-stream");
  EXPECT_EQ(sink_.requests()[1].body, binary);

  EXPECT_EQ(publish_cli({"--content-type", "text/plain"}, &out), 2) << out;
  EXPECT_NE(out.find("--content-type needs --data"), std::string::npos) << out;
}

TEST_F(PublishCli, NoDataMeansNoDataContentType) {
  std::string out;
  ASSERT_EQ(publish_cli({"--id", "n-1"}, &out), 0) << out;
  const auto r = delivered();
  EXPECT_EQ(r.header("ce-id"), "n-1");
  EXPECT_EQ(r.headers.count("content-type"), 0u) << r.header("content-type");
  EXPECT_EQ(r.body, "");
}

TEST_F(PublishCli, ExtRefusesContextAttributesNamingTheirOption) {
  const std::vector<std::pair<std::string, std::string>> cases{{"id", "--id"},
                                                               {"source", "--source"},
                                                               {"type", "--type"},
                                                               {"subject", "--subject"},
                                                               {"time", "--time"},
                                                               {"dataschema", "--dataschema"},
                                                               {"datacontenttype", "--content-type"},
                                                               {"specversion", "CloudEvents 1.0"}};
  for (const auto& [name, hint] : cases) {
    std::string out;
    EXPECT_EQ(publish_cli({"--id", "x-1", "--ext", name + "=override"}, &out), 2) << name << ": " << out;
    EXPECT_NE(out.find("--ext " + name + ": " + name + " is a CloudEvents context attribute"),
              std::string::npos)
        << out;
    EXPECT_NE(out.find(hint), std::string::npos) << out;
  }
  EXPECT_EQ(stored_events(), 0);

  // Extensions still go through, and time and dataschema have their own options.
  std::string out;
  ASSERT_EQ(publish_cli({"--id", "e-1", "--ext", "tenant=acme", "--time", "2024-05-01T12:00:00Z",
                         "--dataschema", "https://example.com/schema.json", "--subject", "s-1"},
                        &out),
            0)
      << out;
  const auto r = delivered();
  EXPECT_EQ(r.header("ce-id"), "e-1");
  EXPECT_EQ(r.header("ce-tenant"), "acme");
  EXPECT_EQ(r.header("ce-time"), "2024-05-01T12:00:00Z");
  EXPECT_EQ(r.header("ce-dataschema"), "https://example.com/schema.json");
  EXPECT_EQ(r.header("ce-subject"), "s-1");
}

TEST(PublishCliServerDown, PrintsTheWholeReasonAndExitsOne) {
  const std::string url = "http://127.0.0.1:" + std::to_string(free_port());
  for (const std::string verb : {"publish default --type t --source /s", "get brokers", "delete brokers b"}) {
    std::string out;
    EXPECT_EQ(run_command(built_program("sluice") + " " + verb + " --server " + url, &out), 1) << out;
    EXPECT_NE(
        out.find("error: cannot reach sluice at " + url + ": Connection refused (is `sluice serve` running?"),
        std::string::npos)
        << verb << ": " << out;
  }
}

}  // namespace
}  // namespace sluice::testing
