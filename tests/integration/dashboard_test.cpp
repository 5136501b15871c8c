// The dashboard's data (GET /apis/v1/overview), `sluice status`, and the /ui files, against a real
// `sluice serve` with real subscribers. The page itself is tested in headless Chromium
// (tests/e2e/ui.test.mjs).

#include <gtest/gtest.h>
#include <httplib.h>

#include <nlohmann/json.hpp>

#include "tests/integration/broker_support.hpp"

namespace sluice::testing {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

json overview(SluiceServer& server) {
  httplib::Client client("127.0.0.1", server.port());
  auto res = client.Get("/apis/v1/overview");
  if (!res || res->status != 200) return json::object();
  return json::parse(res->body, nullptr, false);
}

json find_named(const json& list, const std::string& name) {
  for (const auto& item : list)
    if (item.value("name", "") == name) return item;
  return json::object();
}

std::vector<json> letters_of(const json& o, const std::string& trigger) {
  std::vector<json> out;
  for (const auto& d : o.value("deadLetters", json::array()))
    if (d.value("trigger", "") == trigger) out.push_back(d);
  return out;
}

TEST(Dashboard, OverviewShowsIngressRateLatencyAndWhatTriggersGaveUpOn) {
  HttpSink ok, failing, dlq;
  failing.respond([](const ReceivedRequest&, std::size_t) {
    return SinkResponse{503, std::string("busy\x01now"), {}, 0ms};
  });
  SluiceServer server;
  ASSERT_TRUE(server.wait_ready());
  const std::string fast = "  delivery: {retry: 1, backoffPolicy: linear, backoffDelay: PT0.01S";
  apply_yaml(server, broker_yaml() + "---\n" +
                         trigger_yaml("ok", ok.url(), "  filter: {attributes: {type: t.ok}}\n") + "---\n" +
                         trigger_yaml("bad", failing.url() + "/hook",
                                      "  filter: {attributes: {type: t.bad}}\n" + fast +
                                          ", deadLetterSink: {uri: \"" + dlq.url() + "/dlq\"}}\n") +
                         "---\n" +
                         trigger_yaml("lost", failing.url() + "/lost",
                                      "  filter: {attributes: {type: t.lost}}\n" + fast + "}\n"));

  for (int i = 0; i < 5; ++i) ASSERT_EQ(publish(server, "ok-" + std::to_string(i), "t.ok"), 202);
  ASSERT_EQ(publish(server, "bad-1", "t.bad"), 202);
  ASSERT_EQ(publish(server, "lost-1", "t.lost"), 202);
  ASSERT_TRUE(dlq.wait_for(1));
  ASSERT_TRUE(wait_until([&] { return letters_of(overview(server), "lost").size() == 1; }));

  // The ingress rate comes from samples two seconds apart: keep publishing until one shows it.
  int n = 0;
  ASSERT_TRUE(wait_until(
      [&] {
        EXPECT_EQ(publish(server, "more-" + std::to_string(n++), "t.other"), 202);
        return find_named(overview(server)["brokers"], "default").value("ingressPerSecond", 0.0) > 0;
      },
      15s, 100ms));

  const json o = overview(server);
  EXPECT_EQ(o.value("kind", ""), "Overview");
  const json broker = find_named(o["brokers"], "default");
  EXPECT_TRUE(broker.value("ready", false));
  EXPECT_EQ(broker.value("storage", ""), "file");
  EXPECT_GE(broker.value("events", 0), 7 + n);
  EXPECT_EQ(find_named(broker["triggers"], "ok").value("backlog", -1), 0);

  const json trigger = find_named(o["triggers"], "ok");
  EXPECT_EQ(trigger.value("delivered", 0), 5);
  EXPECT_EQ(trigger.value("subscriber", ""), ok.url());
  const json latency = trigger["latency"];
  EXPECT_EQ(latency.value("attempts", 0), 5);
  EXPECT_GT(latency.value("p50Seconds", 0.0), 0);
  EXPECT_GE(latency.value("p99Seconds", 0.0), latency.value("p50Seconds", 0.0));
  EXPECT_EQ(find_named(o["triggers"], "bad").value("deadLettered", 0), 1);
  EXPECT_EQ(find_named(o["triggers"], "lost").value("dropped", 0), 1);

  // Newest first: "lost" gave up last or at the same time; both carry Knative's error extensions.
  auto bad = letters_of(o, "bad");
  ASSERT_EQ(bad.size(), 1u) << o.dump(2);
  EXPECT_EQ(bad[0].value("outcome", ""), "deadLettered");
  EXPECT_EQ(bad[0].value("id", ""), "bad-1");
  EXPECT_EQ(bad[0].value("type", ""), "t.bad");
  EXPECT_EQ(bad[0].value("sink", ""), dlq.url() + "/dlq");
  EXPECT_EQ(bad[0].value("knativeerrordest", ""), failing.url() + "/hook");
  EXPECT_EQ(bad[0].value("knativeerrorcode", 0), 503);
  EXPECT_EQ(bad[0].value("knativeerrordata", ""), "busy?now") << "control bytes are masked";
  auto lost = letters_of(o, "lost");
  ASSERT_EQ(lost.size(), 1u);
  EXPECT_EQ(lost[0].value("outcome", ""), "dropped");
  EXPECT_FALSE(lost[0].contains("sink"));
  EXPECT_EQ(lost[0].value("knativeerrordest", ""), failing.url() + "/lost");

  // The CLI prints the same data.
  std::string out;
  ASSERT_EQ(server.cli({"status"}, &out), 0) << out;
  for (const char* expected : {"BROKERS", "TRIGGERS", "AGENTS", "RECENT DEAD LETTERS", "default/bad", "bad-1",
                               "deadLettered", "dropped", "lost-1", "503"})
    EXPECT_NE(out.find(expected), std::string::npos) << expected << " in\n" << out;
  ASSERT_EQ(server.cli({"status", "-o", "json"}, &out), 0) << out;
  EXPECT_EQ(json::parse(out, nullptr, false).value("kind", ""), "Overview");
  EXPECT_NE(server.cli({"status", "-o", "yaml"}, &out), 0);

  // A deleted trigger's dead letters go with it.
  ASSERT_EQ(server.cli({"delete", "trigger", "bad"}, &out), 0) << out;
  EXPECT_TRUE(letters_of(overview(server), "bad").empty());
  EXPECT_EQ(letters_of(overview(server), "lost").size(), 1u);

  httplib::Client client("127.0.0.1", server.port());
  auto post = client.Post("/apis/v1/overview", "{}", "application/json");
  ASSERT_TRUE(post);
  EXPECT_EQ(post->status, 405);
}

TEST(Dashboard, ServesItsFilesFromTheBinary) {
  SluiceServer server;
  ASSERT_TRUE(server.wait_ready());
  httplib::Client client("127.0.0.1", server.port());
  auto root = client.Get("/ui");
  ASSERT_TRUE(root);
  EXPECT_EQ(root->status, 301);
  EXPECT_EQ(root->get_header_value("Location"), "/ui/");
  auto page = client.Get("/ui/");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  EXPECT_EQ(page->get_header_value("Content-Type"), "text/html; charset=utf-8");
  EXPECT_NE(page->body.find("<script src=\"/ui/app.js\">"), std::string::npos);
  // Nothing from elsewhere: the dashboard works offline.
  EXPECT_EQ(page->body.find("http://"), std::string::npos);
  EXPECT_EQ(page->body.find("https://"), std::string::npos);
  auto script = client.Get("/ui/app.js");
  ASSERT_TRUE(script);
  EXPECT_EQ(script->status, 200);
  EXPECT_EQ(script->get_header_value("Content-Type"), "text/javascript; charset=utf-8");
  EXPECT_NE(script->body.find("/apis/v1/overview"), std::string::npos);
  auto css = client.Get("/ui/style.css");
  ASSERT_TRUE(css);
  EXPECT_EQ(css->get_header_value("Content-Type"), "text/css; charset=utf-8");
  for (const char* missing : {"/ui/nope.js", "/ui/../server.cpp", "/uix"}) {
    auto res = client.Get(missing);
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 404) << missing;
  }
}

}  // namespace
}  // namespace sluice::testing
